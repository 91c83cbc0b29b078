"""The stand-in torch indexes: PEP 503 pages served over HTTP on loopback (engine/up), as
PyPI and PyTorch's index serve theirs, instead of a wheelhouse riding in a build context.

Pure tests: pages, stacks and config rewriting, and one real pip against the same static
server engine/up runs, on a free port of its own (no engine needed)."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from bench import standins
from bench.engine import AMD64, ARM64, Engine
from bench.payloads import fill_torch_indexes
from bench.standin_inputs import (
    INDEX,
    NS,
    STACK_INDEX_URL,
    TORCH_INDEX_KEYS,
    at_engine_index,
    ci_config,
    image_configs,
    make_torch_index,
)
from components.cuda import TORCH_TRIO
from components.project import ROOT
from tools.offline import load_stack_config

PINS = {"torch": "2.8.0", "torchvision": "0.23.0", "torchaudio": "2.8.0"}
ENGINE_UP = (ROOT / "engine" / "up").read_text(encoding="utf-8")
ENGINE_DOWN = (ROOT / "engine" / "down").read_text(encoding="utf-8")
# An engine whose ports are not the stacks' defaults, as ENGINE_*_PORT can make them.
MOVED = Engine(
    registry="127.0.0.1:6055", base_image="127.0.0.1:6055/b:1", index_url="http://127.0.0.1:6056"
)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value or "" for name, value in attrs if name == "href"]


def links(page: Path) -> list[str]:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.hrefs


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_pages_match_wheels(line: Path) -> None:
    for name in TORCH_TRIO:
        project = line / name
        (wheel,) = project.glob("*.whl")
        assert links(project / "index.html") == [f"{wheel.name}#sha256={sha256(wheel)}"], (
            f"{project}/index.html: must link {wheel.name} with its sha256 (PEP 503)"
        )


def test_each_line_is_a_pep503_index_whose_links_carry_the_wheels_sha256(tmp_path: Path) -> None:
    line = make_torch_index(tmp_path, "cu129", PINS)
    assert line == tmp_path / "cu129", "one directory per line, served as <url>/<line>"
    assert links(line / "index.html") == [f"{name}/" for name in sorted(TORCH_TRIO)], (
        "the root page links each project's page"
    )
    assert_pages_match_wheels(line)
    (wheel,) = (line / "torch").glob("*.whl")
    assert wheel.name == "torch-2.8.0+cu129.standin-py3-none-any.whl"


def test_a_grown_wheel_gets_its_new_sha256_on_its_page(tmp_path: Path) -> None:
    """pip refuses a download whose sha256 is not the page's: bench/payloads.py rewrites
    wheels in place, so their pages must follow."""
    line = make_torch_index(tmp_path, "cpu", PINS)
    before = links(line / "torch" / "index.html")
    fill_torch_indexes(tmp_path, {"cuda": 0, "cpu": 4096})
    assert links(line / "torch" / "index.html") != before
    assert_pages_match_wheels(line)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """``tmp_path/index`` served by the command engine/up runs, and its URL."""
    root = tmp_path / "index"
    root.mkdir()
    port = _free_port()
    command = ["-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), str(port)]
    assert " ".join(command[:5]) in ENGINE_UP, "the test must run engine/up's server"
    server = subprocess.Popen(
        [sys.executable, *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=1).close()  # noqa: S310 (loopback)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        yield root, url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _pip_download(url: str, dest: Path) -> subprocess.CompletedProcess[str]:
    # Only this index: no user or machine pip config, no proxy for loopback.
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "NO_PROXY": "127.0.0.1,localhost"}
    env["no_proxy"] = env["NO_PROXY"]
    return subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
         "--disable-pip-version-check", "--index-url", url, "--dest", str(dest),
         "torch==2.8.0"],
        capture_output=True, text=True, check=False, env=env, timeout=120,
    )  # fmt: skip


def test_pip_fetches_torch_from_the_served_index_and_checks_its_sha256(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = served
    make_torch_index(root, "cu129", PINS)
    got = _pip_download(f"{url}/cu129", tmp_path / "ok")
    assert got.returncode == 0, got.stdout + got.stderr
    assert [p.name for p in (tmp_path / "ok").iterdir()] == [
        "torch-2.8.0+cu129.standin-py3-none-any.whl"
    ]
    # The fragment is what pip checks: a wheel changed behind its page is refused.
    (wheel,) = (root / "cu129" / "torch").glob("*.whl")
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    refused = _pip_download(f"{url}/cu129", tmp_path / "bad")
    assert refused.returncode != 0, "a wheel whose sha256 is not its page's was installed"
    assert "HASHES" in refused.stdout + refused.stderr, refused.stdout + refused.stderr


def _index_sources(config: dict[str, Any]) -> dict[str, Any]:
    return config[f"{NS}:sources"]


@pytest.mark.parametrize("stack", ["ci", "standins over dev"])
def test_stand_in_stacks_install_torch_over_http_and_send_no_wheelhouse(stack: str) -> None:
    config = load_stack_config("ci") if stack == "ci" else standins.merged("dev")
    sources = _index_sources(config)
    assert "wheelhouse" not in sources, f"{stack}: the stand-in wheels ride in a build context"
    for key in TORCH_INDEX_KEYS:
        assert sources[key].startswith(STACK_INDEX_URL + "/"), (
            f"{stack}: sources.{key} is {sources[key]!r}, not the index engine/up serves"
        )
    for key in ("torchIndexCuda", "torchIndexRocm", "torchIndexXpu"):
        assert sources[key].endswith("/{line}"), f"{stack}: sources.{key} has no {{line}}"


def test_engine_up_serves_the_directory_and_port_the_stacks_and_bench_use() -> None:
    port = re.search(r'^INDEX_PORT="\$\{ENGINE_INDEX_PORT:-(\d+)\}"$', ENGINE_UP, re.M)
    directory = re.search(r'^INDEX_DIR="\$REPO/([^"]+)"$', ENGINE_UP, re.M)
    assert port, "engine/up: no INDEX_PORT line with the default port"
    assert directory, "engine/up: no INDEX_DIR line"
    assert f"http://127.0.0.1:{port[1]}" == STACK_INDEX_URL, "stacks and engine/up disagree"
    assert ROOT / directory[1] == INDEX, "the bench writes the index where engine/up serves none"
    assert 'echo "export ENGINE_INDEX_URL=$INDEX_URL"' in ENGINE_UP
    assert f"--directory $REPO/{directory[1]} " in ENGINE_DOWN, "engine/down misses the server"


def test_ci_config_moves_the_torch_indexes_to_the_engines_port() -> None:
    sources = _index_sources(ci_config(MOVED, "run"))
    assert sources["torchIndexCpu"] == "http://127.0.0.1:6056/cpu"
    for key in ("torchIndexCuda", "torchIndexRocm", "torchIndexXpu"):
        assert sources[key] == "http://127.0.0.1:6056/{line}", key
    assert sources["cudaImage"].startswith("127.0.0.1:6055/"), "the registry moves too"


def test_only_the_stand_in_index_is_moved() -> None:
    mirror = "https://mirror.example/whl/{line}"
    assert at_engine_index(mirror, MOVED.index_url) == mirror
    assert at_engine_index(f"{STACK_INDEX_URL}/cu129", "http://127.0.0.1:7000/") == (
        "http://127.0.0.1:7000/cu129"
    )


def test_make_standins_writes_the_indexes_the_config_installs_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also when the engine serves them on another port than the stacks' default."""
    monkeypatch.setattr(standins, "INDEX", tmp_path)
    monkeypatch.delenv("ENGINE_REGISTRY", raising=False)  # no engine: no base images
    config = ci_config(MOVED, "run")
    config[f"{NS}:sources"] |= {"comfyui": "", "sageattention": ""}
    made = standins.make_standins(config)
    assert made == [str(tmp_path / "cpu"), str(tmp_path / "cu129")]
    assert_pages_match_wheels(tmp_path / "cu129")
    mirror = "https://mirror.example/whl/{line}"
    config[f"{NS}:sources"] |= dict.fromkeys(TORCH_INDEX_KEYS, mirror)
    (tmp_path / "cpu" / "index.html").unlink()
    assert standins.make_standins(config) == [], "a real index needs no stand-in"
    assert not (tmp_path / "cpu" / "index.html").exists()


def _section(text: str, first: str, last: str) -> str:
    start = text.index(first)
    return text[start : text.index(last, start) + len(last)] + "\n"


def _run_section(script: str, repo: Path, port: int) -> subprocess.CompletedProcess[str]:
    """One section of engine/up or engine/down, run against ``repo`` as the checkout."""
    prelude = (
        'set -euo pipefail\ndie() { echo "engine: $*" >&2; exit 1; }\n'
        'log() { echo "engine: $*"; }\nmark() { :; }\n'
        + _section(ENGINE_DOWN, "stop() {", "\n}")
        + f'REPO={repo}; E="$REPO/.engine"; RUN="$E/run"; LOGS="$E/logs"; START_TIMEOUT=15\n'
        + f'INDEX_PORT={port}; INDEX_PID="$RUN/index.pid"\n'
        + 'INDEX_DIR="$REPO/build/standins/index"\n'
    )
    return subprocess.run(
        ["bash", "-c", prelude + script], capture_output=True, text=True, check=False, timeout=60
    )


def test_engine_up_starts_the_index_server_once_and_engine_down_stops_it(tmp_path: Path) -> None:
    up = _section(
        ENGINE_UP,
        "# ---------------------------------------------------------------- stand-in torch index",
        "mark torch-index",
    )
    down = _section(ENGINE_DOWN, "# the stand-in torch index:", 'rm -f "$RUN/index.pid"')
    (tmp_path / ".engine" / "run").mkdir(parents=True)
    (tmp_path / ".engine" / "logs").mkdir()
    port = _free_port()
    pid_file = tmp_path / ".engine" / "run" / "index.pid"
    pid = ""
    try:
        first = _run_section(up, tmp_path, port)
        assert first.returncode == 0, first.stderr
        pid = pid_file.read_text().strip()
        make_torch_index(tmp_path / "build" / "standins" / "index", "cpu", PINS)
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/cpu/torch/", timeout=5)
        assert "#sha256=" in page.read().decode(), "engine/up does not serve the index directory"
        again = _run_section(up, tmp_path, port)
        assert again.returncode == 0, again.stderr
        assert pid_file.read_text().strip() == pid, "a second engine/up restarted the server"
        stopped = _run_section(down, tmp_path, port)
        assert stopped.returncode == 0, stopped.stderr
        assert not _running(pid), "engine/down left the index server running"
        assert not pid_file.exists()
    finally:
        started = pid_file.read_text().strip() if pid_file.exists() else pid
        if started and _running(started):
            os.kill(int(started), 15)


def _running(pid: str) -> bool:
    """Alive and not a zombie (whoever reaps orphans here may be slow to)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.parametrize(
    ("image", "platforms"),
    [
        ({"os": "linux", "architecture": "amd64", "config": {}}, {AMD64}),
        ({"linux/amd64": {"os": "linux"}, "linux/arm64/v8": {"os": "linux"}}, {AMD64, ARM64}),
    ],
)
def test_image_configs_reads_both_shapes_of_imagetools_output(
    image: dict[str, object], platforms: set[str]
) -> None:
    """The parser of ``imagetools inspect --format '{{json .Image}}'`` that standin_missing
    relies on: one config for a single platform, a map by platform (variant dropped) for more."""
    assert set(image_configs(image)) == platforms
