"""The stack's plan: every build with its inputs, tags, cache entries and where it writes.

One pure function from settings to the builds, derived once. The collision check
(``written.py``) reads what each build writes from it, the components (``image.py``) declare
one Image per planned build, and the offline plan and the bake file (``tools/``) read those
Images back, so no tag, cache ref or scope is worked out twice. Tags are taken by name
(``tags.version``, ``tags.moving``), never by their position in a list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from components.cache import CachePlan, gha_scope, local_cache_dir, plan_cache, registry_cache_ref
from components.catalog import Target
from components.inputs import ImageTags, TargetInputs, for_target, image_tags
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
    tags: ImageTags
    cache: CachePlan
    registry_cache_ref: str | None
    gha_scope: str | None
    local_cache_dir: str | None


def plan(settings: StackSettings, stack: str) -> dict[str, PlannedBuild]:
    """Every build of the stack, parents first."""
    backends = settings.cache.backends
    out: dict[str, PlannedBuild] = {}
    for name, build in builds(settings).items():
        resolved = for_target(build.target, build.settings)
        tags = image_tags(build.settings, build.target.name, resolved.version_tag)
        out[name] = PlannedBuild(
            name=name,
            target=build.target,
            line=build.line,
            settings=build.settings,
            parents=build.parents,
            inputs=resolved,
            tags=tags,
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
        )
    return out
