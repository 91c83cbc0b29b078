"""The lock as the program uses it (components/locks.py): it reaches exactly the core builds,
its content is in their inputs, a missing one warns (or, with requireLock, refuses), and a
lock resolved for other pins is refused. Evaluated under mocks through the real __main__.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from components import locks
from components.catalog import TARGETS
from components.cuda import TORCH_TRIO
from components.errors import SettingsError
from components.project import ROOT
from tests.conftest import Evaluate, with_overrides, write_lock
from tests.test_pins import CORES, ENVS, own_inputs
from tools.offline import load_stack_config
from tools.plan import render_text, to_plan


@pytest.fixture
def everything(base_config: dict[str, Any]) -> dict[str, Any]:
    return with_overrides(base_config, targets=list(TARGETS))


def at(config: dict[str, Any], directory: Path) -> dict[str, Any]:
    """``config`` reading its locks from ``directory/<version>``."""
    return with_overrides(config, sources={"comfyuiLock": str(directory / "{version}")})


def test_lock_reaches_exactly_core_builds_as_context_and_digest(
    evaluate: Evaluate, everything: dict[str, Any], tmp_path: Path
) -> None:
    lock_dir = write_lock(tmp_path / "v0.44.0")
    digest = hashlib.sha256((lock_dir / "constraints.txt").read_bytes()).hexdigest()
    inputs = own_inputs(evaluate(at(everything, tmp_path)))
    for name, seen in inputs.items():
        has = ("comfyui-lock" in seen["contexts"], "COMFYUI_LOCK" in seen["args"])
        assert has == ((True, True) if name in CORES | ENVS else (False, False)), name
    for name in CORES | ENVS:
        assert inputs[name]["contexts"]["comfyui-lock"] == str(lock_dir)
        assert inputs[name]["args"]["COMFYUI_LOCK"] == digest


def test_a_lock_content_change_changes_exactly_core_builds(
    evaluate: Evaluate, everything: dict[str, Any], tmp_path: Path
) -> None:
    """Same path, new content: the Images' inputs must differ, or Pulumi would keep the old
    image (the provider does not hash named contexts) and the plan would not show it."""
    config = at(everything, tmp_path)
    write_lock(tmp_path / "v0.44.0", ["tqdm==4.67.1"])
    before = own_inputs(evaluate(config))
    write_lock(tmp_path / "v0.44.0", ["tqdm==4.66.0"])
    after = own_inputs(evaluate(config))
    assert {n for n in before if before[n] != after[n]} == CORES | ENVS


def test_no_lock_warns_with_the_command_and_builds_unlocked(
    evaluate: Evaluate, everything: dict[str, Any], tmp_path: Path
) -> None:
    recording = evaluate(at(everything, tmp_path), stack="dev")
    (warning,) = recording.warnings
    assert warning.startswith("no lock of ComfyUI v0.44.0's Python dependencies (")
    assert warning.endswith(
        "): core builds resolve ComfyUI's requirements and comfy-cli's dependencies to "
        "whatever is newest on build day; generate it with `scripts/lock --stack dev` where "
        "the ComfyUI source is reachable, and commit it"
    )
    for name, seen in own_inputs(recording).items():
        assert "comfyui-lock" not in seen["contexts"], name
        assert "COMFYUI_LOCK" not in seen["args"], name
    assert f"warning: {warning}" in render_text(to_plan(recording))


def test_require_lock_refuses_a_missing_lock(
    evaluate: Evaluate, everything: dict[str, Any], tmp_path: Path
) -> None:
    config = with_overrides(at(everything, tmp_path), requireLock=True)
    with pytest.raises(SettingsError) as err:
        evaluate(config, stack="dev")
    message = str(err.value)
    assert "comfyui-images:requireLock is true" in message
    assert "`scripts/lock --stack dev`" in message
    assert str(tmp_path / "v0.44.0" / "constraints.txt") in message


def test_require_lock_accepts_a_matching_lock(
    evaluate: Evaluate, everything: dict[str, Any], tmp_path: Path
) -> None:
    write_lock(tmp_path / "v0.44.0")
    recording = evaluate(with_overrides(at(everything, tmp_path), requireLock=True))
    assert recording.warnings == []


def test_stacks_without_core_need_no_lock(
    evaluate: Evaluate, base_config: dict[str, Any], tmp_path: Path
) -> None:
    config = with_overrides(base_config, targets=["runtime-cpu"], requireLock=True)
    assert evaluate(at(config, tmp_path)).warnings == []


@pytest.mark.parametrize(
    "case",
    [
        ("comfy_cli", "1.22.0", "versions.comfyCli is 1.23.0"),
        ("python", "3.11", "versions.python is 3.12"),
        ("platform", "linux/arm64", "platforms is linux/amd64"),
        ("torch", "2.14.0", "versions.torch is 2.15.0"),
        ("torchvision", "0.29.0", "versions.torchvision is 0.29.2"),
        ("torchaudio", "2.11.0", "versions.torchaudio is 2.11.1"),
    ],
)
def test_a_lock_for_other_pins_is_refused_even_without_require_lock(
    evaluate: Evaluate, everything: dict[str, Any], tmp_path: Path, case: tuple[str, str, str]
) -> None:
    field, value, key = case
    write_lock(tmp_path / "v0.44.0", **{field: value})
    with pytest.raises(SettingsError) as err:
        evaluate(at(everything, tmp_path), stack="dev")
    message = str(err.value)
    assert f"comfyui-images:{key}" in message
    assert "regenerate it with `scripts/lock --stack dev`" in message


def test_ci_stack_requires_and_has_its_locks(evaluate: Evaluate) -> None:
    """ci requires a lock; the committed ones (its pin and the comfyui-bump scenario's)
    match its pins, so its plan is clean."""
    config = load_stack_config("ci")
    assert config["comfyui-images:requireLock"] is True
    for version in ("v0.8.1", "v0.8.2"):
        assert (ROOT / "locks" / "comfyui" / version / "constraints.txt").is_file(), version
        bumped = with_overrides(
            config, versions={**config["comfyui-images:versions"], "comfyui": version}
        )
        recording = evaluate(bumped, stack="ci")
        assert recording.warnings == [], version
        assert own_inputs(recording)["core-cpu"]["contexts"]["comfyui-lock"] == (
            f"locks/comfyui/{version}"
        )


def test_committed_locks_are_scripts_lock_output() -> None:
    """Every committed lock has the generator's header and no torch (left to its index)."""
    for path in sorted((ROOT / "locks" / "comfyui").glob("*/constraints.txt")):
        text = path.read_text()
        assert "Generated by scripts/lock" in text, path
        parts = locks.sections(text)
        assert sorted(parts) == sorted(locks.SECTIONS), path
        for section, lines in parts.items():
            pins = [line.split("==")[0] for line in lines]
            assert pins == sorted(pins), (path, section)
            assert not set(TORCH_TRIO) & set(pins), (path, section)


def test_sections_take_pins_only_inside_a_section_and_skip_comments_and_blanks() -> None:
    text = "\n".join(
        [
            "# comfy-cli: 1.23.0",
            "stray==1.0  # before any section: not a pin of either",
            locks.section_marker("comfyui"),
            "tqdm==4.67.1",
            "",
            "#    via -r requirements.txt",
            "  pyyaml==6.0.2  ",
            locks.section_marker("comfy-cli"),
            "comfy-cli==1.23.0",
        ]
    )
    assert locks.sections(text) == {
        "comfyui": ["tqdm==4.67.1", "pyyaml==6.0.2"],
        "comfy-cli": ["comfy-cli==1.23.0"],
    }
    assert locks.sections("tqdm==4.67.1\n") == {}, "no marker, no section"


def test_a_lock_for_other_pins_names_every_field_in_one_message(
    evaluate: Evaluate, everything: dict[str, Any], tmp_path: Path
) -> None:
    """Two wrong fields and one the header lacks, in one sentence the user can act on."""
    lock_dir = write_lock(tmp_path / "v0.44.0", comfy_cli="1.22.0", python="3.11")
    path = lock_dir / "constraints.txt"
    path.write_text(
        "".join(
            line for line in path.read_text().splitlines(keepends=True) if "# platform" not in line
        )
    )
    with pytest.raises(SettingsError) as err:
        evaluate(at(everything, tmp_path), stack="dev")
    assert str(err.value) == (
        f"comfyui-images:versions: {path}, the lock of ComfyUI v0.44.0, was resolved for "
        "comfy-cli 1.22.0 where comfyui-images:versions.comfyCli is 1.23.0; "
        "python 3.11 where comfyui-images:versions.python is 3.12; "
        "platform (missing) where comfyui-images:platforms is linux/amd64: it would install "
        "packages nobody resolved together; regenerate it with `scripts/lock --stack dev` and "
        "commit it"
    )


def test_a_lock_without_its_sections_is_refused_naming_both_markers(
    evaluate: Evaluate, everything: dict[str, Any], tmp_path: Path
) -> None:
    """A lock made before the two environments: every pin, no section marker."""
    path = tmp_path / "v0.44.0" / "constraints.txt"
    path.parent.mkdir()
    path.write_text("# comfy-cli: 1.23.0\ntqdm==4.67.1\ncomfy-cli==1.23.0\n")
    with pytest.raises(SettingsError) as err:
        evaluate(at(everything, tmp_path), stack="dev")
    assert str(err.value) == (
        f"comfyui-images:versions: {path}, the lock of ComfyUI v0.44.0, has no "
        f"{locks.section_marker('comfyui')!r} and no {locks.section_marker('comfy-cli')!r} "
        "section: it was made before ComfyUI and comfy-cli got environments of their own; "
        "regenerate it with `scripts/lock --stack dev` and commit it"
    )


def test_a_lock_that_is_not_utf8_is_refused_for_what_it_says_not_a_decode_error(
    evaluate: Evaluate, everything: dict[str, Any], tmp_path: Path
) -> None:
    """A lock saved in another encoding (a stray Latin-1 byte in a comment) is still read,
    and its header judged, instead of failing the program with a UnicodeDecodeError."""
    lock_dir = write_lock(tmp_path / "v0.44.0", comfy_cli="1.22.0")
    path = lock_dir / "constraints.txt"
    path.write_bytes(b"# r\xe9solu\n" + path.read_bytes())
    with pytest.raises(SettingsError) as err:
        evaluate(at(everything, tmp_path), stack="dev")
    assert "comfy-cli 1.22.0 where comfyui-images:versions.comfyCli is 1.23.0" in str(err.value)


def test_a_relative_lock_location_is_the_projects_wherever_the_program_runs(
    evaluate: Evaluate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ci stack's locks (locks/comfyui/<version>) are found from another directory."""
    monkeypatch.chdir(tmp_path)
    config = load_stack_config("ci")
    recording = evaluate(config, stack="ci")
    assert own_inputs(recording)["core-cpu"]["contexts"]["comfyui-lock"] == "locks/comfyui/v0.8.1"
    assert recording.warnings == [], "the lock was not found from another directory"
