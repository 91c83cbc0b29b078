"""The image family, declared once as data.

Everything else derives from this table: the dependency graph (``graph.py``), the build
args and named contexts each Image receives (``inputs.py``), the offline plan, the bake
file and the static Dockerfile tests. A target never lists a pin it does not consume:
routing a pin to an Image whose layers it does not change would rebuild that Image for
nothing, and is tested against the Dockerfiles themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from components.accelerators import CUDA, ROCM, XPU

DOCKERFILES_DIR = "dockerfiles"


@dataclass(frozen=True)
class Target:
    """One image target: a stage of a Dockerfile plus what feeds it.

    ``parents`` maps a named build context to the target whose pushed image fills it
    (``docker-image://<parent ref>``): the Dockerfile says ``FROM <context>`` or
    ``COPY --from=<context>``. ``args`` maps each build arg to the resolved input
    (``inputs.py``) that sets it. ``sources`` maps a named context to a resolved
    input holding a location (a pinned git URL, a mirror, a local directory).
    A target with a ``line_kind`` is built once per line of that accelerator kind
    (``components/accelerators.py``), its per-line parents on the same line.
    """

    name: str
    directory: str
    stage: str
    parents: Mapping[str, str] = field(default_factory=dict)
    args: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    version_tag: str = ""
    # Built once per line of this kind (matrix.py), with that line's pins; None: once.
    line_kind: str | None = None
    # Built only for other targets to build on, never run: no version label (image.py).
    internal: bool = False
    # The build context under dockerfiles/, when it is not ``directory``: a stage that reads
    # no file of its Dockerfile's directory takes an empty one, so that an edit of those
    # files (core's app code) changes neither its inputs nor its plan.
    context: str = ""

    @property
    def context_dir(self) -> str:
        """Build context, relative to the project root (stable across machines)."""
        return f"{DOCKERFILES_DIR}/{self.context or self.directory}"

    @property
    def dockerfile(self) -> str:
        return f"{DOCKERFILES_DIR}/{self.directory}/Dockerfile"


# Inputs shared by every target that runs pip: a wheelhouse of local wheels (empty by
# default) and an optional PyPI mirror. Both change what pip may resolve, so both are
# part of the cache key of the pip layers that see them.
_PIP = {"PYPI_MIRROR_URL": "pypiMirrorUrl"}
_WHEELHOUSE = {"wheelhouse": "wheelhouse"}

_TORCH = {
    "TORCH_VERSION": "torch",
    "TORCHVISION_VERSION": "torchvision",
    "TORCHAUDIO_VERSION": "torchaudio",
}

# Both halves of core read the lock (components/locks.py): the environment its ComfyUI
# section, core's own stages its comfy-cli section. COMFYUI_LOCK is its sha256: the layers
# that mount it check they got that file.
_LOCK = {"COMFYUI_LOCK": "comfyuiLockSha256"}
# ComfyUI's and comfy-cli's dependencies, locked per ComfyUI version (components/locks.py).
_CORE_SOURCES = {"comfyui-src": "comfyuiSource", "comfyui-lock": "comfyuiLock", **_WHEELHOUSE}
# The runtime every core of a platform shares: runtime-cpu's plain OS and interpreter. The
# stages of core that need no accelerator (comfy-cli's environment, the ComfyUI tree, the
# lock split) are built on it, so they have one cache key for every core: a comfy-cli bump
# builds and pushes comfy-cli's environment once, not once per runtime, and each core links
# the same layer. Every runtime installs the same pinned interpreter at the same path.
_COMMON_RUNTIME = {"common-runtime": "runtime-cpu"}


def _core(
    kind: str,
    runtime: str,
    version_tag: str,
    *,
    line_kind: str | None = None,
    accelerator: str | None = None,
) -> tuple[Target, Target]:
    """core-env-<kind> and core-<kind>: ComfyUI's Python environment on ``runtime``, with
    torch from the kind's index (``torchIndex<Kind>``) checked against what the kind's torch
    must report (``torchAccelerator<Kind>``); then ComfyUI, comfy-cli and the app code on it.

    The environment is an image of its own, pinned by digest, because complete mounts it:
    an app-code change makes a new core but leaves the environment's digest alone, so
    complete's dependency stage keeps its cache key and nothing of core is pulled.
    """
    suffix = kind.capitalize()
    env = Target(
        name=f"core-env-{kind}",
        directory="core",
        context="core/env",
        stage="comfyui-env",
        internal=True,
        parents={"runtime": runtime, **_COMMON_RUNTIME},
        args={
            **_PIP,
            **_TORCH,
            "TORCH_INDEX_URL": f"torchIndex{suffix}",
            "TORCH_ACCELERATOR": accelerator or f"torchAccelerator{suffix}",
            **_LOCK,
        },
        sources=_CORE_SOURCES,
        version_tag=version_tag,
        line_kind=line_kind,
    )
    core = Target(
        name=f"core-{kind}",
        directory="core",
        stage="core",
        parents={"comfyui-env": env.name, **_COMMON_RUNTIME},
        args={**_PIP, "COMFY_CLI_VERSION": "comfyCli", "COMFYUI_VERSION": "comfyui", **_LOCK},
        sources=_CORE_SOURCES,
        version_tag=version_tag,
        line_kind=line_kind,
    )
    return env, core


TARGETS: Mapping[str, Target] = MappingProxyType(
    {
        t.name: t
        for t in (
            Target(
                name="runtime-cuda",
                directory="runtime",
                stage="runtime",
                args={"BASE_IMAGE": "cudaBaseImage", "PYTHON_VERSION": "python"},
                version_tag="cuda{cuda}-ubuntu{ubuntu}-py{python}",
                line_kind=CUDA,
            ),
            Target(
                name="runtime-cpu",
                directory="runtime",
                stage="runtime",
                args={"BASE_IMAGE": "ubuntuImage", "PYTHON_VERSION": "python"},
                version_tag="ubuntu{ubuntu}-py{python}",
            ),
            *_core("cuda", "runtime-cuda", "{comfyui}-cu{cuda}-torch{torch}", line_kind=CUDA),
            *_core("cpu", "runtime-cpu", "{comfyui}-cpu-torch{torch}", accelerator="noAccelerator"),
            # ROCm and XPU torch wheels carry their own user space, so their cores start
            # from the plain Ubuntu runtime (runtime-cpu's image, shared, built once).
            *_core("rocm", "runtime-cpu", "{comfyui}-rocm{rocm}-torch{torch}", line_kind=ROCM),
            *_core("xpu", "runtime-cpu", "{comfyui}-xpu-torch{torch}", line_kind=XPU),
            Target(
                name="sageattention-builder",
                directory="sageattention",
                stage="sageattention-builder",
                args={
                    **_PIP,
                    "BASE_IMAGE": "cudaDevelImage",
                    "PYTHON_VERSION": "python",
                    "TORCH_VERSION": "torch",
                    "TORCH_INDEX_URL": "torchIndexCuda",
                    "TORCH_ACCELERATOR": "torchAcceleratorCuda",
                    "SAGEATTENTION_VERSION": "sageattention",
                    "TORCH_CUDA_ARCH_LIST": "cudaArchList",
                },
                sources={"sageattention-src": "sageattentionSource", **_WHEELHOUSE},
                version_tag="{sageattention}-cu{cuda}-torch{torch}",
                line_kind=CUDA,
            ),
            Target(
                name="complete-cuda",
                directory="complete",
                stage="complete",
                # runtime: the interpreter core's venv was made from, for complete's own
                # dependency stage, which mounts that venv from core's environment image
                # (dockerfiles/complete/Dockerfile).
                parents={
                    "runtime": "runtime-cuda",
                    "comfyui-env": "core-env-cuda",
                    "core": "core-cuda",
                    "sageattention": "sageattention-builder",
                },
                args=dict(_PIP),
                sources=dict(_WHEELHOUSE),
                version_tag="{comfyui}-cu{cuda}-sage{sageattention}",
                line_kind=CUDA,
            ),
        )
    }
)
