"""Caching on the real engine (engine/up): what BuildKit itself reports.

The scenarios of ``bench.scenarios`` run once per session against the `ci` stack, each on
a pruned builder with no local images, so every reuse comes from the registry cache.
For each scenario and target, the steps BuildKit reruns must be exactly the minimal set the
scenario writes down (``Scenario.reruns``, each step with its reason in ``Scenario.why``):
a step reruns exactly when its own inputs changed.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bench.engine import CA_BUNDLE, Engine, docker, engine_from_env, reset_local_state
from bench.image_layers import layers
from bench.scenarios import (
    RUNS,
    SCENARIOS,
    Scenario,
    TargetRun,
    apply,
    bake_target,
    expected_reruns,
    run_scenario,
)
from bench.standin_inputs import NS, ci_config, ensure_inputs, prepare
from bench.tests.conftest import engine_missing
from components.project import ROOT
from tools import cache_report
from tools.bake import main as bake_main
from tools.bake import to_bake
from tools.cache_report import read_vertices, steps_of
from tools.offline import run_program
from tools.plan import to_plan

pytestmark = pytest.mark.engine

Results = dict[str, tuple[Scenario, dict[str, Any], dict[str, TargetRun]]]


@pytest.fixture(scope="session")
def engine() -> Engine:
    found = engine_from_env()
    if found is None:
        engine_missing("no BuildKit engine: run engine/up (scripts/test sources .engine/env)")
    return found


@pytest.fixture(scope="session")
def run_id() -> str:
    return f"t{int(time.time())}"


@pytest.fixture(scope="session")
def results(engine: Engine, run_id: str) -> Results:
    """Every scenario, in order; each one changes one thing relative to the previous."""
    config = ci_config(engine, run_id)
    prepare(config)
    done: Results = {}
    for scenario in SCENARIOS:
        config = apply(config, scenario)
        ensure_inputs(engine, config)
        runs = run_scenario(config, scenario, RUNS / run_id / scenario.name)
        done[scenario.name] = (scenario, config, runs)
    return done


@pytest.mark.parametrize("scenario_name", [s.name for s in SCENARIOS])
def test_reruns_exactly_the_steps_whose_inputs_changed(
    results: Results, scenario_name: str
) -> None:
    """The minimal set: BuildKit reruns exactly the steps the scenario names (and why),
    and reuses every other one, from the registry cache of a fresh runner."""
    scenario, _, runs = results[scenario_name]
    assert set(runs) == {
        "runtime-cpu",
        "runtime-cuda",
        "core-env-cpu",
        "core-env-cuda",
        "core-cpu",
        "core-cuda",
    }
    for target, run in runs.items():
        assert run.steps, f"{target}: no build steps found in {run.progress_file}"
    expected = expected_reruns(scenario, {t: r.steps for t, r in runs.items()})
    for target, run in runs.items():
        reran = [s.text for s in run.steps if not s.cached]
        assert reran == expected[target], (
            f"{scenario_name}/{target}: BuildKit reran {[t[:60] for t in reran]}, expected "
            f"{[t[:60] for t in expected[target]]}; progress: {run.progress_file}"
        )


def _image_ref(run: TargetRun, tag_repo: str) -> str:
    digest = run.metadata["containerimage.digest"]
    return f"{tag_repo}@{digest}"


def _run_in(image: str, *command: str) -> str:
    result = docker("run", "--rm", "--entrypoint", command[0], image, *command[1:], check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("target", ["core-cpu", "core-cuda"])
def test_version_bumps_are_never_stale(results: Results, target: str) -> None:
    """The image built after a bump holds the new version, not a cached old one."""
    for name, probe in (
        ("comfyui-bump", ("cat", "/opt/comfyui/comfyui_version.py")),
        ("comfy-cli-bump", ("/opt/comfy-cli/bin/pip", "show", "comfy-cli")),
    ):
        scenario, config, runs = results[name]
        registry = config[f"{NS}:registry"]
        repo = f"{registry['address']}/{registry['namespace']}/{target}"
        output = _run_in(_image_ref(runs[target], repo), *probe)
        wanted = next(iter(scenario.versions.values())).removeprefix("v")
        assert wanted in output, f"{name}: {target} still holds an old version:\n{output}"


def test_comfy_cli_is_built_once_and_runs_in_every_core(results: Results) -> None:
    """comfy-cli's environment is built on the runtime every core shares: after a bump the
    cores carry one and the same layer for it, built and pushed by the first core only (the
    second reuses the build and mounts the blob across repositories), and its interpreter
    and commands work on each core's own runtime."""
    scenario, config, runs = results["comfy-cli-bump"]
    registry = config[f"{NS}:registry"]
    wanted = scenario.versions["comfyCli"]
    cli_layers = {}
    for target in ("core-cpu", "core-cuda"):
        ref = _image_ref(runs[target], f"{registry['address']}/{registry['namespace']}/{target}")
        found = [layer for layer in layers(ref) if "/opt/comfy-cli /opt/comfy-cli" in layer.step]
        assert len(found) == 1, f"{target}: {len(found)} comfy-cli layers"
        cli_layers[target] = found[0]
        where = _run_in(
            ref,
            "/opt/comfy-cli/bin/python",
            "-c",
            "import sys, comfy_cli; print(sys.prefix, sys.executable, comfy_cli.__file__)",
        )
        assert where.startswith("/opt/comfy-cli /opt/comfy-cli/bin/python /opt/comfy-cli/lib/")
        assert wanted in _run_in(ref, "/opt/comfy-cli/bin/pip", "show", "comfy-cli")
        # The commands the image puts on PATH, through their links in /usr/local/bin.
        assert "Usage" in _run_in(ref, "comfy", "--help")
        assert _run_in(ref, "uv", "--version").startswith("uv ")
    assert cli_layers["core-cpu"].digest == cli_layers["core-cuda"].digest, cli_layers
    size = cli_layers["core-cpu"].size
    first, second = (t for t in runs if t in cli_layers)  # in build order
    pushed = {t: runs[t].traffic.bytes_pushed for t in (first, second)}
    print(f"comfy-cli layer {size} B; pushed after the bump: {pushed}")
    assert pushed[first] >= size, f"{first} pushed {pushed[first]} B, less than the layer"
    # The second core reuses the first's build and mounts its blob: not once per runtime.
    assert pushed[second] < size / 10, f"{second} pushed {pushed[second]} B again"


def test_base_change_reaches_the_image(results: Results) -> None:
    scenario, config, runs = results["base-change"]
    registry = config[f"{NS}:registry"]
    repo = f"{registry['address']}/{registry['namespace']}/core-cpu"
    marker = _run_in(_image_ref(runs["core-cpu"], repo), "cat", "/etc/comfyui-standin")
    assert marker == f"ubuntu {scenario.versions['ubuntu']}"


def test_cache_report_on_real_progress(
    results: Results, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report counts what the scenarios measured, and enforces the ci thresholds."""
    for name, expected_exit in (("app-change", 0), ("cold", 1)):
        _, _, runs = results[name]
        argv = [f"--progress={t}={r.progress_file}" for t, r in runs.items()]
        argv += ["--stack", "ci"]
        assert cache_report.main(argv) == expected_exit, name
        out, err = capsys.readouterr()
        for target, run in runs.items():
            rate = f"{run.cached / len(run.steps):.0%}"
            assert f"| {target} | {len(run.steps)} | {run.cached} | {rate}" in out, out
        if expected_exit:
            assert "below its threshold" in err
            assert "comfyui-images:cacheThresholds" in err


# --- cache settings the foundation rejects or requires, checked against the engine -------


def _bake_one(
    config: dict[str, Any], target: str, tmp: Path, **edits: Any
) -> subprocess.CompletedProcess[str]:
    plan = to_plan(run_program(config, stack="ci"))
    bake = to_bake(plan, secrets={"ca": CA_BUNDLE}, parents="image")
    bake["target"][target].update(edits)
    bake_file = tmp / "bake.json"
    bake_file.write_text(json.dumps(bake))
    return bake_target(bake_file, target)


@pytest.fixture
def runtime_config(engine: Engine, results: Results) -> dict[str, Any]:
    """The ci stack reduced to runtime-cpu, once the scenarios have set up the work dir."""
    _, config, _ = results["base-change"]
    config = {**config, f"{NS}:targets": ["runtime-cpu"]}
    ensure_inputs(engine, config)
    return config


def test_dead_cache_registry_does_not_fail_the_build(
    runtime_config: dict[str, Any], tmp_path: Path
) -> None:
    dead = "127.0.0.1:9/dead/buildcache"  # nothing listens on the discard port
    config = {
        **runtime_config,
        f"{NS}:cache": {"backends": ["registry"], "mode": "max", "registryRepository": dead},
    }
    reset_local_state()
    ok = _bake_one(config, "runtime-cpu", tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    # Control: the same export without ignore-error fails, so the flag is what saves it.
    strict = [f"type=registry,ref={dead}:runtime-cpu,mode=max"]
    failed = _bake_one(config, "runtime-cpu", tmp_path, **{"cache-to": strict})
    assert failed.returncode != 0, "a dead cache host should fail a build without ignore-error"


def test_inline_cache_is_read_back_through_the_registry_type(
    runtime_config: dict[str, Any], run_id: str, tmp_path: Path
) -> None:
    """Inline cache (no mode) is imported with type=registry from the image's own tag."""
    registry = dict(runtime_config[f"{NS}:registry"])
    registry["namespace"] = f"comfyui-ci/{run_id}-inline"
    config = {
        **runtime_config,
        f"{NS}:registry": registry,
        f"{NS}:cache": {"backends": ["inline"], "mode": "min"},
    }
    reset_local_state()
    first = _bake_one(config, "runtime-cpu", tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    reset_local_state()
    second = _bake_one(config, "runtime-cpu", tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    steps = steps_of(read_vertices(second.stderr).values(), "runtime-cpu")
    assert steps
    assert all(s.cached for s in steps), [s.text[:50] for s in steps if not s.cached]


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_buildx_accepts_the_bake_translation(stack: str, tmp_path: Path) -> None:
    """buildx itself parses what scripts/bake writes (`--print` resolves without building)."""
    out = tmp_path / f"bake.{stack}.json"
    assert bake_main(["--stack", stack, "--output", str(out)]) == 0
    printed = docker("buildx", "bake", "--file", str(out), "--print", check=False, cwd=ROOT)
    assert printed.returncode == 0, printed.stderr
    resolved = json.loads(printed.stdout)["target"]
    assert set(resolved) == set(json.loads(out.read_text())["target"])
