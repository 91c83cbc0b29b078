"""The CUDA side of the family built for real: runtime-cuda, core-cuda, the SageAttention
builder and complete-cuda, on the engine of engine/up.

No CUDA image and no PyTorch index are reachable here, so the stand-ins of
``bench.scenarios`` take their place: a `devel` base whose ``nvcc`` reports the line's
release, a SageAttention source whose build records the architectures it was given, and the
line's PEP 503 torch index with a torch that reports the line's CUDA. Everything else is
the real Dockerfiles, the real pip steps (PyPI through the CA secret) and the program's own
plan, built as the docker-build provider would.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from bench.engine import Engine
from bench.scenarios import RUNS, SCENARIOS, Scenario, TargetRun, run_scenario
from bench.standin_inputs import NS, WORK, ci_config, ensure_inputs, prepare
from bench.tests.test_engine import _image_ref, _run_in, engine  # noqa: F401 (a fixture)
from components import cuda

pytestmark = pytest.mark.engine

BUILDS = (
    "runtime-cuda",
    "runtime-cpu",
    "core-env-cuda",
    "core-cuda",
    "sageattention-builder",
    "complete-cuda",
)


@pytest.fixture(scope="module")
def cuda_family(engine: Engine) -> tuple[dict[str, Any], dict[str, TargetRun]]:  # noqa: F811
    run_id = f"cuda{int(time.time())}"
    config = {**ci_config(engine, run_id), f"{NS}:targets": ["complete-cuda"]}
    prepare(config)
    ensure_inputs(engine, config)
    scenario = Scenario("cuda-family", "every CUDA target, cold")
    return config, run_scenario(config, scenario, RUNS / run_id / scenario.name)


def _repo(config: dict[str, Any], target: str) -> str:
    registry = config[f"{NS}:registry"]
    return f"{registry['address']}/{registry['namespace']}/{target}"


def test_every_cuda_target_builds(cuda_family: tuple[dict[str, Any], dict[str, TargetRun]]) -> None:
    _, runs = cuda_family
    assert sorted(runs) == sorted(BUILDS)
    for name, run in runs.items():
        assert run.metadata.get("containerimage.digest", "").startswith("sha256:"), name


def test_builder_compiles_for_the_lines_architectures(
    cuda_family: tuple[dict[str, Any], dict[str, TargetRun]],
) -> None:
    """The builder's image is only the wheel; complete installs it and can import it, and
    the compile step saw exactly the line's SageAttention architectures (no 10.0, no PTX)."""
    config, runs = cuda_family
    release = config[f"{NS}:versions"]["cuda"]
    complete = _image_ref(runs["complete-cuda"], _repo(config, "complete-cuda"))
    archs = _run_in(
        complete, "python", "-c", "import sageattention; print(sageattention.TORCH_CUDA_ARCH_LIST)"
    )
    assert archs == cuda.default_arch_list(release)
    assert "10.0" not in archs
    assert "PTX" not in archs


def test_complete_keeps_the_lines_torch(
    cuda_family: tuple[dict[str, Any], dict[str, TargetRun]],
) -> None:
    """complete's pip steps (custom-node dependencies, the wheel) never move core's torch."""
    config, runs = cuda_family
    release = config[f"{NS}:versions"]["cuda"]
    complete = _image_ref(runs["complete-cuda"], _repo(config, "complete-cuda"))
    found = _run_in(
        complete, "python", "-c", "import torch; print(torch.__version__, torch.version.cuda)"
    )
    line = cuda.wheel_tag(release)
    assert found == f"{config[f'{NS}:versions']['torch']}+{line}.standin {cuda.torch_cuda(release)}"
    assert "skimage" in _run_in(complete, "python", "-c", "import skimage; print(skimage.__name__)")
    # The custom-node dependencies are core's venv's own now (no second copy of anything
    # core has), importable and consistent as pip sees them.
    for module in ("git", "imageio_ffmpeg", "cv2", "piexif"):
        assert _run_in(complete, "python", "-c", f"import {module}; print({module}.__name__)")
    _run_in(complete, "/opt/venv/bin/pip", "check")


@pytest.fixture(scope="module")
def cuda_app_change(
    cuda_family: tuple[dict[str, Any], dict[str, TargetRun]],
) -> dict[str, TargetRun]:
    """The family rebuilt on a fresh runner after an edit of core's start script."""
    config, _ = cuda_family
    scenario = next(s for s in SCENARIOS if s.name == "app-change")
    assert scenario.edit is not None
    scenario.edit(WORK)
    run_id = config[f"{NS}:registry"]["namespace"].rsplit("/", 1)[-1]
    return run_scenario(config, scenario, RUNS / run_id / "cuda-app-change")


def test_core_app_edit_reruns_nothing_of_complete(
    cuda_app_change: dict[str, TargetRun],
) -> None:
    """complete's own steps read /opt/venv from core's environment image, by its digest, not
    core's: an edit of core's scripts reruns only core's app layer and the joins onto it, in
    core and in complete, and complete pulls none of core's layers (BuildKit would, to hash
    the venv, if the step were keyed to core's new digest): only manifests and configs."""
    reran = {t: [s.text for s in r.steps if not s.cached] for t, r in cuda_app_change.items()}
    assert reran["runtime-cuda"] == []
    assert reran["sageattention-builder"] == []
    assert sorted(reran["core-cuda"]) == [
        "COPY --link app/ /opt/comfyui-app/",
        "LINK COPY --link app/ /opt/comfyui-app/",
    ]
    assert reran["complete-cuda"] == ["LINK COPY --link --from=complete-deps /out/ /"], (
        "complete reran more than its join onto the new core: "
        f"{[t[:60] for t in reran['complete-cuda']]}"
    )
    for target, run in cuda_app_change.items():
        print(f"{target}: pulled {run.traffic.bytes_pulled} B, pushed {run.traffic.bytes_pushed} B")
    assert reran["core-env-cuda"] == [], "the app edit reached core's environment"
    pulled = cuda_app_change["complete-cuda"].traffic.bytes_pulled
    assert pulled < 100_000, f"complete pulled {pulled} B of its parents' layers"
