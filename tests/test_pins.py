"""Pin routing: each pinned version (and each network input) reaches exactly the Images
whose layers it changes, as a build arg or a named-context location, and no others.

A bump is evaluated against the baseline; the targets whose build args or source
contexts differ must equal the expected set. Parent contexts are left out on purpose:
a child sees a parent change through the parent's digest, not through the pin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.catalog import TARGETS
from components.image import REPRODUCIBLE
from components.settings import PIN_EXAMPLES, Sources, Versions
from tests.conftest import Evaluate, with_overrides, write_lock
from tools.offline import unwrap

RUNTIMES = {"runtime-cuda", "runtime-cpu"}
CORES = {"core-cuda", "core-cpu", "core-rocm", "core-xpu"}
# Core's Python environment images: torch and ComfyUI's requirements.
ENVS = {"core-env-cuda", "core-env-cpu", "core-env-rocm", "core-env-xpu"}
BUILDER = {"sageattention-builder"}
COMPLETE = {"complete-cuda"}

# pin -> (bumped value, targets whose own inputs must change)
VERSION_ROUTES: dict[str, tuple[str, set[str]]] = {
    "python": ("3.13", RUNTIMES | BUILDER),
    "ubuntu": ("26.04", RUNTIMES | BUILDER),
    # The CUDA release picks the line's base, its torch index and the torch CUDA it checks.
    "cuda": ("12.9.1", {"runtime-cuda", "core-env-cuda"} | BUILDER),
    # The ROCm release picks the ROCm line's torch index and the HIP its torch must report.
    "rocm": ("10.0", {"core-env-rocm"}),
    "torch": ("2.16.0", ENVS | BUILDER),
    "torchvision": ("0.30.0", ENVS),
    "torchaudio": ("2.12.0", ENVS),
    "comfyCli": ("1.24.0", CORES),
    "comfyui": ("v0.44.1", CORES | ENVS),
    "sageattention": ("v2.2.1", BUILDER),
}

SOURCE_ROUTES: dict[str, tuple[str, set[str]]] = {
    "cudaImage": ("mirror.test/nvidia/cuda", {"runtime-cuda"} | BUILDER),
    "ubuntuImage": ("mirror.test/library/ubuntu", {"runtime-cpu"}),
    "comfyui": ("https://mirror.test/ComfyUI.git#{version}", CORES | ENVS),
    "sageattention": ("https://mirror.test/SageAttention.git#{version}", BUILDER),
    "torchIndexCpu": ("https://mirror.test/torch/cpu", {"core-env-cpu"}),
    "torchIndexCuda": ("https://mirror.test/torch/{line}", {"core-env-cuda"} | BUILDER),
    "torchIndexRocm": ("https://mirror.test/torch/{line}", {"core-env-rocm"}),
    "torchIndexXpu": ("https://mirror.test/torch/{line}", {"core-env-xpu"}),
    "pypiMirror": ("https://mirror.test/pypi/simple", CORES | ENVS | BUILDER | COMPLETE),
    "wheelhouse": ("build/wheelhouse", CORES | ENVS | BUILDER | COMPLETE),
    # A directory holding a lock of the pinned version (test_source_reaches_...: written).
    "comfyuiLock": ("{tmp}/{version}", CORES | ENVS),
}


def own_inputs(recording: Any) -> dict[str, dict[str, Any]]:
    """Build args and non-parent named contexts of each Image."""
    result = {}
    for name, resource in recording.images().items():
        i = unwrap(resource.inputs)
        named = (i.get("context") or {}).get("named") or {}
        result[name] = {
            "args": i.get("buildArgs") or {},
            "contexts": {
                ctx: spec["location"]
                for ctx, spec in named.items()
                if not spec["location"].startswith("docker-image://")
            },
        }
    return result


def changed_targets(
    evaluate: Evaluate, config: dict[str, Any], section: str, key: str, value: str
) -> set[str]:
    baseline = own_inputs(evaluate(config))
    bumped_config = with_overrides(config, **{section: {key: value}})
    bumped = own_inputs(evaluate(bumped_config))
    return {name for name in baseline if baseline[name] != bumped[name]}


@pytest.fixture
def everything(base_config: dict[str, Any]) -> dict[str, Any]:
    return with_overrides(base_config, targets=list(TARGETS))


def test_every_pin_and_source_has_a_route() -> None:
    assert set(VERSION_ROUTES) == set(Versions.model_fields), "add the new pin to VERSION_ROUTES"
    assert set(SOURCE_ROUTES) == set(Sources.model_fields), "add the new source to SOURCE_ROUTES"


@pytest.mark.parametrize("pin", sorted(VERSION_ROUTES))
def test_version_reaches_exactly_its_targets(
    evaluate: Evaluate, everything: dict[str, Any], pin: str
) -> None:
    value, expected = VERSION_ROUTES[pin]
    assert changed_targets(evaluate, everything, "versions", pin, value) == expected


@pytest.mark.parametrize("source", sorted(SOURCE_ROUTES))
def test_source_reaches_exactly_its_targets(
    evaluate: Evaluate, everything: dict[str, Any], source: str, tmp_path: Path
) -> None:
    value, expected = SOURCE_ROUTES[source]
    if "{tmp}" in value:
        write_lock(tmp_path / PIN_EXAMPLES["comfyui"])
        value = value.replace("{tmp}", str(tmp_path))
    assert changed_targets(evaluate, everything, "sources", source, value) == expected


def test_cuda_arch_list_reaches_only_the_builder(
    evaluate: Evaluate, everything: dict[str, Any]
) -> None:
    baseline = own_inputs(evaluate(everything))
    bumped = own_inputs(evaluate(with_overrides(everything, cudaArchList="9.0;12.0")))
    assert {n for n in baseline if baseline[n] != bumped[n]} == BUILDER


def test_comfyui_version_is_in_core_inputs_not_runtime(
    evaluate: Evaluate, everything: dict[str, Any]
) -> None:
    inputs = own_inputs(evaluate(everything))
    for name in CORES:
        assert inputs[name]["args"]["COMFYUI_VERSION"] == "v0.44.0"
        assert inputs[name]["contexts"]["comfyui-src"].endswith("#v0.44.0")
    for name in RUNTIMES:
        assert "v0.44.0" not in str(inputs[name])


def test_pins_reach_the_dockerfile_as_the_declared_arg(
    evaluate: Evaluate, everything: dict[str, Any], tmp_path: Path
) -> None:
    """What the catalog routes is what the provider receives, arg for arg (plus the constant
    SOURCE_DATE_EPOCH that keeps unchanged rebuilds byte-identical); with a lock, so its
    digest is among them."""
    write_lock(tmp_path / PIN_EXAMPLES["comfyui"])
    sources = {"pypiMirror": "https://mirror.test/simple", "comfyuiLock": f"{tmp_path}/{{version}}"}
    config = with_overrides(everything, sources=sources)
    inputs = own_inputs(evaluate(config))
    for name, target in TARGETS.items():
        # A CPU build's expected accelerator is empty, so it is left out (image.build_args).
        cpu = target.args.get("TORCH_ACCELERATOR") == "noAccelerator"
        left_out = {"TORCH_ACCELERATOR"} if cpu else set()
        assert set(inputs[name]["args"]) == set(target.args) - left_out | set(REPRODUCIBLE), name
        assert inputs[name]["args"]["SOURCE_DATE_EPOCH"] == "0", name


def test_no_build_arg_is_empty(evaluate: Evaluate, everything: dict[str, Any]) -> None:
    """The provider takes an empty value for an unknown one and then never builds the Image
    in a preview; an empty arg is left out (every Dockerfile defaults it to "")."""
    config = with_overrides(everything, sources={"pypiMirror": "", "wheelhouse": ""})
    for name, args in own_inputs(evaluate(config)).items():
        assert all(args["args"].values()), f"{name}: {args['args']}"


@pytest.mark.parametrize(
    ("pin", "context", "targets"),
    [("comfyui", "comfyui-src", CORES), ("sageattention", "sageattention-src", BUILDER)],
)
def test_source_pin_selects_the_source_revision(
    evaluate: Evaluate, everything: dict[str, Any], pin: str, context: str, targets: set[str]
) -> None:
    """A bump must change the fetched source itself, not only a label-like build arg."""
    value, _ = VERSION_ROUTES[pin]
    inputs = own_inputs(evaluate(with_overrides(everything, versions={pin: value})))
    for name in targets:
        assert inputs[name]["contexts"][context].endswith(f"#{value}"), name
