"""The GitHub side of a stack: its deployment environment, environment secrets and variables.

Only stacks that set ``comfyui-images:github`` get one (dev stays offline). What it manages:

- the repository's deployment environment (e.g. ``prod``), protected: deployments only from
  protected branches (the default branch), plus required reviewers when configured;
- one environment secret per ``comfyui-images:githubSecrets.NAME``; the value stays a
  Pulumi secret from the stack config to the provider, so state, outputs and logs only ever
  hold ciphertext or ``[secret]``;
- environment variables for the registry address, namespace and cache backends (so the
  workflows read them from one place, the stack), plus ``github.variables``.

Which secrets the workflows need is read from the workflow files themselves
(``workflow_secrets``); settings validation fails before any resource is registered when the
stack does not define one of them.

Deliberately not managed, and why:

- Drift in secret values: GitHub never returns a secret's value, so a value changed in the UI
  cannot be compared. ``pulumi refresh`` sees at most a newer ``remote_updated_at``; a plain
  ``pulumi up`` (what CI runs) rewrites a secret only when its config value changes. Rotate
  through the stack (``pulumi config set --secret --path ...`` then ``pulumi up``).
- The repository itself and its settings, branch protection or rulesets of the default
  branch, Actions permissions, repository-level secrets and variables: they predate and
  outlive this stack, are shared with other tooling, and the backend and secrets-provider
  credentials that let the workflows read this stack's state cannot be managed by that
  same state (a wrong value would lock the stack out of fixing it).
- Reviewer lookups: GitHub's API takes numeric ids, which the stack config holds directly.
  ids survive renames and need no lookup call (nor the token scopes it needs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_github as github
import yaml

if TYPE_CHECKING:
    from components.config import StackSecrets
    from components.settings import GithubSettings, StackSettings

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
# Where the SDK reads the provider token from when `github:token` is not set.
TOKEN_ENV = "GITHUB_TOKEN"  # noqa: S105 (a variable name)
# Secrets GitHub provides to every job; never the stack's business.
BUILTIN_SECRETS = frozenset({"GITHUB_TOKEN"})
# Both keys are required by the provider: deploy only from protected branches, no patterns.
DEPLOYMENT_BRANCH_POLICY: github.RepositoryEnvironmentDeploymentBranchPolicyArgsDict = {
    "protected_branches": True,
    "custom_branch_policies": False,
}

_SECRET_REF = re.compile(
    r"\bsecrets\s*\.\s*(?P<dot>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\bsecrets\s*\[\s*['\"](?P<index>[^'\"]+)['\"]\s*\]"
)


@dataclass(frozen=True)
class WorkflowSecrets:
    """What the workflow files ask of one environment.

    ``needed`` maps each secret name to the ``file (job id)`` places that read it; ``jobs``
    lists the jobs that run in the environment at all.
    """

    environment: str
    needed: dict[str, list[str]] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for k, v in node.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def secret_references(node: Any) -> set[str]:
    """Names of ``secrets.NAME`` / ``secrets['NAME']`` read anywhere in ``node`` (uppercased:
    GitHub secret names are case-insensitive)."""
    names = set()
    for text in _strings(node):
        for match in _SECRET_REF.finditer(text):
            names.add((match.group("dot") or match.group("index")).upper())
    return names


def job_environment(job: Mapping[str, Any]) -> str | None:
    """The environment a job runs in (``environment: prod`` or ``{name: prod, url: ...}``)."""
    env = job.get("environment")
    if isinstance(env, Mapping):
        env = env.get("name")
    return env if isinstance(env, str) and env else None


def workflow_secrets(environment: str, workflows_dir: Path | None = None) -> WorkflowSecrets:
    """The secrets that jobs running in ``environment`` read, and that only such jobs read.

    A secret that a job *without* an environment also reads must be a repository secret
    (such jobs cannot see environment secrets), so the stack's environment does not need to
    supply it. ``GITHUB_TOKEN`` is GitHub's own. Environment names compare case-insensitively,
    as on GitHub; an environment given as an expression cannot be resolved and is skipped.
    """
    directory = workflows_dir or WORKFLOWS_DIR
    needed: dict[str, list[str]] = {}
    repository_level: set[str] = set()
    jobs: list[str] = []
    files = sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])
    for path in files:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        workflow_jobs = document.get("jobs") if isinstance(document, Mapping) else None
        for job_id, job in (workflow_jobs or {}).items():
            if not isinstance(job, Mapping):
                continue
            env = job_environment(job)
            refs = secret_references(job)
            if env is None:
                repository_level |= refs
            elif env.casefold() == environment.casefold():
                place = f".github/workflows/{path.name} (job {job_id})"
                jobs.append(place)
                for name in refs:
                    needed.setdefault(name, []).append(place)
    for name in BUILTIN_SECRETS | repository_level:
        needed.pop(name, None)
    return WorkflowSecrets(environment, dict(sorted(needed.items())), jobs)


def environment_variables(settings: StackSettings) -> dict[str, str]:
    """The environment's plain variables: registry and cache from the stack, then extras.

    GitHub refuses empty variable values, so "no cache backends" is written as ``none``.
    """
    assert settings.github is not None  # callers check; this narrows the type
    generated = {
        "REGISTRY_ADDRESS": settings.registry.address,
        "REGISTRY_NAMESPACE": settings.registry.namespace,
        "CACHE_BACKENDS": ",".join(settings.backend_names) or "none",
    }
    return generated | dict(settings.github.variables)


def reviewers_of(gh: GithubSettings) -> list[github.RepositoryEnvironmentReviewerArgsDict] | None:
    """GitHub's reviewer block (numeric ids, sorted for a stable diff), or None."""
    if not gh.reviewers and not gh.reviewerTeams:
        return None
    return [{"users": sorted(gh.reviewers.values()), "teams": sorted(gh.reviewerTeams.values())}]


def _as_text(value: Any) -> str:
    """A config value as the string GitHub stores (`--path` may have stored a number)."""
    return value if isinstance(value, str) else json.dumps(value)


def _entry(values: pulumi.Output[dict[str, Any]], name: str) -> pulumi.Output[str]:
    """One entry of the secret githubSecrets object, marked secret again for good measure."""

    def pick(all_values: dict[str, Any]) -> pulumi.Output[str]:
        return pulumi.Output.secret(_as_text(all_values[name]))

    return values.apply(pick)


class GithubEnvironment(pulumi.ComponentResource):
    """One repository's deployment environment with its secrets and variables."""

    environment: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        secrets: StackSecrets,
        *,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("comfyui:github:GithubEnvironment", name, None, opts)
        gh = settings.github
        if gh is None:
            raise ValueError("GithubEnvironment needs comfyui-images:github")

        # Its own provider: owner from the stack config, so the stack can only ever manage
        # the repository it names (a wrong or missing owner gives 404s on environments).
        provider = github.Provider(
            f"{name}-provider",
            owner=gh.owner,
            # github:token (secret config) when set; otherwise the provider reads
            # $GITHUB_TOKEN itself, and with neither it is anonymous: enough for previews
            # from state and the offline plan, while `pulumi up` fails with GitHub's 401.
            token=secrets.github_token,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        # The deployment environment the deploy workflow's job runs in.
        env = github.RepositoryEnvironment(
            f"{name}-environment",
            repository=gh.repository,
            environment=gh.environment,
            reviewers=reviewers_of(gh),
            deployment_branch_policy=DEPLOYMENT_BRANCH_POLICY,
            opts=child,
        )

        # Plain variables; `environment=env.environment` makes each depend on the environment.
        variables = environment_variables(settings)
        for var_name, value in variables.items():
            github.ActionsEnvironmentVariable(
                f"{name}-variable-{var_name}",
                repository=gh.repository,
                environment=env.environment,
                variable_name=var_name,
                value=value,
                opts=child,
            )

        # One environment secret per githubSecrets entry; values never leave Output secrets.
        all_values = secrets.github_secrets
        for secret_name in settings.githubSecretNames:
            if all_values is None:  # names come from the same config object as the values
                raise ValueError(f"githubSecrets.{secret_name} has no value")
            github.ActionsEnvironmentSecret(
                f"{name}-secret-{secret_name}",
                repository=gh.repository,
                environment=env.environment,
                secret_name=secret_name,
                value=_entry(all_values, secret_name),
                opts=child,
            )

        if not workflow_secrets(gh.environment).jobs:
            pulumi.log.warn(
                f"no job in .github/workflows runs in environment {gh.environment!r}, so its "
                "secrets and variables are unused; check comfyui-images:github.environment",
                resource=self,
            )

        self.environment = env.environment
        self.summary = {
            "repository": f"{gh.owner}/{gh.repository}",
            "environment": gh.environment,
            "secrets": list(settings.githubSecretNames),
            "variables": sorted(variables),
        }
        self.register_outputs({"environment": env.environment})
