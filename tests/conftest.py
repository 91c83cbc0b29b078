"""Shared fixtures: the real stack files and a synthetic base config, evaluated under mocks.

Each test gets fresh Pulumi globals (``tools.offline.run_program`` sets mocks and config
and restores them), so no state leaks between tests.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.cuda import TORCH_TRIO
from components.project import NAMESPACE
from components.settings import PIN_EXAMPLES
from tools.lock import LockInputs, render
from tools.offline import Recording, load_stack_config, run_program

NS = NAMESPACE

BASE: dict[str, Any] = {
    f"{NS}:registry": {"address": "registry.example.test:5000", "namespace": "team/comfy"},
    f"{NS}:targets": ["core-cpu"],
    f"{NS}:cache": {"backends": ["registry"], "mode": "max"},
}

Evaluate = Callable[..., Recording]


def with_overrides(base: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A copy of ``base`` with ``NS:key`` values replaced (None removes the key)."""
    config = copy.deepcopy(base)
    for name, value in overrides.items():
        if value is None:
            config.pop(f"{NS}:{name}", None)
        else:
            config[f"{NS}:{name}"] = value
    return config


def write_lock(directory: Path, pins: list[str] | None = None, **header: str) -> Path:
    """A lock as scripts/lock writes it, for the default pins (``header`` overrides a field,
    ``comfy_cli="1.22.0"`` or ``torch="2.14.0"``), in ``directory/constraints.txt``;
    returns ``directory``."""
    defaults = {"comfy_cli": PIN_EXAMPLES["comfyCli"], "python": PIN_EXAMPLES["python"]}
    defaults |= {name: PIN_EXAMPLES[name] for name in TORCH_TRIO}
    values = {**defaults, "platform": "linux/amd64", **header}
    inputs = LockInputs(
        comfyui=PIN_EXAMPLES["comfyui"],
        comfy_cli=values["comfy_cli"],
        python=values["python"],
        platform=values["platform"],
        torch={name: values[name] for name in TORCH_TRIO},
    )
    sections = {
        "comfyui": pins or ["tqdm==4.67.1"],
        "comfy-cli": [f"comfy-cli=={values['comfy_cli']}"],
    }
    text = render(inputs, {"requirements.txt": b"tqdm\n"}, sections, "test")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "constraints.txt").write_text(text)
    return directory


@pytest.fixture
def base_config() -> dict[str, Any]:
    return copy.deepcopy(BASE)


@pytest.fixture(params=["dev", "prod"])
def stack_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def evaluate() -> Evaluate:
    """Run the real __main__.py with a config mapping (stack-file style keys)."""

    def run(config: dict[str, Any], **kwargs: Any) -> Recording:
        return run_program(config, **kwargs)

    return run


@pytest.fixture
def stack_config() -> Callable[[str], dict[str, Any]]:
    return load_stack_config
