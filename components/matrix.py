"""The builds of a stack: each selected catalog target, once per line where it has lines,
and once per platform it is published for.

A target with a ``line_kind`` (cuda, rocm, xpu: ``components/accelerators.py``) is built on
every line of that kind, from the parents of the same line and with that line's pins: its
CUDA or ROCm release, its torch when the line overrides it, its SageAttention architectures,
its torch index. Without the kind's map in the stack file (``cudaLines``, ``rocmLines``,
``xpuLines``) the kind has one line from the stack's pins and keeps the plain target names,
tags and caches; a map names every build of that kind ``<target>-<line>`` (its resource,
cache ref, gha scope and local cache directory) and gives it the moving tag
``<movingTag>-<line>``. Repositories stay one per target, so the lines of an image sit side
by side as tags of one repository.

Platforms (``components/platforms.py``): a build's platforms are its line's
(``cudaLines.<line>.platforms``), else its target's (``targetPlatforms``), else the stack's
(``platforms``). A parent is built for every platform a child of it needs, since a child
builds from its parent's image of the same platform; a parent whose platforms the stack
names explicitly and which lacks one of them is an error. Each platform is a build of its
own (``core-cpu``, ``core-cpu-arm64``); ``published`` names the image they make together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from components import accelerators, cuda, platforms
from components.catalog import TARGETS, Target
from components.errors import SettingsError, key
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
    platform: str = platforms.AMD64
    published: str = ""  # the image this build is one platform of (its name without it)


def build_name(
    target: Target, line: str | None, *, matrix: bool, platform: str = platforms.AMD64
) -> str:
    base = f"{target.name}-{line}" if matrix and target.line_kind and line else target.name
    return base + platforms.suffix(platform)


def _lines(settings: StackSettings, target: Target) -> list[str | None]:
    return list(settings.lines_of(target.line_kind)) if target.line_kind else [None]


def _matrix(settings: StackSettings, target: Target) -> bool:
    return target.line_kind is not None and settings.has_line_map(target.line_kind)


def build_names(settings: StackSettings) -> list[str]:
    """Every build's name in build order, without resolving any pins (for validation)."""
    wanted = platforms_of(settings)
    names: list[str] = []
    for target_name in settings.build_order:
        target = TARGETS[target_name]
        matrix = _matrix(settings, target)
        for line in _lines(settings, target):
            names += [
                build_name(target, line, matrix=matrix, platform=platform)
                for platform in wanted[(target_name, line)]
            ]
    return names


def _declared_platforms(
    settings: StackSettings, target: Target, line: str | None
) -> tuple[list[str], str] | None:
    """The platforms the stack names for one target on one line, with the key naming them
    (the line's, else the target's); None where it names none (the stack's apply)."""
    if target.line_kind and line and settings.has_line_map(target.line_kind):
        spec = settings.lines_of(target.line_kind)[line]
        if spec.platforms:
            return list(spec.platforms), f"{accelerators.LINES_KEYS[target.line_kind]}.{line}"
    if target.name in settings.targetPlatforms:
        return list(settings.targetPlatforms[target.name]), f"targetPlatforms.{target.name}"
    return None


def platforms_of(settings: StackSettings) -> dict[tuple[str, str | None], list[str]]:
    """(target, line) -> the platforms it is built for: as declared, or the stack's, plus
    every platform a child built on it needs. Raises ``SettingsError`` when a parent whose
    platforms are declared lacks one its child needs."""
    declared: dict[tuple[str, str | None], tuple[list[str], str] | None] = {}
    wanted: dict[tuple[str, str | None], list[str]] = {}
    for target_name in settings.build_order:
        target = TARGETS[target_name]
        for line in _lines(settings, target):
            declared[(target_name, line)] = _declared_platforms(settings, target, line)
            found = declared[(target_name, line)]
            wanted[(target_name, line)] = list(found[0] if found else settings.platforms)
    # Children first: a parent takes the platforms of every child built on it.
    for target_name in reversed(settings.build_order):
        target = TARGETS[target_name]
        for line in _lines(settings, target):
            child = (target_name, line)
            for parent_name in target.parents.values():
                parent_target = TARGETS[parent_name]
                parent = (parent_name, line if parent_target.line_kind else None)
                missing = [p for p in wanted[child] if p not in wanted[parent]]
                if missing and (named := declared[parent]) is not None:
                    child_name = build_name(target, line, matrix=_matrix(settings, target))
                    raise SettingsError(
                        f"{key(named[1])} is {named[0]} but {child_name}, built on "
                        f"{parent_name}, is built for {', '.join(missing)}: a child builds "
                        f"from its parent's image of the same platform; add "
                        f"{', '.join(missing)} to {key(named[1])}, or build {child_name} "
                        f"for {', '.join(named[0])} only"
                    )
                wanted[parent] = platforms.ordered([*wanted[parent], *missing])
    return {where: platforms.ordered(listed) for where, listed in wanted.items()}


def line_settings(
    settings: StackSettings, kind: str, line: str, platform: str = platforms.AMD64
) -> StackSettings:
    """The stack's settings as the builds of one line of a kind, on one platform, see them."""
    spec = settings.lines_of(kind)[line]
    pins: dict[str, str] = {
        pin: value for pin in cuda.TORCH_TRIO if (value := getattr(spec, pin)) is not None
    }
    update: dict[str, object] = {}
    if isinstance(spec, CudaLine):
        pins["cuda"] = spec.cuda
        update["cudaArchList"] = cuda.arch_list_of(spec, platform)
    elif isinstance(spec, RocmLine):
        pins["rocm"] = spec.rocm
    update["versions"] = settings.versions.model_copy(update=pins)
    update["platform"] = platform
    if settings.has_line_map(kind):
        update["movingTag"] = f"{settings.movingTag}-{line}"
    return settings.model_copy(update=update)


def builds(settings: StackSettings) -> dict[str, Build]:
    """Every build of the stack, parents first (each platform of a target after the one
    before it, so a platform's parents always come first too)."""
    per_line: dict[tuple[str, str, str], StackSettings] = {
        (kind, line, platform): line_settings(settings, kind, line, platform)
        for kind in accelerators.KINDS
        for line in settings.lines_of(kind)
        for platform in platforms.PLATFORMS
    }
    per_platform: dict[str, StackSettings] = {
        p: settings.model_copy(update={"platform": p}) for p in platforms.PLATFORMS
    }
    wanted = platforms_of(settings)
    out: dict[str, Build] = {}
    for target_name in settings.build_order:
        target = TARGETS[target_name]
        matrix = _matrix(settings, target)
        for line in _lines(settings, target):
            for platform in wanted[(target_name, line)]:
                name = build_name(target, line, matrix=matrix, platform=platform)
                out[name] = Build(
                    name=name,
                    target=target,
                    line=line,
                    settings=per_line[(target.line_kind, line, platform)]
                    if target.line_kind and line
                    else per_platform[platform],
                    parents={
                        ctx: build_name(TARGETS[parent], line, matrix=matrix, platform=platform)
                        for ctx, parent in target.parents.items()
                    },
                    platform=platform,
                    published=build_name(target, line, matrix=matrix),
                )
    return out


def target_of(name: str) -> Target:
    """The catalog target of a build name: ``core-cuda-cu126`` -> core-cuda (a platform's
    suffix, ``core-cpu-arm64``, names the same target)."""
    name = platforms.split_name(name)[0]
    if name in TARGETS:
        return TARGETS[name]
    base, _, line = name.rpartition("-")
    kind = TARGETS[base].line_kind if base in TARGETS else None
    if kind is not None and accelerators.is_line_name(kind, line):
        return TARGETS[base]
    raise KeyError(f"no target builds {name!r}")


def parents_of(name: str) -> dict[str, str]:
    """A build's parents by name (named context -> build), on the build's own line and
    platform."""
    base, platform = platforms.split_name(name)
    target = target_of(base)
    line = base.removeprefix(target.name).removeprefix("-") or None
    return {
        ctx: build_name(TARGETS[parent], line, matrix=line is not None, platform=platform)
        for ctx, parent in target.parents.items()
    }
