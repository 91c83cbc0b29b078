"""Everything one stack writes to a registry or a cache, and the rule that nothing collides.

A tag pushed twice overwrites an image; a cache ref equal to a tag overwrites the image or
the cache; two targets sharing a gha scope or local directory evict each other's cache.
``collisions`` finds each such pair before any resource is registered; the program refuses
the stack, and the property tests check the same rule on every accepted config.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from components.plan import PlannedBuild, plan_indexes
from components.refs import MAX_NAME


@dataclass(frozen=True)
class Written:
    """One place a target writes: ``kind`` is tag, index-tag, registry-cache, gha-scope or
    local-dir."""

    target: str
    kind: str
    ref: str


def written_by(planned: Iterable[PlannedBuild], *, push: bool) -> list[Written]:
    """Every tag (when the stack pushes), cache ref, gha scope and local cache directory the
    planned builds write, and the tags of the Indexes joining their platforms (a build of
    one platform among several writes its repository by digest: no tag)."""
    builds = list(planned)
    out: list[Written] = []
    if push:
        for index in plan_indexes({b.name: b for b in builds}).values():
            out += [Written(index.name, "index-tag", tag) for tag in index.tags]
    for build in builds:
        if push and build.tags is not None:
            out += [Written(build.name, "tag", tag) for tag in build.tags]
        places = {
            "registry-cache": build.registry_cache_ref,
            "gha-scope": build.gha_scope,
            "local-dir": build.local_cache_dir,
        }
        out += [Written(build.name, kind, ref) for kind, ref in places.items() if ref is not None]
    return out


def collisions(written: Iterable[Written]) -> list[str]:
    """Pairs that would overwrite each other, and refs longer than a registry allows."""
    problems: list[str] = []
    seen: dict[tuple[str, str], Written] = {}
    for w in written:
        # Tags and registry cache refs share one namespace: image references.
        refs = ("tag", "index-tag", "registry-cache")
        slot = ("image-ref" if w.kind in refs else w.kind, w.ref)
        if (other := seen.setdefault(slot, w)) is not w:
            problems.append(
                f"{other.target}'s {other.kind} and {w.target}'s {w.kind} are both {w.ref!r}"
            )
        if w.kind in refs and len(w.ref.rpartition(":")[0]) > MAX_NAME:
            problems.append(f"{w.target}'s {w.kind} {w.ref!r} is longer than {MAX_NAME} characters")
    return problems
