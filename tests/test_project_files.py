"""Pulumi.yaml and the stack files agree with the settings model."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.decode import KNOWN_KEYS, decode_config, parse_settings
from components.project import NAMESPACE, ROOT, declared_defaults
from components.settings import StackSettings
from tools.offline import config_from_mapping, load_stack_config, run_stack, stack_names

STACKS = stack_names()


def project() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "Pulumi.yaml").read_text()))


def test_project_runtime_and_stack_dir() -> None:
    doc = project()
    assert doc["name"] == NAMESPACE
    assert doc["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": "venv"},
    }
    assert doc["stackConfigDir"] == "stacks"


def test_declared_keys_exist_and_defaults_match_the_model() -> None:
    """Mocks never read Pulumi.yaml, so a drifting default would only show up in real runs."""
    for full, spec in project()["config"].items():
        ns, _, name = full.partition(":")
        assert ns == NAMESPACE, full
        assert name in KNOWN_KEYS, f"{full} is declared but the program does not read it"
        assert spec["type"] in {"string", "boolean", "integer", "array"}
        assert spec.get("description"), f"{full} needs a description"
        if "default" in spec:
            model_default = StackSettings.model_fields[name].default
            assert spec["default"] == (model_default if model_default is not None else ""), full


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_use_only_known_namespaced_keys(stack: str) -> None:
    for full in load_stack_config(stack):
        ns, _, name = full.partition(":")
        assert ns == NAMESPACE, f"{stack}: {full} is outside the project namespace"
        assert name in KNOWN_KEYS, f"{stack}: unexpected key {full}"


def test_main_job_names_a_missing_prerequisite_and_the_offline_plan(tmp_path: Path) -> None:
    """The quick start's first command on a machine without the Pulumi CLI."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "bash"):  # all scripts/up needs before its first check
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    # A checkout of its own: this one may hold a running engine (.engine/env) with a CLI.
    checkout = tmp_path / "checkout"
    for part in ("scripts/up", "stacks/Pulumi.dev.yaml"):
        (checkout / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / part, checkout / part)
    result = subprocess.run(
        ["bash", str(checkout / "scripts" / "up")],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "missing prerequisite: the Pulumi CLI" in result.stderr
    assert "https://www.pulumi.com/docs/install/" in result.stderr
    assert "scripts/plan --stack dev" in result.stderr


def test_main_job_refuses_an_unknown_stack(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "up"), "nope"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "no stack file stacks/Pulumi.nope.yaml" in result.stderr


def test_the_harness_sends_declared_defaults_as_the_cli_does() -> None:
    """Mocks see what the real CLI sends: each declared default for a key the stack leaves
    out, as a string, and the stack's own value (never the default) for a key it sets."""
    values, _ = config_from_mapping({f"{NAMESPACE}:push": False})
    declared = declared_defaults()
    assert declared, "Pulumi.yaml declares no default: nothing to check"
    for full, default in declared.items():
        expected = "false" if full == f"{NAMESPACE}:push" else default
        assert values[full] == expected, full
    assert values[f"{NAMESPACE}:cudaArchList"] == ""
    assert values[f"{NAMESPACE}:buildOnPreview"] == "true"


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_evaluates_with_the_declared_defaults(stack: str) -> None:
    """prod leaves cudaArchList out; the CLI still sends its declared default "", which once
    read as "set" refused every stack with cudaLines before anything was built."""
    recording = run_stack(stack)
    assert recording.images(), f"{stack}: no Image registered"


@pytest.mark.parametrize("full", sorted(declared_defaults()))
def test_a_value_equal_to_its_declared_default_means_unset(full: str) -> None:
    """The rule, per declared key: the program cannot tell a declared default from a value
    the stack wrote, so it reads either as "unset" (the model's default)."""
    values = config_from_mapping(load_stack_config("dev"))[0]
    without = {k: v for k, v in values.items() if k != full}
    name = full.partition(":")[2]
    as_default = parse_settings(decode_config({**without, full: declared_defaults()[full]}, []))
    assert getattr(as_default, name) == StackSettings.model_fields[name].default
    assert as_default == parse_settings(decode_config(without, []))
    assert name not in decode_config({full: declared_defaults()[full]}, [])


@pytest.mark.parametrize(
    ("definition", "home"),
    [
        ("Path(__file__).resolve().parent.parent", "components/project.py"),
        ('"torch", "torchvision", "torchaudio"', "components/cuda.py"),
        ('frozenset({"comfyCli"', None),
    ],
)
def test_shared_constants_are_defined_once(definition: str, home: str | None) -> None:
    """The project root, the torch trio and the locked pins each have one definition that
    everything imports (copies drifted apart before: two LOCKED_PINS with other members)."""
    found = sorted(
        str(path.relative_to(ROOT))
        for folder in ("components", "tools", "bench", "tests")
        for path in (ROOT / folder).rglob("*.py")
        if definition in path.read_text(encoding="utf-8") and path.name != Path(__file__).name
    )
    assert found == ([home] if home else []), f"{definition!r} is written in {found}"


@pytest.mark.parametrize("page", ["docs/config.md", "README.md"])
def test_the_config_reference_has_a_row_for_every_key_the_model_knows(page: str) -> None:
    """The model is the one description of the keys; the reference (docs/config.md) and
    the README's config at a glance follow it."""
    readme = (ROOT / page).read_text()
    first_cells = [line.split("|")[1] for line in readme.splitlines() if line.startswith("| `")]
    documented = {name.split(".")[0] for cell in first_cells for name in cell.split("`")[1::2]}
    missing = sorted(KNOWN_KEYS - documented)
    assert not missing, f"{page}'s config table has no row for {missing}"
