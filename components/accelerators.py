"""Accelerator kinds: what a line of each kind means for its torch index and torch's report.

PyTorch publishes one wheel index per line, and its wheels carry their accelerator's user
space (CUDA's libraries, ROCm's, Intel's), so a line is its index plus the check that the
installed torch is that index's build:

- ``cuda``: ``cu130`` for CUDA 13.0.x; torch reports ``torch.version.cuda`` "13.0"
  (``components/cuda.py`` holds CUDA's own facts: bases, drivers, SageAttention).
- ``rocm``: ``rocm7.14`` for ROCm 7.14; torch reports ``torch.version.hip`` "7.14.<build>"
  and no CUDA. Runs on the plain Ubuntu runtime: nothing of ROCm is needed below the wheel.
- ``xpu``: the one ``xpu`` index; torch reports ``torch.xpu._is_compiled()`` and neither
  CUDA nor HIP.

``torch_accelerator`` is the text the torch layer's strict check receives
(``TORCH_ACCELERATOR``): ``cuda:13.0``, ``rocm:7.14``, ``xpu``, or empty for a CPU build,
whose torch must report none of them.
"""

from __future__ import annotations

import re

from components import cuda

CUDA = "cuda"
ROCM = "rocm"
XPU = "xpu"
KINDS = (CUDA, ROCM, XPU)

# The stack's map of each kind's lines (its key in the stack file).
LINES_KEYS = {CUDA: "cudaLines", ROCM: "rocmLines", XPU: "xpuLines"}

XPU_LINE = "xpu"

_ROCM = re.compile(r"\d+\.\d+(?:\.\d+)?")
_ROCM_LINE = re.compile(r"rocm\d+\.\d+(?:\.\d+)?")


def is_rocm_release(text: str) -> bool:
    return bool(_ROCM.fullmatch(text))


def rocm_line_name(rocm: str) -> str:
    """PyTorch's index name for a ROCm release: 7.14 -> rocm7.14, 6.2.4 -> rocm6.2.4."""
    return f"rocm{rocm}"


def is_line_name(kind: str, name: str) -> bool:
    """Whether ``name`` can be a line of this kind (a build name's suffix)."""
    if kind == ROCM:
        return bool(_ROCM_LINE.fullmatch(name))
    if kind == XPU:
        return name == XPU_LINE
    return cuda.is_line_name(name)


def torch_accelerator(kind: str | None, release: str = "") -> str:
    """What the strict check needs torch to report: ``cuda:13.0`` for CUDA 13.0.2,
    ``rocm:7.14`` for ROCm 7.14 (HIP's major.minor), ``xpu``, or "" for a CPU build."""
    if kind is None:
        return ""
    if kind == XPU:
        return XPU
    major_minor = ".".join(release.split(".")[:2])
    return f"{kind}:{major_minor}"
