"""The lock generator (tools/lock.py), offline: the resolver is injected, git sources are
local repositories. What it proves: the lock is deterministic, records what the resolution
depended on, leaves torch and its own closure to the torch layer, and fetches the pinned
revision of a git source."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from components import locks
from tools import lock
from tools.lock import LockInputs

INPUTS = LockInputs(
    comfyui="v0.8.1",
    comfy_cli="1.23.0",
    python="3.11",
    platform="linux/amd64",
    torch={"torch": "2.8.0", "torchvision": "0.23.0", "torchaudio": "2.8.0"},
)
FILES = {
    "requirements.txt": b"torch\ntorchvision\nnumpy\ntqdm\n",
    "manager_requirements.txt": b"iniconfig\n",
}
# What `uv pip compile --annotation-style=line` prints for FILES plus comfy-cli.in.
COMPILED = """\
click==8.1.8              # via typer
comfy-cli==1.23.0         # via -r comfy-cli.in
filelock==3.20.0          # via torch
iniconfig==2.1.0          # via -r manager_requirements.txt
numpy==2.3.4              # via -r requirements.txt, torchvision
nvidia-cudnn-cu12==9.10.2.21 # via torch
pillow==12.0.0            # via torchvision
sympy==1.14.0             # via torch
mpmath==1.3.0             # via sympy
torch==2.8.0              # via -r requirements.txt, torchvision, torchaudio, -c torch.txt
torchvision==0.23.0       # via -r requirements.txt, -c torch.txt
tqdm==4.67.1              # via -r requirements.txt
typer==0.20.0             # via comfy-cli
"""


def comfyui_source(dest: Path) -> None:
    """The files of a ComfyUI release the lock reads: its two requirement files."""
    dest.mkdir(parents=True)
    (dest / "requirements.txt").write_text("torch\ntorchvision\nPyYAML==6.0.2\ntqdm==4.67.1\n")
    (dest / "manager_requirements.txt").write_text("iniconfig\n")


class Recorder:
    """A resolver that records its call and answers with canned uv output."""

    def __init__(self, answer: str = COMPILED) -> None:
        self.answer = answer
        self.calls: list[dict[str, object]] = []

    def __call__(
        self, work: Path, requirements: Sequence[str], constraints: Sequence[str], i: LockInputs
    ) -> str:
        self.calls.append(
            {
                "requirements": {r: (work / r).read_text() for r in requirements},
                "constraints": {c: (work / c).read_text() for c in constraints},
                "inputs": i,
            }
        )
        return self.answer


def test_lock_is_deterministic_and_sorted() -> None:
    """Same inputs, same bytes, whatever order uv prints in; no dates."""
    shuffled = "\n".join(reversed(COMPILED.splitlines())) + "\n"
    first = lock.make_lock(INPUTS, FILES, Recorder(), "ci")
    assert first == lock.make_lock(INPUTS, FILES, Recorder(shuffled), "ci")
    for pins in locks.sections(first).values():
        assert pins == sorted(pins, key=lambda p: lock.normalize(p.split("==")[0]))
    assert "2026" not in first.split("# sha256")[0]


def test_lock_leaves_out_torch_and_what_only_torch_needs() -> None:
    """torch's own closure comes from the line's index; a lock pinning PyPI's builds of it
    (nvidia-*, sympy) would fight the torch layer. What ComfyUI also needs stays pinned."""
    parts = locks.sections(lock.make_lock(INPUTS, FILES, Recorder(), "ci"))
    assert parts["comfyui"] == ["iniconfig==2.1.0", "numpy==2.3.4", "tqdm==4.67.1"]


def test_each_environment_gets_its_own_section() -> None:
    """ComfyUI's requirement files lock /opt/venv, comfy-cli locks /opt/comfy-cli, and
    neither holds the other's packages: a comfy-cli bump must not move ComfyUI's pins."""
    text = lock.make_lock(INPUTS, FILES, Recorder(), "ci")
    assert [line for line in text.splitlines() if line.startswith("# == ")] == [
        locks.section_marker(n) for n in locks.SECTIONS
    ]
    parts = locks.sections(text)
    assert parts["comfy-cli"] == ["click==8.1.8", "comfy-cli==1.23.0", "typer==0.20.0"]
    assert not {p.split("==")[0] for p in parts["comfyui"]} & {"click", "comfy-cli", "typer"}


def test_resolver_gets_the_files_then_comfy_cli_apart() -> None:
    recorder = Recorder()
    lock.make_lock(INPUTS, FILES, recorder, "ci")
    environment, cli = recorder.calls
    assert environment["requirements"] == {
        "manager_requirements.txt": "iniconfig\n",
        "requirements.txt": "torch\ntorchvision\nnumpy\ntqdm\n",
    }
    assert environment["constraints"] == {
        "torch.txt": "torch==2.8.0\ntorchvision==0.23.0\ntorchaudio==2.8.0\n"
    }
    # comfy-cli's environment has no torch: nothing to hold it to.
    assert cli["requirements"] == {"comfy-cli.in": "comfy-cli==1.23.0\n"}
    assert cli["constraints"] == {}


def test_header_records_what_the_resolution_depended_on() -> None:
    text = lock.make_lock(INPUTS, FILES, Recorder(), "ci")
    assert locks.header(text) == INPUTS.header_values()
    for name, data in FILES.items():
        assert f"# sha256 {name}: {hashlib.sha256(data).hexdigest()}" in text
    assert "#   scripts/lock --stack ci\n" in text
    # The version is the directory's name, so equal requirements give equal locks.
    assert "v0.8.1" not in text


def test_a_changed_input_changes_the_lock() -> None:
    base = lock.make_lock(INPUTS, FILES, Recorder(), "ci")
    other_cli = LockInputs(**{**INPUTS.__dict__, "comfy_cli": "1.22.0"})
    bumped = lock.make_lock(other_cli, FILES, Recorder(), "ci")
    assert bumped != base
    # ComfyUI's section is the same bytes: its pip layers stay cached on a comfy-cli bump.
    assert locks.sections(bumped)["comfyui"] == locks.sections(base)["comfyui"]
    edited = {**FILES, "requirements.txt": b"torch\nnumpy\ntqdm\n"}
    assert lock.make_lock(INPUTS, edited, Recorder(), "ci") != base


def test_a_resolution_without_comfy_cli_is_refused() -> None:
    with pytest.raises(lock.LockError, match=r"comfy-cli==1\.23\.0"):
        lock.make_lock(INPUTS, FILES, Recorder("tqdm==4.67.1  # via -r requirements.txt\n"), "ci")


def test_uv_is_asked_for_the_stack_python_and_platform_on_pips_index(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The index comes from pip's settings (here $PIP_INDEX_URL), never from a file."""
    seen: dict[str, object] = {}

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if command[1:4] == ["-m", "pip", "config"]:
            return subprocess.CompletedProcess(command, 0, "", "")
        seen["command"], seen["cwd"], seen["env"] = command, kwargs["cwd"], kwargs["env"]
        return subprocess.CompletedProcess(command, 0, "out", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    env = {"PIP_INDEX_URL": "https://index.invalid/simple", "PIP_CERT": "/ca.pem"}
    resolver = lock.uv_resolver(env)
    arm = LockInputs(**{**INPUTS.__dict__, "platform": "linux/arm64"})
    assert resolver(tmp_path, ["requirements.txt"], ["torch.txt"], arm) == "out"
    command = seen["command"]
    assert isinstance(command, list)
    for flag in (
        "--no-config",
        "--python-version=3.11",
        "--python-platform=aarch64-manylinux_2_28",
        "--index-url=https://index.invalid/simple",
        "--constraint=torch.txt",
    ):
        assert flag in command
    assert command[-1] == "requirements.txt"
    assert seen["cwd"] == tmp_path
    assert isinstance(seen["env"], dict)
    assert seen["env"]["SSL_CERT_FILE"] == "/ca.pem"
    assert not any(flag.startswith("--exclude-newer") for flag in command), "none unless asked"
    lock.uv_resolver(env, exclude_newer="2026-11-28T00:00:00Z")(
        tmp_path, ["requirements.txt"], [], arm
    )
    assert "--exclude-newer=2026-11-28T00:00:00Z" in seen["command"]


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


def test_git_source_is_read_at_the_pinned_tag(tmp_path: Path) -> None:
    """A file:// repository stands in for GitHub; the tag, not the newest commit, counts."""
    repo = tmp_path / "ComfyUI"
    repo.mkdir()
    git(repo, "init", "--quiet")
    (repo / "requirements.txt").write_text("tqdm==4.0\n")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "one")
    git(repo, "tag", "v1.0.0")
    (repo / "requirements.txt").write_text("tqdm==5.0\n")
    (repo / "manager_requirements.txt").write_text("iniconfig\n")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "two")
    git(repo, "tag", "v2.0.0")
    location = f"file://{repo}#{{version}}"
    assert lock.read_source(location, "v1.0.0") == {"requirements.txt": b"tqdm==4.0\n"}
    assert lock.read_source(location, "v2.0.0") == {
        "requirements.txt": b"tqdm==5.0\n",
        "manager_requirements.txt": b"iniconfig\n",
    }
    with pytest.raises(lock.LockError, match="git fetch failed"):
        lock.read_source(location, "v9.9.9")


def test_stack_lock_is_written_per_comfyui_version(tmp_path: Path) -> None:
    """scripts/lock --stack ci: the lock of the CI stand-in lands in
    <output>/<version>/constraints.txt, and --comfyui picks another version."""
    recorder = Recorder()
    for version in ("v0.8.1", "v0.8.2"):
        comfyui_source(tmp_path / f"src-{version}")
        args = ["--stack", "ci", "--comfyui", version, "--output-dir", str(tmp_path)]
        args += ["--comfyui-src", str(tmp_path / "src-{version}")]
        assert lock.main(args, resolver=recorder) == 0
    one = (tmp_path / "v0.8.1" / "constraints.txt").read_text()
    two = (tmp_path / "v0.8.2" / "constraints.txt").read_text()
    assert one == two  # same stand-in requirements: same lock, no version inside
    assert locks.header(one)["python"] == "3.13"


def test_explicit_inputs_are_all_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        lock.main(["--comfyui-src", "x", "--comfyui", "v1"])
    assert "--comfy-cli" in capsys.readouterr().err


def test_exclude_newer_reaches_uv_for_a_lock_every_mirror_can_serve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`scripts/lock --exclude-newer TIME` asks uv to leave out what the index got later."""
    commands: list[list[str]] = []

    def fake_run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        if command[1:4] == ["-m", "pip", "config"]:
            return subprocess.CompletedProcess(command, 0, "", "")
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, COMPILED, "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setenv("PIP_INDEX_URL", "https://index.invalid/simple")
    comfyui_source(tmp_path / "src-v0.8.1")
    args = ["--stack", "ci", "--comfyui", "v0.8.1", "--output-dir", str(tmp_path / "out")]
    args += ["--comfyui-src", str(tmp_path / "src-{version}")]
    assert lock.main([*args, "--exclude-newer", "2026-11-28T00:00:00Z"]) == 0
    assert commands, "uv was never asked"
    assert all("--exclude-newer=2026-11-28T00:00:00Z" in c for c in commands)
