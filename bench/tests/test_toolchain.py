"""The engine's toolchain against the product: the Pulumi CLI that engine/toolchain builds,
and on which CI previews every stack file, is the one the GitHub workflows run."""

from __future__ import annotations

import re

from components.project import ROOT
from tests.test_workflows import PULUMI_ACTION, Workflow, jobs_running_pulumi, steps, uses


def test_the_workflows_run_the_cli_the_engine_builds(flows: dict[str, Workflow]) -> None:
    toolchain = (ROOT / "engine" / "toolchain").read_text()
    pinned = re.search(r"^PULUMI_CLI=v(\S+)$", toolchain, re.M)
    assert pinned is not None, "engine/toolchain no longer pins PULUMI_CLI=v<version>"
    run = {
        (wf, job_id): str(s["with"]["pulumi-version"])
        for wf, job_id, job in jobs_running_pulumi(flows)
        for s in steps(job)
        if uses(s, PULUMI_ACTION)
    }
    assert run, "no workflow step runs pulumi/actions: the comparison would be empty"
    for where, version in run.items():
        assert version == pinned.group(1), (
            f"{where}: runs Pulumi CLI {version}; engine/toolchain builds {pinned.group(1)}, "
            "the CLI every stack file is previewed on"
        )
