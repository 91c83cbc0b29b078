"""scripts/pulumi finds the command wherever it stands among the flags, as the CLI does.

When it misses it, a `preview` or `up` runs without the hosted program and without the
build-context modes normalised (issue 17: `scripts/pulumi --stack dev preview`).
"""

from __future__ import annotations

import pytest

from tools.pulumi_host import RUNS_PROGRAM, command_of


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["preview", "--stack", "dev"], "preview"),
        (["--stack", "dev", "preview"], "preview"),
        (["-s", "dev", "up", "--yes"], "up"),
        (["--stack=dev", "up"], "up"),
        (["-sdev", "preview"], "preview"),
        (["-C", "/work/x", "--color", "never", "-v", "3", "preview"], "preview"),
        (["--non-interactive", "--emoji", "-Q", "up"], "up"),
        (["--cwd", "preview", "stack", "ls"], "stack"),  # a directory named preview
        (["--stack", "up", "config"], "config"),  # a stack named up
        (["--", "preview"], None),
        (["--stack", "dev"], None),
        ([], None),
    ],
)
def test_command_is_found_wherever_it_stands(args: list[str], command: str | None) -> None:
    assert command_of(args) == command


def test_a_flag_before_preview_still_hosts_the_program() -> None:
    assert command_of(["--stack", "dev", "preview"]) in RUNS_PROGRAM
