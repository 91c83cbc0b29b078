"""The core-cpu image at run time, on the real engine (engine/up): Docker runs it.

core-cpu is built from the `ci` stack the way the scenarios build it (the stand-in ComfyUI
of ``bench.scenarios``, real PyPI packages through the CA secret), under one fixed
namespace so repeated runs reuse the registry cache. Unlike the cache scenarios it never
prunes the builder or removes images: the engine is shared.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.engine import Engine, docker, engine_from_env
from bench.scenarios import bake_plan
from bench.standin_inputs import NS, ci_config, ensure_inputs, make_wheel, prepare
from tools.offline import run_program
from tools.plan import to_plan

pytestmark = pytest.mark.engine

NAMESPACE = "comfyui-ci/runtime-tests"
TORCH_PIN = (
    "2.8.0+cpu.standin"  # versions.torch of stacks/Pulumi.ci.yaml, from the cpu stand-in index
)


def build_core_cpu(engine: Engine) -> str:
    """Build runtime-cpu and core-cpu from the ci stack; the pushed core-cpu ref by digest."""
    config = ci_config(engine, "unused")
    config[f"{NS}:registry"] = {"address": engine.registry, "namespace": NAMESPACE}
    config[f"{NS}:targets"] = ["core-cpu"]
    prepare(config)
    ensure_inputs(engine, config)
    plan = to_plan(run_program(config, stack="ci"))
    digest = bake_plan(plan)["core-cpu"]
    assert plan["order"][-1] == "core-cpu", plan["order"]
    ref = f"{engine.registry}/{NAMESPACE}/core-cpu@{digest}"
    docker("pull", "--quiet", ref)
    return ref


@pytest.fixture(scope="module")
def image() -> str:
    engine = engine_from_env()
    if engine is None:
        pytest.skip("no engine: source .engine/env after engine/up")
    return build_core_cpu(engine)


def run(image: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``docker run --rm`` of the image; ``args`` are docker run options, then the image's."""
    split = args.index("--")
    return docker("run", "--rm", *args[:split], image, *args[split + 1 :], check=False)


@pytest.fixture
def volume() -> Iterator[str]:
    name = f"comfyui-rt-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", name)
    yield name
    docker("volume", "rm", "--force", name, check=False)


def wait_healthy(container: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = docker(
            "inspect", "--format", "{{.State.Health.Status}}", container, check=False
        ).stdout.strip()
        if status in {"healthy", "unhealthy"}:
            return status
        time.sleep(1)
    return status


@pytest.fixture
def server(image: str, volume: str) -> Iterator[str]:
    """ComfyUI (the stand-in) started the default way on an empty volume."""
    name = f"comfyui-rt-{uuid.uuid4().hex[:8]}"
    docker("run", "--detach", "--name", name, "--volume", f"{volume}:/data", image)
    yield name
    docker("rm", "--force", name, check=False)


def system_stats(container: str) -> dict[str, object]:
    probe = (
        "import json, urllib.request; "
        "print(urllib.request.urlopen('http://127.0.0.1:8188/system_stats').read().decode())"
    )
    result = docker("exec", container, "/usr/local/bin/python", "-c", probe)
    return dict(json.loads(result.stdout))


def test_fresh_volume_is_seeded_and_comfyui_reports_healthy(server: str) -> None:
    assert wait_healthy(server) == "healthy", docker("logs", server, check=False).stderr
    stats = system_stats(server)
    system = stats["system"]
    assert isinstance(system, dict)
    assert "--enable-manager" in system["argv"], system["argv"]
    assert "--cpu" in system["argv"], system["argv"]
    logs = docker("logs", server)
    output = logs.stdout + logs.stderr
    assert "custom node loaded: /opt/comfyui/custom_nodes/standin_bundled_node.py" in output
    assert "ComfyUI-Manager stand-in enabled, from /opt/venv/" in output, output
    assert "torch is a CPU build; starting on CPU" in output, "the device probe must be logged"
    listing = docker("exec", server, "ls", "/data").stdout.split()
    for folder in ("models", "input", "output", "user", "custom_nodes", "cache", "venv"):
        assert folder in listing, f"/data/{folder} missing: {listing}"
    seeded = docker("exec", server, "ls", "/data/custom_nodes").stdout.split()
    assert "standin_bundled_node.py" in seeded, seeded


def test_node_dependencies_land_on_the_volume_and_torch_stays(
    image: str, server: str, volume: str, tmp_path: Path
) -> None:
    assert wait_healthy(server) == "healthy"  # the entrypoint has made /data/venv by then
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "standin-node-dep", "1.0.0")
    make_wheel(wheels, "standin-uv-dep", "1.0.0")
    make_wheel(wheels, "torch", "9.9.9")
    make_wheel(wheels, "standin-greedy-dep", "1.0.0", requires=("torch>=9",))
    docker("cp", str(wheels), f"{server}:/tmp/")

    def exec_(*command: str) -> subprocess.CompletedProcess[str]:
        return docker("exec", server, *command, check=False)

    offline = ("--no-index", "--find-links", "/tmp/wheels")  # noqa: S108 (in the container)
    installed = exec_("pip", "install", *offline, "standin-node-dep")
    assert installed.returncode == 0, installed.stderr
    where = exec_("python", "-c", "import standin_node_dep; print(standin_node_dep.__file__)")
    assert where.stdout.startswith("/data/venv/lib/"), where.stdout + where.stderr
    for wanted in ("torch==9.9.9", "standin-greedy-dep"):
        refused = exec_("pip", "install", *offline, wanted)
        assert refused.returncode != 0, f"pip moved torch for {wanted}:\n{refused.stdout}"
    uv_refused = exec_("uv", "pip", "install", *offline, "torch==9.9.9")
    assert uv_refused.returncode != 0, f"uv moved torch:\n{uv_refused.stdout}"
    uv_installed = exec_("uv", "pip", "install", *offline, "standin-uv-dep")
    assert uv_installed.returncode == 0, uv_installed.stderr
    torch = exec_("python", "-c", "import torch; print(torch.__version__)")
    assert torch.stdout.strip() == TORCH_PIN, torch.stdout + torch.stderr

    # A new container on the same volume still has both.
    again = run(
        image,
        "--volume",
        f"{volume}:/data",
        "--",
        "python",
        "-c",
        "import standin_node_dep, standin_uv_dep, torch; print(torch.__version__)",
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == TORCH_PIN


def test_docker_stop_is_a_clean_sigint_shutdown(server: str) -> None:
    assert wait_healthy(server) == "healthy"
    started = time.monotonic()
    docker("stop", "--time", "30", server)
    seconds = time.monotonic() - started
    code = docker("inspect", "--format", "{{.State.ExitCode}}", server).stdout.strip()
    logs = docker("logs", server)
    assert code == "0", f"exit {code} after docker stop:\n{logs.stdout[-2000:]}"
    assert seconds < 20, f"docker stop took {seconds:.0f}s: the signal did not reach ComfyUI"
    assert "Stopped server" in logs.stdout


def test_sigterm_would_kill_comfyui(image: str, volume: str) -> None:
    """Control for the test above: without STOPSIGNAL SIGINT, docker stop ends with 143."""
    name = f"comfyui-rt-{uuid.uuid4().hex[:8]}"
    docker("run", "--detach", "--name", name, "--volume", f"{volume}:/data", image)
    try:
        assert wait_healthy(name) == "healthy"
        docker("stop", "--signal", "SIGTERM", "--time", "30", name)
        code = docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == "143", code
    finally:
        docker("rm", "--force", name, check=False)


def test_a_command_runs_instead_of_comfyui(image: str) -> None:
    result = run(image, "--", "bash", "-c", "echo hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi\n"


def test_comfy_cli_and_uv_run_from_their_own_environment(image: str, volume: str) -> None:
    """comfy-cli lives in /opt/comfy-cli, not in ComfyUI's environment, and its `comfy` and
    `uv` are on PATH; both work on ComfyUI's environment through VIRTUAL_ENV (/data/venv)."""
    script = (
        'readlink -f "$(command -v comfy)"; readlink -f "$(command -v uv)"; '
        'echo "$VIRTUAL_ENV"; comfy --help >/dev/null && echo comfy-ok; '
        "uv --version >/dev/null && echo uv-ok; "
        "/opt/venv/bin/pip show comfy-cli >/dev/null 2>&1 || echo not-in-comfyui-env"
    )
    result = run(image, "--volume", f"{volume}:/data", "--", "bash", "-c", script)
    assert result.returncode == 0, result.stderr
    comfy, uv, venv, *checks = result.stdout.split()
    assert comfy.startswith("/opt/comfy-cli/"), comfy
    assert uv.startswith("/opt/comfy-cli/"), uv
    assert venv == "/data/venv"
    assert checks == ["comfy-ok", "uv-ok", "not-in-comfyui-env"], result.stdout + result.stderr


def test_puid_pgid_drop_root_and_own_data(image: str, volume: str) -> None:
    script = "id -u; id -g; stat -c %u:%g /data; touch /data/probe; stat -c %u:%g /data/probe"
    result = run(
        image,
        *("--user", "0", "-e", "PUID=1234", "-e", "PGID=2345", "--volume", f"{volume}:/data"),
        "--",
        "sh",
        "-c",
        script,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1234", "2345", "1234:2345", "1234:2345"], result.stdout


def test_arbitrary_uid_runs(image: str) -> None:
    """OpenShift style: an unknown uid in group 0, no volume, no passwd entry."""
    script = "id -u; python -c 'import getpass; print(getpass.getuser())'; test -d /data/venv"
    result = run(image, "--user", "123456:0", "--", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["123456", "uid123456"], result.stdout


def test_read_only_data_warns_and_continues(image: str, volume: str) -> None:
    result = run(image, "--volume", f"{volume}:/data:ro", "--", "sh", "-c", "echo continued")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "continued\n"
    assert "WARNING: /data is not writable" in result.stderr


def test_volume_hook_extra_paths_and_custom_nodes_are_used(image: str, volume: str) -> None:
    prepare_volume = (
        "printf 'shared:\\n  checkpoints: /data/shared/checkpoints\\n'"
        " > /data/extra_model_paths.yaml"
        " && printf 'echo hook ran as $(id -u)\\n' > /data/pre-start.sh"
        " && mkdir -p /data/custom_nodes/my_node"
        " && echo 'NODE_CLASS_MAPPINGS = {}' > /data/custom_nodes/my_node/__init__.py"
    )
    prepared = run(image, "--volume", f"{volume}:/data", "--", "sh", "-c", prepare_volume)
    assert prepared.returncode == 0, prepared.stderr
    name = f"comfyui-rt-{uuid.uuid4().hex[:8]}"
    docker("run", "--detach", "--name", name, "--volume", f"{volume}:/data", image)
    try:
        assert wait_healthy(name) == "healthy"
        logs = docker("logs", name)
        output = logs.stdout + logs.stderr
        assert "hook ran as 10001" in output, output
        assert "Adding extra search path checkpoints /data/shared/checkpoints" in output, output
        assert "custom node loaded: /opt/comfyui/custom_nodes/my_node" in output, output
    finally:
        docker("rm", "--force", name, check=False)


def test_a_failing_hook_stops_the_container(image: str, volume: str) -> None:
    result = run(image, "--volume", f"{volume}:/data", "-e", "COMFYUI_PRE_START=/bin/false", "--")
    assert result.returncode == 1, result.stdout
    assert "pre-start hook /bin/false failed (exit 1); not starting ComfyUI" in result.stderr


def test_c_extensions_compile_at_run_time(image: str) -> None:
    """What Triton does on first use (torch.compile, SageAttention's Triton kernels)."""
    script = (
        'include="$(python -c "import sysconfig; print(sysconfig.get_paths()[\'include\'])")"'
        ' && printf "#include <Python.h>\\nint main(void) { return Py_IsInitialized(); }\\n"'
        ' | gcc -x c - -I"$include" -c -o /tmp/probe.o && echo compiled'
    )
    result = run(image, "--", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "compiled"
