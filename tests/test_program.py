"""The real ``__main__.py`` under recording mocks: what the docker-build provider receives.

Fed the committed stack files and synthetic configs. Assertions use the camelCase wire
keys the provider sees, with secrets unwrapped only where a value must be compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.catalog import TARGETS
from components.errors import SettingsError
from components.matrix import parents_of, target_of
from components.project import ROOT
from components.settings import PASSWORD_ENV
from components.written import Written, collisions
from tests.conftest import NS, Evaluate, with_overrides
from tools.offline import IMAGE_TYPE, Recording, is_secret, run_stack, stack_names, unwrap

ALL = list(TARGETS)


def images(recording: Recording) -> dict[str, dict[str, Any]]:
    return {name: unwrap(r.inputs) for name, r in recording.images().items()}


def all_tags(imgs: dict[str, dict[str, Any]]) -> set[str]:
    return {tag for i in imgs.values() for tag in i["tags"]}


# --- the real stack files -------------------------------------------------------------


def test_stack_files_evaluate(evaluate: Evaluate, stack_config: Any, stack_name: str) -> None:
    recording = evaluate(stack_config(stack_name), stack=stack_name)
    imgs = images(recording)
    wanted = stack_config(stack_name)[f"{NS}:targets"]
    assert set(wanted) <= {target_of(name).name for name in imgs}
    for name, i in imgs.items():
        assert name in recording.images()[name].name, "Image resource name carries the target"
        assert i["target"] == target_of(name).stage
        assert i["dockerfile"]["location"] == target_of(name).dockerfile
        assert (ROOT / i["dockerfile"]["location"]).is_file(), f"{name}: Dockerfile missing"


def test_dev_stack_is_laptop_shaped(evaluate: Evaluate, stack_config: Any) -> None:
    imgs = images(evaluate(stack_config("dev"), stack="dev"))
    assert set(imgs) == {"runtime-cpu", "core-env-cpu", "core-cpu"}, "dev builds the CPU chain only"
    for name, i in imgs.items():
        assert all(t.startswith("localhost:") for t in i["tags"]), name
        assert i["builder"] == {"name": "comfyui-images"}, "dev builds on the quick-start builder"
        assert not any("gha" in e for e in i["cacheFrom"]), "no GitHub on a laptop"
        assert list(i["exports"][0]) == ["registry"], "dev pushes through a registry export"
        assert i["exports"][0]["registry"]["compression"] == "zstd", name


def test_pushed_images_are_buildable_in_previews(evaluate: Evaluate, stack_config: Any) -> None:
    """The provider counts `push: true` Images as never buildable in previews (it appends an
    export before comparing inputs with their known part), so pushing is a registry export."""
    for name, i in images(evaluate(stack_config("prod"), stack="prod", preview=True)).items():
        assert i["push"] is False, f"{name}: push=True would skip every preview build"
        assert [list(e) for e in i["exports"]] == [["registry"]], name


def test_prod_stack_builds_everything_with_gha_and_registry(
    evaluate: Evaluate, stack_config: Any
) -> None:
    imgs = images(evaluate(stack_config("prod"), stack="prod"))
    assert {target_of(name).name for name in imgs} == set(ALL)
    for name, i in imgs.items():
        assert all(t.startswith("ghcr.io/") for t in i["tags"]), name
        assert [next(iter(e)) for e in i["cacheTo"]] == ["gha", "registry"], name
        assert all(next(iter(e.values()))["mode"] == "max" for e in i["cacheTo"]), name


# --- cache rules -----------------------------------------------------------------------


def test_gha_scope_per_target_unique_mode_and_ignore_error(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = with_overrides(base_config, targets=ALL, cache={"backends": ["gha"], "mode": "min"})
    imgs = images(evaluate(config, stack="staging"))
    scopes = []
    for name, i in imgs.items():
        (src,) = i["cacheFrom"]
        (dst,) = i["cacheTo"]
        assert src["gha"]["scope"] == dst["gha"]["scope"], f"{name} reads its own scope"
        assert name in dst["gha"]["scope"], f"{name}: scope derives from the target name"
        assert dst["gha"]["mode"] == "min"
        assert dst["gha"]["ignoreError"] is True, f"{name}: a cache outage must not fail it"
        scopes.append(dst["gha"]["scope"])
    assert len(scopes) == len(set(scopes)) == len(ALL), "gha scopes collide"


def test_two_stacks_of_one_repository_never_share_a_gha_scope(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    """GitHub's cache is per repository: prod and staging deployed from the same repository
    would overwrite each other's entries if a scope named only the target."""
    config = with_overrides(base_config, targets=ALL, cache={"backends": ["gha"], "mode": "max"})
    scopes = {
        stack: {
            i["cacheTo"][0]["gha"]["scope"] for i in images(evaluate(config, stack=stack)).values()
        }
        for stack in ("prod", "staging")
    }
    assert len(scopes["prod"]) == len(scopes["staging"]) == len(ALL)
    assert scopes["prod"].isdisjoint(scopes["staging"]), scopes


@pytest.mark.parametrize(
    ("local_dir", "expected"),
    [
        (".buildcache", ".buildcache/core-cpu"),
        ("/var/cache/comfyui/", "/var/cache/comfyui/core-cpu"),
        ("/var/cache/comfyui", "/var/cache/comfyui/core-cpu"),
        ("/srv/X/", "/srv/X/core-cpu"),  # only the slash is stripped, nothing before it
    ],
)
def test_local_cache_directory_is_one_folder_per_build_under_local_dir(
    evaluate: Evaluate, base_config: dict[str, Any], local_dir: str, expected: str
) -> None:
    config = with_overrides(base_config, cache={"backends": ["local"], "localDir": local_dir})
    image = images(evaluate(config))["core-cpu"]
    assert image["cacheTo"][0]["local"]["dest"] == expected
    assert image["cacheFrom"][0]["local"]["src"] == expected
    # Like every other cache export: the configured mode, and an outage never fails a build.
    assert image["cacheTo"][0]["local"]["mode"] == "max"
    assert image["cacheTo"][0]["local"]["ignoreError"] is True


def test_collisions_refuse_two_builds_sharing_a_gha_scope_or_local_directory() -> None:
    for kind in ("gha-scope", "local-dir"):
        shared = [Written("core-cpu", kind, "x"), Written("core-cuda", kind, "x")]
        assert collisions(shared) == [f"core-cpu's {kind} and core-cuda's {kind} are both 'x'"]
        assert collisions([shared[0], Written("core-cuda", kind, "y")]) == []
    # A gha scope and a local directory of the same text live in different places.
    assert collisions([Written("a", "gha-scope", "x"), Written("b", "local-dir", "x")]) == []


def test_registry_cache_refs_unique_and_never_an_image_tag(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = with_overrides(base_config, targets=ALL, cache={"backends": ["registry"]})
    imgs = images(evaluate(config))
    refs = []
    for name, i in imgs.items():
        (src,) = i["cacheFrom"]
        (dst,) = i["cacheTo"]
        assert src["registry"]["ref"] == dst["registry"]["ref"], name
        assert dst["registry"]["mode"] == "max"
        assert dst["registry"]["ignoreError"] is True
        assert "imageManifest" not in dst["registry"]
        refs.append(dst["registry"]["ref"])
    assert len(set(refs)) == len(ALL), "registry cache refs collide between targets"
    assert not set(refs) & all_tags(imgs), "a registry cache ref is also an image tag"


def test_image_manifest_switch_for_ecr(evaluate: Evaluate, base_config: dict[str, Any]) -> None:
    config = with_overrides(base_config, cache={"backends": ["registry"], "imageManifest": True})
    for name, i in images(evaluate(config)).items():
        (dst,) = i["cacheTo"]
        assert dst["registry"]["imageManifest"] is True, name
        assert dst["registry"]["ociMediaTypes"] is True, name


def test_inline_has_no_mode_and_is_read_through_registry_from_own_tag(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = with_overrides(base_config, cache={"backends": ["inline"], "mode": "min"})
    for name, i in images(evaluate(config)).items():
        assert i["cacheTo"] == [{"inline": {}}], f"{name}: inline takes no parameters"
        (src,) = i["cacheFrom"]
        assert set(src) == {"registry"}, f"{name}: type=inline is not a cache source"
        assert src["registry"]["ref"] in i["tags"], f"{name}: inline cache lives in the image"


def test_local_cache_directory_per_target(evaluate: Evaluate, base_config: dict[str, Any]) -> None:
    config = with_overrides(base_config, targets=ALL, cache={"backends": ["local"]})
    dirs = []
    for name, i in images(evaluate(config)).items():
        (src,) = i["cacheFrom"]
        (dst,) = i["cacheTo"]
        assert src["local"]["src"] == dst["local"]["dest"]
        assert src["local"]["src"].endswith(f"/{name}")
        dirs.append(dst["local"]["dest"])
    assert len(set(dirs)) == len(ALL)


def test_backends_keep_configured_order_and_empty_means_no_cache(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = with_overrides(base_config, cache={"backends": ["local", "registry", "gha"]})
    for i in images(evaluate(config)).values():
        assert [next(iter(e)) for e in i["cacheTo"]] == ["local", "registry", "gha"]
    config = with_overrides(base_config, cache={"backends": []})
    for i in images(evaluate(config)).values():
        assert "cacheTo" not in i
        assert "cacheFrom" not in i


def test_default_compression_leaves_every_export_as_it_was(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    """gzip at BuildKit's own level adds no field: the setting's arrival rebuilds nothing."""
    config = with_overrides(base_config, cache={"backends": ["registry", "local"]})
    for name, i in images(evaluate(config)).items():
        assert i["exports"] == [{"registry": {}}], name
        for entry in i["cacheTo"]:
            params = next(iter(entry.values()))
            assert not {"compression", "compressionLevel"} & set(params), name


def test_compression_reaches_the_image_and_cache_exports(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    """One setting for the image and the caches (a layer is compressed once); zstd layers
    are written with OCI media types where the export has that field."""
    config = with_overrides(
        base_config,
        cache={"backends": ["registry", "local", "gha"]},
        compression={"type": "zstd", "level": 9},
    )
    for name, i in images(evaluate(config)).items():
        (export,) = i["exports"]
        zstd = {"compression": "zstd", "compressionLevel": 9}
        assert export == {"registry": {**zstd, "ociMediaTypes": True}}, name
        caches = {kind: params for e in i["cacheTo"] for kind, params in e.items()}
        assert zstd.items() <= caches["registry"].items(), name
        assert caches["registry"]["ociMediaTypes"] is True, name
        assert zstd.items() <= caches["local"].items(), name
        assert "compression" not in caches["gha"], f"{name}: the provider's gha has no field"


def test_compression_always_carries_a_level(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    """docker-build 0.0.22 drops the compression option when the level is 0 (unset), so
    `type: zstd` alone would push gzip layers (seen on the real engine): zstd's own default
    level is sent."""
    config = with_overrides(
        base_config, cache={"backends": ["registry"]}, compression={"type": "zstd"}
    )
    for name, i in images(evaluate(config)).items():
        (export,) = i["exports"]
        assert export["registry"]["compressionLevel"] == 3, name
        (cache,) = i["cacheTo"]
        assert cache["registry"]["compressionLevel"] == 3, name


@pytest.mark.parametrize(
    ("compression", "fragment"),
    [
        ({"type": "zstd", "level": 0}, "out of range for zstd: use 1-22"),
        ({"type": "gzip", "level": 0}, "out of range for gzip: use 1-9"),
        ({"type": "gzip", "level": 12}, "out of range for gzip: use 1-9"),
        ({"type": "brotli"}, "brotli"),
        ({"kind": "zstd"}, "unknown key"),
    ],
)
def test_bad_compression_registers_nothing(
    evaluate: Evaluate, base_config: dict[str, Any], compression: dict[str, Any], fragment: str
) -> None:
    config = with_overrides(base_config, compression=compression)
    with pytest.raises(Exception, match="compression") as raised:
        evaluate(config)
    assert fragment in str(raised.value)


STACK_FILES = stack_names()


@pytest.mark.parametrize("stack", STACK_FILES)
def test_preview_and_up_give_the_provider_identical_inputs(stack: str) -> None:
    """The provider diffs every input: any preview/up difference is a change in every preview.

    Previews are kept off the shared registry cache by the PR job's read-only token, never by
    different inputs (docs/caching.md).
    """
    up = run_stack(stack, preview=False)
    preview = run_stack(stack, preview=True)
    before = {r.urn: r for r in up.resources}
    after = {r.urn: r for r in preview.resources}
    assert sorted(after) == sorted(before)
    for urn, resource in before.items():
        assert after[urn].inputs == resource.inputs, f"{stack}: {urn} differs in preview"
        assert sorted(after[urn].dependencies) == sorted(resource.dependencies), urn


def test_build_on_preview_is_configurable(evaluate: Evaluate, base_config: dict[str, Any]) -> None:
    on = images(evaluate(base_config, preview=True))
    off = images(evaluate(with_overrides(base_config, buildOnPreview=False), preview=True))
    assert all(i["buildOnPreview"] is True for i in on.values())
    assert all(i["buildOnPreview"] is False for i in off.values())


# --- graph and parents -------------------------------------------------------------------


def test_children_reach_parents_through_digest_pinned_named_contexts(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    recording = evaluate(with_overrides(base_config, targets=["complete-cuda"]))
    resources = recording.images()
    imgs = images(recording)
    assert set(imgs) == {
        "runtime-cuda",
        "runtime-cpu",
        "core-env-cuda",
        "core-cuda",
        "sageattention-builder",
        "complete-cuda",
    }
    for name, i in imgs.items():
        named = (i["context"].get("named")) or {}
        for ctx, parent in parents_of(name).items():
            parent_ref = f"{imgs[parent]['tags'][0]}@sha256:"
            location = named[ctx]["location"]
            assert location.startswith(f"docker-image://{parent_ref}"), (
                f"{name}: context {ctx} must be docker-image:// + {parent}'s digest-pinned ref"
            )
            assert resources[parent].urn in resources[name].dependencies, (
                f"{name} must depend on {parent}"
            )


def test_unknown_target_registers_nothing(evaluate: Evaluate, base_config: dict[str, Any]) -> None:
    recording = Recording(stack="test", preview=False)
    with pytest.raises(SettingsError, match="unknown target 'core-gpu'"):
        evaluate(with_overrides(base_config, targets=["core-cpu", "core-gpu"]), into=recording)
    assert recording.resources == [], "resources were registered before validation failed"


@pytest.mark.parametrize(
    "override",
    [
        {"cache": {"backends": ["inline"], "mode": "max"}},
        {"registry": {"address": "ghcr.io", "namespace": "a/b", "username": "bot"}},
        {"versions": {"torch": "latest please"}},
        {"typo": True},
    ],
)
def test_bad_config_registers_nothing(
    evaluate: Evaluate,
    base_config: dict[str, Any],
    override: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    recording = Recording(stack="test", preview=False)
    with pytest.raises(SettingsError):
        evaluate(with_overrides(base_config, **override), into=recording)
    assert recording.resources == []


# --- tags, credentials, secrets -----------------------------------------------------------


def test_tags_fully_qualified_version_and_moving(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = with_overrides(base_config, targets=ALL, movingTag="edge")
    imgs = images(evaluate(config))
    for name, i in imgs.items():
        repo = f"registry.example.test:5000/team/comfy/{name}"
        version_tag, moving = i["tags"]
        assert version_tag.startswith(f"{repo}:"), name
        assert version_tag != f"{repo}:edge", name
        assert moving == f"{repo}:edge", name
    assert len(all_tags(imgs)) == 2 * len(ALL), "two targets share a tag"


def test_password_is_secret_on_every_image_and_never_in_plain_inputs(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = with_overrides(
        base_config,
        targets=ALL,
        registry={"address": "ghcr.io", "namespace": "acme/x", "username": "bot"},
        registryPassword={"secure": "v1:ciphertext"},
    )
    recording = evaluate(config)
    for name, resource in recording.images().items():
        registries = resource.inputs["registries"]
        assert is_secret(registries), f"{name}: registry credentials are not a secret"
        (entry,) = unwrap(registries)
        assert entry["address"] == "ghcr.io"
        assert entry["username"] == "bot"
        assert entry["password"] == "[secret]"
        for key, value in resource.inputs.items():
            if key != "registries":
                assert "[secret]" not in json.dumps(unwrap(value)), f"{name}.{key} leaks it"


def test_password_from_environment_is_a_secret(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = with_overrides(
        base_config, registry={"address": "ghcr.io", "namespace": "acme/x", "username": "bot"}
    )
    recording = evaluate(config, env={PASSWORD_ENV: "token-from-env"})
    for resource in recording.images().values():
        assert is_secret(resource.inputs["registries"])
        assert unwrap(resource.inputs["registries"])[0]["password"] == "token-from-env"
        assert "token-from-env" not in json.dumps(
            {k: v for k, v in resource.inputs.items() if k != "registries"}
        )


def test_plaintext_password_in_config_is_refused(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = with_overrides(base_config, registryPassword="hunter2")
    recording = Recording(stack="test", preview=False)
    with pytest.raises(SettingsError, match=r"registryPassword: stored in plain text.*--secret"):
        evaluate(config, into=recording)
    assert recording.resources == []


def test_no_credentials_without_username(evaluate: Evaluate, stack_config: Any) -> None:
    for i in images(evaluate(stack_config("prod"), stack="prod")).values():
        assert "registries" not in i


def test_ca_bundle_is_a_build_secret_not_an_arg(
    evaluate: Evaluate, base_config: dict[str, Any], tmp_path: Path
) -> None:
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIcorp\n-----END CERTIFICATE-----\n")
    recording = evaluate(with_overrides(base_config, caBundle=str(bundle)))
    for name, resource in recording.images().items():
        assert is_secret(resource.inputs["secrets"]), name
        assert unwrap(resource.inputs["secrets"]) == {"ca": bundle.read_text()}
        plain = json.dumps({k: v for k, v in resource.inputs.items() if k != "secrets"})
        assert "MIIcorp" not in plain, f"{name}: CA bundle leaked outside secrets"


def test_builder_is_used_by_every_image_only_when_named(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    named = images(evaluate(with_overrides(base_config, targets=ALL, builder="k8s-remote")))
    assert all(i["builder"] == {"name": "k8s-remote"} for i in named.values())
    default = images(evaluate(with_overrides(base_config, targets=ALL)))
    assert all("builder" not in i for i in default.values())


def test_push_false_exports_cache_only(evaluate: Evaluate, base_config: dict[str, Any]) -> None:
    config = with_overrides(base_config, targets=["runtime-cpu"], push=False)
    (i,) = images(evaluate(config)).values()
    assert i["push"] is False
    assert i["exports"] == [{"cacheonly": {}}]


def test_images_sit_under_their_components(
    evaluate: Evaluate, stack_config: Any, stack_name: str
) -> None:
    recording = evaluate(stack_config(stack_name), stack=stack_name)
    for resource in recording.of_type("comfyui:images:ImageTarget"):
        family = recording.by_urn(resource.parent)
        assert family is not None
        assert family.type == "comfyui:images:ImageFamily"
    for resource in recording.of_type(IMAGE_TYPE):
        parent = recording.by_urn(resource.parent)
        assert parent is not None
        assert parent.type == "comfyui:images:ImageTarget"


def test_the_stack_exports_every_builds_ref_and_its_two_tags(
    evaluate: Evaluate, base_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`refs` (digest-pinned, for deploy jobs) and `tags` (version tag first) per build."""
    exports: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", exports.__setitem__)
    recording = evaluate(with_overrides(base_config, targets=["core-cpu"]))
    assert set(exports["refs"]) == {"runtime-cpu", "core-env-cpu", "core-cpu"}
    for name, resource in recording.images().items():
        assert exports["tags"][name] == unwrap(resource.inputs)["tags"], name
        assert exports["tags"][name][1].endswith(":latest"), "the version tag comes first"
