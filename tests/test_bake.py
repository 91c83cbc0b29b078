"""The bake translation of a recorded plan: same targets, contexts, args, tags and cache."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

import pytest

from components.matrix import parents_of, target_of
from tools import bake
from tools.offline import run_stack
from tools.plan import cache_entry_to_string, to_plan


@pytest.fixture(scope="module")
def prod_plan() -> dict[str, Any]:
    return to_plan(run_stack("prod"))


def test_every_target_is_translated_from_its_provider_inputs(prod_plan: dict[str, Any]) -> None:
    document = bake.to_bake(prod_plan, secrets={})
    assert document["group"]["default"]["targets"] == prod_plan["order"]
    for name, target in document["target"].items():
        inputs = prod_plan["targets"][name]["inputs"]
        assert target["target"] == target_of(name).stage
        assert target["context"] == target_of(name).context_dir
        joined = posixpath.normpath(f"{target['context']}/{target['dockerfile']}")
        assert joined == target_of(name).dockerfile
        assert target["args"] == inputs["buildArgs"]
        assert target["tags"] == inputs["tags"]
        assert target["cache-from"] == [cache_entry_to_string(e) for e in inputs["cacheFrom"]]
        assert target["cache-to"] == [cache_entry_to_string(e) for e in inputs["cacheTo"]]
        wanted = "type=registry,compression=zstd,compression-level=3,oci-mediatypes=true"
        if not inputs["tags"]:  # one platform of an Index: pushed by digest to its repository
            repository = inputs["exports"][0]["registry"]["names"][0]
            wanted = wanted.replace(",oci", f",name={repository},oci") + ",push-by-digest=true"
        assert target["output"] == [wanted]
        assert (
            target["platforms"] == inputs["platforms"] == [prod_plan["targets"][name]["platform"]]
        )


def test_parents_become_bake_targets_or_stay_registry_images(prod_plan: dict[str, Any]) -> None:
    as_targets = bake.to_bake(prod_plan, secrets={})["target"]
    as_images = bake.to_bake(prod_plan, secrets={}, parents="image")["target"]
    for name in prod_plan["order"]:
        for ctx, parent in parents_of(name).items():
            assert as_targets[name]["contexts"][ctx] == f"target:{parent}"
            tags = prod_plan["targets"][parent]["inputs"]["tags"]
            # A parent pushed by digest is read through its Index's tag, for this platform.
            index = f"{parent.removesuffix('-arm64')}-index"
            parent_tag = tags[0] if tags else prod_plan["indexes"][index]["tag"]
            assert as_images[name]["contexts"][ctx] == f"docker-image://{parent_tag}"
    assert any(not prod_plan["targets"][p]["inputs"]["tags"] for p in prod_plan["order"])
    # Source contexts are copied as they are, in both modes.
    assert as_targets["core-cpu"]["contexts"]["comfyui-src"].endswith("#v0.44.0")


def test_secrets_need_a_local_source(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("pem")
    plan = to_plan(run_stack("dev"))
    for entry in plan["targets"].values():
        entry["inputs"]["secrets"] = {"ca": "[secret]"}
    with pytest.raises(bake.BakeError, match="--secret ca=<file>"):
        bake.to_bake(plan, secrets={})
    document = bake.to_bake(plan, secrets={"ca": str(bundle)})
    for target in document["target"].values():
        assert target["secret"] == [f"id=ca,src={bundle}"]
        assert "pem" not in json.dumps(target["args"])


def test_command_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "bake.json"
    assert bake.main(["--stack", "dev", "--output", str(out)]) == 0
    document = json.loads(out.read_text())
    assert set(document["target"]) == {"runtime-cpu", "core-env-cpu", "core-cpu"}


def test_unpushed_targets_export_cache_only() -> None:
    plan = to_plan(run_stack("dev"))
    for entry in plan["targets"].values():
        entry["inputs"]["exports"] = [{"cacheonly": {}}]
    for target in bake.to_bake(plan, secrets={})["target"].values():
        assert target["output"] == ["type=cacheonly"]


def test_compression_reaches_the_bake_output_and_cache() -> None:
    """The bake translation builds what the provider would: the same compression in the
    image output and the registry cache export."""
    plan = to_plan(run_stack("dev"))
    for entry in plan["targets"].values():
        zstd = {"compression": "zstd", "compressionLevel": 3, "ociMediaTypes": True}
        entry["inputs"]["exports"] = [{"registry": zstd}]
        entry["inputs"]["cacheTo"] = [{"registry": {"ref": "r.example/c:x", **zstd}}]
    for target in bake.to_bake(plan, secrets={"ca": "/dev/null"})["target"].values():
        wanted = "compression=zstd,compression-level=3,oci-mediatypes=true"
        assert target["output"] == [f"type=registry,{wanted}"]
        assert target["cache-to"] == [f"type=registry,ref=r.example/c:x,{wanted}"]
