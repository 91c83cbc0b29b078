"""The GitHub side of a stack: settings rules, required secrets derived from the workflows,
and the resources the real ``__main__.py`` registers under recording mocks.

The recording harness keeps each resource's provider and every component's outputs; stack
exports never reach a mock monitor, so the one test that reads them captures ``pulumi.export``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import github as gh
from components import workflows
from components.errors import SettingsError
from components.settings import GithubSettings
from tests.conftest import NS, Evaluate, with_overrides
from tools.offline import SECRET_PLACEHOLDER, Recording, Resource, is_secret, redact, unwrap

PROVIDER = "pulumi:providers:github"
ENVIRONMENT = "github:index/repositoryEnvironment:RepositoryEnvironment"
SECRET = "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret"
VARIABLE = "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable"
COMPONENT = "comfyui:github:GithubEnvironment"
GITHUB_TYPES = {PROVIDER, ENVIRONMENT, SECRET, VARIABLE, COMPONENT}

GITHUB = {"owner": "acme", "repository": "comfyui", "environment": "prod"}
# The environment secrets the real workflows read in `prod`: the deploy job's admin token and
# the release-tracking job's token.
PROD_SECRETS = {
    "GH_ADMIN_TOKEN": {"secure": "v1:ciphertext"},
    "GH_RELEASE_TOKEN": {"secure": "v1:ciphertext"},
}


def github_config(base: dict[str, Any], **github: Any) -> dict[str, Any]:
    """``base`` plus a github object (GITHUB overridden by ``github``) and the prod secrets."""
    return with_overrides(base, github={**GITHUB, **github}, githubSecrets=PROD_SECRETS)


def github_resources(recording: Recording) -> list[Resource]:
    return [r for r in recording.resources if r.type in GITHUB_TYPES]


def one(recording: Recording, type_: str) -> Resource:
    (resource,) = recording.of_type(type_)
    return resource


def plain_text(value: Any) -> str:
    """Everything in ``value`` that is NOT inside a secret wrapper, as JSON."""
    return json.dumps(redact(value, placeholder=None))


@pytest.fixture(autouse=True)
def no_ambient_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GITHUB_TOKEN in the test runner's environment must not change what is recorded."""
    monkeypatch.delenv(gh.TOKEN_ENV, raising=False)


def write_workflow(directory: Path, name: str, jobs: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    document = {"name": name, "on": {"push": {}}, "jobs": jobs}
    (directory / f"{name}.yml").write_text(json.dumps(document), encoding="utf-8")


def job(environment: Any = None, *secrets: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "runs-on": "ubuntu-24.04",
        "steps": [{"run": "true", "env": {s: f"${{{{ secrets.{s} }}}}" for s in secrets}}],
    }
    if environment is not None:
        body["environment"] = environment
    return body


# --- required secrets, derived from the workflow files (pure) ------------------------------


def test_required_secrets_are_those_only_environment_jobs_read(tmp_path: Path) -> None:
    write_workflow(
        tmp_path,
        "deploy",
        {
            "up": job("prod", "ADMIN", "SHARED", "GITHUB_TOKEN"),
            "notify": job({"name": "Prod", "url": "https://x"}, "SLACK"),
            "staging": job("staging", "STAGING_ONLY"),
        },
    )
    write_workflow(tmp_path, "pr", {"preview": job(None, "SHARED")})
    wanted = workflows.workflow_secrets("prod", tmp_path)
    assert set(wanted.needed) == {"ADMIN", "SLACK"}, (
        "SHARED is read without an environment (a repository secret), GITHUB_TOKEN is "
        "GitHub's, STAGING_ONLY belongs to another environment"
    )
    assert wanted.needed["ADMIN"] == [".github/workflows/deploy.yml (job up)"]
    assert wanted.needed["SLACK"] == [".github/workflows/deploy.yml (job notify)"], (
        "environment: {name: ...} counts, case-insensitively"
    )
    assert len(wanted.jobs) == 2


def test_required_secrets_read_yaml_files_and_skip_what_is_not_a_workflow(
    tmp_path: Path,
) -> None:
    """A workflow may be named .yaml; a job that is not a mapping, or a file that is not a
    workflow, is skipped without losing the jobs after it."""
    write_workflow(tmp_path, "deploy", {"broken": "not a job", "up": job("prod", "ADMIN")})
    (tmp_path / "deploy.yml").rename(tmp_path / "deploy.yaml")
    (tmp_path / "notes.yml").write_text("- just a list\n", encoding="utf-8")
    wanted = workflows.workflow_secrets("prod", tmp_path)
    assert wanted.environment == "prod"
    assert wanted.needed == {"ADMIN": [".github/workflows/deploy.yaml (job up)"]}
    assert wanted.jobs == [".github/workflows/deploy.yaml (job up)"]


def test_secret_references_in_both_syntaxes_anywhere_in_a_job() -> None:
    refs = workflows.secret_references(
        {
            "if": "${{ secrets.IN_IF != '' }}",
            "with": {"token": "${{ secrets['INDEXED'] }}", "x": "prefix-${{secrets.lower}}"},
            "steps": [{"run": "echo ${{ secrets . SPACED }}"}],
        }
    )
    assert refs == {"IN_IF", "INDEXED", "LOWER", "SPACED"}


def test_real_workflows_need_exactly_the_admin_and_release_tokens() -> None:
    wanted = workflows.workflow_secrets("prod")
    assert wanted.needed == {
        "GH_ADMIN_TOKEN": [".github/workflows/deploy.yml (job deploy)"],
        "GH_RELEASE_TOKEN": [".github/workflows/track-releases.yml (job pull-request)"],
    }, (
        "the deploy job's and the release PR job's own secrets; backend credentials are "
        "repository secrets because the PR preview (no environment) reads them too"
    )
    assert wanted.jobs == [
        ".github/workflows/deploy.yml (job deploy)",
        ".github/workflows/track-releases.yml (job pull-request)",
    ]


# --- settings: rules that fail before anything is registered -------------------------------


def test_missing_required_secret_names_key_place_and_fix(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = with_overrides(base_config, github=GITHUB)
    recording = Recording(stack="test", preview=False)
    with pytest.raises(SettingsError) as info:
        evaluate(config, into=recording)
    message = str(info.value)
    assert f"{NS}:githubSecrets.GH_ADMIN_TOKEN is not set" in message
    assert ".github/workflows/deploy.yml (job deploy)" in message
    assert "environment 'prod'" in message
    assert f"pulumi config set --secret --path '{NS}:githubSecrets.GH_ADMIN_TOKEN' <value>" in (
        message
    )
    assert recording.resources == [], "resources were registered before validation failed"


def test_required_secrets_follow_the_workflow_files(
    evaluate: Evaluate,
    base_config: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_workflow(tmp_path, "deploy", {"deploy": job("prod", "GH_ADMIN_TOKEN", "HF_TOKEN")})
    monkeypatch.setattr(workflows, "WORKFLOWS_DIR", tmp_path)
    with pytest.raises(SettingsError, match=r"githubSecrets\.HF_TOKEN is not set") as info:
        evaluate(github_config(base_config))
    assert "GH_ADMIN_TOKEN" not in str(info.value), "only the missing one is named"
    config = github_config(base_config)
    config[f"{NS}:githubSecrets"] = {**PROD_SECRETS, "HF_TOKEN": {"secure": "v1:x"}}
    assert len(evaluate(config).of_type(SECRET)) == 3


def test_lowercase_secret_name_satisfies_the_workflow(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = with_overrides(
        base_config,
        github=GITHUB,
        githubSecrets={k.lower(): {"secure": "v1:x"} for k in PROD_SECRETS},
    )
    assert len(evaluate(config).of_type(SECRET)) == 2, "GitHub secret names ignore case"


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        (
            {"githubSecrets": PROD_SECRETS},
            [f"{NS}:githubSecrets sets GH_ADMIN_TOKEN", f"{NS}:github is not set"],
        ),
        (
            {"github": GITHUB, "githubSecrets": {**PROD_SECRETS, "GITHUB_X": {"secure": "v1:x"}}},
            [f"{NS}:githubSecrets.GITHUB_X", "must not start with GITHUB_", "config rm --path"],
        ),
        (
            {"github": GITHUB, "githubSecrets": {**PROD_SECRETS, "1BAD": {"secure": "v1:x"}}},
            [f"{NS}:githubSecrets.1BAD", "not start with a digit"],
        ),
        (
            {"github": {**GITHUB, "repository": "acme/comfyui"}, "githubSecrets": PROD_SECRETS},
            [f"{NS}:github.repository", "bare repository name", "owner: acme"],
        ),
        (
            {"github": {**GITHUB, "owner": "not an owner"}, "githubSecrets": PROD_SECRETS},
            [f"{NS}:github.owner", "GitHub user or organization"],
        ),
        (
            {"github": {**GITHUB, "reviewers": {"octocat": 0}}, "githubSecrets": PROD_SECRETS},
            [f"{NS}:github.reviewers", "'octocat' has id 0", "gh api users/octocat --jq .id"],
        ),
        (
            {
                "github": {**GITHUB, "reviewers": {f"u{i}": i + 1 for i in range(5)}}
                | {"reviewerTeams": {"t1": 1, "t2": 2}},
                "githubSecrets": PROD_SECRETS,
            },
            [f"{NS}:github", "7 reviewers", "at most 6"],
        ),
        (
            {
                "github": {**GITHUB, "variables": {"REGISTRY_ADDRESS": "x"}},
                "githubSecrets": PROD_SECRETS,
            },
            [f"{NS}:github.variables", "'REGISTRY_ADDRESS'", "registry/cache/cudaLines settings"],
        ),
        (
            {"github": {**GITHUB, "variables": {"GITHUB_SHA": "x"}}, "githubSecrets": PROD_SECRETS},
            [f"{NS}:github.variables", "'GITHUB_SHA'", "GITHUB_"],
        ),
        (
            {"github": {**GITHUB, "requiredSecrets": ["X"]}, "githubSecrets": PROD_SECRETS},
            [f"{NS}:github.requiredSecrets", "unknown key"],
        ),
        (
            {"github": {"owner": "acme", "repository": "comfyui"}, "githubSecrets": PROD_SECRETS},
            [f"{NS}:github.environment", "required"],
        ),
    ],
)
def test_bad_github_config_names_key_and_fix_and_registers_nothing(
    evaluate: Evaluate,
    base_config: dict[str, Any],
    override: dict[str, Any],
    fragments: list[str],
) -> None:
    recording = Recording(stack="test", preview=False)
    with pytest.raises(SettingsError) as info:
        evaluate(with_overrides(base_config, **override), into=recording)
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} missing from: {info.value}"
    assert recording.resources == []


def test_name_rules_match_github() -> None:
    assert GithubSettings.name_problem("GH_ADMIN_TOKEN") is None
    assert GithubSettings.name_problem("_x1") is None
    for bad in ("A-B", "9A", "A B", ""):
        assert GithubSettings.name_problem(bad) == (
            "must contain only letters, digits and _, and not start with a digit"
        ), bad
    for bad in ("GITHUB_TOKEN", "github_x"):
        assert GithubSettings.name_problem(bad) == (
            "must not start with GITHUB_ (GitHub reserves that prefix)"
        ), bad


@pytest.mark.parametrize(
    ("stored", "text"),
    [("ghp_x", "ghp_x"), (1234, "1234"), (True, "true"), ({"a": 1}, '{"a": 1}')],
)
def test_a_secret_stored_as_another_type_reaches_github_as_its_text(stored: Any, text: str) -> None:
    """`pulumi config set --secret --path 'githubSecrets.PIN' 1234` stores a number; GitHub
    stores text, so the value is sent as the text a user typed, not Python's repr."""
    assert gh._as_text(stored) == text


# --- resources under mocks --------------------------------------------------------------------


def test_dev_stack_creates_no_github_resources(evaluate: Evaluate, stack_config: Any) -> None:
    recording = evaluate(stack_config("dev"), stack="dev")
    assert github_resources(recording) == [], "dev must stay offline"
    assert not any(
        r.type.startswith(("github:", "pulumi:providers:github")) for r in recording.resources
    )


def test_without_github_nothing_github_is_registered(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    assert github_resources(evaluate(base_config)) == []


def test_prod_stack_github_resources_names_and_inputs(
    evaluate: Evaluate, stack_config: Any
) -> None:
    config = stack_config("prod")
    recording = evaluate(config, stack="prod")
    names = sorted((r.type, r.name) for r in github_resources(recording))
    assert names == sorted(
        [
            (COMPONENT, "github"),
            (PROVIDER, "github-provider"),
            (ENVIRONMENT, "github-environment"),
            (SECRET, "github-secret-GH_ADMIN_TOKEN"),
            (SECRET, "github-secret-GH_RELEASE_TOKEN"),
            (VARIABLE, "github-variable-REGISTRY_ADDRESS"),
            (VARIABLE, "github-variable-REGISTRY_NAMESPACE"),
            (VARIABLE, "github-variable-CACHE_BACKENDS"),
            (VARIABLE, "github-variable-CUDA_LINES"),
            (VARIABLE, "github-variable-ROCM_LINES"),
            (VARIABLE, "github-variable-XPU_LINES"),
            (VARIABLE, "github-variable-PLATFORMS"),
        ]
    )
    wanted = config[f"{NS}:github"]
    env = unwrap(one(recording, ENVIRONMENT).inputs)
    assert env["repository"] == wanted["repository"]
    assert env["environment"] == wanted["environment"]
    assert env["deploymentBranchPolicy"] == {
        "protectedBranches": True,
        "customBranchPolicies": False,
    }, "prod deploys from protected branches only, and the provider needs both keys"
    assert "reviewers" not in env, "no reviewers configured, none sent"
    assert unwrap(one(recording, PROVIDER).inputs)["owner"] == wanted["owner"]
    registry = config[f"{NS}:registry"]
    variables = {
        unwrap(r.inputs)["variableName"]: unwrap(r.inputs)["value"]
        for r in recording.of_type(VARIABLE)
    }
    assert variables == {
        "REGISTRY_ADDRESS": registry["address"],
        "REGISTRY_NAMESPACE": registry["namespace"],
        "CACHE_BACKENDS": ",".join(config[f"{NS}:cache"]["backends"]),
        "CUDA_LINES": ",".join(config[f"{NS}:cudaLines"]),
        "ROCM_LINES": f"rocm{config[f'{NS}:versions']['rocm']}",
        "XPU_LINES": "xpu",
        # What the deploy job's builder must serve: prod publishes arm64 beside amd64.
        "PLATFORMS": "linux/amd64,linux/arm64",
    }
    secrets = {unwrap(r.inputs)["secretName"]: unwrap(r.inputs) for r in recording.of_type(SECRET)}
    assert set(secrets) == {"GH_ADMIN_TOKEN", "GH_RELEASE_TOKEN"}
    assert {s["repository"] for s in secrets.values()} == {wanted["repository"]}


def test_secrets_and_variables_depend_on_the_environment_and_share_the_component(
    evaluate: Evaluate, stack_config: Any
) -> None:
    recording = evaluate(stack_config("prod"), stack="prod")
    component = one(recording, COMPONENT)
    provider = one(recording, PROVIDER)
    env = one(recording, ENVIRONMENT)
    children = [env, *recording.of_type(SECRET), *recording.of_type(VARIABLE)]
    assert provider.parent == component.urn
    for resource in children:
        assert resource.parent == component.urn, f"{resource.name} is not under {component.name}"
        assert resource.provider.startswith(f"{provider.urn}::"), (
            f"{resource.name} must use the stack's explicit GitHub provider (owner from config)"
        )
        if resource is not env:
            assert env.urn in resource.dependencies, (
                f"{resource.name} must depend on the environment (environment=env.environment)"
            )
            assert unwrap(resource.inputs)["environment"] == unwrap(env.inputs)["environment"]


def test_every_secret_value_is_a_secret_and_nowhere_in_plain_text(
    evaluate: Evaluate,
    base_config: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exports: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", exports.__setitem__)
    write_workflow(tmp_path, "deploy", {"deploy": job("prod", "GH_ADMIN_TOKEN")})
    monkeypatch.setattr(workflows, "WORKFLOWS_DIR", tmp_path)
    config = github_config(base_config)
    config[f"{NS}:githubSecrets"] = {
        **PROD_SECRETS,
        "HF_TOKEN": {"secure": "v1:a"},
        "PIN": {"secure": "v1:b"},
    }
    recording = evaluate(config)
    secrets = {unwrap(r.inputs)["secretName"]: r for r in recording.of_type(SECRET)}
    assert set(secrets) == {"GH_ADMIN_TOKEN", "GH_RELEASE_TOKEN", "HF_TOKEN", "PIN"}
    for name, resource in secrets.items():
        assert is_secret(resource.inputs["value"]), f"{name}: value is not a secret input"
        assert unwrap(resource.inputs["value"]) == SECRET_PLACEHOLDER
        assert not is_secret(resource.inputs["secretName"]), "names stay readable"
    for resource in recording.resources:
        assert SECRET_PLACEHOLDER not in plain_text(resource.inputs), (
            f"{resource.name}: a secret value is readable outside a secret wrapper"
        )
    assert recording.outputs, "component outputs were not recorded"
    for outputs in recording.outputs.values():
        assert SECRET_PLACEHOLDER not in plain_text(outputs), "a secret value reached an output"
    # Stack exports never reach a mock monitor; they are captured where __main__ makes them.
    exported = json.dumps(exports["github"])  # plain data only: names, never Outputs
    assert SECRET_PLACEHOLDER not in exported
    assert json.loads(exported) == {
        "repository": "acme/comfyui",
        "environment": "prod",
        "secrets": ["GH_ADMIN_TOKEN", "GH_RELEASE_TOKEN", "HF_TOKEN", "PIN"],
        "variables": [
            "CACHE_BACKENDS",
            "CUDA_LINES",
            "PLATFORMS",
            "REGISTRY_ADDRESS",
            "REGISTRY_NAMESPACE",
            "ROCM_LINES",
            "XPU_LINES",
        ],
    }
    # The component's own output: the environment's name, for resources that follow it.
    [component] = recording.of_type(COMPONENT)
    assert unwrap(recording.outputs[component.urn]) == {"environment": "prod"}


def test_reviewers_alone_or_teams_alone_still_require_a_review() -> None:
    only_users = GithubSettings(**GITHUB, reviewers={"b": 2, "a": 1})
    assert gh.reviewers_of(only_users) == [{"users": [1, 2], "teams": []}]
    only_teams = GithubSettings(**GITHUB, reviewerTeams={"ops": 7})
    assert gh.reviewers_of(only_teams) == [{"users": [], "teams": [7]}]
    assert gh.reviewers_of(GithubSettings(**GITHUB)) is None


def test_reviewers_are_sent_as_sorted_numeric_ids(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = github_config(
        base_config,
        reviewers={"octocat": 583231, "hubot": 480938},
        reviewerTeams={"platform": 1234567},
    )
    env = unwrap(one(evaluate(config), ENVIRONMENT).inputs)
    (block,) = env["reviewers"]
    assert block == {"users": [480938, 583231], "teams": [1234567]}
    assert env["deploymentBranchPolicy"]["protectedBranches"] is True


def test_extra_variables_and_empty_cache_backends(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = github_config(base_config, variables={"HF_HUB_OFFLINE": "1"})
    config[f"{NS}:cache"] = {"backends": []}
    variables = {
        unwrap(r.inputs)["variableName"]: unwrap(r.inputs)["value"]
        for r in evaluate(config).of_type(VARIABLE)
    }
    assert variables["HF_HUB_OFFLINE"] == "1"
    assert variables["CACHE_BACKENDS"] == "none", "GitHub refuses empty variable values"


def test_no_user_variable_may_take_the_name_of_a_generated_one(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    """Every variable the stack writes from its settings is refused as a user variable, in
    any case: otherwise the user's value silently replaces the generated one."""
    generated = {
        unwrap(r.inputs)["variableName"]
        for r in evaluate(github_config(base_config)).of_type(VARIABLE)
    }
    assert {"CUDA_LINES", "ROCM_LINES", "XPU_LINES"} <= generated
    assert generated == set(GithubSettings.GENERATED_VARIABLES)
    for name in sorted(generated):
        for spelled in (name, name.lower()):
            config = github_config(base_config, variables={spelled: "x"})
            with pytest.raises(SettingsError, match=f"variable '{spelled}' is written from"):
                evaluate(config)


def test_provider_token_from_environment_is_secret(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    recording = evaluate(github_config(base_config), env={gh.TOKEN_ENV: "ghp_from_env"})
    provider = one(recording, PROVIDER)
    assert is_secret(provider.inputs["token"])
    assert unwrap(provider.inputs["token"]) == "ghp_from_env"
    for resource in recording.resources:
        assert "ghp_from_env" not in plain_text(resource.inputs), resource.name


def test_provider_token_from_github_token_config_wins(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = github_config(base_config)
    config["github:token"] = {"secure": "v1:token"}
    recording = evaluate(config, env={gh.TOKEN_ENV: "ghp_from_env"})
    token = one(recording, PROVIDER).inputs["token"]
    assert is_secret(token)
    assert unwrap(token) == SECRET_PLACEHOLDER, "github:token config takes precedence"


def test_without_token_the_provider_is_anonymous(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    inputs = one(evaluate(github_config(base_config)), PROVIDER).inputs
    assert not inputs.get("token"), "no token configured, none invented"


def test_preview_registers_the_same_github_resources(evaluate: Evaluate, stack_config: Any) -> None:
    up = evaluate(stack_config("prod"), stack="prod")
    preview = evaluate(stack_config("prod"), stack="prod", preview=True)
    assert sorted(r.name for r in github_resources(preview)) == sorted(
        r.name for r in github_resources(up)
    )
    assert preview.of_type(SECRET)
    for secret in preview.of_type(SECRET):
        assert is_secret(secret.inputs["value"])


def test_unused_environment_warns(
    evaluate: Evaluate, base_config: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    config = with_overrides(base_config, github={**GITHUB, "environment": "staging"})
    with caplog.at_level(logging.WARNING):
        recording = evaluate(config)
    assert len(recording.of_type(ENVIRONMENT)) == 1
    assert (
        "no job in .github/workflows runs in environment 'staging', so its secrets and "
        "variables are unused; check comfyui-images:github.environment"
    ) in caplog.text


def test_missing_secrets_are_listed_one_per_line_with_every_job_that_reads_them(
    evaluate: Evaluate,
    base_config: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_workflow(tmp_path, "deploy", {"a": job("prod", "ONE", "TWO"), "b": job("prod", "ONE")})
    monkeypatch.setattr(workflows, "WORKFLOWS_DIR", tmp_path)
    with pytest.raises(SettingsError) as info:
        evaluate(with_overrides(base_config, github=GITHUB))
    lines = str(info.value).split("\n  ")
    assert len(lines) == 2, lines
    assert (
        f"{NS}:githubSecrets.ONE is not set, but .github/workflows/deploy.yml (job a), "
        + (
            ".github/workflows/deploy.yml (job b) runs in environment 'prod' and reads "
            "secrets.ONE; set it with "
            f"`pulumi config set --secret --path '{NS}:githubSecrets.ONE' <value>`"
        )
        in lines
    )
    two = next(line for line in lines if line.startswith(f"{NS}:githubSecrets.TWO"))
    assert "(job b)" not in two


def test_secrets_without_a_github_object_go_nowhere_and_the_message_says_how_to_fix(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = with_overrides(
        base_config, githubSecrets={"A": {"secure": "v1:x"}, "B": {"secure": "v1:y"}}
    )
    with pytest.raises(SettingsError) as info:
        evaluate(config)
    assert str(info.value) == (
        f"{NS}:githubSecrets sets A, B but {NS}:github is not set, so they would go nowhere; "
        f"add {NS}:github or run `pulumi config rm --path {NS}:githubSecrets`"
    )


def test_a_stack_without_rocm_or_xpu_builds_says_none_for_their_lines(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    """GitHub refuses an empty variable; a CPU-only stack has no ROCm or XPU line."""
    variables = {
        unwrap(r.inputs)["variableName"]: unwrap(r.inputs)["value"]
        for r in evaluate(github_config(base_config)).of_type(VARIABLE)
    }
    assert (variables["ROCM_LINES"], variables["XPU_LINES"]) == ("none", "none")
    only_rocm = with_overrides(github_config(base_config), targets=["core-rocm"])
    variables = {
        unwrap(r.inputs)["variableName"]: unwrap(r.inputs)["value"]
        for r in evaluate(only_rocm).of_type(VARIABLE)
    }
    assert (variables["ROCM_LINES"], variables["XPU_LINES"]) == ("rocm7.14", "none")
