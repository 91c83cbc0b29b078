"""The builds of a stack: each selected catalog target, once per CUDA line where it has one.

A CUDA target (``Target.per_cuda_line``) is built on every line of the stack, from the
parents of the same line and with that line's pins: its CUDA release, its torch when the
line overrides it, its SageAttention architectures, its torch index. A single-line stack
(no ``cudaLines``) keeps the plain target names, tags and caches; a matrix names every CUDA
build ``<target>-<line>`` (its resource, cache ref, gha scope and local cache directory)
and gives it the moving tag ``<movingTag>-<line>``. Repositories stay one per target, so
the lines of an image sit side by side as tags of one repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from components import cuda
from components.catalog import TARGETS, Target

if TYPE_CHECKING:
    from components.settings import StackSettings


@dataclass(frozen=True)
class Build:
    """One Image to declare: a catalog target on one CUDA line (``line`` None for CPU ones).

    ``settings`` are the stack's settings with the line's pins applied, so everything
    downstream (inputs, tags, caches) reads one set of values per build.
    """

    name: str
    target: Target
    line: str | None
    settings: StackSettings
    parents: Mapping[str, str]  # named context -> build name


def build_name(target: Target, line: str | None, *, matrix: bool) -> str:
    return f"{target.name}-{line}" if matrix and target.per_cuda_line and line else target.name


def build_names(settings: StackSettings) -> list[str]:
    """Every build's name in build order, without resolving any pins (for validation)."""
    matrix = bool(settings.cudaLines)
    names: list[str] = []
    for target_name in settings.build_order:
        target = TARGETS[target_name]
        lines: list[str | None] = list(settings.lines) if target.per_cuda_line else [None]
        names += [build_name(target, line, matrix=matrix) for line in lines]
    return names


def line_settings(settings: StackSettings, line: str) -> StackSettings:
    """The stack's settings as one line's builds see them."""
    spec = settings.lines[line]
    pins = {"cuda": spec.cuda} | {
        pin: value for pin in cuda.TORCH_TRIO if (value := getattr(spec, pin)) is not None
    }
    update: dict[str, object] = {
        "versions": settings.versions.model_copy(update=pins),
        "cudaArchList": spec.cudaArchList or cuda.default_arch_list(spec.cuda),
    }
    if settings.cudaLines:
        update["movingTag"] = f"{settings.movingTag}-{line}"
    return settings.model_copy(update=update)


def builds(settings: StackSettings) -> dict[str, Build]:
    """Every build of the stack, parents first."""
    matrix = bool(settings.cudaLines)
    per_line = {line: line_settings(settings, line) for line in settings.lines}
    out: dict[str, Build] = {}
    for target_name in settings.build_order:
        target = TARGETS[target_name]
        lines: list[str | None] = list(settings.lines) if target.per_cuda_line else [None]
        for line in lines:
            name = build_name(target, line, matrix=matrix)
            out[name] = Build(
                name=name,
                target=target,
                line=line,
                settings=per_line[line] if line else settings,
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
    if base in TARGETS and TARGETS[base].per_cuda_line and cuda.is_line_name(line):
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
