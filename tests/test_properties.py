"""Property tests over random stack configs.

Valid configs always evaluate, with unique gha scopes and registry cache refs that are
never image tags. Invalid configs always fail with a ``SettingsError`` naming the bad
key, and register nothing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.catalog import TARGETS
from components.settings import SettingsError
from tools.offline import Recording, run_program, unwrap

NS = "comfyui-images"
PROFILE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hosts = st.sampled_from(["ghcr.io", "localhost:5000", "123.dkr.ecr.eu-west-1.amazonaws.com"])
namespaces = st.from_regex(r"[a-z][a-z0-9]{0,8}(/[a-z][a-z0-9]{0,8}){0,2}", fullmatch=True)
backend_lists = st.lists(
    st.sampled_from(["gha", "registry", "inline", "local"]), unique=True, max_size=4
)


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    backends = draw(backend_lists)
    mode = draw(st.sampled_from(["min", "max"]))
    if backends == ["inline"]:
        mode = "min"
    return {
        f"{NS}:registry": {"address": draw(hosts), "namespace": draw(namespaces)},
        f"{NS}:targets": draw(st.lists(st.sampled_from(list(TARGETS)), min_size=1, unique=True)),
        f"{NS}:cache": {"backends": backends, "mode": mode, "imageManifest": draw(st.booleans())},
        f"{NS}:movingTag": draw(st.from_regex(r"[a-z][a-z0-9._-]{0,20}", fullmatch=True)),
    }


@PROFILE
@given(config=valid_configs(), preview=st.booleans())
def test_valid_configs_evaluate_with_unique_scopes_and_refs(
    config: dict[str, Any], preview: bool
) -> None:
    images = {n: unwrap(r.inputs) for n, r in run_program(config, preview=preview).images().items()}
    assert set(config[f"{NS}:targets"]) <= set(images)
    tags = {t for i in images.values() for t in i["tags"]}
    scopes: list[str] = []
    refs: list[str] = []
    for i in images.values():
        for entry in i.get("cacheTo", []):
            if "gha" in entry:
                scopes.append(entry["gha"]["scope"])
            if "registry" in entry:
                refs.append(entry["registry"]["ref"])
                assert entry["registry"]["ref"] not in tags
    assert len(scopes) == len(set(scopes))
    assert len(refs) == len(set(refs))


# (key, strategy of values that are wrong for it)
INVALID = [
    (
        "targets",
        st.lists(
            st.text(min_size=1, max_size=12).filter(lambda s: s not in TARGETS),
            min_size=1,
            max_size=3,
        ),
    ),
    ("cache", st.fixed_dictionaries({"backends": st.just(["inline"]), "mode": st.just("max")})),
    (
        "cache",
        st.fixed_dictionaries(
            {
                "backends": st.lists(
                    st.text(min_size=1, max_size=8).filter(
                        lambda s: s not in {"gha", "registry", "inline", "local"}
                    ),
                    min_size=1,
                )
            }
        ),
    ),
    (
        "registry",
        st.fixed_dictionaries({"address": st.just("https://x.test"), "namespace": st.just("a")}),
    ),
    (
        "versions",
        st.dictionaries(
            st.sampled_from(["comfyui", "torch"]),
            st.from_regex(r"[ /:@]{1,3}", fullmatch=True),
            min_size=1,
        ),
    ),
    ("movingTag", st.from_regex(r"[:/ ][a-z]{0,5}", fullmatch=True)),
    ("push", st.text(max_size=5).filter(lambda s: s not in {"true", "false"})),
]


@PROFILE
@given(data=st.data(), which=st.integers(min_value=0, max_value=len(INVALID) - 1))
def test_invalid_configs_fail_cleanly_and_register_nothing(data: st.DataObject, which: int) -> None:
    key, strategy = INVALID[which]
    config: dict[str, Any] = {
        f"{NS}:registry": {"address": "ghcr.io", "namespace": "acme/x"},
        f"{NS}:targets": ["core-cpu"],
        f"{NS}:{key}": data.draw(strategy),
    }
    recording = Recording(stack="test", preview=False)
    with pytest.raises(SettingsError, match=re.escape(f"{NS}:{key}")):
        run_program(config, into=recording)
    assert recording.resources == []
