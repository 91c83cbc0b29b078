"""The bench's tests: the engine tests (marked ``engine``) and the tests of the bench itself.

They share the product tests' fixtures (the real stack files under mocks), imported here so
pytest finds them; the product's tests never import anything of the bench.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from tests.conftest import base_config, evaluate, stack_config, stack_name
from tests.test_workflows import flows

__all__ = ["base_config", "engine_missing", "evaluate", "flows", "stack_config", "stack_name"]


def engine_missing(message: str) -> NoReturn:
    """A prerequisite of an engine test is missing: skip on a laptop, fail where the engine
    is required (``.ci/run`` sets COMFYUI_REQUIRE_ENGINE=1)."""
    if os.environ.get("COMFYUI_REQUIRE_ENGINE") == "1":
        pytest.fail(message)
    pytest.skip(message)
