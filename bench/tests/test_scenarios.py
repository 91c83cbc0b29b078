"""The bench's own tables against what they describe: the scenarios' expected reruns name
real steps of the Dockerfiles with a reason each, and the comfy-cli bump scenario relocks so
that the ci stack (which requires a lock) still accepts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import scenarios
from components import locks
from components.errors import SettingsError
from components.project import ROOT
from tests.dockerfile_model import core_target
from tests.test_lock import COMPILED, Recorder
from tests.test_pins import own_inputs
from tools.offline import load_stack_config, run_program


def test_every_core_step_is_named() -> None:
    """Each marker of CORE_STEPS names one step of core's Dockerfile: a renamed step makes
    the expectations above fail loudly instead of silently matching nothing."""
    text = (ROOT / core_target().dockerfile).read_text()
    for name, marker in scenarios.CORE_STEPS.items():
        unexpanded = marker.replace('"/opt/venv"', '"${VIRTUAL_ENV}"')
        assert unexpanded in text, f"CORE_STEPS[{name!r}] = {marker!r} is in no step"


def test_every_expected_rerun_says_why() -> None:
    """The engine tests' minimal sets are written down with a reason per step: a step named
    in a scenario's reruns without one is an expectation nobody explained."""
    for scenario in scenarios.SCENARIOS:
        if scenarios.ALL in scenario.why:
            continue
        named = {n for rule in scenario.reruns.values() if rule != scenarios.ALL for n in rule}
        unexplained = sorted(named - set(scenario.why))
        assert not unexplained, f"scenario {scenario.name}: no reason for {unexplained}"


def test_comfy_cli_bump_scenario_relocks_so_ci_still_accepts_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ci requires a lock, and a lock of comfy-cli 1.23.0 is refused for 1.22.0: the engine
    scenario that bumps comfy-cli must come with the lock of the new pins, in its work dir."""
    monkeypatch.setattr(scenarios, "WORK", tmp_path)
    config = load_stack_config("ci")
    versions = {**config["comfyui-images:versions"], "comfyCli": "1.22.0"}
    with pytest.raises(SettingsError, match=r"comfy-cli 1\.23\.0 where"):
        run_program({**config, "comfyui-images:versions": versions}, stack="ci")
    recorder = Recorder(COMPILED.replace("comfy-cli==1.23.0", "comfy-cli==1.22.0"))
    bumped = scenarios.relock({**config, "comfyui-images:versions": versions}, resolver=recorder)
    written = (tmp_path / "locks" / "comfyui" / "v0.8.1" / "constraints.txt").read_text()
    assert locks.header(written)["comfy-cli"] == "1.22.0"
    recording = run_program(bumped, stack="ci")
    assert recording.warnings == []
    core = own_inputs(recording)["core-cpu"]
    assert core["contexts"]["comfyui-lock"] == str(tmp_path / "locks" / "comfyui" / "v0.8.1")
