"""Pure validation: bad config fails with a message naming the key, the value and the fix.

No Pulumi here: ``decode_config`` + ``parse_settings`` are what ``components.config.load``
runs before anything is registered (the program-level tests prove that ordering).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components import config as config_module
from components import refs
from components.catalog import TARGETS, Target
from components.config import validate
from components.decode import decode_config, parse_settings
from components.errors import SettingsError
from components.graph import GraphError, selected_with_parents
from components.project import NAMESPACE
from components.settings import PASSWORD_ENV, StackSettings

NS = NAMESPACE


def settings_from(config: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> StackSettings:
    strings = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    for k, v in config.items():
        if isinstance(v, bool):
            strings[k] = "true" if v else "false"
    return parse_settings(decode_config(strings, secret_keys))


def base(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        f"{NS}:registry": {"address": "registry.example.test", "namespace": "team/comfy"},
        f"{NS}:targets": ["core-cpu"],
    }
    for name, value in overrides.items():
        config[f"{NS}:{name}"] = value
    return config


def error_for(config: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> str:
    with pytest.raises(SettingsError) as info:
        settings_from(config, secret_keys)
    return str(info.value)


def test_minimal_config_is_valid() -> None:
    settings = settings_from(base())
    assert settings.build_order == ["runtime-cpu", "core-env-cpu", "core-cpu"]
    assert settings.push is True


@pytest.mark.parametrize(
    ("override", "expected_fragments"),
    [
        # unknown top-level key: names key, value, and that it is unknown
        (
            {"targetz": ["core-cpu"]},
            ["comfyui-images:targetz", "unknown key", "core-cpu", "targets"],
        ),
        # unknown nested key
        (
            {"cache": {"backends": ["registry"], "mood": "max"}},
            ["comfyui-images:cache.mood", "unknown key", "max"],
        ),
        # unknown target
        (
            {"targets": ["core-gpu"]},
            ["comfyui-images:targets", "core-gpu", "known targets", "core-cuda"],
        ),
        # bad cache backend
        ({"cache": {"backends": ["s4"]}}, ["comfyui-images:cache.backends.0", "s4", "gha"]),
        # bad mode
        (
            {"cache": {"backends": ["registry"], "mode": "maximum"}},
            ["comfyui-images:cache.mode", "maximum", "min"],
        ),
        # inline only + max: must point at registry
        (
            {"cache": {"backends": ["inline"], "mode": "max"}},
            ["comfyui-images:cache", "inline", "max", "registry"],
        ),
        # duplicated backend
        (
            {"cache": {"backends": ["gha", "gha"]}},
            ["comfyui-images:cache.backends", "gha", "twice"],
        ),
        # registry address with a scheme
        (
            {"registry": {"address": "https://ghcr.io", "namespace": "a/b"}},
            ["comfyui-images:registry.address", "https://ghcr.io", "host[:port]"],
        ),
        # uppercase namespace
        (
            {"registry": {"address": "ghcr.io", "namespace": "Acme/X"}},
            ["comfyui-images:registry.namespace", "Acme/X", "lowercase"],
        ),
        # missing registry
        ({"registry": None}, ["comfyui-images:registry", "required", "pulumi config set"]),
        # bad pinned version
        ({"versions": {"comfyui": "v 1"}}, ["comfyui-images:versions.comfyui", "v 1"]),
        # unknown pin
        ({"versions": {"comfyu": "v1"}}, ["comfyui-images:versions.comfyu", "unknown key"]),
        # source template without the version placeholder
        (
            {"sources": {"comfyui": "https://mirror.test/ComfyUI.git"}},
            ["comfyui-images:sources.comfyui", "{version}", "mirror.test"],
        ),
        # credentials inside an index URL
        (
            {"sources": {"pypiMirror": "https://u:p@mirror.test/simple"}},
            ["comfyui-images:sources.pypiMirror", "credentials"],
        ),
        # bad push type
        ({"push": "yes"}, ["comfyui-images:push", "true or false", "yes"]),
        # push false with a child target
        (
            {"push": False},
            [
                "comfyui-images:push",
                "core-env-cpu is built from runtime-cpu, which",
                "push to true",
            ],
        ),
        # bad arch list
        ({"cudaArchList": "sm_90"}, ["comfyui-images:cudaArchList", "sm_90"]),
        # bad platform
        ({"platform": "linux/riscv"}, ["comfyui-images:platform", "linux/riscv"]),
        # thresholds out of range
        ({"cacheThresholds": {"core-cpu": 1.5}}, ["comfyui-images:cacheThresholds", "1.5"]),
    ],
)
def test_bad_config_names_key_value_and_fix(
    override: dict[str, Any], expected_fragments: list[str]
) -> None:
    config = base()
    for name, value in override.items():
        if value is None:
            config.pop(f"{NS}:{name}")
        else:
            config[f"{NS}:{name}"] = value
    message = error_for(config)
    for fragment in expected_fragments:
        assert fragment in message, f"{fragment!r} missing from error:\n{message}"


def test_a_ca_bundle_that_is_no_file_is_refused_by_the_rules_with_key_value_and_fix() -> None:
    """Its shape passes the model (a path); reading it is a rule of rules.py, which
    config.validate applies before any resource."""
    config = base(caBundle="/nonexistent/ca.pem")
    strings = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    assert settings_from(config).caBundle == "/nonexistent/ca.pem"
    with pytest.raises(SettingsError) as info:
        validate(strings, set(), "test")
    for fragment in ("comfyui-images:caBundle", "/nonexistent/ca.pem", "PEM"):
        assert fragment in str(info.value)


def test_username_without_password_names_both_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    config = base(registry={"address": "ghcr.io", "namespace": "a/b", "username": "bot"})
    message = error_for(config)
    assert "comfyui-images:registry.username" in message
    assert "bot" in message
    assert "pulumi config set --secret comfyui-images:registryPassword" in message
    assert PASSWORD_ENV in message


def test_password_from_environment_satisfies_username(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    config = base(registry={"address": "ghcr.io", "namespace": "a/b", "username": "bot"})
    assert settings_from(config).hasRegistryPassword


def test_secret_values_are_never_decoded() -> None:
    config = base(registryPassword="hunter2")
    raw = decode_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()},
        [f"{NS}:registryPassword"],
    )
    assert "hunter2" not in json.dumps(raw)
    assert raw["hasRegistryPassword"] is True


def test_parents_come_along_in_build_order() -> None:
    order = settings_from(base(targets=["complete-cuda"])).build_order
    assert set(order) == {
        "runtime-cuda",
        "runtime-cpu",  # the common runtime core's accelerator-free stages are built on
        "core-env-cuda",
        "core-cuda",
        "sageattention-builder",
        "complete-cuda",
    }
    for name in order:
        for parent in TARGETS[name].parents.values():
            assert order.index(parent) < order.index(name), f"{parent} must precede {name}"


def test_cycle_is_reported_with_its_path() -> None:
    catalog = {
        "a": Target(name="a", directory="x", stage="a", parents={"b": "b"}),
        "b": Target(name="b", directory="x", stage="b", parents={"c": "c"}),
        "c": Target(name="c", directory="x", stage="c", parents={"a": "a"}),
    }
    with pytest.raises(GraphError, match=r"cycle between targets: a -> b -> c -> a"):
        selected_with_parents(["a"], catalog)


def test_unknown_parent_is_reported_with_its_child() -> None:
    catalog = {"a": Target(name="a", directory="x", stage="a", parents={"p": "ghost"})}
    with pytest.raises(GraphError, match=r"unknown target 'ghost' \(parent of a\)"):
        selected_with_parents(["a"], catalog)


def test_catalog_graph_is_acyclic_and_complete() -> None:
    assert set(selected_with_parents(TARGETS)) == set(TARGETS)


def test_a_parent_two_children_share_is_ordered_once() -> None:
    """complete-cuda reaches runtime-cuda directly and through core-cuda, and every core
    reaches runtime-cpu: each once, first."""
    assert selected_with_parents(["complete-cuda", "core-cpu"]) == [
        "runtime-cpu",
        "core-env-cpu",
        "core-cpu",
        "runtime-cuda",
        "core-env-cuda",
        "core-cuda",
        "sageattention-builder",
        "complete-cuda",
    ], "wanted targets in catalog order, each after its parents, each once"


def test_an_unknown_wanted_target_is_a_graph_error_listing_the_known_ones() -> None:
    catalog = {"a": Target(name="a", directory="x", stage="a")}
    with pytest.raises(GraphError) as raised:
        selected_with_parents(["ghost"], catalog)
    assert str(raised.value) == "unknown target 'ghost'; known targets: a"


@pytest.mark.parametrize("flag", ["hasRegistryPassword", "githubSecretNames"])
def test_presence_flags_cannot_be_set_from_the_stack(flag: str) -> None:
    """They are derived from the stack's secrets; a stack key must not fake them."""
    message = error_for(base(**{flag: ["GH_ADMIN_TOKEN"]}))
    assert f"comfyui-images:{flag}: unknown key" in message


def test_every_structured_setting_is_decoded_from_json() -> None:
    """Pulumi hands YAML objects and lists over as JSON text: a structured key missing from
    the decoder's list would reject every valid stack value as 'not a mapping'."""
    import types  # noqa: PLC0415
    import typing  # noqa: PLC0415

    from pydantic import BaseModel  # noqa: PLC0415

    from components import decode  # noqa: PLC0415
    from components.settings import StackSettings  # noqa: PLC0415

    structured = set()
    for name, field in StackSettings.model_fields.items():
        if name in decode._PRESENCE_FLAGS:
            continue
        annotation = field.annotation
        union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        options = typing.get_args(annotation) if union else (annotation,)
        for option in options:
            origin = typing.get_origin(option) or option
            if origin in (dict, list) or (
                isinstance(origin, type) and issubclass(origin, BaseModel)
            ):
                structured.add(name)
    assert structured == decode.json_keys()
    assert decode.bool_keys() == {"push", "buildOnPreview", "requireLock"}


def test_only_the_repositories_a_stack_builds_must_fit_and_the_message_says_which() -> None:
    """A namespace that leaves no room for `sageattention-builder` is fine for a stack
    that never builds it, and refused, naming that repository, for one that does."""
    address = "registry.example.test"
    room = refs.MAX_NAME - len(f"{address}/") - len("/sageattention-builder")
    namespace = "/".join(["n" * 50] * 10)[: room + 1].rstrip("/")
    assert len(f"{address}/{namespace}/sageattention-builder") > refs.MAX_NAME
    assert len(f"{address}/{namespace}/runtime-cuda") <= refs.MAX_NAME
    registry = {"address": address, "namespace": namespace}
    assert settings_from(base(registry=registry, targets=["core-cpu"])).build_order
    repo = f"{address}/{namespace}/sageattention-builder"
    message = error_for(base(registry=registry, targets=["sageattention-builder"]))
    assert message == (
        "invalid stack configuration:\n  "
        f"comfyui-images:registry: the repository of sageattention-builder, {repo!r}, is "
        f"{len(repo)} characters long; registries allow at most {refs.MAX_NAME}; "
        "shorten registry.namespace"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("config:\n  comfyui-images:push: false\n", {"comfyui-images:push": False}),
        ("", {}),
        ("- a list, not a stack file\n", {}),
        ("config: [a list]\n", {}),
        ("encryptionsalt: x\n", {}),
    ],
)
def test_a_stack_files_config_is_its_config_mapping_or_nothing(
    text: str, expected: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only read for the checks of the file itself: a file of another shape has no config
    to check (the CLI refuses it on its own), and must not crash the program first."""
    monkeypatch.setattr(config_module, "STACKS_DIR", tmp_path)
    (tmp_path / "Pulumi.odd.yaml").write_text(text)
    assert config_module.stack_file_config("odd") == expected
    assert config_module.stack_file_config("absent") == {}


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        (
            {"python": 3.1},
            "must be a quoted string such as '3.12' (YAML reads an unquoted 3.10 as the "
            "number 3.1)",
        ),
        ({"cuda": "11.8.0"}, "is older than CUDA 12.0, the oldest SageAttention builds for"),
        ({"cuda": "11.9"}, "is older than CUDA 12.0"),
        (
            {"comfyui": "1a2b3c4"},
            "looks like a short commit; BuildKit git contexts need a tag or the full 40-hex "
            "commit, e.g. 'd1a57a546c3d395b1ffcbeecc66d81db76f3b4b5'",
        ),
        ({"rocm": "7"}, "is not a ROCm release; write it like '7.14'"),
    ],
)
def test_a_bad_pin_says_what_a_pin_is(versions: dict[str, Any], message: str) -> None:
    found = error_for(base(versions=versions))
    assert f"{NS}:versions.{next(iter(versions))}" in found
    assert message in found


@pytest.mark.parametrize("release", ["12.0", "12.0.1", "13.0.2"])
def test_cuda_12_0_and_later_are_pins(release: str) -> None:
    """12.0 is SageAttention's floor itself: refused only below it."""
    assert settings_from(base(versions={"cuda": release})).versions.cuda == release
