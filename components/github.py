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
(``components/workflows.py``); settings validation fails before any resource is registered when the
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
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_github as github

from components import platforms
from components.accelerators import ROCM, XPU
from components.catalog import TARGETS
from components.matrix import platforms_of
from components.workflows import workflow_secrets

if TYPE_CHECKING:
    from components.config import StackSecrets
    from components.settings import GithubSettings, StackSettings

# Where the SDK reads the provider token from when `github:token` is not set.
TOKEN_ENV = "GITHUB_TOKEN"  # noqa: S105 (a variable name)
# Both keys are required by the provider: deploy only from protected branches, no patterns.
DEPLOYMENT_BRANCH_POLICY: github.RepositoryEnvironmentDeploymentBranchPolicyArgsDict = {
    "protected_branches": True,
    "custom_branch_policies": False,
}


def environment_variables(settings: StackSettings) -> dict[str, str]:
    """The environment's plain variables: registry, cache, accelerator lines and platforms,
    then extras.

    GitHub refuses empty variable values, so "no cache backends" (or no ROCm line) is
    written as ``none``.
    """
    assert settings.github is not None  # callers check; this narrows the type
    generated = {
        "REGISTRY_ADDRESS": settings.registry.address,
        "REGISTRY_NAMESPACE": settings.registry.namespace,
        "CACHE_BACKENDS": ",".join(settings.backend_names) or "none",
        # The stack's CUDA lines (cu130,cu126), e.g. for a deploy job's matrix of tags.
        "CUDA_LINES": ",".join(settings.lines),
        # Every platform the stack builds (linux/amd64,linux/arm64): the platforms the deploy
        # job's builder must serve, natively or emulated (docs/scaling.md).
        "PLATFORMS": ",".join(
            platforms.ordered(p for listed in platforms_of(settings).values() for p in listed)
        ),
    }
    # The ROCm and XPU lines the stack builds (rocm7.14; xpu), or none.
    for kind in (ROCM, XPU):
        built = any(TARGETS[t].line_kind == kind for t in settings.build_order)
        generated[f"{kind.upper()}_LINES"] = ",".join(settings.lines_of(kind)) if built else "none"
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

        self.summary = {
            "repository": f"{gh.owner}/{gh.repository}",
            "environment": gh.environment,
            "secrets": list(settings.githubSecretNames),
            "variables": sorted(variables),
        }
        self.register_outputs({"environment": env.environment})
