"""Pulumi.yaml and the stack files agree with the settings model."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from components.settings import KNOWN_KEYS, NAMESPACE, StackSettings
from tools.offline import ROOT, load_stack_config


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


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_use_only_known_namespaced_keys(stack: str) -> None:
    for full in load_stack_config(stack):
        ns, _, name = full.partition(":")
        assert ns == NAMESPACE, f"{stack}: {full} is outside the project namespace"
        assert name in KNOWN_KEYS, f"{stack}: unexpected key {full}"
