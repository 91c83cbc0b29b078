"""Version tags, character by character: what a pin becomes in a tag, and when a digest of
the exact pins is appended (components/inputs.version_tag)."""

from __future__ import annotations

import hashlib

import pytest

from components import cuda
from components.catalog import TARGETS
from components.inputs import version_tag
from components.refs import MAX_TAG
from components.settings import StackSettings

CORE_CPU = TARGETS["core-cpu"]  # "{comfyui}-cpu-torch{torch}"


def settings(**versions: str) -> StackSettings:
    return StackSettings.model_validate(
        {
            "registry": {"address": "r.example.test", "namespace": "a/b"},
            "targets": ["core-cpu"],
            "versions": versions,
        }
    )


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def test_a_plain_tag_is_the_pins_themselves() -> None:
    assert version_tag(CORE_CPU, settings(comfyui="v0.44.0", torch="2.15.0")) == (
        "v0.44.0-cpu-torch2.15.0"
    )


def test_a_full_commit_appears_as_its_first_twelve_digits() -> None:
    commit = "d1a57a546c3d395b1ffcbeecc66d81db76f3b4b5"
    tag = version_tag(CORE_CPU, settings(comfyui=commit, torch="2.15.0"))
    assert tag == "d1a57a546c3d-cpu-torch2.15.0"


def test_a_character_a_tag_cannot_hold_becomes_a_dash_and_the_exact_pins_a_digest() -> None:
    """`2.15.0+cu130` and `2.15.0-cu130` must never share a tag."""
    plus = version_tag(CORE_CPU, settings(comfyui="v0.44.0", torch="2.15.0+cu130"))
    text = "v0.44.0-cpu-torch2.15.0+cu130"
    assert plus == f"v0.44.0-cpu-torch2.15.0-cu130-h{digest(text)}"
    dash = version_tag(CORE_CPU, settings(comfyui="v0.44.0", torch="2.15.0-cu130"))
    assert dash == "v0.44.0-cpu-torch2.15.0-cu130"
    assert plus != dash


@pytest.mark.parametrize("extra", [0, 1])
def test_a_tag_of_the_maximum_length_is_kept_and_a_longer_one_is_cut_with_its_digest(
    extra: int,
) -> None:
    torch = "2.15.0"
    comfyui = "v" + "1" * (MAX_TAG - len("-cpu-torch") - len(torch) - 1 + extra)
    text = f"{comfyui}-cpu-torch{torch}"
    assert len(text) == MAX_TAG + extra
    tag = version_tag(CORE_CPU, settings(comfyui=comfyui, torch=torch))
    if extra == 0:
        assert tag == text
    else:
        assert tag == f"{text[: MAX_TAG - 12]}-h{digest(text)}"
        assert len(tag) == MAX_TAG


def test_torch_reports_the_major_and_minor_of_the_line_cuda() -> None:
    assert cuda.torch_cuda("13.0.2") == "13.0"
    assert cuda.torch_cuda("12.6.3") == "12.6"
