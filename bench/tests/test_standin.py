"""The stand-in ComfyUI (bench.standin_inputs.STANDIN_MAIN) and the healthcheck, on this host.

The engine tests trust the stand-in to behave like ComfyUI where the image relies on it;
this checks those points without an engine, and the healthcheck script against it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.standin_inputs import make_comfyui_standin
from components.catalog import DOCKERFILES_DIR
from components.project import ROOT

HEALTHCHECK = ROOT / DOCKERFILES_DIR / "core" / "app" / "healthcheck.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COMFYUI_LISTEN": "0.0.0.0", "COMFYUI_PORT": str(port)}  # noqa: S104
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def _default_sigint() -> None:
    """In the child, before exec: SIGINT back to its default disposition. An ignored signal
    stays ignored across exec, and a runner started under ``nohup`` or with ``&`` ignores
    SIGINT; Python then installs no KeyboardInterrupt handler and the stand-in would never
    see the Ctrl-C that ComfyUI (and ``docker stop --signal INT``) sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Standin:
    """The stand-in ComfyUI as a child process; a context manager that always stops it."""

    def __init__(self, source: Path, port: int, *args: str) -> None:
        fake_torch = source.parent / "site"
        (fake_torch / "torch").mkdir(parents=True, exist_ok=True)
        (fake_torch / "torch" / "__init__.py").write_text('__version__ = "2.8.0+standin"\n')
        self.port = port
        self.source = source
        self.process = subprocess.Popen(
            [sys.executable, "main.py", "--listen", "127.0.0.1", "--port", str(port), *args],
            cwd=source,
            env={**os.environ, "PYTHONPATH": str(fake_torch)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_default_sigint,  # noqa: PLW1509 (no threads start children here)
        )

    def __enter__(self) -> Standin:
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if healthcheck(self.port).returncode == 0:
                return
            assert self.process.poll() is None, self.output()
            time.sleep(0.2)
        pytest.fail("the stand-in never answered /system_stats")

    def output(self) -> str:
        """Everything it printed; stops it first if it is still running."""
        if self.process.poll() is None:
            self.process.kill()
        out, _ = self.process.communicate(timeout=10)
        return out


@pytest.fixture
def source(tmp_path: Path) -> Path:
    source = tmp_path / "comfyui"
    make_comfyui_standin(source, "v0.8.1")
    (source / "custom_nodes" / "broken_node.py").write_text("raise ImportError('missing dep')\n")
    return source


@pytest.fixture
def standin(source: Path, tmp_path: Path) -> Iterator[Standin]:
    paths = tmp_path / "extra_model_paths.yaml"
    paths.write_text("shared:\n  checkpoints: /models/checkpoints\n")
    with Standin(
        source, free_port(), "--cpu", "--enable-manager", "--extra-model-paths-config", str(paths)
    ) as running:
        yield running


def test_standin_serves_system_stats_and_healthcheck_agrees(standin: Standin) -> None:
    standin.wait_ready()
    url = f"http://127.0.0.1:{standin.port}/system_stats"
    with urllib.request.urlopen(url, timeout=5) as response:
        stats = json.load(response)
    assert stats["system"]["comfyui_version"] == "0.8.1"
    assert "--enable-manager" in stats["system"]["argv"]
    assert stats["system"]["pytorch_version"] == "2.8.0+standin"


@pytest.fixture(params=["interactive", "nohup"])
def runner_sigint(request: pytest.FixtureRequest) -> Iterator[str]:
    """The runner's own SIGINT disposition: Python's default, or ignored as under ``nohup``
    or ``&`` in a non-interactive shell (the case that once left stand-ins running)."""
    before = signal.getsignal(signal.SIGINT)
    if request.param == "nohup":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield str(request.param)
    finally:
        signal.signal(signal.SIGINT, before)


def test_standin_exits_cleanly_on_sigint_and_dies_on_sigterm(
    source: Path, runner_sigint: str
) -> None:
    for sig, code in ((signal.SIGINT, 0), (signal.SIGTERM, -signal.SIGTERM)):
        with Standin(source, free_port(), "--cpu") as running:
            running.wait_ready()
            running.process.send_signal(sig)
            try:
                exit_code = running.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{sig.name} did not stop the stand-in (runner: {runner_sigint})")
            assert exit_code == code, f"{sig.name}: {running.output()}"
            if sig == signal.SIGINT:
                assert "Stopped server" in running.output()
            assert healthcheck(running.port).returncode == 1, "healthy without a server"
        assert running.process.returncode is not None, "the stand-in outlived its test"


def test_standin_loads_custom_nodes_manager_and_extra_paths(standin: Standin) -> None:
    standin.wait_ready()
    output = standin.output()
    assert "ComfyUI-Manager stand-in enabled" in output, output
    assert "Adding extra search path checkpoints /models/checkpoints" in output, output
    nodes = standin.source / "custom_nodes"
    assert f"custom node loaded: {nodes}/standin_bundled_node.py" in output, output
    assert f"custom node IMPORT FAILED: {nodes}/broken_node.py missing dep" in output, output
    assert "example_node.py.example" not in output, "*.example files are not nodes"


def test_standin_refuses_unknown_flags_like_comfyui(source: Path) -> None:
    result = subprocess.run(
        [sys.executable, "main.py", "--no-such-flag"],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
