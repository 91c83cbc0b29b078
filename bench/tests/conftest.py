"""The bench's tests: the engine tests (marked ``engine``) and the tests of the bench itself.

They share the product tests' fixtures (the real stack files under mocks), imported here so
pytest finds them; the product's tests never import anything of the bench.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

from bench.engine import Engine, engine_from_env
from tests.conftest import base_config, evaluate, stack_config, stack_name
from tests.test_workflows import flows

__all__ = ["base_config", "engine_missing", "evaluate", "flows", "stack_config", "stack_name"]


def engine_missing(message: str) -> NoReturn:
    """A prerequisite of an engine test is missing: skip on a laptop, fail where the engine
    is required (``.ci/run`` sets COMFYUI_REQUIRE_ENGINE=1)."""
    if os.environ.get("COMFYUI_REQUIRE_ENGINE") == "1":
        pytest.fail(message)
    pytest.skip(message)


def engine_with_pulumi() -> Engine:
    """The engine and the real Pulumi CLI, or skip (fail where the engine is required)."""
    found = engine_from_env()
    if found is None or shutil.which("pulumi") is None:
        engine_missing("no engine or Pulumi CLI: run engine/up (scripts/test sources .engine/env)")
    return found
