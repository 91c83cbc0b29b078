"""The images' application scripts (dockerfiles/core/app), run on this host: the start
script against a fake python, and the entrypoint against temporary directories."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.catalog import DOCKERFILES_DIR
from components.project import ROOT
from tests.dockerfile_model import TORCH_DOCKERFILES, parse, references

# --- the application scripts -----------------------------------------------------------------


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    """A `python` that answers the device probe as a torch built for $FAKE_KIND (cuda by
    default; "none" for a CPU build) with the exit status $FAKE_CUDA (0 usable, 3 not, else a
    crash, which prints no answer), $FAKE_PROBE_ERROR on stderr, and otherwise prints its
    argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-c" ]; then\n'
        '    if [ -n "${FAKE_PROBE_ERROR:-}" ]; then echo "$FAKE_PROBE_ERROR" >&2; fi\n'
        '    case "${FAKE_CUDA:-3}" in\n'
        '        0) echo "accelerator: ${FAKE_KIND:-cuda} Fake GPU 9000" ;;\n'
        '        3) if [ "${FAKE_KIND:-cuda}" = none ]; then echo "accelerator: none";\n'
        '           else echo "accelerator: ${FAKE_KIND:-cuda} (no device)"; fi ;;\n'
        "    esac\n"
        '    exit "${FAKE_CUDA:-3}"\n'
        "fi\n"
        'printf "%s\\n" "$@"\n'
    )
    python.chmod(0o755)
    return bin_dir


def run_start(bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = ROOT / DOCKERFILES_DIR / "core" / "app" / "start.sh"
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", **env}
    return subprocess.run(
        ["sh", str(script), *args], env=environment, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("env", "cpu"),
    [
        ({"COMFYUI_DEVICE": "cpu"}, True),
        ({"COMFYUI_DEVICE": "cuda"}, False),
        ({"COMFYUI_DEVICE": "rocm"}, False),
        ({"COMFYUI_DEVICE": "xpu"}, False),
        ({"COMFYUI_DEVICE": "auto", "FAKE_CUDA": "0"}, False),
        ({"COMFYUI_DEVICE": "auto", "FAKE_CUDA": "0", "FAKE_KIND": "rocm"}, False),
        ({"COMFYUI_DEVICE": "auto", "FAKE_CUDA": "0", "FAKE_KIND": "xpu"}, False),
        ({"COMFYUI_DEVICE": "auto", "FAKE_CUDA": "3", "FAKE_KIND": "xpu"}, True),
        ({"COMFYUI_DEVICE": "auto", "FAKE_CUDA": "3", "FAKE_KIND": "none"}, True),
        ({"COMFYUI_DEVICE": "auto", "FAKE_CUDA": "1"}, True),
        ({"FAKE_CUDA": "1"}, True),
    ],
)
def test_start_passes_cpu_exactly_when_no_accelerator_is_usable(
    fake_python: Path, env: dict[str, str], cpu: bool
) -> None:
    result = run_start(fake_python, **env)
    assert result.returncode == 0, result.stderr
    argv = result.stdout.split()
    assert argv[:7] == [
        "/opt/comfyui/main.py",
        "--listen",
        "0.0.0.0",  # noqa: S104 (the container must listen on every interface)
        "--port",
        "8188",
        "--temp-directory",
        "/data",
    ], argv
    assert ("--cpu" in argv) is cpu, f"{env}: --cpu expected {cpu}, argv {argv}"


def test_start_appends_comfyui_args_then_container_args(fake_python: Path) -> None:
    result = run_start(
        fake_python, "--verbose", "DEBUG", COMFYUI_DEVICE="cuda", COMFYUI_ARGS="--fast  *"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-4:] == ["--fast", "*", "--verbose", "DEBUG"]


def test_start_rejects_unknown_device(fake_python: Path) -> None:
    result = run_start(fake_python, COMFYUI_DEVICE="tpu")
    assert result.returncode == 64
    assert "COMFYUI_DEVICE" in result.stderr


def test_start_logs_a_failing_gpu_probe(fake_python: Path) -> None:
    result = run_start(fake_python, FAKE_CUDA="1", FAKE_PROBE_ERROR="ImportError: libcuda.so")
    assert result.returncode == 0, result.stderr
    assert "--cpu" in result.stdout.split()
    assert "GPU probe failed (exit 1)" in result.stderr, result.stderr
    assert "ImportError: libcuda.so" in result.stderr, "torch's own message must be logged"


@pytest.mark.parametrize("kind", ["cuda", "rocm", "xpu"])
def test_start_says_why_it_runs_on_cpu(fake_python: Path, kind: str) -> None:
    result = run_start(fake_python, FAKE_CUDA="3", FAKE_KIND=kind, FAKE_PROBE_ERROR="too old")
    assert result.returncode == 0, result.stderr
    assert f"torch (a {kind} build) sees no usable {kind} device" in result.stderr
    assert "too old" in result.stderr


@pytest.mark.parametrize("kind", ["cuda", "rocm", "xpu"])
def test_start_logs_the_device_the_probe_found(fake_python: Path, kind: str) -> None:
    """The kind's device probe is in the log: which accelerator, which device."""
    result = run_start(fake_python, FAKE_CUDA="0", FAKE_KIND=kind)
    assert result.returncode == 0, result.stderr
    assert f"torch finds a usable {kind} device: Fake GPU 9000" in result.stderr
    assert f"on {kind}" in result.stderr.splitlines()[-1]


def test_start_says_a_cpu_build_is_one(fake_python: Path) -> None:
    result = run_start(fake_python, FAKE_CUDA="3", FAKE_KIND="none")
    assert "torch is a CPU build; starting on CPU" in result.stderr


@pytest.mark.parametrize(
    ("switch", "ships_file", "enabled"),
    [
        (None, True, True),
        ("auto", True, True),
        ("auto", False, False),
        ("0", True, False),
        ("1", False, True),
    ],
)
def test_start_enables_the_manager_when_the_source_supports_it(
    fake_python: Path, tmp_path: Path, switch: str | None, ships_file: bool, enabled: bool
) -> None:
    source = tmp_path / "comfyui"
    source.mkdir()
    if ships_file:
        (source / "manager_requirements.txt").write_text("comfyui-manager==4.0.0\n")
    env = {"COMFYUI_DEVICE": "cuda", "COMFYUI_PATH": str(source)}
    if switch is not None:
        env["COMFYUI_ENABLE_MANAGER"] = switch
    result = run_start(fake_python, **env)
    assert result.returncode == 0, result.stderr
    argv = result.stdout.split()
    assert argv[0] == f"{source}/main.py"
    assert ("--enable-manager" in argv) is enabled, f"{env}: argv {argv}"


def test_start_rejects_unknown_manager_switch(fake_python: Path) -> None:
    result = run_start(fake_python, COMFYUI_DEVICE="cuda", COMFYUI_ENABLE_MANAGER="maybe")
    assert result.returncode == 64
    assert "COMFYUI_ENABLE_MANAGER" in result.stderr


def test_start_passes_extra_model_paths_from_data(fake_python: Path, tmp_path: Path) -> None:
    env = {"COMFYUI_DEVICE": "cuda", "COMFYUI_DATA_DIR": str(tmp_path)}
    without = run_start(fake_python, **env).stdout.split()
    assert "--extra-model-paths-config" not in without, without
    (tmp_path / "extra_model_paths.yaml").write_text("shared:\n  checkpoints: /models\n")
    argv = run_start(fake_python, **env).stdout.split()
    flag = argv.index("--extra-model-paths-config")
    assert argv[flag + 1] == f"{tmp_path}/extra_model_paths.yaml", argv
    assert argv[argv.index("--temp-directory") + 1] == str(tmp_path), argv


# --- the entrypoint, run on this host against temporary directories -------------------------

ENTRYPOINT = ROOT / DOCKERFILES_DIR / "core" / "app" / "entrypoint.sh"


@dataclass
class Box:
    """A /data-like directory tree and the fakes the entrypoint hands over to."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def defaults(self) -> Path:
        return self.root / "defaults"

    @property
    def script(self) -> Path:
        return self.root / "entrypoint.sh"

    def run(
        self, *args: str, user: list[str] | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": f"{self.root / 'bin'}:/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "COMFYUI_DATA_DIR": str(self.data),
            "COMFYUI_DEFAULTS_DIR": str(self.defaults),
            "COMFYUI_START": str(self.root / "bin" / "fake-start"),
            "COMFYUI_BASE_PYTHON": str(self.root / "no-python"),  # no venv unless a test asks
            "PUID": "0",  # keep the current user when the tests run as root
            **env,
        }
        return subprocess.run(
            [*(user or []), str(self.script), *args],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )


@pytest.fixture
def box() -> Iterator[Box]:
    """World-traversable (not under pytest's 0700 tmp dir) so another uid can run it too."""
    root = Path(tempfile.mkdtemp(prefix="comfyui-entrypoint-"))
    root.chmod(0o755)
    for sub in ("bin", "home", "defaults"):
        (root / sub).mkdir()
    shutil.copy(ENTRYPOINT, root / "entrypoint.sh")
    (root / "entrypoint.sh").chmod(0o755)
    start = root / "bin" / "fake-start"
    start.write_text('#!/bin/sh\necho "started $*"\n')
    start.chmod(0o755)
    (root / "data").mkdir()
    yield Box(root)
    shutil.rmtree(root, ignore_errors=True)


def as_other_user(read_only: Path) -> list[str]:
    """Make ``read_only`` unwritable for the user the returned prefix runs the script as."""
    if os.geteuid() == 0:  # root writes anywhere: run as nobody, with root owning the dir
        os.chown(read_only, 0, 0)
        read_only.chmod(0o755)
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    read_only.chmod(0o555)
    return []


def test_entrypoint_seeds_data_without_overwriting(box: Box) -> None:
    (box.defaults / "models" / "checkpoints").mkdir(parents=True)
    (box.defaults / "models" / "checkpoints" / "put_checkpoints_here").write_text("")
    (box.defaults / "models" / "configs").mkdir()
    (box.defaults / "models" / "configs" / "v1.yaml").write_text("shipped")
    (box.defaults / "custom_nodes").mkdir()
    (box.defaults / "custom_nodes" / "bundled.py").write_text("")
    (box.data / "models" / "configs").mkdir(parents=True)
    (box.data / "models" / "configs" / "v1.yaml").write_text("edited by the user")

    result = box.run("--cpu")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started --cpu"
    for sub in ("models", "input", "output", "user", "temp", "custom_nodes", "cache"):
        assert (box.data / sub).is_dir(), f"/data/{sub} not created"
    assert (box.data / "models" / "checkpoints" / "put_checkpoints_here").is_file()
    assert (box.data / "custom_nodes" / "bundled.py").is_file()
    assert (box.data / "models" / "configs" / "v1.yaml").read_text() == "edited by the user"


def test_entrypoint_warns_about_unwritable_data_and_continues(box: Box) -> None:
    (box.defaults / "models").mkdir()
    (box.defaults / "models" / "shipped.txt").write_text("")
    prefix = as_other_user(box.data)
    result = box.run("--cpu", user=prefix)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started --cpu", "ComfyUI must still start"
    assert f"WARNING: {box.data} is not writable" in result.stderr, result.stderr
    assert not (box.data / "models").exists()


def test_entrypoint_skips_a_read_only_models_mount(box: Box) -> None:
    (box.defaults / "models").mkdir()
    (box.defaults / "models" / "shipped.txt").write_text("")
    (box.defaults / "input").mkdir()
    (box.defaults / "input" / "example.png").write_text("")
    (box.data / "models").mkdir()
    prefix = as_other_user(box.data / "models")
    if prefix:
        os.chown(box.data, 65534, 65534)
    result = box.run("--cpu", user=prefix)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started --cpu"
    assert f"WARNING: {box.data}/models is read-only" in result.stderr, result.stderr
    assert (box.data / "input" / "example.png").is_file(), "the writable rest is still seeded"


@pytest.mark.parametrize(
    ("args", "stdout"),
    [
        (["sh", "-c", "echo hi"], "hi"),
        (["--cpu", "--verbose"], "started --cpu --verbose"),
        ([], "started"),
    ],
)
def test_entrypoint_runs_a_command_or_comfyui(box: Box, args: list[str], stdout: str) -> None:
    result = box.run(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == stdout


def test_entrypoint_runs_the_pre_start_hook_first(box: Box) -> None:
    (box.data / "pre-start.sh").write_text('echo "hook as $(id -u)"\n')  # not executable: sh
    result = box.run("--cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"hook as {os.geteuid()}", "started --cpu"]


def test_entrypoint_stops_when_the_hook_fails(box: Box) -> None:
    hook = box.root / "hook.sh"
    hook.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    hook.chmod(0o755)
    result = box.run(COMFYUI_PRE_START=str(hook))
    assert result.returncode == 3
    assert "started" not in result.stdout, "ComfyUI must not start after a failed hook"
    assert f"pre-start hook {hook} failed (exit 3)" in result.stderr


def test_entrypoint_refuses_a_missing_named_hook(box: Box) -> None:
    result = box.run(COMFYUI_PRE_START=str(box.root / "missing.sh"))
    assert result.returncode == 66
    assert "no such file" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the PUID/PGID path runs only as root")
def test_entrypoint_hands_data_to_puid_and_drops_root(box: Box) -> None:
    setpriv = box.root / "bin" / "setpriv"  # records what the real one would run
    setpriv.write_text('#!/bin/sh\necho "setpriv $*"\n')
    setpriv.chmod(0o755)
    (box.data / "models").mkdir()
    (box.data / "models" / "model.safetensors").write_text("")
    (box.data / "venv" / "bin").mkdir(parents=True)
    (box.data / "venv" / "bin" / "pip").write_text("")
    result = box.run("--cpu", PUID="1234", PGID="2345")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "setpriv",
        "--reuid=1234",
        "--regid=2345",
        "--clear-groups",
        "--",
        str(box.script),
        "--cpu",
    ]
    for path in (box.data, box.data / "models", box.data / "venv" / "bin" / "pip"):
        assert (path.stat().st_uid, path.stat().st_gid) == (1234, 2345), path
    model = box.data / "models" / "model.safetensors"
    assert model.stat().st_uid == 0, "a models library is not chowned file by file"
    refused = box.run(PUID="comfy")
    assert refused.returncode == 64
    assert "PUID must be a number" in refused.stderr


def test_entrypoint_makes_a_venv_on_data_that_sees_the_base_packages(box: Box) -> None:
    """The base here is this test's own virtualenv, standing in for /opt/venv."""
    base = Path(sys.executable)
    result = box.run(
        "python",
        "-c",
        "import yaml, sys; print(sys.prefix)",
        COMFYUI_BASE_PYTHON=str(base),
        PATH=f"{box.data / 'venv' / 'bin'}:/usr/bin:/bin",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(box.data / "venv"), "python must be the venv's"
    again = box.run("sh", "-c", "true", COMFYUI_BASE_PYTHON=str(base))
    assert "creating" not in again.stderr, "an existing venv must be kept"


def test_entrypoint_sets_aside_a_venv_of_another_python(box: Box) -> None:
    stale = box.data / "venv" / "bin"
    stale.mkdir(parents=True)
    (stale / "python").write_text("#!/bin/sh\necho 3.0\n")
    (stale / "python").chmod(0o755)
    result = box.run("sh", "-c", "true", COMFYUI_BASE_PYTHON=sys.executable)
    assert result.returncode == 0, result.stderr
    assert "is not a Python" in result.stderr, result.stderr
    aside = [p.name for p in box.data.iterdir() if p.name.startswith("venv.before-python")]
    assert len(aside) == 1, list(box.data.iterdir())
    made = subprocess.run(
        [str(box.data / "venv" / "bin" / "python"), "-c", "import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.stdout.strip() == str(box.data / "venv"), made.stderr


def standin_torch(
    where: Path,
    *,
    cuda: str | None = None,
    hip: str | None = None,
    xpu: bool = False,
    usable: bool = False,
) -> None:
    """A ``torch`` package that reports what a real build of one kind reports:
    ``torch.version.cuda``, ``torch.version.hip``, ``torch.xpu._is_compiled()``."""
    package = where / "torch"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from torch import cuda, version, xpu\n__version__ = '2.15.0'\n"
    )
    (package / "version.py").write_text(f"cuda = {cuda!r}\nhip = {hip!r}\n")
    device = (
        f"def is_available():\n    return {usable!r}\n"
        "def get_device_name(index):\n    return 'Stand-in GPU'\n"
    )
    (package / "cuda.py").write_text(device)
    (package / "xpu.py").write_text(device + f"def _is_compiled():\n    return {xpu!r}\n")


# (what torch reports, what the line wants, whether the layer passes)
BUILDS = {
    "cpu": {},
    "cuda": {"cuda": "12.9"},
    "rocm": {"hip": "7.14.60850-abc"},
    "xpu": {"xpu": True},
    "cuda and rocm": {"cuda": "12.9", "hip": "7.14.1"},
}
CHECKS = [
    ("cpu", "", True),
    ("cuda", "cuda:12.9", True),
    ("rocm", "rocm:7.14", True),
    ("xpu", "xpu", True),
    ("cuda", "", False),  # a CUDA wheel on a CPU line
    ("cpu", "cuda:13.0", False),
    ("cuda", "rocm:7.14", False),  # a CUDA wheel on a ROCm line
    ("rocm", "rocm:7.2", False),  # another ROCm's wheel
    ("xpu", "cuda:12.9", False),
    ("cuda and rocm", "rocm:7.14", False),  # built for two
]


@pytest.mark.parametrize("path", TORCH_DOCKERFILES)
@pytest.mark.parametrize(("built_for", "line_wants", "passes"), CHECKS)
def test_torch_accelerator_check_runs_and_refuses_the_wrong_build(
    path: str, built_for: str, line_wants: str, passes: bool, tmp_path: Path
) -> None:
    """The check itself, taken from the Dockerfile and run on this Python against a torch
    that reports ``built_for``: the line's kind and release, and nothing else."""
    (run,) = [c for s in parse(path).stages for c in s.commands if references(c, "TORCH_INDEX_URL")]
    found = re.search(r"python -c '([^']*)' \"\$\{TORCH_ACCELERATOR\}\"", " ".join(run.value))
    assert found, f"{path}: no python -c check of TORCH_ACCELERATOR"
    standin_torch(tmp_path, **BUILDS[built_for])
    result = subprocess.run(
        [sys.executable, "-c", found[1], line_wants],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode == 0) is passes, result.stderr
    if not passes:
        assert f"this line needs {line_wants or 'none (a CPU build)'}" in result.stderr
        assert "check TORCH_INDEX_URL" in result.stderr


def start_probe() -> str:
    text = (ROOT / DOCKERFILES_DIR / "core" / "app" / "start.sh").read_text()
    found = re.search(r"^PROBE='([^']*)'$", text, re.MULTILINE)
    assert found, "start.sh: no PROBE='...'"
    return found[1]


@pytest.mark.parametrize(
    ("built_for", "usable", "answer", "status"),
    [
        ("cuda", True, "accelerator: cuda Stand-in GPU", 0),
        ("rocm", True, "accelerator: rocm Stand-in GPU", 0),
        ("xpu", True, "accelerator: xpu Stand-in GPU", 0),
        ("rocm", False, "accelerator: rocm (no device)", 3),
        ("cpu", False, "accelerator: none", 3),
    ],
)
def test_the_start_probe_names_the_kind_torch_is_built_for(
    built_for: str, usable: bool, answer: str, status: int, tmp_path: Path
) -> None:
    """start.sh's own probe, run against a torch of each kind: ROCm's torch answers through
    torch.cuda too, so the kind comes from torch.version.hip, not from torch.cuda."""
    standin_torch(tmp_path, usable=usable, **BUILDS[built_for])
    result = subprocess.run(
        [sys.executable, "-c", start_probe()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (status, answer), result.stderr
