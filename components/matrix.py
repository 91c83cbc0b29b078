"""The builds of a stack: each selected catalog target, once per line where it has lines.

A target with a ``line_kind`` (cuda, rocm, xpu: ``components/accelerators.py``) is built on
every line of that kind, from the parents of the same line and with that line's pins: its
CUDA or ROCm release, its torch when the line overrides it, its SageAttention architectures,
its torch index. Without the kind's map in the stack file (``cudaLines``, ``rocmLines``,
``xpuLines``) the kind has one line from the stack's pins and keeps the plain target names,
tags and caches; a map names every build of that kind ``<target>-<line>`` (its resource,
cache ref, gha scope and local cache directory) and gives it the moving tag
``<movingTag>-<line>``. Repositories stay one per target, so the lines of an image sit side
by side as tags of one repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from components import accelerators, cuda
from components.catalog import TARGETS, Target
from components.settings import CudaLine, RocmLine, StackSettings


@dataclass(frozen=True)
class Build:
    """One Image to declare: a catalog target on one line (``line`` None for CPU ones).

    ``settings`` are the stack's settings with the line's pins applied, so everything
    downstream (inputs, tags, caches) reads one set of values per build.
    """

    name: str
    target: Target
    line: str | None
    settings: StackSettings
    parents: Mapping[str, str]  # named context -> build name


def build_name(target: Target, line: str | None, *, matrix: bool) -> str:
    return f"{target.name}-{line}" if matrix and target.line_kind and line else target.name


def _lines(settings: StackSettings, target: Target) -> list[str | None]:
    return list(settings.lines_of(target.line_kind)) if target.line_kind else [None]


def _matrix(settings: StackSettings, target: Target) -> bool:
    return target.line_kind is not None and settings.has_line_map(target.line_kind)


def build_names(settings: StackSettings) -> list[str]:
    """Every build's name in build order, without resolving any pins (for validation)."""
    names: list[str] = []
    for target_name in settings.build_order:
        target = TARGETS[target_name]
        matrix = _matrix(settings, target)
        names += [build_name(target, line, matrix=matrix) for line in _lines(settings, target)]
    return names


def line_settings(settings: StackSettings, kind: str, line: str) -> StackSettings:
    """The stack's settings as the builds of one line of a kind see them."""
    spec = settings.lines_of(kind)[line]
    pins: dict[str, str] = {
        pin: value for pin in cuda.TORCH_TRIO if (value := getattr(spec, pin)) is not None
    }
    update: dict[str, object] = {}
    if isinstance(spec, CudaLine):
        pins["cuda"] = spec.cuda
        update["cudaArchList"] = spec.cudaArchList or cuda.default_arch_list(spec.cuda)
    elif isinstance(spec, RocmLine):
        pins["rocm"] = spec.rocm
    update["versions"] = settings.versions.model_copy(update=pins)
    if settings.has_line_map(kind):
        update["movingTag"] = f"{settings.movingTag}-{line}"
    return settings.model_copy(update=update)


def builds(settings: StackSettings) -> dict[str, Build]:
    """Every build of the stack, parents first."""
    per_line = {
        (kind, line): line_settings(settings, kind, line)
        for kind in accelerators.KINDS
        for line in settings.lines_of(kind)
    }
    out: dict[str, Build] = {}
    for target_name in settings.build_order:
        target = TARGETS[target_name]
        matrix = _matrix(settings, target)
        for line in _lines(settings, target):
            name = build_name(target, line, matrix=matrix)
            out[name] = Build(
                name=name,
                target=target,
                line=line,
                settings=per_line[(target.line_kind, line)]
                if target.line_kind and line
                else settings,
                parents={
                    ctx: build_name(TARGETS[parent], line, matrix=matrix)
                    for ctx, parent in target.parents.items()
                },
            )
    return out


def target_of(name: str) -> Target:
    """The catalog target of a build name: ``core-cuda-cu126`` -> core-cuda."""
    if name in TARGETS:
        return TARGETS[name]
    base, _, line = name.rpartition("-")
    kind = TARGETS[base].line_kind if base in TARGETS else None
    if kind is not None and accelerators.is_line_name(kind, line):
        return TARGETS[base]
    raise KeyError(f"no target builds {name!r}")


def parents_of(name: str) -> dict[str, str]:
    """A build's parents by name (named context -> build), on the build's own line."""
    target = target_of(name)
    line = name.removeprefix(target.name).removeprefix("-") or None
    return {
        ctx: build_name(TARGETS[parent], line, matrix=line is not None)
        for ctx, parent in target.parents.items()
    }
