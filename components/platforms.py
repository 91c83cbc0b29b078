"""Platforms: which ones a build may target, and how a platform shows in what a stack writes.

Each Image builds exactly one platform. A multi-platform Image exports the cache of one
platform only (pulumi-docker-build's ``Index`` documentation, docker/buildx discussion
1382), so a target published for several platforms is one Image per platform, each with its
own cache ref, gha scope and local cache directory, joined by a ``docker_build.Index`` under
the target's tags (``plan.py``, ``image.py``).

linux/amd64 keeps the plain names (``core-cpu``, ``buildcache:core-cpu``): adding a platform
to a stack adds Images and caches, and renames or rebuilds none of the ones it has. Every
other platform's build, cache ref and scope end in its architecture (``core-cpu-arm64``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Platform = Literal["linux/amd64", "linux/arm64"]
AMD64: Platform = "linux/amd64"
ARM64: Platform = "linux/arm64"
# Every platform a build may target, in the order plans, Indexes and tables list them.
PLATFORMS: tuple[Platform, ...] = (AMD64, ARM64)


def architecture(platform: str) -> str:
    """``linux/arm64`` -> ``arm64``."""
    return platform.partition("/")[2]


def suffix(platform: str) -> str:
    """What a build's name gains for its platform: nothing for linux/amd64, ``-arm64``."""
    return "" if platform == AMD64 else f"-{architecture(platform)}"


def split_name(name: str) -> tuple[str, str]:
    """A build name -> (the name without its platform, the platform):
    ``core-cpu-arm64`` -> (``core-cpu``, ``linux/arm64``)."""
    for platform in PLATFORMS:
        end = suffix(platform)
        if end and name.endswith(end):
            return name.removesuffix(end), platform
    return name, AMD64


def ordered(platforms: Iterable[str]) -> list[str]:
    """Each platform once, in ``PLATFORMS`` order (so a set of platforms has one spelling)."""
    wanted = set(platforms)
    return [p for p in PLATFORMS if p in wanted]
