"""Everything one stack writes to a registry or a cache, and the rule that nothing collides.

A tag pushed twice overwrites an image; a cache ref equal to a tag overwrites the image or
the cache; two targets sharing a gha scope or local directory evict each other's cache.
``collisions`` finds each such pair before any resource is registered; the program refuses
the stack, and the property tests check the same rule on every accepted config.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from components.cache import gha_scope, local_cache_dir, registry_cache_ref
from components.inputs import image_tags, version_tag
from components.matrix import builds
from components.refs import MAX_NAME
from components.settings import CacheBackend, StackSettings


@dataclass(frozen=True)
class Written:
    """One place a target writes: ``kind`` is tag, registry-cache, gha-scope or local-dir."""

    target: str
    kind: str
    ref: str


def written_by(settings: StackSettings, stack: str) -> list[Written]:
    """Every tag, cache ref, gha scope and local cache directory the stack writes."""
    out: list[Written] = []
    backends = settings.cache.backends
    for name, build in builds(settings).items():
        tags = image_tags(
            build.settings, build.target.name, version_tag(build.target, build.settings)
        )
        if settings.push:
            out += [Written(name, "tag", tag) for tag in tags]
        if CacheBackend.REGISTRY in backends:
            out.append(Written(name, "registry-cache", registry_cache_ref(settings, name)))
        if CacheBackend.GHA in backends:
            out.append(Written(name, "gha-scope", gha_scope(stack, name)))
        if CacheBackend.LOCAL in backends:
            out.append(Written(name, "local-dir", local_cache_dir(settings, name)))
    return out


def collisions(written: Iterable[Written]) -> list[str]:
    """Pairs that would overwrite each other, and refs longer than a registry allows."""
    problems: list[str] = []
    seen: dict[tuple[str, str], Written] = {}
    for w in written:
        # Tags and registry cache refs share one namespace: image references.
        slot = ("image-ref" if w.kind in ("tag", "registry-cache") else w.kind, w.ref)
        if (other := seen.setdefault(slot, w)) is not w:
            problems.append(
                f"{other.target}'s {other.kind} and {w.target}'s {w.kind} are both {w.ref!r}"
            )
        if w.kind in ("tag", "registry-cache") and len(w.ref.rpartition(":")[0]) > MAX_NAME:
            problems.append(f"{w.target}'s {w.kind} {w.ref!r} is longer than {MAX_NAME} characters")
    return problems
