"""The stack's plan: every build with its inputs, tags, cache entries and where it writes.

One pure function from settings to the builds, derived once. The collision check
(``written.py``) reads what each build writes from it, the components (``image.py``) declare
one Image per planned build, and the offline plan and the bake file (``tools/``) read those
Images back, so no tag, cache ref or scope is worked out twice. Tags are taken by name
(``tags.version``, ``tags.moving``), never by their position in a list.

A target published for one platform is one build carrying its tags. Published for several,
it is one build per platform, each pushed by digest to the target's repository with no tag
(``tags`` None), and an ``PlannedIndex`` joining them under the tags (``plan_indexes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from components.cache import CachePlan, gha_scope, local_cache_dir, plan_cache, registry_cache_ref
from components.catalog import Target
from components.inputs import ImageTags, TargetInputs, for_target, image_tags, repository
from components.matrix import builds
from components.settings import CacheBackend, StackSettings


@dataclass(frozen=True)
class PlannedBuild:
    """One Image of the stack: a catalog target on one line, with everything it receives.

    ``settings`` are the stack's with the line's pins applied; ``parents`` maps each named
    context to the build it is built from. The cache destinations are spelled out for the
    collision check: ``None`` where the stack does not use that backend.
    """

    name: str
    target: Target
    line: str | None
    settings: StackSettings
    parents: Mapping[str, str]
    inputs: TargetInputs
    tags: ImageTags | None  # None: one platform of an Index, pushed by digest
    cache: CachePlan
    registry_cache_ref: str | None
    gha_scope: str | None
    local_cache_dir: str | None
    platform: str
    published: str  # the image it is (one platform of): its name without the platform
    repository: str  # where it is pushed, by tag or by digest


@dataclass(frozen=True)
class PlannedIndex:
    """A target on one line published for several platforms: an OCI index per tag, made of
    the per-platform builds' digests (``platforms``: platform -> build name)."""

    name: str
    target: Target
    line: str | None
    tags: ImageTags
    platforms: Mapping[str, str]


def plan(settings: StackSettings, stack: str) -> dict[str, PlannedBuild]:
    """Every build of the stack, parents first."""
    backends = settings.cache.backends
    all_builds = builds(settings)
    platforms_of: dict[str, int] = {}
    for build in all_builds.values():
        platforms_of[build.published] = platforms_of.get(build.published, 0) + 1
    out: dict[str, PlannedBuild] = {}
    for name, build in all_builds.items():
        resolved = for_target(build.target, build.settings)
        tags = image_tags(build.settings, build.target.name, resolved.version_tag)
        out[name] = PlannedBuild(
            name=name,
            target=build.target,
            line=build.line,
            settings=build.settings,
            parents=build.parents,
            inputs=resolved,
            tags=tags if platforms_of[build.published] == 1 else None,
            # inline cache is read back from the moving tag: an Index's, for one platform.
            cache=plan_cache(build.settings, stack=stack, target=name, moving_tag_ref=tags.moving),
            registry_cache_ref=(
                registry_cache_ref(build.settings, name)
                if CacheBackend.REGISTRY in backends
                else None
            ),
            gha_scope=gha_scope(stack, name) if CacheBackend.GHA in backends else None,
            local_cache_dir=(
                local_cache_dir(build.settings, name) if CacheBackend.LOCAL in backends else None
            ),
            platform=build.platform,
            published=build.published,
            repository=repository(build.settings, build.target.name),
        )
    return out


def plan_indexes(planned: Mapping[str, PlannedBuild]) -> dict[str, PlannedIndex]:
    """The Indexes of a plan: one per target and line built for several platforms."""
    groups: dict[str, list[PlannedBuild]] = {}
    for build in planned.values():
        groups.setdefault(build.published, []).append(build)
    out: dict[str, PlannedIndex] = {}
    for name, members in groups.items():
        if len(members) == 1:  # one platform: its Image carries the tags
            continue
        first = members[0]
        out[name] = PlannedIndex(
            name=name,
            target=first.target,
            line=first.line,
            tags=image_tags(first.settings, first.target.name, first.inputs.version_tag),
            platforms={b.platform: b.name for b in members},
        )
    return out
