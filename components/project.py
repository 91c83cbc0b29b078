"""What ``Pulumi.yaml`` declares, and how the real CLI hands it to the program.

The CLI gives the program every key declared with a ``default``, whether the stack sets it
or not, and every value as a string (booleans as ``true``/``false``, objects and lists as
JSON). The program therefore cannot tell a declared default from a value the stack wrote.
The rule, applied to every declared key by ``without_declared_defaults``: **a value equal to
the key's declared default means "unset"**, and the settings model's own default applies.
For that to be harmless, each declared default must mean what the model's default means
(``tests/test_project_files.py`` checks every one). Mocks get the same treatment:
``tools.offline`` feeds the declared defaults exactly as the CLI does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

# The project's directory: stacks, Dockerfiles and locks are read relative to it.
ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILE = ROOT / "Pulumi.yaml"
# The project's name, which is also the namespace of its config keys (comfyui-images:...).
NAMESPACE: str = str(yaml.safe_load(PROJECT_FILE.read_text(encoding="utf-8"))["name"])


def cli_string(value: Any) -> str:
    """A config value as the CLI hands it to a program: a string, objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


@cache
def declared_config() -> dict[str, dict[str, Any]]:
    """``Pulumi.yaml``'s ``config:`` schema: namespaced key -> its declaration."""
    document = yaml.safe_load(PROJECT_FILE.read_text(encoding="utf-8")) or {}
    return dict(document.get("config") or {})


def declared_defaults() -> dict[str, str]:
    """Namespaced key -> its declared default, as the CLI sends it."""
    return {
        full: cli_string(spec["default"])
        for full, spec in declared_config().items()
        if isinstance(spec, dict) and "default" in spec
    }


def with_declared_defaults(values: Mapping[str, str]) -> dict[str, str]:
    """``values`` plus the declared default of every key they leave out (what the CLI does)."""
    return {**declared_defaults(), **values}


def without_declared_defaults(values: Mapping[str, str]) -> dict[str, str]:
    """``values`` without the keys whose value is their declared default: those mean unset."""
    defaults = declared_defaults()
    return {full: text for full, text in values.items() if defaults.get(full) != text}
