"""What the workflow files ask of a deployment environment: the secrets its jobs read.

Read from ``.github/workflows`` itself, so the stack's ``githubSecrets`` can be checked
against what the jobs really use before any resource is registered. Its own module so
settings validation needs neither the GitHub component nor ``pulumi_github``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.project import ROOT

WORKFLOWS_DIR = ROOT / ".github" / "workflows"
# Secrets GitHub provides to every job; never the stack's business.
BUILTIN_SECRETS = frozenset({"GITHUB_TOKEN"})

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
