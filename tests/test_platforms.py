"""Platforms: one Image per target, line and platform, joined by an Index per tag.

The rules (components/platforms.py, matrix.py): linux/amd64 keeps the plain names, another
platform's builds, caches and scopes end in its architecture; a parent is built for every
platform its children need; a child builds from its parent's image of the same platform; a
target on several platforms is pushed by digest per platform, and two Indexes (version tag,
moving tag) list every platform's digest. Tested on the real entry point, under mocks.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import cuda, platforms
from components import plan as plan_module
from components.plan import plan, plan_indexes
from components.platforms import split_name
from components.written import collisions, written_by
from tests.conftest import NS, Evaluate, with_overrides, write_lock
from tests.test_hostile import refused
from tools.offline import fake_digest, stack_settings, unwrap
from tools.plan import render_mermaid, to_plan

TWO = ["linux/amd64", "linux/arm64"]


def _core_cpu_on_two(base: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return with_overrides(base, targets=["core-cpu"], targetPlatforms={"core-cpu": TWO}, **extra)


def test_a_parent_is_built_for_every_platform_its_children_need(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    images = evaluate(_core_cpu_on_two(base_config)).images()
    assert set(images) == {
        f"{name}{end}"
        for name in ("runtime-cpu", "core-env-cpu", "core-cpu")
        for end in ("", "-arm64")
    }
    for name, resource in images.items():
        wanted = "linux/arm64" if name.endswith("-arm64") else "linux/amd64"
        assert unwrap(resource.inputs)["platforms"] == [wanted], name


def test_children_build_from_their_parents_image_of_the_same_platform(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    images = evaluate(_core_cpu_on_two(base_config)).images()
    repository = "registry.example.test:5000/team/comfy"
    for end in ("", "-arm64"):
        named = unwrap(images[f"core-cpu{end}"].inputs)["context"]["named"]
        for context, parent in (("common-runtime", "runtime-cpu"), ("comfyui-env", "core-env-cpu")):
            digest = fake_digest(f"{parent}{end}-image")  # the mocks' digest of that Image
            wanted = f"docker-image://{repository}/{parent}@{digest}"
            assert named[context]["location"] == wanted, (end, context)


def test_each_platform_is_pushed_by_digest_with_its_own_cache(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    images = evaluate(_core_cpu_on_two(base_config)).images()
    refs = set()
    for end in ("", "-arm64"):
        inputs = unwrap(images[f"core-cpu{end}"].inputs)
        assert inputs["tags"] == [], "the Index carries the tags"
        (export,) = inputs["exports"]
        assert export["registry"]["pushByDigest"] is True
        assert export["registry"]["names"] == ["registry.example.test:5000/team/comfy/core-cpu"]
        (cache_to,) = inputs["cacheTo"]
        refs.add(cache_to["registry"]["ref"])
        assert inputs["cacheFrom"] == [{"registry": {"ref": cache_to["registry"]["ref"]}}]
    cache = "registry.example.test:5000/team/comfy/buildcache"
    assert refs == {f"{cache}:core-cpu", f"{cache}:core-cpu-arm64"}


def test_two_indexes_join_the_platforms_under_the_tags_and_refs_export_them(
    evaluate: Evaluate, base_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    exports: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", exports.__setitem__)
    recording = evaluate(_core_cpu_on_two(base_config))
    repository = "registry.example.test:5000/team/comfy/core-cpu"
    per_platform = [f"{repository}@{fake_digest(f'core-cpu{end}-image')}" for end in ("", "-arm64")]
    indexes = {name: unwrap(r.inputs) for name, r in recording.indexes().items()}
    assert set(indexes) == {
        f"{name}-{role}"
        for name in ("runtime-cpu", "core-env-cpu", "core-cpu")
        for role in ("index", "moving-index")
    }
    version = indexes["core-cpu-index"]
    assert version["sources"] == per_platform, "amd64 first, each by digest"
    assert version["tag"] == f"{repository}:v0.44.0-cpu-torch2.15.0"
    assert indexes["core-cpu-moving-index"] == {**version, "tag": f"{repository}:latest"}
    # Deployments pull the Index (tag@digest); each platform's Image stays reachable.
    (family,) = recording.of_type("comfyui:images:ImageFamily")
    refs = unwrap(recording.outputs[family.urn])["refs"]
    assert refs["core-cpu"] == f"{version['tag']}@{fake_digest('core-cpu-index')}"
    assert set(refs) == set(exports["refs"]) == {"runtime-cpu", "core-env-cpu", "core-cpu"}
    assert exports["tags"]["core-cpu"] == [version["tag"], f"{repository}:latest"]
    assert set(exports["platformRefs"]) == {
        f"{name}{end}" for name in refs for end in ("", "-arm64")
    }


def test_a_single_platform_stack_has_no_index_and_keeps_its_inputs(
    evaluate: Evaluate, base_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding the platforms setting to the model changes nothing for a stack without it."""
    exports: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", exports.__setitem__)
    recording = evaluate(base_config)
    assert recording.indexes() == {}
    assert "platformRefs" not in exports
    inputs = unwrap(recording.images()["core-cpu"].inputs)
    assert inputs["tags"][1].endswith("/core-cpu:latest")
    assert "names" not in inputs["exports"][0]["registry"]


def test_an_arm64_only_target_keeps_its_tags_on_its_one_image(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    recording = evaluate(with_overrides(base_config, platforms=["linux/arm64"]))
    assert set(recording.images()) == {"runtime-cpu-arm64", "core-env-cpu-arm64", "core-cpu-arm64"}
    assert recording.indexes() == {}
    tags = unwrap(recording.images()["core-cpu-arm64"].inputs)["tags"]
    assert tags[1] == "registry.example.test:5000/team/comfy/core-cpu:latest"


def test_an_explicit_parent_without_a_childs_platform_is_refused_before_any_resource(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = _core_cpu_on_two(base_config)
    config[f"{NS}:targetPlatforms"]["runtime-cpu"] = ["linux/amd64"]
    message = refused(evaluate, config)
    assert f"{NS}:targetPlatforms.runtime-cpu is ['linux/amd64']" in message
    assert "core-cpu, built on runtime-cpu, is built for linux/arm64" in message
    assert f"add linux/arm64 to {NS}:targetPlatforms.runtime-cpu" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"platforms": []}, "is empty; name at least one platform"),
        ({"platforms": ["linux/arm64", "linux/arm64"]}, "lists 'linux/arm64' twice"),
        ({"platforms": ["linux/s390x"]}, "linux/s390x"),
        ({"targetPlatforms": {"core-gpu": TWO}}, "names 'core-gpu', which is not a target"),
        ({"targetPlatforms": {"core-cpu": TWO}, "push": False}, "push is false"),
        ({"platform": "linux/arm64"}, "no longer a key (got 'linux/arm64'); it became platforms"),
    ],
)
def test_bad_platforms_are_refused_naming_the_key_and_the_fix(
    evaluate: Evaluate, base_config: dict[str, Any], overrides: dict[str, Any], expected: str
) -> None:
    message = refused(evaluate, with_overrides(base_config, **overrides))
    assert expected in message, message


def test_a_line_names_its_platforms_over_the_targets(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    lines = {"cu130": {"cuda": "13.0.2", "platforms": TWO}, "cu126": {"cuda": "12.6.3"}}
    lines["cu126"] |= {"torch": "2.14.1", "torchvision": "0.29.1", "torchaudio": "2.11.0"}
    config = with_overrides(base_config, targets=["complete-cuda"], cudaLines=lines)
    images = evaluate(config).images()
    arm64 = {name for name in images if name.endswith("-arm64")}
    assert arm64 == {
        "runtime-cpu-arm64",  # common-runtime of core-cuda on arm64: inherited
        *(f"{t}-cu130-arm64" for t in ("runtime-cuda", "core-env-cuda", "core-cuda")),
        *(f"{t}-cu130-arm64" for t in ("sageattention-builder", "complete-cuda")),
    }
    args = unwrap(images["sageattention-builder-cu130-arm64"].inputs)["buildArgs"]
    assert args["TORCH_CUDA_ARCH_LIST"] == "8.0;9.0;12.1", "the arm64 GPUs SageAttention runs on"
    args = unwrap(images["sageattention-builder-cu130"].inputs)["buildArgs"]
    assert args["TORCH_CUDA_ARCH_LIST"] == cuda.default_arch_list("13.0.2")


def test_arm64_arch_lists_follow_the_lines_cuda_and_are_checked() -> None:
    assert cuda.default_arch_list("13.0.2", platforms.ARM64) == "8.0;9.0;12.1"
    assert cuda.default_arch_list("12.6.3", platforms.ARM64) == "8.0;9.0", "12.1 needs 12.9"
    assert cuda.default_arch_list("13.0.2") == "8.0;8.6;8.9;9.0;12.0;12.1"


def test_a_refused_arm64_arch_list_names_its_key(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    lines = {"cu130": {"cuda": "13.0.2", "platforms": TWO, "arm64CudaArchList": "10.0"}}
    message = refused(evaluate, with_overrides(base_config, cudaLines=lines))
    assert f"{NS}:cudaLines.cu130.arm64CudaArchList '10.0' has 10.0" in message


def test_prod_plans_arm64_for_the_cpu_targets_and_cu130_with_every_ref_unique() -> None:
    settings = stack_settings("prod")
    planned = plan(settings, "prod")
    joined = plan_indexes(planned)
    assert {name for name, index in joined.items() if len(index.platforms) == 2} == {
        "runtime-cpu",
        "core-env-cpu",
        "core-cpu",
        *(f"{t}-cu130" for t in ("runtime-cuda", "core-env-cuda", "core-cuda")),
        *(f"{t}-cu130" for t in ("sageattention-builder", "complete-cuda")),
    }
    written = written_by(planned.values(), push=True)
    assert collisions(written) == []
    assert len({w.ref for w in written}) == len(written)
    index_tags = {w.ref for w in written if w.kind == "index-tag"}
    assert "ghcr.io/acme/comfyui/core-cuda:latest-cu130" in index_tags
    assert "ghcr.io/acme/comfyui/core-cuda:latest-cu126" not in index_tags, "cu126 is amd64 only"


def test_the_collision_check_covers_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were a platform's cache ref and gha scope not its own, the two platforms of a target
    would evict each other's cache: the check must see it."""
    settings = stack_settings("prod")
    for name in ("registry_cache_ref", "gha_scope"):
        shared = getattr(plan_module, name)
        monkeypatch.setattr(
            plan_module, name, lambda first, build, f=shared: f(first, split_name(build)[0])
        )
    problems = collisions(written_by(plan(settings, "prod").values(), push=True))
    assert "core-cpu's registry-cache and core-cpu-arm64's registry-cache" in "; ".join(problems)
    assert "core-cpu's gha-scope and core-cpu-arm64's gha-scope" in "; ".join(problems)


def test_the_offline_plan_and_graph_show_platforms_and_indexes() -> None:
    from tools.offline import run_stack  # noqa: PLC0415 (the whole program, under mocks)

    planned = to_plan(run_stack("prod"))
    assert planned["targets"]["core-cpu-arm64"]["platform"] == "linux/arm64"
    assert planned["targets"]["core-cpu-arm64"]["parents"] == {
        "common-runtime": "runtime-cpu-arm64",
        "comfyui-env": "core-env-cpu-arm64",
    }
    assert planned["indexes"]["core-cpu-index"]["platforms"] == {
        "linux/amd64": "core-cpu",
        "linux/arm64": "core-cpu-arm64",
    }
    graph = render_mermaid(planned)
    assert "core_cpu_arm64 -.->|linux/arm64| core_cpu_index" in graph
    assert "runtime_cpu_arm64 -->|common-runtime| core_cpu_arm64" in graph


def test_each_platform_installs_under_its_own_lock(
    evaluate: Evaluate, base_config: dict[str, Any], tmp_path: Path
) -> None:
    """A lock is resolved for one platform: arm64's core reads <dir>/linux-arm64, and a
    stack that requires locks is refused, naming that file, until it is there."""
    config = _core_cpu_on_two(
        base_config, requireLock=True, sources={"comfyuiLock": str(tmp_path / "{version}")}
    )
    amd64 = write_lock(tmp_path / "v0.44.0")
    message = refused(evaluate, config)
    assert f"{tmp_path}/v0.44.0/linux-arm64/constraints.txt" in message
    arm64 = write_lock(tmp_path / "v0.44.0" / "linux-arm64", platform="linux/arm64")
    images = evaluate(config).images()
    for name, lock in (("core-cpu", amd64), ("core-cpu-arm64", arm64)):
        inputs = unwrap(images[name].inputs)
        assert inputs["context"]["named"]["comfyui-lock"]["location"] == str(lock), name
        digest = hashlib.sha256((lock / "constraints.txt").read_bytes()).hexdigest()
        assert inputs["buildArgs"]["COMFYUI_LOCK"] == digest, name
    # amd64's lock where arm64's belongs: resolved for another platform, refused.
    write_lock(tmp_path / "v0.44.0" / "linux-arm64")
    assert "platform linux/amd64 where comfyui-images:platforms is linux/arm64" in refused(
        evaluate, config
    )


def test_a_platform_builds_on_its_own_builder_where_the_stack_names_one(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = _core_cpu_on_two(
        base_config,
        builder="comfyui-images",
        platformBuilders={"linux/arm64": "comfyui-images-arm64"},
    )
    for name, resource in evaluate(config).images().items():
        wanted = "comfyui-images-arm64" if name.endswith("-arm64") else "comfyui-images"
        assert unwrap(resource.inputs)["builder"] == {"name": wanted}, name
    message = refused(evaluate, with_overrides(config, platformBuilders={"linux/arm64": "a b"}))
    assert f"{NS}:platformBuilders" in message
    assert "must be the name of an existing buildx builder" in message
