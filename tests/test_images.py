"""The images themselves, read from their Dockerfiles: the user, /data, ports, the
healthcheck, the environment and the build contexts each target receives."""

from __future__ import annotations

import re
from pathlib import Path

import dockerfile
import pytest

from components import locks
from components.catalog import DOCKERFILES_DIR, TARGETS, Target
from components.project import ROOT
from tests.dockerfile_model import (
    DOCKERFILES,
    chain,
    context_copy,
    core_target,
    dockerignore_excludes,
    effective_commands,
    flag_values,
    mounts,
    parse,
    references,
    stage_refs,
    text,
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


# The images users run (core's environment image is only built on, never run).
FINAL_IMAGES = sorted(n for n, t in TARGETS.items() if t.stage in {"core", "complete"})


@pytest.mark.parametrize("name", FINAL_IMAGES)
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


@pytest.mark.parametrize("name", FINAL_IMAGES)
def test_final_image_stops_comfyui_with_sigint(name: str) -> None:
    signals = [c.value[0] for c in effective_commands(TARGETS[name]) if c.cmd == "STOPSIGNAL"]
    assert signals, f"{name}: no STOPSIGNAL: docker stop sends SIGTERM and ComfyUI dies (143)"
    assert signals[-1] == "SIGINT", f"{name}: STOPSIGNAL {signals[-1]}, ComfyUI stops on SIGINT"


@pytest.mark.parametrize("name", FINAL_IMAGES)
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
