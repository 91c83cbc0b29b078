"""An image's layers as the loopback registry of engine/up holds them, each with the step
that made it: read from the image's manifest and config (plain HTTP, no client needed)."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


@dataclass(frozen=True)
class Layer:
    step: str  # the config history's created_by for the step that made it
    digest: str
    size: int


def _get(url: str, accept: str = "") -> Any:
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback registry)
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


def layers(ref: str) -> list[Layer]:
    """``<host>/<repo>@sha256:...`` (or ``:<tag>``): its layers, bottom first."""
    name, sep, reference = ref.partition("@")
    if not sep:
        name, _, reference = ref.rpartition(":")
    host, _, repo = name.partition("/")
    base = f"http://{host}/v2/{repo}"
    manifest = _get(f"{base}/manifests/{reference}", MANIFEST_TYPES)
    if "manifests" in manifest:  # an index: the image's own manifest is its first entry
        manifest = _get(f"{base}/manifests/{manifest['manifests'][0]['digest']}", MANIFEST_TYPES)
    config = _get(f"{base}/blobs/{manifest['config']['digest']}")
    steps = [h.get("created_by", "") for h in config.get("history", []) if not h.get("empty_layer")]
    if len(steps) != len(manifest["layers"]):
        raise ValueError(
            f"{ref}: {len(steps)} history entries with layers, {len(manifest['layers'])} layers"
        )
    return [
        Layer(step, layer["digest"], int(layer["size"]))
        for step, layer in zip(steps, manifest["layers"], strict=True)
    ]
