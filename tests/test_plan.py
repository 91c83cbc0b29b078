"""The offline plan: both real stacks print, JSON is complete, secrets are redacted,
bad config exits non-zero with the validation message."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.catalog import TARGETS
from components.matrix import parents_of, target_of
from components.project import ROOT
from tests.conftest import Evaluate, with_overrides
from tools import offline, plan


@pytest.mark.parametrize("stack", offline.stack_names())
def test_readme_command_prints_every_target(stack: str) -> None:
    """`scripts/plan --stack <name>` exactly as the README shows it, for every stack file."""
    result = subprocess.run(
        ["scripts/plan", "--stack", stack],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    config = offline.load_stack_config(stack)
    for name in config["comfyui-images:targets"]:
        assert f"\n{name}  [" in result.stdout or f"\n{name}-cu" in result.stdout, (
            f"{name} missing from the {stack} plan"
        )
    for label in ("parents:", "tags:", "cache from:", "cache to:", "build args:", "named ctx:"):
        assert label in result.stdout


def test_json_plan_lists_parents_and_provider_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["--stack", "prod", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {target_of(name).name for name in document["targets"]} == set(TARGETS)
    for name, target in document["targets"].items():
        assert target["parents"] == parents_of(name), name
        assert target["inputs"]["target"] == target_of(name).stage
        for parent in target["parents"].values():
            assert document["order"].index(parent) < document["order"].index(name)


def test_preview_flag_plans_a_preview(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["--stack", "prod", "--format", "json", "--preview"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["preview"] is True
    assert plan.main(["--stack", "prod", "--format", "json"]) == 0
    up = json.loads(capsys.readouterr().out)
    for name, target in document["targets"].items():
        assert target["inputs"] == up["targets"][name]["inputs"], f"{name}: preview != up"


def test_secrets_are_redacted(
    evaluate: Evaluate, base_config: dict[str, Any], tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nCA-CONTENT-XYZ\n-----END CERTIFICATE-----\n")
    config = with_overrides(
        base_config,
        registry={"address": "ghcr.io", "namespace": "a/b", "username": "bot"},
        caBundle=str(bundle),
    )
    recording = evaluate(config, env={"COMFYUI_IMAGES_REGISTRY_PASSWORD": "PW-FROM-ENV-123"})
    document = plan.to_plan(recording)
    text = plan.render_text(document) + json.dumps(document)
    assert "PW-FROM-ENV-123" not in text
    assert "CA-CONTENT-XYZ" not in text
    assert "password=[secret]" in text
    assert "ca=[secret]" in text


def test_bad_config_exits_nonzero_with_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = offline.load_stack_config("dev")
    bad["comfyui-images:cache"] = {"backends": ["inline"], "mode": "max"}
    stack_path = tmp_path / "Pulumi.broken.yaml"
    stack_path.write_text(yaml.safe_dump({"config": bad}))
    monkeypatch.setattr(offline, "stack_file", lambda _stack: stack_path)
    assert plan.main(["--stack", "broken"]) == 1
    err = capsys.readouterr().err
    assert "comfyui-images:cache" in err
    assert "Use backends [registry]" in err


def test_unknown_stack_names_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["--stack", "nope"]) == 1
    err = capsys.readouterr().err
    assert "Pulumi.nope.yaml" in err
    assert "known stacks: ci, dev, prod" in err


def test_cache_entry_strings_are_buildkit_syntax() -> None:
    assert (
        plan.cache_entry_to_string(
            {
                "registry": {
                    "ref": "r:x",
                    "mode": "max",
                    "ignoreError": True,
                    "imageManifest": True,
                    "ociMediaTypes": True,
                }
            }
        )
        == "type=registry,ref=r:x,ignore-error=true,image-manifest=true,mode=max,"
        "oci-mediatypes=true"
    )
    assert plan.cache_entry_to_string({"inline": {}}) == "type=inline"


def test_github_section_lists_names_never_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["--stack", "prod"]) == 0
    out = capsys.readouterr().out
    github = out[out.index("\ngithub  [") :]
    assert "environment prod]" in github
    assert "deployments:  protected branches" in github
    assert "REGISTRY_ADDRESS=ghcr.io" in github
    assert "GH_ADMIN_TOKEN=[secret]" in github
    assert "placeholder" not in out, "a secret value reached the plan"


def test_dev_plan_has_no_github_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["--stack", "dev"]) == 0
    assert "\ngithub  [" not in capsys.readouterr().out
