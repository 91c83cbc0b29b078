"""What `bench/preview-stacks` hands the real CLI (the previews themselves run in .ci/run)."""

from __future__ import annotations

from bench.preview_stacks import GITHUB_KEYS, preview_config
from components.project import NAMESPACE, ROOT
from tools.offline import stack_names


def test_every_stack_file_is_previewed() -> None:
    files = sorted(p.name for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
    assert [f"Pulumi.{s}.yaml" for s in stack_names()] == files
    assert {"dev", "prod", "ci"} <= set(stack_names())


def test_github_keys_are_left_out_only_without_the_plugin_and_it_says_so() -> None:
    without, notes = preview_config("prod", standins=False, github=False)
    assert not set(GITHUB_KEYS) & set(without)
    assert "pulumi-resource-github plugin is not installed" in notes
    assert f"{NAMESPACE}:github, {NAMESPACE}:githubSecrets" in notes
    kept, notes = preview_config("prod", standins=False, github=True)
    assert f"{NAMESPACE}:github" in kept
    assert f"{NAMESPACE}:githubSecrets" in kept
    assert "GitHub" not in notes


def test_the_quick_pass_builds_nothing() -> None:
    for stack in stack_names():
        config, notes = preview_config(stack, standins=False, github=False)
        assert config[f"{NAMESPACE}:buildOnPreview"] is False, stack
        assert "buildOnPreview false" in notes
