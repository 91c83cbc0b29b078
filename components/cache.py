"""BuildKit cache sources and destinations per target.

Pure: given the stack settings and a target, return the ``cache_from`` / ``cache_to``
entries the docker-build provider receives. Preview and up get identical entries: the
provider diffs every input, so any difference would show every Image as changed in every
preview (and rebuild it). The rules fix
the origin project's mistakes (see docs/caching.md):

- gha: one scope per target (per stack), so targets never overwrite each other's cache;
  exports ignore errors, so a cache outage never fails a build.
- registry: a cache ref per target in its own repository, never equal to an image tag;
  ``mode`` as configured, ``ignore_error`` set; ``imageManifest`` for ECR-like registries.
- inline: exported with no mode (it has none) and read back through the *registry* type
  from the image's own moving tag (``type=inline`` is not a cache source).
- local: a directory per target, for laptops.
- compression (``compression``): the same for the image and the registry and local caches,
  so a layer is compressed once; gha takes BuildKit's default (the provider has no field).
- previews are kept away from the shared registry cache by credentials, not by inputs:
  the pull-request job's token can only read packages, and ``ignore_error`` turns the
  refused cache push into a warning. gha writes are isolated per branch by GitHub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from pulumi_docker_build import (
    CacheFromArgsDict,
    CacheMode,
    CacheToArgsDict,
    CacheToLocalArgsDict,
    CacheToRegistryArgsDict,
    CompressionType,
)

from components.settings import DEFAULT_LEVEL, CacheBackend, LayerCompression, StackSettings


def compression_fields(settings: StackSettings, *, oci: bool = True) -> dict[str, Any]:
    """The provider's compression fields for an image or cache export; none for BuildKit's
    default (gzip at its own level), so a stack that keeps the default keeps its inputs and
    the setting's arrival rebuilds nothing. zstd layers need OCI media types (``oci``: the
    export has that field; the local cache has not).

    Always with a level: docker-build 0.0.22 writes no compression option at all when the
    level is 0 (unset), so `compression: zstd` alone would silently push gzip layers."""
    chosen = settings.compression
    if chosen.type is LayerCompression.GZIP and chosen.level is None:
        return {}
    level = chosen.level if chosen.level is not None else DEFAULT_LEVEL[chosen.type]
    fields: dict[str, Any] = {
        "compression": CompressionType(chosen.type.value),
        "compression_level": level,
    }
    if oci and chosen.type is LayerCompression.ZSTD:
        fields["oci_media_types"] = True
    return fields


@dataclass(frozen=True)
class CachePlan:
    cache_from: list[CacheFromArgsDict]
    cache_to: list[CacheToArgsDict]


def gha_scope(stack: str, target: str) -> str:
    return f"{stack}-{target}"


def registry_cache_ref(settings: StackSettings, target: str) -> str:
    repo = settings.cache.registryRepository or (
        f"{settings.registry.address}/{settings.registry.namespace}/buildcache"
    )
    return f"{repo}:{target}"


def local_cache_dir(settings: StackSettings, target: str) -> str:
    return f"{settings.cache.localDir.rstrip('/')}/{target}"


def plan_cache(
    settings: StackSettings, *, stack: str, target: str, moving_tag_ref: str
) -> CachePlan:
    """Cache entries for one target, in the configured backend order."""
    mode = CacheMode(settings.cache.mode.value)
    sources: list[CacheFromArgsDict] = []
    sinks: list[CacheToArgsDict] = []
    for backend in settings.cache.backends:
        if backend is CacheBackend.GHA:
            scope = gha_scope(stack, target)
            sources.append({"gha": {"scope": scope}})
            sinks.append({"gha": {"scope": scope, "mode": mode, "ignore_error": True}})
        elif backend is CacheBackend.REGISTRY:
            ref = registry_cache_ref(settings, target)
            sources.append({"registry": {"ref": ref}})
            entry = cast(
                CacheToRegistryArgsDict,
                {"ref": ref, "mode": mode, "ignore_error": True, **compression_fields(settings)},
            )
            if settings.cache.imageManifest:
                entry["image_manifest"] = True
                entry["oci_media_types"] = True
            sinks.append({"registry": entry})
        elif backend is CacheBackend.INLINE:
            sources.append({"registry": {"ref": moving_tag_ref}})
            sinks.append({"inline": {}})
        elif backend is CacheBackend.LOCAL:
            path = local_cache_dir(settings, target)
            sources.append({"local": {"src": path}})
            fields = compression_fields(settings, oci=False)
            local = cast(
                CacheToLocalArgsDict,
                {"dest": path, "mode": mode, "ignore_error": True, **fields},
            )
            sinks.append({"local": local})
    return CachePlan(cache_from=sources, cache_to=sinks)
