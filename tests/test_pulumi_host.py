"""scripts/pulumi finds the command wherever it stands among the flags, as the CLI does.

When it misses it, a `preview` or `up` runs without the hosted program and without the
build-context modes normalised (issue 17: `scripts/pulumi --stack dev preview`).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from components.project import ROOT
from tools import pulumi_host
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


class FakeChild:
    def __init__(self, argv: list[str], **_: object) -> None:
        self.argv = argv
        RUNS.append(argv)

    def wait(self) -> int:
        return 0

    def send_signal(self, _: int) -> None:
        pass


class FakeServer:
    stopped = False

    def stop(self, _: int) -> None:
        FakeServer.stopped = True


RUNS: list[list[str]] = []


@pytest.fixture
def dispatch(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[object]]:
    """main() with the CLI, the language server and the mode normaliser recorded."""
    calls: dict[str, list[object]] = {"normalise": [], "hosted": []}
    RUNS.clear()
    FakeServer.stopped = False
    monkeypatch.setattr(pulumi_host.subprocess, "Popen", FakeChild)
    monkeypatch.setattr(pulumi_host, "normalise_modes", lambda: calls["normalise"].append(1))

    def start(hosted: object) -> tuple[FakeServer, int]:
        calls["hosted"].append(hosted)
        return FakeServer(), 4242

    monkeypatch.setattr(pulumi_host, "start_language_server", start)
    return calls


def test_with_the_language_plugin_plain_pulumi_runs_after_modes_are_normalised(
    dispatch: dict[str, list[object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pulumi_host, "language_plugin", lambda: "/usr/bin/pulumi-language-python")
    assert pulumi_host.main(["--stack", "dev", "preview"]) == 0
    assert RUNS == [["pulumi", "--stack", "dev", "preview"]]
    assert dispatch["normalise"] == [1]
    assert dispatch["hosted"] == []


def test_without_the_plugin_the_program_is_hosted_here(
    dispatch: dict[str, list[object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pulumi_host, "language_plugin", lambda: None)
    assert pulumi_host.main(["--stack", "dev", "up", "--yes"]) == 0
    assert RUNS == [["pulumi", "--stack", "dev", "up", "--yes", "--client=127.0.0.1:4242"]]
    assert dispatch["normalise"] == [1]
    assert dispatch["hosted"] == [pulumi_host.program]
    assert FakeServer.stopped, "the language server is stopped when the CLI exits"


def test_a_command_that_runs_no_program_passes_straight_through(
    dispatch: dict[str, list[object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pulumi_host, "language_plugin", lambda: None)
    assert pulumi_host.main(["stack", "ls"]) == 0
    assert RUNS == [["pulumi", "stack", "ls"]]
    assert dispatch == {"normalise": [], "hosted": []}


def test_a_given_program_is_hosted_even_where_the_plugin_is_installed(
    dispatch: dict[str, list[object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def probe() -> None:
        pass

    monkeypatch.setattr(pulumi_host, "language_plugin", lambda: "/usr/bin/pulumi-language-python")
    pulumi_host.main(["preview"], hosted=probe)
    assert dispatch["hosted"] == [probe]


def test_the_plugin_is_found_on_path_or_under_pulumi_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "home"))
    assert pulumi_host.language_plugin() is None
    plugin = tmp_path / "home" / "plugins" / "language-python-v3.274.0"
    plugin.mkdir(parents=True)
    assert pulumi_host.language_plugin() == str(plugin)
    (tmp_path / "bin").mkdir()
    binary = tmp_path / "bin" / "pulumi-language-python"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert pulumi_host.language_plugin() == str(binary)


def test_the_fallback_server_is_the_sdk_release_it_was_read_from() -> None:
    """pulumi.automation._server is private: a new SDK may move it. The fallback was read
    from, and is tested with, the SDK that requirements.txt pins."""
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["pulumi"].split()[0] == pulumi_host.HOSTED_WITH_SDK
    assert importlib.metadata.version("pulumi") == pulumi_host.HOSTED_WITH_SDK
    from pulumi.automation._server import LanguageServer  # noqa: PLC0415

    assert callable(LanguageServer)
