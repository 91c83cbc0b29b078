"""Resolved inputs: the concrete values behind the catalog's input keys.

A pin in ``versions`` (or a location in ``sources``) becomes one or more named inputs;
each target's build args and source contexts pick the inputs they consume (catalog.py).
So the routing of a pin to the Images whose layers it changes is data, and a test bumps
every pin to prove it reaches exactly those Images.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from components.catalog import Target
from components.settings import StackSettings


def cuda_wheel_tag(cuda: str) -> str:
    """PyTorch's index name for a CUDA release: 12.9.1 -> cu129."""
    major, minor = [*cuda.split("."), "0"][:2]
    return f"cu{major}{minor}"


def resolve(settings: StackSettings) -> dict[str, str]:
    """Every input key the catalog may reference, resolved for this stack."""
    v, s = settings.versions, settings.sources
    return {
        "cudaRuntimeImage": f"{s.cudaImage}:{v.cuda}-runtime-ubuntu{v.ubuntu}",
        "cudaDevelImage": f"{s.cudaImage}:{v.cuda}-devel-ubuntu{v.ubuntu}",
        "ubuntuImage": f"{s.ubuntuImage}:{v.ubuntu}",
        "python": v.python,
        "torch": v.torch,
        "torchvision": v.torchvision,
        "torchaudio": v.torchaudio,
        "torchIndexCpu": s.torchIndexCpu,
        "torchIndexCuda": s.torchIndexCuda
        if s.torchIndexCuda is not None
        else f"https://download.pytorch.org/whl/{cuda_wheel_tag(v.cuda)}",
        "comfyCli": v.comfyCli,
        "comfyui": v.comfyui,
        "comfyuiSource": s.comfyui.replace("{version}", v.comfyui),
        "sageattention": v.sageattention,
        "sageattentionSource": s.sageattention.replace("{version}", v.sageattention),
        "cudaArchList": settings.cudaArchList,
        "pypiMirrorUrl": s.pypiMirror,
        "wheelhouse": s.wheelhouse,
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
    """Human-readable tag naming the pins of a target, sanitised to a valid tag."""
    fields = settings.versions.model_dump()
    fields["sageattention"] = fields["sageattention"][:12]
    text = target.version_tag.format(**fields)
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in text)
    return cleaned.lstrip(".-")[:128]
