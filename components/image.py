"""One image target as a component wrapping a ``pulumi_docker_build.Image``.

The child Image gets everything BuildKit needs: the target's stage, its parents as
``docker-image://<parent ref>`` named contexts (which gives the dependency and pins the
parent by digest once pushed), its pinned build args, source contexts, cache entries,
tags and registry credentials, and its one platform.

A target published for several platforms is one such Image per platform, pushed by digest
(no tag), and a ``docker_build.Index`` per tag joining their digests (``ImageFamily``):
the pattern pulumi-docker-build documents for multi-platform images with a cache, since a
multi-platform Image exports the cache of one platform only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import pulumi
import pulumi_docker_build as docker_build

from components import indexes, locks
from components.cache import compression_fields
from components.config import StackSecrets
from components.plan import PlannedBuild, PlannedIndex, plan, plan_indexes
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


def registry_exports(
    settings: StackSettings, *, by_digest_to: str | None = None
) -> list[docker_build.ExportArgsDict]:
    """Push to the tags' registry, or by digest to the repository ``by_digest_to`` (one
    platform of an Index), or (push false) export the cache only.

    Without push, load or exports the provider warns; cacheonly says what we mean.
    """
    if not settings.push:
        return [{"cacheonly": {}}]
    registry = cast(docker_build.ExportRegistryArgsDict, compression_fields(settings))
    if by_digest_to is not None:
        registry |= {"names": [by_digest_to], "push_by_digest": True}
    return [{"registry": registry}]


def registry_login(
    settings: StackSettings, secrets: StackSecrets
) -> docker_build.RegistryArgsDict | None:
    """The stack's registry credentials, when it has its own (else the builder's login)."""
    if not settings.registry.username:
        return None
    return {
        "address": settings.registry.address,
        "username": settings.registry.username,
        "password": secrets.registry_password,
    }


class ImageTarget(pulumi.ComponentResource):
    """A target of the family on one platform: ``ref`` is digest-pinned once the image is
    pushed (``<tag>@<digest>``, or ``<repository>@<digest>`` when pushed by digest)."""

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

        login = registry_login(settings, secrets)
        by_digest = build.repository if tags is None else None

        image = docker_build.Image(
            f"{name}-image",
            # Pushing is a registry export, not `push=True`: the provider (0.0.22) turns
            # `push` into an extra export before comparing the inputs with their known
            # part, so a pushed Image never counts as buildable and previews never build
            # it. A registry export is pushed on up and built without pushing in previews.
            push=False,
            exports=registry_exports(settings, by_digest_to=by_digest),
            tags=list(tags or ()),
            target=target.stage,
            context={"location": target.context_dir, "named": named or None},
            dockerfile={"location": target.dockerfile},
            build_args=build_args(resolved.build_args),
            cache_from=cache.cache_from or None,
            cache_to=cache.cache_to or None,
            builder={"name": settings.builder_name} if settings.builder_name else None,
            build_on_preview=settings.buildOnPreview,
            platforms=[docker_build.Platform(build.platform)],
            registries=[login] if login else None,
            secrets={"ca": secrets.ca_bundle} if secrets.ca_bundle is not None else None,
            # The build's own name (core-cpu-arm64): the cache report keys build records by it.
            labels=labels(name, resolved.version_tag, internal=target.internal),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Pushed by digest, the provider's ref is empty (it names the first tag): the
        # repository at the digest is the ref children and the Index build from.
        self.ref = (
            image.ref if by_digest is None else pulumi.Output.concat(by_digest, "@", image.digest)
        )
        self.digest = image.digest
        self.tags = list(tags or ())  # version tag first, as exported
        self.register_outputs({"ref": self.ref, "digest": image.digest})


def declare_indexes(
    index: PlannedIndex,
    members: Mapping[str, ImageTarget],
    login: docker_build.RegistryArgsDict | None,
    parent: pulumi.Resource,
) -> pulumi.Output[str]:
    """The Indexes of one target and line: one per tag (an Index has one), both listing
    every platform's digest; returns the version tag's ref, digest-pinned once pushed."""
    sources = [members[name].ref for name in index.platforms.values()]
    made = {
        role: docker_build.Index(
            f"{index.name}-{role}",
            tag=tag,
            sources=sources,
            push=True,
            registry=login,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for role, tag in (("index", index.tags.version), ("moving-index", index.tags.moving))
    }
    return made["index"].ref


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
        planned = plan(settings, stack)
        self.targets: dict[str, ImageTarget] = {}
        for build in planned.values():
            self.targets[build.name] = ImageTarget(
                build,
                secrets,
                parents={p: self.targets[p] for p in build.parents.values()},
                opts=pulumi.ResourceOptions(parent=self),
            )
        # What deployments pull: each target and line by its version tag, digest-pinned; an
        # Index where it has several platforms, else its one Image.
        self.refs: dict[str, pulumi.Output[str]] = {}
        self.tags: dict[str, list[str]] = {}
        joined = plan_indexes(planned)
        login = registry_login(settings, secrets)
        for build in planned.values():
            if (index := joined.get(build.published)) is not None:
                if build.published not in self.refs:
                    self.refs[index.name] = declare_indexes(index, self.targets, login, self)
                    self.tags[index.name] = list(index.tags)
            else:
                self.refs[build.name] = self.targets[build.name].ref
                self.tags[build.name] = self.targets[build.name].tags
        # Visible, not fatal (requireLock makes it fatal, in config.load): a plan of a pin
        # whose source cannot be reached here must still work.
        if warning := locks.missing(settings, stack):
            pulumi.log.warn(warning, resource=self)
        for warning in indexes.pin_warnings(settings):
            pulumi.log.warn(warning, resource=self)
        # Each platform's own Image, digest-pinned: what a platform's deployment may pin.
        self.platform_refs = {n: t.ref for n, t in self.targets.items()}
        self.register_outputs({"refs": self.refs})
