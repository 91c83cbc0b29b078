"""ROCm and XPU lines beside CUDA's: their builds, pins, indexes, refs and refusals.

Runs the real ``__main__.py`` under mocks: a ROCm or XPU core and its environment image are
built once per line of its kind from the shared plain runtime, the environment with torch
from its own index and the strict check of its kind; a map of lines names every build after
its line, and nothing is written twice.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import accelerators, indexes
from components.errors import SettingsError
from components.matrix import build_names, target_of
from components.written import collisions
from tests.conftest import NS, Evaluate, with_overrides
from tests.test_hostile import refused
from tests.test_matrix import _settings, _written
from tests.test_pins import own_inputs
from tools.offline import unwrap

# A ROCm matrix as a stack would write it: the current ROCm, and 7.2 at the last trio its
# index carries (it stops at 2.14.x).
ROCM_LINES = {
    "rocm7.14": {"rocm": "7.14"},
    "rocm7.2": {"rocm": "7.2", "torch": "2.14.1", "torchvision": "0.29.1", "torchaudio": "2.11.0"},
}


@pytest.fixture
def gpus(base_config: dict[str, Any]) -> dict[str, Any]:
    return with_overrides(
        base_config,
        targets=["core-cpu", "core-cuda", "core-rocm", "core-xpu"],
        rocmLines=ROCM_LINES,
        cache={"backends": ["gha", "registry"], "mode": "max"},
    )


def test_each_rocm_line_and_the_xpu_line_is_built_from_the_shared_plain_runtime(
    evaluate: Evaluate, gpus: dict[str, Any]
) -> None:
    images = evaluate(gpus).images()
    assert set(images) == {
        "runtime-cpu",
        "core-env-cpu",
        "core-cpu",
        "runtime-cuda",
        "core-env-cuda",
        "core-cuda",
        "core-env-rocm-rocm7.14",
        "core-rocm-rocm7.14",
        "core-env-rocm-rocm7.2",
        "core-rocm-rocm7.2",
        "core-env-xpu",
        "core-xpu",
    }
    # Each line's core is built on its own line's environment image (whose version tag
    # names the line), and that environment on the plain runtime.
    for env_build, core_build, env_image in (
        ("core-env-rocm-rocm7.14", "core-rocm-rocm7.14", "/core-env-rocm:v0.44.0-rocm7.14-torch"),
        ("core-env-rocm-rocm7.2", "core-rocm-rocm7.2", "/core-env-rocm:v0.44.0-rocm7.2-torch"),
        ("core-env-xpu", "core-xpu", "/core-env-xpu:v0.44.0-xpu-torch"),
    ):
        runtime = unwrap(images[env_build].inputs)["context"]["named"]["runtime"]["location"]
        assert "/runtime-cpu:" in runtime, f"{env_build} needs no ROCm or oneAPI base"
        env = unwrap(images[core_build].inputs)["context"]["named"]["comfyui-env"]["location"]
        assert env_image in env, f"{core_build} is not built on {env_build}: {env}"


def test_each_line_installs_from_its_own_index_and_checks_its_own_accelerator(
    evaluate: Evaluate, gpus: dict[str, Any]
) -> None:
    inputs = own_inputs(evaluate(gpus))
    expected = {
        "core-env-rocm-rocm7.14": ("rocm7.14", "rocm:7.14", "2.15.0"),
        "core-env-rocm-rocm7.2": ("rocm7.2", "rocm:7.2", "2.14.1"),
        "core-env-xpu": ("xpu", "xpu", "2.15.0"),
        "core-env-cuda": ("cu130", "cuda:13.0", "2.15.0"),
    }
    for name, (index, accelerator, torch) in expected.items():
        args = inputs[name]["args"]
        assert args["TORCH_INDEX_URL"] == f"https://download.pytorch.org/whl/{index}", name
        assert args["TORCH_ACCELERATOR"] == accelerator, name
        assert args["TORCH_VERSION"] == torch, name
    assert "TORCH_ACCELERATOR" not in inputs["core-env-cpu"]["args"], "a CPU torch reports none"


def test_a_map_of_lines_names_its_builds_and_moving_tags_and_nothing_collides(
    evaluate: Evaluate, gpus: dict[str, Any]
) -> None:
    images = evaluate(gpus).images()
    for line, spec in ROCM_LINES.items():
        tags = unwrap(images[f"core-rocm-{line}"].inputs)["tags"]
        assert tags == [
            f"registry.example.test:5000/team/comfy/core-rocm:v0.44.0-{line}-torch"
            f"{spec.get('torch', '2.15.0')}",
            f"registry.example.test:5000/team/comfy/core-rocm:latest-{line}",
        ]
    # Without a map, the one XPU line keeps the plain name and moving tag.
    assert unwrap(images["core-xpu"].inputs)["tags"][1].endswith("/core-xpu:latest")
    assert collisions(_written(_settings(gpus), "staging")) == []


def test_rocm_names_parse_back_to_their_target_and_other_kinds_do_not(
    gpus: dict[str, Any],
) -> None:
    for name in build_names(_settings(gpus)):
        assert target_of(name).name in name
    with pytest.raises(KeyError):
        target_of("core-rocm-cu130")
    with pytest.raises(KeyError):
        target_of("core-xpu-rocm7.14")


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        (
            {"rocmLines": {"rocm7": {"rocm": "7.14"}}},
            f"{NS}:rocmLines.rocm7 pins ROCm 7.14, whose torch index is 'rocm7.14'; name the "
            "line after its index: rocm7.14: {rocm: '7.14'}",
        ),
        ({"rocmLines": {"rocm7.14": {"rocm": "7"}}}, "is not a ROCm release"),
        ({"versions": {"rocm": "seven"}}, "is not a ROCm release"),
        (
            {"rocmLines": ROCM_LINES, "versions": {"rocm": "7.14"}},
            f"{NS}:versions.rocm is '7.14' but {NS}:rocmLines is set: each line pins its own "
            "ROCm there; remove versions.rocm",
        ),
        (
            {"rocmLines": ROCM_LINES, "sources": {"torchIndexRocm": "https://m.test/whl/rocm"}},
            f"{NS}:sources.torchIndexRocm is 'https://m.test/whl/rocm' with no {{line}} "
            "placeholder",
        ),
        (
            {"xpuLines": {"xpu2": {"torch": "2.15.0"}}},
            f"{NS}:xpuLines names the line 'xpu2', but PyTorch publishes one XPU index, so "
            "the one XPU line is 'xpu'",
        ),
        ({"xpuLines": {"xpu": {"cuda": "13.0.2"}}}, "unknown key"),
        ({"sources": {"torchIndexXpu": ""}}, "torch installs only from its own index"),
    ],
)
def test_a_bad_rocm_or_xpu_line_is_refused_before_any_resource(
    evaluate: Evaluate, gpus: dict[str, Any], override: dict[str, Any], fragment: str
) -> None:
    message = refused(evaluate, with_overrides(gpus, **override))
    assert fragment in message


@pytest.mark.parametrize(
    ("override", "key", "index", "newest"),
    [
        # The one ROCm line of a stack without rocmLines follows versions: 7.14 has no 2.13.
        (
            {"rocmLines": None, "versions": {"torch": "2.13.0"}},
            "versions.torch",
            "rocm7.14",
            "2.15.0",
        ),
        (
            {"rocmLines": {"rocm7.14": {"rocm": "7.14", "torch": "2.13.0"}}},
            "rocmLines.rocm7.14.torch",
            "rocm7.14",
            "2.15.0",
        ),
        (
            {"xpuLines": {"xpu": {"torch": "2.11.0"}}},
            "xpuLines.xpu.torch",
            "xpu",
            "2.15.0",
        ),
    ],
)
def test_a_pin_its_recorded_index_lacks_fails_naming_the_line_key(
    gpus: dict[str, Any], override: dict[str, Any], key: str, index: str, newest: str
) -> None:
    settings = _settings(with_overrides(with_overrides(gpus, rocmLines=None), **override))
    problems = indexes.pin_problems(settings)
    url = f"https://download.pytorch.org/whl/{index}"
    (problem,) = [p for p in problems if url in p and "torch " in p]
    assert problem.startswith(f"comfyui-images:{key} is ")
    assert f"set comfyui-images:{key} to a release that index carries (newest: {newest})" in (
        problem
    )


def test_prod_plans_its_rocm_and_xpu_lines_at_pins_their_recorded_indexes_carry(
    stack_config: Any,
) -> None:
    settings = _settings(stack_config("prod"))
    uses = [u for u in indexes.pin_uses(settings) if u.build in ("core-env-rocm", "core-env-xpu")]
    assert {u.index for u in uses} == {
        "https://download.pytorch.org/whl/rocm7.14",
        "https://download.pytorch.org/whl/xpu",
    }
    for use in uses:
        offer = indexes.carried(use.index, use.project, use.python, use.platform)
        assert offer is not None, f"{use.index} has no recorded {use.project} page"
        assert offer.has(use.pin), f"{use.index} does not carry {use.project} {use.pin}"
    assert indexes.pin_problems(settings) == []


def test_the_accelerator_each_kind_must_report() -> None:
    assert accelerators.torch_accelerator("cuda", "13.0") == "cuda:13.0"
    assert accelerators.torch_accelerator("rocm", "7.14") == "rocm:7.14"
    assert accelerators.torch_accelerator("rocm", "6.2.4") == "rocm:6.2", "HIP's major.minor"
    assert accelerators.torch_accelerator("xpu") == "xpu"
    assert accelerators.torch_accelerator(None) == ""
    assert accelerators.rocm_line_name("6.2.4") == "rocm6.2.4"
    with pytest.raises(SettingsError):
        _settings(
            {
                f"{NS}:registry": {"address": "r.test", "namespace": "n"},
                f"{NS}:targets": ["core-xpu"],
                f"{NS}:xpuLines": {"gpu": {}},
            }
        )
