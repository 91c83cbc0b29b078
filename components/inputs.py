"""Resolved inputs: the concrete values behind the catalog's input keys.

A pin in ``versions`` (or a location in ``sources``) becomes one or more named inputs;
each target's build args and source contexts pick the inputs they consume (catalog.py).
So the routing of a pin to the Images whose layers it changes is data, and a test bumps
every pin to prove it reaches exactly those Images.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from components import accelerators, cuda, locks
from components.accelerators import CUDA, ROCM, XPU
from components.catalog import Target
from components.refs import MAX_TAG
from components.settings import StackSettings

_FULL_COMMIT = re.compile(r"[0-9a-f]{40}")


def resolve(settings: StackSettings) -> dict[str, str]:
    """Every input key the catalog may reference, resolved for this stack (or, for a CUDA
    build, for its line: ``matrix.line_settings``)."""
    v, s = settings.versions, settings.sources
    line = cuda.wheel_tag(v.cuda)
    # No lock: both empty, so the context and arg are left out and core resolves freely.
    lock = locks.find(settings)
    return {
        # `base`, not `runtime`: the torch wheels bring their own CUDA libraries.
        "cudaBaseImage": f"{s.cudaImage}:{v.cuda}-base-ubuntu{v.ubuntu}",
        "cudaDevelImage": f"{s.cudaImage}:{v.cuda}-devel-ubuntu{v.ubuntu}",
        "ubuntuImage": f"{s.ubuntuImage}:{v.ubuntu}",
        "python": v.python,
        "torch": v.torch,
        "torchvision": v.torchvision,
        "torchaudio": v.torchaudio,
        "torchIndexCpu": s.torchIndexCpu,
        "torchIndexCuda": s.torchIndexCuda.replace("{line}", line),
        "torchIndexRocm": s.torchIndexRocm.replace("{line}", accelerators.rocm_line_name(v.rocm)),
        "torchIndexXpu": s.torchIndexXpu.replace("{line}", accelerators.XPU_LINE),
        "torchAcceleratorCuda": accelerators.torch_accelerator(CUDA, cuda.torch_cuda(v.cuda)),
        "torchAcceleratorRocm": accelerators.torch_accelerator(ROCM, v.rocm),
        "torchAcceleratorXpu": accelerators.torch_accelerator(XPU),
        # A CPU build's torch reports no accelerator; empty, so the arg is left out (image.py).
        "noAccelerator": accelerators.torch_accelerator(None),
        "comfyCli": v.comfyCli,
        "comfyui": v.comfyui,
        "comfyuiSource": s.comfyui.replace("{version}", v.comfyui),
        "sageattention": v.sageattention,
        "sageattentionSource": s.sageattention.replace("{version}", v.sageattention),
        "cudaArchList": settings.cudaArchList or cuda.default_arch_list(v.cuda),
        "pypiMirrorUrl": s.pypiMirror,
        "wheelhouse": s.wheelhouse,
        "comfyuiLock": lock.location if lock.sha256 else "",
        "comfyuiLockSha256": lock.sha256 or "",
    }


@dataclass(frozen=True)
class TargetInputs:
    """What one Image receives besides its parents: build args and source contexts."""

    build_args: Mapping[str, str]
    source_contexts: Mapping[str, str]
    version_tag: str


def for_target(target: Target, settings: StackSettings) -> TargetInputs:
    values = resolve(settings)
    contexts = {ctx: values[k] for ctx, k in target.sources.items() if values[k]}
    return TargetInputs(
        build_args={arg: values[k] for arg, k in target.args.items()},
        source_contexts=contexts,
        version_tag=version_tag(target, settings),
    )


def version_tag(target: Target, settings: StackSettings) -> str:
    """Human-readable tag naming the pins of a target, and different for different pins.

    A full commit is shortened to 12 hex digits. When making the text a valid tag loses
    anything (a ``+`` becomes ``-``, the 128-character limit cuts it), a digest of the
    exact text is appended, so ``2.8.0+a`` and ``2.8.0-a`` never share a tag and a pin bump
    never overwrites the image of another pin.
    """
    fields = settings.versions.model_dump()
    for name, value in fields.items():
        if _FULL_COMMIT.fullmatch(value):
            fields[name] = value[:12]
    text = target.version_tag.format(**fields)
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in text)
    cleaned = cleaned.lstrip(".-")
    if cleaned == text and len(cleaned) <= MAX_TAG:
        return cleaned
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{cleaned[: MAX_TAG - len(digest) - 2]}-h{digest}"


def repository(settings: StackSettings, target: str) -> str:
    return f"{settings.registry.address}/{settings.registry.namespace}/{target}"


class ImageTags(NamedTuple):
    """A target's two tags, by name: ``version`` names its pins (and becomes ``ref``),
    ``moving`` follows the newest build (``latest``, ``latest-cu126``)."""

    version: str
    moving: str


def image_tags(settings: StackSettings, target: str, version_tag: str) -> ImageTags:
    repo = repository(settings, target)
    return ImageTags(version=f"{repo}:{version_tag}", moving=f"{repo}:{settings.movingTag}")
