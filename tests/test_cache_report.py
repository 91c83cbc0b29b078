"""The cache report's verdict against a stack's thresholds, on recorded-shape progress.

The engine test runs the report on real BuildKit progress; these pin down the comparison
itself: a target at its threshold passes, one step short of it fails, and a target with no
threshold never fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.errors import SettingsError
from tests.conftest import Evaluate
from tools import cache_report
from tools.offline import Recording, load_stack_config


def progress(target: str, cached: int, total: int) -> str:
    """A rawjson stream (pretty-printed objects, one after another) of ``total`` RUN steps,
    the first ``cached`` of them reused, plus a FROM that must not count."""
    vertexes = [{"digest": "sha256:from", "name": f"[{target} base 1/{total + 1}] FROM x"}]
    vertexes += [
        {
            "digest": f"sha256:{n}",
            "name": f"[{target} build {n + 2}/{total + 1}] RUN step {n}",
            "cached": n < cached,
        }
        for n in range(total)
    ]
    return "\n".join(json.dumps({"vertexes": [v]}, indent=2) for v in vertexes)


def run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *builds: tuple[str, int, int]
) -> tuple[int, str, str]:
    argv = ["--stack", "ci"]
    for target, cached, total in builds:
        path = tmp_path / f"{target}.json"
        path.write_text(progress(target, cached, total))
        argv += ["--progress", f"{target}={path}"]
    code = cache_report.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_ci_thresholds_are_the_ones_these_tests_assume() -> None:
    thresholds = load_stack_config("ci")["comfyui-images:cacheThresholds"]
    assert thresholds["core-cpu"] == 0.5
    assert thresholds["runtime-cpu"] == 1.0


def test_a_target_exactly_at_its_threshold_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(tmp_path, capsys, ("core-cpu", 2, 4), ("runtime-cpu", 3, 3))
    assert code == 0, err
    assert "| core-cpu | 4 | 2 | 50% | 50% |" in out
    assert "❌" not in out
    assert err == ""


def test_a_target_below_its_threshold_fails_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(tmp_path, capsys, ("core-cpu", 2, 4), ("runtime-cpu", 2, 3))
    assert code == 1
    assert "| runtime-cpu | 3 | 2 | 67% ❌ | 100% |" in out
    assert "runtime-cpu reused 2/3 steps (67%), below its threshold 100%" in err
    assert "core-cpu" not in err


def test_a_target_above_its_threshold_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(tmp_path, capsys, ("core-cpu", 3, 4))
    assert code == 0, err


def test_a_target_without_a_threshold_never_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(tmp_path, capsys, ("sageattention-builder", 0, 5))
    assert code == 0
    assert "| sageattention-builder | 5 | 0 | 0% | - |" in out


def test_a_stack_that_narrows_its_targets_keeps_thresholds_of_the_others(
    evaluate: Evaluate,
) -> None:
    """cacheThresholds may name any target's build on the stack's lines: a stack that builds
    only the CPU chain for now keeps its thresholds for the CUDA builds."""
    config = load_stack_config("prod")
    config["comfyui-images:targets"] = ["core-cpu"]
    config["comfyui-images:cacheThresholds"] = {
        "core-env-cuda-cu126": 0.5,
        "core-cuda-cu126": 0.5,
        "complete-cuda-cu130": 0.7,
    }
    config.pop("comfyui-images:github")
    config.pop("comfyui-images:githubSecrets")
    assert set(evaluate(config, stack="prod").images()) == {
        f"{name}{platform}"
        for name in ("runtime-cpu", "core-env-cpu", "core-cpu")
        for platform in ("", "-arm64")
    }


def test_thresholds_name_builds_of_the_stack_on_its_own_lines(evaluate: Evaluate) -> None:
    """A typo in a build name fails the plan before any resource, naming the builds."""
    config = load_stack_config("prod")
    config["comfyui-images:cacheThresholds"] = {"core-cuda-cu126": 0.5, "core-cuda": 0.5}
    recording = Recording(stack="prod", preview=False)
    with pytest.raises(SettingsError) as raised:
        evaluate(config, stack="prod", into=recording)
    message = str(raised.value)
    assert "comfyui-images:cacheThresholds names 'core-cuda', which this stack never builds" in (
        message
    )
    assert "core-cuda-cu126" not in message.split("never builds", maxsplit=1)[0]
    assert "its builds are runtime-cuda-cu130, runtime-cuda-cu130-arm64, runtime-cuda-cu126," in (
        message
    )
    assert recording.resources == []
