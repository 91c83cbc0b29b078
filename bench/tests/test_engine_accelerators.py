"""ROCm and XPU cores built for real on the engine (engine/up), from stand-in indexes.

No ROCm or XPU wheel, and no GPU, is reachable here, so each line's index is a stand-in
(``bench.standin_inputs``): a torch that reports ``torch.version.hip`` on ``rocm7.14`` and
``torch.xpu._is_compiled()`` on ``xpu``, as the real builds do. Everything else is real:
the Dockerfile, its strict torch check, the shared runtime-cpu, the start script's probe.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import Any

import pytest

from bench.engine import CA_BUNDLE, Engine, docker
from bench.scenarios import BAKE_ALLOW, bake_plan
from bench.standin_inputs import NS, WORK, ci_config, ensure_inputs, prepare
from bench.tests.test_engine import _run_in, engine  # noqa: F401 (a fixture)
from tools.bake import to_bake
from tools.offline import run_program
from tools.plan import to_plan

pytestmark = pytest.mark.engine

NAMESPACE = "comfyui-ci/accelerator-tests"
TORCH = "2.8.0"  # versions.torch of stacks/Pulumi.ci.yaml


def _config(engine: Engine, targets: list[str], **sources: str) -> dict[str, Any]:  # noqa: F811
    config = ci_config(engine, "unused")
    config[f"{NS}:registry"] = {"address": engine.registry, "namespace": NAMESPACE}
    config[f"{NS}:targets"] = targets
    config[f"{NS}:sources"] = {**config[f"{NS}:sources"], **sources}
    return config


@pytest.fixture(scope="module")
def cores(engine: Engine) -> dict[str, str]:  # noqa: F811
    """runtime-cpu, core-rocm and core-xpu (each on its environment image) built as the
    provider builds them: each pushed ref by digest."""
    config = _config(engine, ["core-rocm", "core-xpu"])
    prepare(config)
    ensure_inputs(engine, config)
    plan = to_plan(run_program(config, stack="ci"))
    digests = bake_plan(plan)
    return {name: f"{engine.registry}/{NAMESPACE}/{name}@{d}" for name, d in digests.items()}


def test_runtime_and_core_build_for_each_kind(cores: dict[str, str]) -> None:
    assert set(cores) == {
        "runtime-cpu",
        "core-env-rocm",
        "core-rocm",
        "core-env-xpu",
        "core-xpu",
    }, "one shared plain runtime"


@pytest.mark.parametrize(
    ("target", "probe", "expected"),
    [
        (
            "core-rocm",
            "import torch; print(torch.__version__, torch.version.hip, torch.version.cuda)",
            f"{TORCH}+rocm7.14.standin 7.14.0-standin None",
        ),
        (
            "core-xpu",
            "import torch; print(torch.__version__, torch.xpu._is_compiled(), "
            "torch.version.cuda, torch.version.hip)",
            f"{TORCH}+xpu.standin True None None",
        ),
    ],
)
def test_each_core_holds_the_torch_of_its_own_index(
    cores: dict[str, str], target: str, probe: str, expected: str
) -> None:
    assert _run_in(cores[target], "python", "-c", probe) == expected


@pytest.mark.parametrize("kind", ["rocm", "xpu"])
def test_the_container_starts_with_its_kinds_device_probe_logged(
    cores: dict[str, str], kind: str
) -> None:
    """No GPU here: the probe names the kind torch is built for and why it starts on CPU,
    and the stand-in ComfyUI then serves."""
    name = f"comfyui-accel-{uuid.uuid4().hex[:8]}"
    docker("run", "--detach", "--name", name, cores[f"core-{kind}"])
    try:
        output = ""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and "To see the GUI" not in output:
            time.sleep(1)
            logs = docker("logs", name, check=False)
            output = logs.stdout + logs.stderr
        assert "To see the GUI" in output, output
        assert (
            f"comfyui-start: torch (a {kind} build) sees no usable {kind} device; starting on CPU"
        ) in output, output
    finally:
        docker("rm", "--force", name, check=False)


@pytest.mark.usefixtures("cores")  # runtime-cpu is pushed: core-env-rocm reads it from there
def test_a_cuda_wheel_on_a_rocm_line_is_refused_by_the_torch_layer(
    engine: Engine,  # noqa: F811
) -> None:
    """The ROCm line's index pointed at the CUDA line's: pip installs a CUDA torch, and the
    strict check fails the build naming what it got and what the line needs."""
    config = _config(engine, ["core-rocm"], torchIndexRocm=f"{engine.index_url}/cu129")
    prepare(config)
    ensure_inputs(engine, config)
    plan = to_plan(run_program(config, stack="ci"))
    bake_file = WORK / "bake-refused.json"
    bake_file.write_text(json.dumps(to_bake(plan, secrets={"ca": CA_BUNDLE}, parents="image")))
    bake = ["docker", "buildx", "bake", *BAKE_ALLOW, "--file", str(bake_file)]
    result = subprocess.run(
        [*bake, "--progress", "plain", "core-env-rocm"],  # the torch layer's image
        cwd=WORK,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert result.returncode != 0, "a CUDA torch on the ROCm line was accepted"
    assert (
        f"torch {TORCH}+cu129.standin is built for cuda:12.9; this line needs rocm:7.14: "
        "check TORCH_INDEX_URL"
    ) in result.stderr, result.stderr[-3000:]
