"""Cache scenarios on the real engine: shared by the integration tests and the benchmark.

Each scenario changes one input of the `ci` stack (stacks/Pulumi.ci.yaml), then rebuilds
the family the way the docker-build provider does: one build per target, parents read
from the registry as ``docker-image://`` refs, with the stack's real cache settings,
all taken from the recorded plan through ``tools.bake``. Before every scenario the
builder cache and all local images are removed, so anything reused comes from the
registry cache, as on a fresh CI runner.

Inputs that cannot be reached here are local stand-ins, fed through the overrides users
have for mirrors: base images under ``<registry>/mirror/...``, ComfyUI source
directories, and a wheelhouse holding tiny ``torch*`` wheels.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.registry_traffic import Traffic, offset, traffic
from components import cuda
from components.cuda import TORCH_TRIO
from components.locks import HEADER_PINS
from components.project import NAMESPACE, ROOT
from components.settings import PIN_EXAMPLES
from tools.bake import to_bake
from tools.cache_report import Step, read_vertices, steps_of
from tools.offline import load_stack_config, run_program
from tools.plan import to_plan

NS = NAMESPACE
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# buildx 0.38 asks bake files to be granted what they read outside their directory: here
# the CA bundle handed to pip as the `ca` secret.
BAKE_ALLOW = (f"--allow=fs.read={CA_BUNDLE}",)
WORK = ROOT / "build" / "engine-work"
# The loopback registry of engine/up: its access log and its blob store.
REGISTRY_LOG = ROOT / ".engine" / "logs" / "registry.log"
REGISTRY_STORE = ROOT / ".engine" / "registry-data"
RUNS = ROOT / "build" / "engine-runs"
ALL = "<every step>"

# The steps of core's graph (dockerfiles/core/Dockerfile), each named by a marker found in
# BuildKit's text for it and nowhere else. The scenarios below say which of them must run.
CORE_STEPS = {
    "venv": 'python -m venv "/opt/venv"',
    "torch": "--index-url",
    "lock-split": "from=comfyui-lock,target=/tmp/comfyui-lock",
    "comfy-cli-venv": "python -m venv /opt/comfy-cli",
    "comfy-cli": "comfy-cli==",
    "requirements": "from=comfyui-src,source=requirements.txt",
    "manager-file": "COPY --from=comfyui-src manager_requirements.tx[t]",
    "manager": "from=comfyui-manager-requirements",
    "workdir": "WORKDIR /opt/comfyui",
    "comfyui-tree": "from=comfyui-src,target=/tmp/comfyui-src",
    "join-comfy-cli": "COPY --link --from=comfy-cli",
    "join-comfyui-tree": "COPY --link --from=comfyui-tree",
    "app": "COPY --link app/",
}
# BuildKit shows a `COPY --link` as two steps: the copy onto nothing (keyed to the copied
# files alone) and "LINK ...", the join onto the image. A join runs no command and moves no
# file; it is keyed to the layer it adds and to the joins under it, so it reruns when either
# changed. Their names here: "link:<step>".
LINKED = ("join-comfy-cli", "join-comfyui-tree", "app")  # in the final stage's order
EVERY_CORE_STEP = (*CORE_STEPS, *(f"link:{name}" for name in LINKED))


def relinks_from(name: str) -> tuple[str, ...]:
    """The joins that rerun when the linked layer ``name`` changes: its own and those above."""
    return tuple(f"link:{n}" for n in LINKED[LINKED.index(name) :])


@dataclass(frozen=True)
class Engine:
    registry: str
    base_image: str


def engine_from_env() -> Engine | None:
    """The engine started by engine/up, if its variables are in the environment."""
    registry = os.environ.get("ENGINE_REGISTRY")
    base = os.environ.get("ENGINE_BASE_IMAGE")
    if not (registry and base and os.environ.get("DOCKER_HOST")):
        return None
    return Engine(registry=registry, base_image=base)


def docker(
    *args: str, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], cwd=cwd, capture_output=True, text=True, check=check, timeout=1800
    )


# --- stand-ins -----------------------------------------------------------------------


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    modules: dict[str, str] | None = None,
    requires: tuple[str, ...] = (),
) -> Path:
    """A minimal, valid pure-Python wheel named ``name`` at ``version``, needing ``requires``;
    ``modules`` adds files to the package (path inside it -> text)."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": f'__version__ = "{version}"\n',
        **{f"{dist}/{path}": text for path, text in (modules or {}).items()},
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            "Summary: stand-in used by comfyui-images' engine tests\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)
        ),
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: comfyui-images\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), text)
    return wheel


def torch_lines(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each torch index a stack config installs from ("cpu" and its CUDA lines), with the
    torch pins it asks that index for (a line's own overrides included)."""
    versions = config.get(f"{NS}:versions") or {}
    pins = {name: versions.get(name, PIN_EXAMPLES[name]) for name in TORCH_TRIO}
    lines = config.get(f"{NS}:cudaLines") or {
        cuda.wheel_tag(versions.get("cuda", PIN_EXAMPLES["cuda"])): {}
    }
    result = {"cpu": pins}
    for line, spec in lines.items():
        result[line] = {name: (spec or {}).get(name) or pins[name] for name in TORCH_TRIO}
    return result


def make_torch_index(wheelhouse: Path, line: str, pins: dict[str, str]) -> Path:
    """A PEP 503 index of stand-in torch, torchvision and torchaudio for one line ("cpu",
    "cu129"), laid out like PyTorch's own under ``<wheelhouse>/index/<line>``: each pin's
    public version with the line as local label (2.8.0+cu129.standin), and a torch whose
    ``torch.version.cuda`` is the line's CUDA ("12.9"; None for cpu), as real builds report.
    The stacks reach it as ``file:///wheelhouse/index/<line>`` (the wheelhouse context)."""
    root = wheelhouse / "index" / line
    cuda_text = "None" if line == "cpu" else repr(f"{line[2:-1]}.{line[-1]}")
    links = []
    for name in TORCH_TRIO:
        version = f"{pins[name].split('+', 1)[0]}+{line}.standin"
        project = root / name
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        modules = (
            {
                "__init__.py": f'from torch import version\n__version__ = "{version}"\n',
                "version.py": f'__version__ = "{version}"\ncuda = {cuda_text}\n',
            }
            if name == "torch"
            else {}
        )
        wheel = make_wheel(project, name, version, modules)
        (project / "index.html").write_text(
            f'<!DOCTYPE html><html><body><a href="{wheel.name}">{wheel.name}</a></body></html>\n'
        )
        links.append(f'<a href="{name}/">{name}</a>')
    (root / "index.html").write_text(f"<!DOCTYPE html><html><body>{''.join(links)}</body></html>\n")
    return root


# ComfyUI-Manager stand-in: one tiny real PyPI package in manager_requirements.txt, imported
# under --enable-manager the way ComfyUI imports comfyui_manager.
STANDIN_MANAGER_REQUIREMENT = "iniconfig==2.1.0"

# main.py of the stand-in: ComfyUI's behaviour at the points the image relies on. The flags
# the start script passes (strict parsing: an unknown flag fails, as in ComfyUI), custom
# nodes imported from custom_nodes/ next to main.py, --extra-model-paths-config read as YAML,
# GET /system_stats (with argv, as ComfyUI's) on --listen/--port, a clean exit 0 on SIGINT
# (KeyboardInterrupt) and Python's default death on SIGTERM.
STANDIN_MAIN = """\
import argparse, importlib.util, json, os, platform, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml
from comfyui_version import __version__

parser = argparse.ArgumentParser()
parser.add_argument("--listen", default="127.0.0.1", nargs="?", const="0.0.0.0,::")
parser.add_argument("--port", type=int, default=8188)
parser.add_argument("--temp-directory")
parser.add_argument("--cpu", action="store_true")
parser.add_argument("--enable-manager", action="store_true")
parser.add_argument("--extra-model-paths-config", nargs="+", action="append")
args = parser.parse_args()
print("ComfyUI stand-in", __version__, flush=True)

if args.enable_manager:
    import iniconfig  # the manager package of manager_requirements.txt
    print("ComfyUI-Manager stand-in enabled, from", iniconfig.__file__, flush=True)
for path in [p for group in args.extra_model_paths_config or [] for p in group]:
    with open(path) as config:
        for section in (yaml.safe_load(config) or {}).values():
            for folder, value in section.items():
                print("Adding extra search path", folder, value, flush=True)

here = os.path.dirname(os.path.realpath(__file__))
nodes_dir = os.path.join(here, "custom_nodes")
for entry in sorted(os.listdir(nodes_dir)) if os.path.isdir(nodes_dir) else []:
    path = os.path.join(nodes_dir, entry)
    if os.path.isdir(path):
        path = os.path.join(path, "__init__.py")
    elif not entry.endswith(".py"):
        continue
    if not os.path.isfile(path):
        continue
    try:
        spec = importlib.util.spec_from_file_location(entry.removesuffix(".py"), path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        print("custom node loaded:", os.path.join(nodes_dir, entry), flush=True)
    except Exception as error:
        print("custom node IMPORT FAILED:", os.path.join(nodes_dir, entry), error, flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/system_stats":
            self.send_error(404)
            return
        import torch
        body = json.dumps({
            "system": {
                "os": os.name, "python_version": platform.python_version(),
                "comfyui_version": __version__, "pytorch_version": torch.__version__,
                "argv": sys.argv,
            },
            "devices": [{"name": "cpu", "type": "cpu"}],
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = ThreadingHTTPServer((args.listen.split(",")[0], args.port), Handler)
print(f"To see the GUI go to: http://{args.listen}:{args.port}", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    print("Stopped server", flush=True)
"""


def make_comfyui_standin(dest: Path, version: str) -> None:
    """A ComfyUI-shaped source tree: main.py (``STANDIN_MAIN``), version file, small real
    requirements, manager_requirements.txt, and a bundled custom node."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "comfyui_version.py").write_text(f'__version__ = "{version.removeprefix("v")}"\n')
    (dest / "main.py").write_text(STANDIN_MAIN)
    (dest / "requirements.txt").write_text(
        "torch\ntorchvision\ntorchaudio\nPyYAML==6.0.2\ntqdm==4.67.1\n"
    )
    (dest / "manager_requirements.txt").write_text(f"{STANDIN_MANAGER_REQUIREMENT}\n")
    for folder in ("models", "input", "output"):
        (dest / folder).mkdir(exist_ok=True)
        (dest / folder / ".keep").write_text("")
    nodes = dest / "custom_nodes"
    nodes.mkdir(exist_ok=True)
    (nodes / "standin_bundled_node.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    (nodes / "example_node.py.example").write_text("NODE_CLASS_MAPPINGS = {}\n")


def push_base_standin(engine: Engine, ref: str, marker: str, *, nvcc: str = "") -> None:
    """A base image under a mirror name: the engine's Debian stand-in plus a marker file.

    ``nvcc`` (a CUDA release) makes it a `devel` stand-in: an ``nvcc`` that reports that
    release, which is all the SageAttention builder asks of the compiler before the compile
    step, whose stand-in source needs none."""
    empty = WORK / "empty-context"
    empty.mkdir(parents=True, exist_ok=True)
    dockerfile = f"FROM {engine.base_image}\nRUN echo '{marker}' > /etc/comfyui-standin\n"
    if nvcc:
        dockerfile += f'LABEL {NVCC_LABEL}="{nvcc}"\n'
        dockerfile += (
            "RUN printf '#!/bin/sh\\necho \"Cuda compilation tools, release "
            f"{nvcc} (comfyui-images stand-in)\"\\n' > /usr/local/bin/nvcc"
            " && chmod 0755 /usr/local/bin/nvcc\n"
        )
    subprocess.run(
        ["docker", "buildx", "build", "--push", "-t", ref, "-f", "-", str(empty)],
        input=dockerfile,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )


NVCC_LABEL = "io.comfyui-images.standin.nvcc"


def standin_missing(ref: str, *, nvcc: str = "") -> bool:
    """Whether ``ref`` must be (re)pushed: absent, or a devel stand-in without our nvcc
    (stand-ins pushed before the builder was built here had none)."""
    if not nvcc:
        found = docker("buildx", "imagetools", "inspect", ref, check=False)
        return found.returncode != 0
    labels = docker(
        "buildx",
        "imagetools",
        "inspect",
        ref,
        "--format",
        "{{json .Image.Config.Labels}}",
        check=False,
    )
    if labels.returncode != 0:
        return True
    return (json.loads(labels.stdout or "null") or {}).get(NVCC_LABEL) != nvcc


# setup.py of the SageAttention stand-in: a pure-Python package named and versioned like
# the real one, whose build records the TORCH_CUDA_ARCH_LIST it was given, so the tests can
# see which architectures reached the compile step.
SAGEATTENTION_SETUP = """\
import os
from setuptools import setup

os.makedirs("sageattention", exist_ok=True)
with open("sageattention/_build.py", "w") as f:
    f.write("TORCH_CUDA_ARCH_LIST = %r\\n" % os.environ.get("TORCH_CUDA_ARCH_LIST", ""))
setup(name="sageattention", version="2.2.0", packages=["sageattention"])
"""


def make_sageattention_standin(dest: Path) -> None:
    """A SageAttention-shaped source tree for the builder's compile step."""
    (dest / "sageattention").mkdir(parents=True, exist_ok=True)
    (dest / "setup.py").write_text(SAGEATTENTION_SETUP)
    (dest / "sageattention" / "__init__.py").write_text(
        "from sageattention._build import TORCH_CUDA_ARCH_LIST\n\n\n"
        "def sageattn(*args, **kwargs):\n"
        "    raise RuntimeError('SageAttention stand-in: no kernels')\n"
    )


def prepare(config: dict[str, Any]) -> None:
    """Fresh work dir (a copy of dockerfiles/ and locks/) plus every stand-in the config
    refers to."""
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(ROOT / "dockerfiles", WORK / "dockerfiles")
    shutil.copytree(ROOT / "locks", WORK / "locks")
    wheels = WORK / "build" / "standins" / "wheelhouse"
    wheels.mkdir(parents=True)
    for line, pins in torch_lines(config).items():
        make_torch_index(wheels, line, pins)


def ensure_inputs(engine: Engine, config: dict[str, Any]) -> None:
    """Stand-ins for the versions a scenario asks for (base tags, ComfyUI and SageAttention
    sources)."""
    v, s = config[f"{NS}:versions"], config[f"{NS}:sources"]
    comfyui = WORK / s["comfyui"].replace("{version}", v["comfyui"])
    if not comfyui.exists():
        make_comfyui_standin(comfyui, v["comfyui"])
    sageattention = s.get("sageattention", "")
    if sageattention and "://" not in sageattention:
        source = WORK / sageattention.replace(
            "{version}", v.get("sageattention", PIN_EXAMPLES["sageattention"])
        )
        if not source.exists():
            make_sageattention_standin(source)
    refs = {
        f"{s['cudaImage']}:{v['cuda']}-base-ubuntu{v['ubuntu']}": (
            f"cuda {v['cuda']} ubuntu {v['ubuntu']}",
            "",
        ),
        f"{s['cudaImage']}:{v['cuda']}-devel-ubuntu{v['ubuntu']}": (
            f"cuda {v['cuda']} devel ubuntu {v['ubuntu']}",
            v["cuda"],
        ),
        f"{s['ubuntuImage']}:{v['ubuntu']}": (f"ubuntu {v['ubuntu']}", ""),
    }
    for ref, (marker, nvcc) in refs.items():
        if standin_missing(ref, nvcc=nvcc):
            push_base_standin(engine, ref, marker, nvcc=nvcc)


def ci_config(engine: Engine, run_id: str) -> dict[str, Any]:
    """stacks/Pulumi.ci.yaml pointed at this engine, in a namespace of its own (truly cold)."""
    config = load_stack_config("ci")
    config[f"{NS}:registry"] = {"address": engine.registry, "namespace": f"comfyui-ci/{run_id}"}
    sources = dict(config[f"{NS}:sources"])
    sources["cudaImage"] = f"{engine.registry}/mirror/nvidia/cuda"
    sources["ubuntuImage"] = f"{engine.registry}/mirror/ubuntu"
    config[f"{NS}:sources"] = sources
    return config


# --- scenarios ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One change, and the minimal set of steps it must rerun: a step reruns exactly when
    its own inputs changed. ``reruns`` maps a target family ("runtime", "core") to ALL or
    to names of CORE_STEPS; ``why`` says, per step named there, which of its inputs changed
    (or, under ALL, why whole families rerun)."""

    name: str
    title: str
    versions: dict[str, str] = field(default_factory=dict)
    edit: Callable[[Path], None] | None = None
    reruns: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)


def _edit_start_script(work: Path) -> None:
    script = work / "dockerfiles" / "core" / "app" / "start.sh"
    script.write_text(script.read_text() + f"# edited by the app-change scenario {time.time()}\n")


# Steps keyed to files that a base image change leaves alone (see SHARED_STEPS).
_CONTENT_ONLY = ("manager-file", "join-comfyui-tree", "app")

SCENARIOS = [
    Scenario(
        "cold",
        "first build",
        reruns={"runtime": ALL, "core": EVERY_CORE_STEP},
        why={ALL: "nothing is cached: a fresh namespace, a pruned builder"},
    ),
    Scenario("no-change", "no change", reruns={"runtime": (), "core": ()}),
    Scenario(
        "app-change",
        "code change only (startup script)",
        edit=_edit_start_script,
        reruns={"runtime": (), "core": ("app", *relinks_from("app"))},
        why={
            "app": "its only input, dockerfiles/core/app/, changed",
            "link:app": "the layer it joins changed; nothing under it is rebuilt or pulled",
        },
    ),
    Scenario(
        "comfyui-bump",
        "ComfyUI version bump",
        versions={"comfyui": "v0.8.2"},
        reruns={
            "runtime": (),
            "core": ("comfyui-tree", "join-comfyui-tree", *relinks_from("join-comfyui-tree")),
        },
        why={
            "comfyui-tree": "the source tree and COMFYUI_VERSION changed",
            "join-comfyui-tree": "it copies that stage's new output",
            "link:join-comfyui-tree": "the layer it joins changed",
            "link:app": "a join under it changed (the app layer itself is reused)",
            # and not: requirements.txt, manager_requirements.txt and the lock (whose bytes
            # hold no ComfyUI version) are the same, so no pip layer reruns.
        },
    ),
    Scenario(
        "comfy-cli-bump",
        "dependency update (comfy-cli)",
        versions={"comfyCli": "1.22.0"},
        reruns={
            "runtime": (),
            "core": ("lock-split", "comfy-cli", "join-comfy-cli", *relinks_from("join-comfy-cli")),
        },
        why={
            "lock-split": "the lock is regenerated (its header and comfy-cli section changed)",
            "comfy-cli": "COMFY_CLI_VERSION and the lock's comfy-cli section changed",
            "join-comfy-cli": "it copies that stage's new /opt/comfy-cli",
            "link:join-comfy-cli": "the layer it joins changed",
            "link:join-comfyui-tree": "a join under it changed (the tree itself is reused)",
            "link:app": "a join under it changed (the app layer itself is reused)",
            # and not: the lock's comfyui section is the same bytes, so ComfyUI's
            # requirement and Manager layers (keyed to that section) stay cached.
        },
    ),
    Scenario(
        "base-change",
        "base image update",
        versions={"ubuntu": "24.10"},
        reruns={
            "runtime": ALL,
            "core": tuple(n for n in EVERY_CORE_STEP if n not in _CONTENT_ONLY),
        },
        why={
            ALL: "every runtime step is built on the base image, and every core step on the "
            "runtime image, which changed; except the copies of files the base does not "
            "change: the Manager's requirement file, the ComfyUI tree (rebuilt on the new "
            "runtime, to the same files) and the app code",
        },
    ),
]


@dataclass
class TargetRun:
    target: str
    seconds: float
    steps: list[Step]
    progress_file: Path
    metadata: dict[str, Any]
    # What the build moved through the engine's registry (bench/registry_traffic.py).
    traffic: Traffic = field(default_factory=Traffic)

    @property
    def cached(self) -> int:
        return sum(s.cached for s in self.steps)


def bake_target(bake_file: Path, target: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """``docker buildx bake`` of one target with rawjson progress (on stderr)."""
    command = ["docker", "buildx", "bake", *BAKE_ALLOW, "--file", str(bake_file)]
    return subprocess.run(
        [*command, "--progress", "rawjson", *flags, target],
        cwd=WORK,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )


def bake_plan(plan: dict[str, Any]) -> dict[str, str]:
    """Build every target of a plan in order, each on its own reading its parents from the
    registry (as the provider does), without pruning anything: target -> pushed digest."""
    bake_file = WORK / "bake.json"
    bake_file.write_text(json.dumps(to_bake(plan, secrets={"ca": CA_BUNDLE}, parents="image")))
    digests = {}
    for target in plan["order"]:
        meta = WORK / f"{target}.metadata.json"
        result = bake_target(bake_file, target, "--metadata-file", str(meta))
        if result.returncode != 0:
            raise RuntimeError(f"bake {target} failed:\n{result.stderr[-4000:]}")
        digests[target] = json.loads(meta.read_text())[target]["containerimage.digest"]
    return digests


def reset_local_state() -> None:
    """What a fresh CI runner has: no build cache, no images."""
    docker("buildx", "prune", "--all", "--force")
    images = docker("image", "ls", "--quiet", "--all").stdout.split()
    if images:
        docker("image", "rm", "--force", *sorted(set(images)), check=False)


def run_scenario(config: dict[str, Any], scenario: Scenario, out_dir: Path) -> dict[str, TargetRun]:
    plan = to_plan(run_program(config, stack="ci"))
    bake = to_bake(plan, secrets={"ca": CA_BUNDLE}, parents="image")
    bake_file = WORK / "bake.json"
    bake_file.write_text(json.dumps(bake, indent=2))
    out_dir.mkdir(parents=True, exist_ok=True)
    reset_local_state()
    runs: dict[str, TargetRun] = {}
    for target in plan["order"]:
        meta_file = out_dir / f"{target}.metadata.json"
        log_start = offset(REGISTRY_LOG)
        started = time.monotonic()
        result = bake_target(bake_file, target, "--metadata-file", str(meta_file))
        seconds = time.monotonic() - started
        moved = (
            traffic(REGISTRY_LOG, log_start, REGISTRY_STORE) if REGISTRY_LOG.exists() else Traffic()
        )
        progress = out_dir / f"{target}.rawjson"
        progress.write_text(result.stderr)
        if result.returncode != 0:
            raise RuntimeError(
                f"scenario {scenario.name}: bake {target} failed; progress in {progress}\n"
                + result.stderr[-3000:]
            )
        steps = steps_of(read_vertices(result.stderr).values(), target)
        runs[target] = TargetRun(
            target=target,
            seconds=seconds,
            steps=steps,
            progress_file=progress,
            metadata=json.loads(meta_file.read_text())[target],  # bake keys it by target
            traffic=moved,
        )
    return runs


# Steps whose result is a pure function of files that are the same in every target of a
# family (no image under them): the same cache key in core-cuda as in core-cpu, so the
# second target reuses what the first one (re)built. A stage FROM scratch, and the copy
# half of a `COPY --link` of the build context or of the ComfyUI tree (BuildKit shows a
# linked copy as two steps: the copy onto nothing, and "LINK ..." joining it to the image,
# which is per target). comfy-cli's venv is not among them: it holds the runtime's paths
# and bytecode, so its copy differs per runtime.
SHARED_STEPS = (
    CORE_STEPS["manager-file"],
    CORE_STEPS["app"],
    CORE_STEPS["join-comfyui-tree"],
)


def is_shared(step: Step) -> bool:
    return not step.text.startswith("LINK ") and any(m in step.text for m in SHARED_STEPS)


def step_name(step: Step) -> str:
    """The name of a core step: its CORE_STEPS key, "link:<key>" for the join of a linked
    copy (AssertionError for a step no marker names, or more than one)."""
    names = [name for name, marker in CORE_STEPS.items() if marker in step.text]
    if len(names) != 1:
        raise AssertionError(f"{len(names)} CORE_STEPS markers match {step.text[:80]!r}")
    return f"link:{names[0]}" if step.text.startswith("LINK ") else names[0]


def expected_reruns(scenario: Scenario, runs: dict[str, list[Step]]) -> dict[str, list[str]]:
    """Per target (in build order), the texts of the steps the scenario must rerun.

    ``runs`` maps each target to its steps. A shared step reruns in the first target that
    has it at most: later targets find the same cache key already built."""
    expected: dict[str, list[str]] = {}
    seen_shared: set[str] = set()
    for target, steps in runs.items():
        rule = scenario.reruns[family(target)]
        expected[target] = []
        for step in steps:
            # Only core's steps have names; a family reruns all of them or the ones named.
            runs_now = rule == ALL or (bool(rule) and step_name(step) in rule)
            if is_shared(step):
                runs_now = runs_now and step.text not in seen_shared
                seen_shared.add(step.text)
            if runs_now:
                expected[target].append(step.text)
    return expected


def relock(config: dict[str, Any], resolver: Any = None) -> dict[str, Any]:
    """A new lock of the stand-in for the config's pins, in the work dir, and the config
    reading it there (a real comfy-cli bump comes with its regenerated lock, as release
    tracking makes it); the program and the build both read that one file."""
    from tools import lock  # noqa: PLC0415 (uv is only needed here)

    v, s = config[f"{NS}:versions"], config[f"{NS}:sources"]
    source = WORK / s["comfyui"].replace("{version}", v["comfyui"])
    if not source.exists():
        make_comfyui_standin(source, v["comfyui"])
    argv = ["--comfyui-src", str(source), "--comfyui", v["comfyui"]]
    argv += ["--comfy-cli", v["comfyCli"], "--python", v["python"]]
    argv += ["--platform", config.get(f"{NS}:platform", "linux/amd64")]
    argv += [arg for name in TORCH_TRIO for arg in (f"--{name}", v[name])]
    argv += ["--output-dir", str(WORK / "locks" / "comfyui")]
    if lock.main(argv, resolver=resolver) != 0:
        raise RuntimeError(f"could not lock the stand-in for {v}")
    where = {**s, "comfyuiLock": str(WORK / "locks" / "comfyui" / "{version}")}
    return {**config, f"{NS}:sources": where}


def apply(config: dict[str, Any], scenario: Scenario) -> dict[str, Any]:
    if scenario.versions:
        versions = dict(config[f"{NS}:versions"])
        versions.update(scenario.versions)
        config = {**config, f"{NS}:versions": versions}
        if set(scenario.versions) & HEADER_PINS:
            config = relock(config)
    if scenario.edit:
        scenario.edit(WORK)
    return config


def family(target: str) -> str:
    return target.split("-", 1)[0]
