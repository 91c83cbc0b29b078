"""One image target as a component wrapping a ``pulumi_docker_build.Image``.

The child Image gets everything BuildKit needs: the target's stage, its parents as
``docker-image://<parent ref>`` named contexts (which gives the dependency and pins the
parent by digest once pushed), its pinned build args, source contexts, cache entries,
tags and registry credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import pulumi
import pulumi_docker_build as docker_build

from components import indexes, locks
from components.cache import compression_fields
from components.config import StackSecrets
from components.plan import PlannedBuild, plan
from components.settings import StackSettings

# Image metadata that does not change when nothing else does. BuildKit v0.34 keys a FROM (and
# a docker-image:// named context) by the parent's manifest digest alone, no longer by its
# layers, so a parent rebuilt from cache must come out byte-identical or every child loses
# its whole cache. A constant SOURCE_DATE_EPOCH fixes the config's timestamps; a changing one
# (a commit time) would rebuild every Image on every commit.
REPRODUCIBLE = {"SOURCE_DATE_EPOCH": "0"}
# The OCI label that carries a build's version tag by name (the offline plan reads it back).
VERSION_LABEL = "org.opencontainers.image.version"


def labels(name: str, version_tag: str, *, internal: bool) -> dict[str, str]:
    """The OCI title, and the version tag by name for images people run. An internal image
    (core's environment) is pinned by digest by its children: a label naming a pin it only
    carries in its tag for people (the ComfyUI version) would change that digest, and rerun
    complete's install steps, whenever the pin moved without touching its content."""
    out = {"org.opencontainers.image.title": name}
    if not internal:
        out[VERSION_LABEL] = version_tag
    return out


def build_args(routed: Mapping[str, str]) -> dict[str, str]:
    """The routed build args without the empty ones, plus ``REPRODUCIBLE``.

    The provider (0.0.22) takes an empty value for an unknown one in previews, so an Image
    with any empty build arg would never build in a preview. Every Dockerfile declares
    these args with an empty default, so leaving one out means the same as passing "".
    """
    return {name: value for name, value in routed.items() if value} | REPRODUCIBLE


def registry_exports(settings: StackSettings) -> list[docker_build.ExportArgsDict]:
    """Push to the tags' registry, or (push false) export the cache only.

    Without push, load or exports the provider warns; cacheonly says what we mean.
    """
    if not settings.push:
        return [{"cacheonly": {}}]
    registry = cast(docker_build.ExportRegistryArgsDict, compression_fields(settings))
    return [{"registry": registry}]


class ImageTarget(pulumi.ComponentResource):
    """A target of the family: ``ref`` is digest-pinned once the image is pushed."""

    ref: pulumi.Output[str]
    digest: pulumi.Output[str]

    def __init__(
        self,
        build: PlannedBuild,
        secrets: StackSecrets,
        *,
        parents: Mapping[str, ImageTarget],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        name, target, settings = build.name, build.target, build.settings
        super().__init__("comfyui:images:ImageTarget", name, None, opts)
        resolved, tags, cache = build.inputs, build.tags, build.cache

        named: dict[str, docker_build.ContextArgsDict] = {
            ctx: {"location": pulumi.Output.concat("docker-image://", parents[parent].ref)}
            for ctx, parent in build.parents.items()
        }
        named |= {ctx: {"location": loc} for ctx, loc in resolved.source_contexts.items()}

        registries: list[docker_build.RegistryArgsDict] | None = None
        if settings.registry.username:
            registries = [
                {
                    "address": settings.registry.address,
                    "username": settings.registry.username,
                    "password": secrets.registry_password,
                }
            ]

        image = docker_build.Image(
            f"{name}-image",
            # Pushing is a registry export, not `push=True`: the provider (0.0.22) turns
            # `push` into an extra export before comparing the inputs with their known
            # part, so a pushed Image never counts as buildable and previews never build
            # it. A registry export is pushed on up and built without pushing in previews.
            push=False,
            exports=registry_exports(settings),
            tags=list(tags),
            target=target.stage,
            context={"location": target.context_dir, "named": named or None},
            dockerfile={"location": target.dockerfile},
            build_args=build_args(resolved.build_args),
            cache_from=cache.cache_from or None,
            cache_to=cache.cache_to or None,
            builder={"name": settings.builder_name} if settings.builder_name else None,
            build_on_preview=settings.buildOnPreview,
            platforms=[docker_build.Platform(settings.platform)],
            registries=registries,
            secrets={"ca": secrets.ca_bundle} if secrets.ca_bundle is not None else None,
            labels=labels(name, resolved.version_tag, internal=target.internal),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ref = image.ref
        self.tags = list(tags)  # version tag first, as exported
        self.register_outputs({"ref": image.ref, "digest": image.digest})


class ImageFamily(pulumi.ComponentResource):
    """Every planned build of the stack (plan.py), parents first so children can reference
    them."""

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        secrets: StackSecrets,
        *,
        stack: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("comfyui:images:ImageFamily", name, None, opts)
        self.targets: dict[str, ImageTarget] = {}
        for build in plan(settings, stack).values():
            self.targets[build.name] = ImageTarget(
                build,
                secrets,
                parents={p: self.targets[p] for p in build.parents.values()},
                opts=pulumi.ResourceOptions(parent=self),
            )
        # Visible, not fatal (requireLock makes it fatal, in config.load): a plan of a pin
        # whose source cannot be reached here must still work.
        if warning := locks.missing(settings, stack):
            pulumi.log.warn(warning, resource=self)
        for warning in indexes.pin_warnings(settings):
            pulumi.log.warn(warning, resource=self)
        self.refs = {n: t.ref for n, t in self.targets.items()}
        self.register_outputs({"refs": self.refs})
