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

    @property
    def context_dir(self) -> str:
        """Build context, relative to the project root (stable across machines)."""
        return f"{DOCKERFILES_DIR}/{self.directory}"

    @property
    def dockerfile(self) -> str:
        return f"{self.context_dir}/Dockerfile"


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

_CORE_ARGS = {
    **_PIP,
    **_TORCH,
    "COMFY_CLI_VERSION": "comfyCli",
    "COMFYUI_VERSION": "comfyui",
    # The sha256 of the lock below: the layers that mount it check they got that file.
    "COMFYUI_LOCK": "comfyuiLockSha256",
}
# ComfyUI's and comfy-cli's dependencies, locked per ComfyUI version (components/locks.py).
_CORE_SOURCES = {"comfyui-src": "comfyuiSource", "comfyui-lock": "comfyuiLock", **_WHEELHOUSE}


def _core(
    kind: str,
    runtime: str,
    version_tag: str,
    *,
    line_kind: str | None = None,
    accelerator: str | None = None,
) -> Target:
    """core-<kind>: ComfyUI on ``runtime``, torch from the kind's index (``torchIndex<Kind>``)
    checked against what the kind's torch must report (``torchAccelerator<Kind>``)."""
    suffix = kind.capitalize()
    return Target(
        name=f"core-{kind}",
        directory="core",
        stage="core",
        parents={"runtime": runtime},
        args={
            **_CORE_ARGS,
            "TORCH_INDEX_URL": f"torchIndex{suffix}",
            "TORCH_ACCELERATOR": accelerator or f"torchAccelerator{suffix}",
        },
        sources=_CORE_SOURCES,
        version_tag=version_tag,
        line_kind=line_kind,
    )


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
            _core("cuda", "runtime-cuda", "{comfyui}-cu{cuda}-torch{torch}", line_kind=CUDA),
            _core("cpu", "runtime-cpu", "{comfyui}-cpu-torch{torch}", accelerator="noAccelerator"),
            # ROCm and XPU torch wheels carry their own user space, so their cores start
            # from the plain Ubuntu runtime (runtime-cpu's image, shared, built once).
            _core("rocm", "runtime-cpu", "{comfyui}-rocm{rocm}-torch{torch}", line_kind=ROCM),
            _core("xpu", "runtime-cpu", "{comfyui}-xpu-torch{torch}", line_kind=XPU),
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
                # dependency stage (dockerfiles/complete/Dockerfile).
                parents={
                    "runtime": "runtime-cuda",
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
