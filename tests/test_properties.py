"""Property tests over random stack configs.

Valid configs always evaluate, with unique gha scopes and registry cache refs that are
never image tags. Invalid configs always fail with a ``SettingsError`` naming the bad
key, and register nothing.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from components.catalog import TARGETS
from components.config import validate
from components.decode import KNOWN_KEYS, SECRET_KEYS
from components.errors import SettingsError
from components.project import NAMESPACE
from components.refs import has_credentials
from components.settings import CacheSettings, GithubSettings, RegistrySettings, Sources, Versions
from tools.offline import Recording, config_from_mapping, run_program, unwrap

NS = NAMESPACE
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


# --- random junk into every key ------------------------------------------------------------

# Every key a stack may set, and each field of the object-valued ones.
PATHS: list[tuple[str, ...]] = [
    *[(name,) for name in sorted(KNOWN_KEYS - SECRET_KEYS)],
    *[
        (name, field)
        for name, model in (
            ("registry", RegistrySettings),
            ("cache", CacheSettings),
            ("versions", Versions),
            ("sources", Sources),
            ("github", GithubSettings),
        )
        for field in model.model_fields
    ],
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "",
            " ",
            "\n",
            "latest\n",
            "x" * 5000,
            "https://u:pw@h.example/x#{version}",
            "ghcr.io",
            "a/b",
            "core-cpu",
            "registry",
            "{version}",
            "0",
            "-1",
            "1e9",
            "é",
            "\u202e",
            "../..",
        ]
    )
)
JUNK = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
# Values valid for some key: junk alone is almost always refused, and accepted configs
# are where the family's invariants can break.
PLAUSIBLE = st.sampled_from(
    [
        True,
        False,
        "min",
        "max",
        "dev",
        "v0.8.1",
        "2.8.0+cpu",
        "3.12",
        "linux/arm64",
        "8.0;9.0+PTX",
        "acme",
        "nvidia/cuda",
        "localhost:5000",
        "127.0.0.1:5055",
        ".cache",
        "registry.example:5000/team/buildcache",
        ["registry"],
        ["inline", "registry"],
        ["gha", "local"],
        ["core-cuda"],
        ["runtime-cpu", "sageattention-builder"],
        {"A_B": "x"},
        {"octocat": 583231},
        {"core-cpu": 0.5},
        "https://mirror.example/simple",
        "https://git.example/ComfyUI.git#{version}",
        "comfyui-images",
        "a" * 40,
    ]
)
# A valid stack with every object present, so a junk field lands among valid siblings.
VALID: dict[str, Any] = {
    "registry": {"address": "ghcr.io", "namespace": "acme/comfy"},
    "targets": ["core-cpu", "complete-cuda"],
    "cache": {"backends": ["gha", "registry"], "mode": "max"},
    # A version with no committed lock: ci's lock of v0.8.1 is resolved for ci's pins.
    "versions": {"comfyui": "v0.9.0"},
    "sources": {"pypiMirror": "https://pypi.example/simple"},
    "github": {"owner": "acme", "repository": "comfyui", "environment": "staging"},
}
# Independent of components/refs.py: distribution's reference grammar, tag part.
_REFERENCE = re.compile(
    r"[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
)


def _config_strings(config: dict[str, Any]) -> dict[str, str]:
    return config_from_mapping({f"{NS}:{k}": v for k, v in config.items()})[0]


def _assert_family_invariants(config: dict[str, Any]) -> None:
    """What an accepted config must give: valid unique refs, nothing written twice."""
    recording = run_program({f"{NS}:{k}": v for k, v in config.items()})
    images = {n: unwrap(r.inputs) for n, r in recording.images().items()}
    tags = [t for i in images.values() for t in i.get("tags", [])]
    assert len(tags) == len(set(tags)), tags
    for tag in tags:
        assert _REFERENCE.fullmatch(tag), tag
        assert len(tag.rpartition(":")[0]) <= 255, tag
    cache_refs = [
        e["registry"]["ref"]
        for i in images.values()
        for e in i.get("cacheTo", [])
        if "registry" in e
    ]
    assert not set(cache_refs) & set(tags)
    assert len(cache_refs) == len(set(cache_refs))
    scopes = [
        e["gha"]["scope"] for i in images.values() for e in i.get("cacheTo", []) if "gha" in e
    ]
    assert len(scopes) == len(set(scopes))
    for i in images.values():
        for value in (i.get("buildArgs") or {}).values():
            assert "\n" not in value
            assert not has_credentials(value), value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), junk=JUNK | PLAUSIBLE)
def test_junk_in_any_key_is_refused_naming_it_or_keeps_the_invariants(
    path: tuple[str, ...], junk: Any
) -> None:
    config = copy.deepcopy(VALID)
    if len(path) == 1:
        config[path[0]] = junk
    else:
        config[path[0]] = {**config.get(path[0], {}), path[1]: junk}
    try:
        validate(_config_strings(config), set(), "test")
    except SettingsError as err:
        message = str(err)
    else:
        event("accepted")
        _assert_family_invariants(config)
        return
    event("refused")
    assert f"{NS}:{path[0]}" in message, f"{path}: {message}"
    assert "Traceback" not in message


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(SECRET_KEYS)), junk=JUNK)
def test_junk_secrets_are_refused_without_repeating_them(name: str, junk: Any) -> None:
    full = f"{NS}:{name}"
    values = {**_config_strings(VALID), full: "SEKRIT" + json.dumps(junk)}
    if name == "registryPassword":
        values[f"{NS}:registry"] = json.dumps(
            {"address": "ghcr.io", "namespace": "a", "username": "u"}
        )
    message = ""
    try:
        validate(values, {full}, "test")
    except SettingsError as err:
        message = str(err)
        assert full in message
    assert "SEKRIT" not in message
