"""Stand-ins for the upstream inputs the engine cannot reach, fed to the stacks through the
overrides users have for mirrors: base images under ``<registry>/mirror/...``, ComfyUI and
SageAttention source directories, and one PEP 503 index of tiny ``torch*`` wheels per line,
served over HTTP on loopback by engine/up, as PyTorch's index serves the real ones."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.engine import Engine, docker
from bench.pep503 import write_project_page, write_root_page
from components import accelerators, cuda
from components.catalog import TARGETS
from components.cuda import TORCH_TRIO
from components.graph import selected_with_parents
from components.project import NAMESPACE, ROOT
from components.settings import PIN_EXAMPLES
from tools.offline import load_stack_config

NS = NAMESPACE
WORK = ROOT / "build" / "engine-work"
# The stand-in torch indexes, one directory per line: engine/up serves this directory at
# ENGINE_INDEX_URL (INDEX_DIR there), so builds fetch torch over HTTP as from PyTorch's
# index, and no wheel rides in a build context.
INDEX = ROOT / "build" / "standins" / "index"
# Where the ci and standins stacks expect it: engine/up's default (ENGINE_INDEX_PORT).
STACK_INDEX_URL = "http://127.0.0.1:5056"


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
    """Each torch index a stack config installs from ("cpu", its CUDA lines, and the ROCm and
    XPU lines when it builds their cores), with the torch pins it asks that index for (a
    line's own overrides included)."""
    versions = config.get(f"{NS}:versions") or {}
    pins = {name: versions.get(name, PIN_EXAMPLES[name]) for name in TORCH_TRIO}
    lines = dict(
        config.get(f"{NS}:cudaLines")
        or {cuda.wheel_tag(versions.get("cuda", PIN_EXAMPLES["cuda"])): {}}
    )
    # The kinds the stack builds, as the catalog says (a target and its parents).
    kinds = {TARGETS[t].line_kind for t in selected_with_parents(config.get(f"{NS}:targets") or [])}
    if accelerators.ROCM in kinds:
        rocm = accelerators.rocm_line_name(versions.get("rocm", PIN_EXAMPLES["rocm"]))
        lines |= config.get(f"{NS}:rocmLines") or {rocm: {}}
    if accelerators.XPU in kinds:
        lines |= config.get(f"{NS}:xpuLines") or {accelerators.XPU_LINE: {}}
    result = {"cpu": pins}
    for line, spec in lines.items():
        result[line] = {name: (spec or {}).get(name) or pins[name] for name in TORCH_TRIO}
    return result


def standin_torch_modules(line: str, version: str) -> dict[str, str]:
    """The stand-in torch of one line's index, reporting what a real build of that line
    reports: ``torch.version.cuda`` ("12.9" on cu129), ``torch.version.hip`` ("7.14.0-..."
    on rocm7.14), ``torch.xpu._is_compiled()`` (True on xpu); none of them on cpu. No device
    is ever usable here: ``torch.cuda`` and ``torch.xpu`` answer as on a host without GPUs."""
    cuda_text = repr(f"{line[2:-1]}.{line[-1]}") if cuda.is_line_name(line) else "None"
    rocm = line.removeprefix("rocm")
    hip_text = repr(f"{rocm}.0-standin") if accelerators.is_line_name("rocm", line) else "None"
    device = (
        "def is_available():\n    return False\n\n\n"
        "def get_device_name(index=0):\n    raise RuntimeError('no device (a stand-in torch)')\n"
    )
    return {
        "__init__.py": f'from torch import cuda, version, xpu\n__version__ = "{version}"\n',
        "version.py": f'__version__ = "{version}"\ncuda = {cuda_text}\nhip = {hip_text}\n',
        "cuda.py": device,
        "xpu.py": device + f"\n\ndef _is_compiled():\n    return {line == accelerators.XPU_LINE}\n",
    }


def make_torch_index(index: Path, line: str, pins: dict[str, str]) -> Path:
    """A PEP 503 index of stand-in torch, torchvision and torchaudio for one line ("cpu",
    "cu129", "rocm7.14", "xpu"), laid out like PyTorch's own under ``<index>/<line>``: each
    pin's public version with the line as local label (2.8.0+cu129.standin), linked with its
    sha256, and a torch that reports the line's accelerator (``standin_torch_modules``). The
    stacks reach it as ``<ENGINE_INDEX_URL>/<line>`` (engine/up serves ``INDEX``)."""
    root = index / line
    for name in TORCH_TRIO:
        version = f"{pins[name].split('+', 1)[0]}+{line}.standin"
        project = root / name
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        modules = standin_torch_modules(line, version) if name == "torch" else {}
        make_wheel(project, name, version, modules)
        write_project_page(project)
    write_root_page(root)
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
    """A base image under a mirror name: the engine's Debian stand-in plus a marker file,
    for each platform the builder serves (linux/amd64, and linux/arm64 on its arm64 node:
    one multi-platform index, as the real mirrors hold).

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
    # One platform: the builder's default node, as before there were two.
    platforms = ["--platform", ",".join(engine.platforms)] if len(engine.platforms) > 1 else []
    subprocess.run(
        ["docker", "buildx", "build", *platforms, "--push", "-t", ref, "-f", "-", str(empty)],
        input=dockerfile,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )


NVCC_LABEL = "io.comfyui-images.standin.nvcc"


def standin_missing(ref: str, *, nvcc: str = "", platforms: tuple[str, ...] = ()) -> bool:
    """Whether ``ref`` must be (re)pushed: absent, lacking one of ``platforms`` (a stand-in
    pushed for linux/amd64 alone when the builder also serves linux/arm64), or a devel
    stand-in without our nvcc on every platform (stand-ins pushed before the builder was
    built here had none)."""
    found = docker(
        "buildx", "imagetools", "inspect", ref, "--format", "{{json .Image}}", check=False
    )
    if found.returncode != 0:
        return True
    configs = image_configs(json.loads(found.stdout or "null") or {})
    if any(p not in configs for p in platforms):
        return True
    if not nvcc:
        return False
    return any(
        ((c.get("config") or {}).get("Labels") or {}).get(NVCC_LABEL) != nvcc
        for c in configs.values()
    )


def image_configs(image: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``imagetools inspect --format '{{json .Image}}'`` as {"os/arch": image config}: one
    config for a single-platform image, a map keyed by platform for an index of several."""
    if "architecture" in image or "os" in image:
        return {f"{image.get('os')}/{image.get('architecture')}": image}
    return {"/".join(key.split("/")[:2]): config for key, config in image.items() if config}


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
    """Fresh work dir (a copy of dockerfiles/ and locks/) plus the stand-in torch indexes
    the config installs from (in ``INDEX``, outside the work dir: engine/up serves it)."""
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(ROOT / "dockerfiles", WORK / "dockerfiles")
    shutil.copytree(ROOT / "locks", WORK / "locks")
    for line, pins in torch_lines(config).items():
        make_torch_index(INDEX, line, pins)


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
        if standin_missing(ref, nvcc=nvcc, platforms=engine.platforms):
            push_base_standin(engine, ref, marker, nvcc=nvcc)


def ci_config(engine: Engine, run_id: str) -> dict[str, Any]:
    """stacks/Pulumi.ci.yaml pointed at this engine, in a namespace of its own (truly cold)."""
    config = load_stack_config("ci")
    config[f"{NS}:registry"] = {"address": engine.registry, "namespace": f"comfyui-ci/{run_id}"}
    sources = dict(config[f"{NS}:sources"])
    sources["cudaImage"] = f"{engine.registry}/mirror/nvidia/cuda"
    sources["ubuntuImage"] = f"{engine.registry}/mirror/ubuntu"
    for key in TORCH_INDEX_KEYS:
        sources[key] = at_engine_index(sources[key], engine.index_url)
    config[f"{NS}:sources"] = sources
    return config


TORCH_INDEX_KEYS = ("torchIndexCpu", "torchIndexCuda", "torchIndexRocm", "torchIndexXpu")


def is_standin_index(url: str) -> bool:
    """An index on this machine's loopback over HTTP: the one engine/up serves, whatever its
    port (ci_config moves the stacks' URLs to the engine's)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost"}


def at_engine_index(url: str, index_url: str) -> str:
    """``url`` (a stack's stand-in index, under ``STACK_INDEX_URL``) on the index the engine
    actually serves; any other index is left as it is."""
    if not url.startswith(STACK_INDEX_URL + "/"):
        return url
    return index_url.rstrip("/") + url.removeprefix(STACK_INDEX_URL)


# --- scenarios ------------------------------------------------------------------------
