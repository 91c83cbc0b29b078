"""CUDA lines: what a CUDA release means for torch's index, SageAttention and the host driver.

Pure facts and rules, read from their sources (late 2026) so settings, inputs and the docs
share one copy:

- PyTorch publishes one wheel index per CUDA line, named by major and minor (``cu130``,
  ``cu126``); the build of a pin on that index reports ``torch.version.cuda`` as "13.0".
- SageAttention's ``sageattn()`` (the pinned commit, sageattention/core.py) dispatches to
  sm80, sm86, sm89, sm90, sm120 and sm121 and raises on anything else, so compiling for
  10.0 costs build time for nothing. Its setup.py refuses 8.9 below CUDA 12.4, 9.0 below
  12.3 and 12.0 below 12.8. PTX (``+PTX``) is never dispatched to either: the code checks
  the exact architecture, so a later GPU raises instead of running JIT-compiled PTX.
- On linux/arm64 the GPUs it can dispatch to are the A100 in Arm servers (8.0), GH200
  (9.0) and GB10, the DGX Spark (12.1). GB200/GB300 (10.0) and Jetson Thor (11.0) have no
  path in it, and Jetson Orin (8.7) is neither dispatched to nor on a CUDA 13 line, so an
  arm64 build compiles only for the first three (``ARM64_GPU_ARCHS``).
- Every nvidia/cuda image sets ``NVIDIA_REQUIRE_CUDA=cuda>=X.Y``, which refuses a host
  whose driver is older than that CUDA release's minimum (NVIDIA's release notes, table 3).
"""

from __future__ import annotations

import re
from typing import Protocol

from components.platforms import AMD64, ARM64

# The packages a line installs together from its own torch index; each is a pin a line
# may override (cudaLines.<line>.torch, ...).
TORCH_TRIO = ("torch", "torchvision", "torchaudio")

# Architectures the pinned SageAttention can dispatch to, with the CUDA each first needs
# (nvcc support, and SageAttention's own setup.py floor).
SAGEATTENTION_ARCHS: dict[str, tuple[int, int]] = {
    "8.0": (12, 0),
    "8.6": (12, 0),
    "8.9": (12, 4),
    "9.0": (12, 3),
    "12.0": (12, 8),
    "12.1": (12, 9),
}

# The arm64 GPUs SageAttention dispatches to (see the module docstring): an arm64 build's
# default list is these, where the line's CUDA can compile them.
ARM64_GPU_ARCHS: dict[str, str] = {"8.0": "A100", "9.0": "GH200", "12.1": "GB10 (DGX Spark)"}

# The config key of each platform's list (top level, or per line in cudaLines).
ARCH_LIST_KEYS = {AMD64: "cudaArchList", ARM64: "arm64CudaArchList"}


class HasArchLists(Protocol):
    """A CUDA line as the settings hold it (frozen: read-only members)."""

    @property
    def cuda(self) -> str: ...
    @property
    def cudaArchList(self) -> str | None: ...  # noqa: N802 (the config key's name)
    @property
    def arm64CudaArchList(self) -> str | None: ...  # noqa: N802 (the config key's name)


# Minimum Linux driver of a CUDA major.minor for GeForce/RTX (no forward-compat package).
MIN_DRIVER: dict[tuple[int, int], str] = {
    (12, 4): "550.54.14",
    (12, 6): "560.28.03",
    (12, 8): "570.26",
    (12, 9): "575.51.03",
    (13, 0): "580.65.06",
}

# The oldest CUDA a line may have: SageAttention's setup.py refuses anything older.
OLDEST = (12, 0)

_CUDA = re.compile(r"(\d+)\.(\d+)(?:\.\d+)?")
_LINE = re.compile(r"cu\d{3,4}")


def major_minor(cuda: str) -> tuple[int, int] | None:
    """(13, 0) for "13.0.2"; None when the text is not a CUDA version."""
    m = _CUDA.fullmatch(cuda)
    return (int(m[1]), int(m[2])) if m else None


def release(cuda: str) -> tuple[int, int]:
    """(13, 0) for "13.0.2". The settings refuse any other CUDA pin, so a text that is not a
    release here is a bug, not a config error."""
    mm = major_minor(cuda)
    if mm is None:
        raise ValueError(f"{cuda!r} is not a CUDA release")
    return mm


def wheel_tag(cuda: str) -> str:
    """PyTorch's index name for a CUDA release: 13.0.2 -> cu130, 12.6.3 -> cu126."""
    major, minor = release(cuda)
    return f"cu{major}{minor}"


def torch_cuda(cuda: str) -> str:
    """What ``torch.version.cuda`` reports for a build of this line: 13.0.2 -> "13.0"."""
    major, minor = release(cuda)
    return f"{major}.{minor}"


def is_line_name(name: str) -> bool:
    return bool(_LINE.fullmatch(name))


def default_arch_list(cuda: str, platform: str = AMD64) -> str:
    """Every architecture SageAttention dispatches to that this CUDA can compile for; on
    linux/arm64, only those of arm64 GPUs."""
    mm = release(cuda)
    wanted = ARM64_GPU_ARCHS if platform == ARM64 else SAGEATTENTION_ARCHS
    return ";".join(a for a, floor in SAGEATTENTION_ARCHS.items() if mm >= floor and a in wanted)


def arch_list_of(line: HasArchLists, platform: str) -> str:
    """The TORCH_CUDA_ARCH_LIST of a line's builds for one platform: the line's own, or the
    default for its CUDA and that platform."""
    own = line.arm64CudaArchList if platform == ARM64 else line.cudaArchList
    return own or default_arch_list(line.cuda, platform)


def arch_list_problem(arch_list: str, cuda: str, platform: str = AMD64) -> str | None:
    """Why this TORCH_CUDA_ARCH_LIST wastes or breaks a SageAttention build on this CUDA."""
    mm = release(cuda)
    example = default_arch_list(cuda, platform)
    entries = arch_list.split(";")
    if not arch_list or any(not a for a in entries):
        return f"is empty or has an empty entry; e.g. {example!r}"
    for arch in entries:
        if arch.endswith("+PTX"):
            return (
                f"asks for PTX ({arch}), which SageAttention never runs (it dispatches on the "
                f"exact architecture); drop '+PTX', e.g. {example!r}"
            )
        if arch not in SAGEATTENTION_ARCHS:
            return (
                f"has {arch}, which the pinned SageAttention cannot dispatch to (it supports "
                f"{', '.join(SAGEATTENTION_ARCHS)}); e.g. {example!r}"
            )
        floor = SAGEATTENTION_ARCHS[arch]
        if mm < floor:
            return (
                f"has {arch}, which needs CUDA {floor[0]}.{floor[1]} or later, but this line "
                f"is CUDA {cuda}; e.g. {example!r}"
            )
    if len(set(entries)) != len(entries):
        return "names an architecture twice; list each once"
    return None


def min_driver(cuda: str) -> str | None:
    mm = major_minor(cuda)
    return MIN_DRIVER.get(mm) if mm else None
