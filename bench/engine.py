"""The engine as the bench uses it: the variables engine/up exports, and docker on it."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


AMD64 = "linux/amd64"
ARM64 = "linux/arm64"


@dataclass(frozen=True)
class Engine:
    registry: str
    base_image: str
    # The stand-in torch indexes engine/up serves over HTTP, e.g. http://127.0.0.1:5056.
    index_url: str
    # The platforms the builder serves, one node each (ENGINE_PLATFORMS): linux/amd64, and
    # linux/arm64 under emulation unless engine/up ran with ENGINE_ARM64=0. The base image
    # holds each of them.
    platforms: tuple[str, ...] = (AMD64,)
    # The registry's TLS listener (same storage as ``registry``) and the CA bundle that
    # trusts it, for what speaks HTTPS only (SSL_CERT_FILE); and the builder entry whose
    # registry settings make `imagetools` (pulumi-docker-build's Index) speak TLS to it
    # (BUILDX_BUILDER or --builder). Empty from an older engine/up.
    tls_registry: str = ""
    ca_bundle: str = ""
    tls_builder: str = ""

    @property
    def arm64(self) -> bool:
        """The builder has an arm64 node: stand-ins are built for both platforms."""
        return ARM64 in self.platforms


def engine_from_env() -> Engine | None:
    """The engine started by engine/up, if its variables are in the environment (an
    engine/up older than the index server exports no ENGINE_INDEX_URL: run it again)."""
    registry = os.environ.get("ENGINE_REGISTRY")
    base = os.environ.get("ENGINE_BASE_IMAGE")
    index_url = os.environ.get("ENGINE_INDEX_URL")
    if not (registry and base and index_url and os.environ.get("DOCKER_HOST")):
        return None
    platforms = [p for p in os.environ.get("ENGINE_PLATFORMS", AMD64).split(",") if p.strip()]
    return Engine(
        registry=registry,
        base_image=base,
        index_url=index_url,
        platforms=tuple(p.strip() for p in platforms) or (AMD64,),
        tls_registry=os.environ.get("ENGINE_TLS_REGISTRY", ""),
        ca_bundle=os.environ.get("ENGINE_CA_BUNDLE", ""),
        tls_builder=os.environ.get("ENGINE_TLS_BUILDER", ""),
    )


def docker(
    *args: str, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], cwd=cwd, capture_output=True, text=True, check=check, timeout=1800
    )


def reset_local_state() -> None:
    """What a fresh CI runner has: no build cache, no images."""
    docker("buildx", "prune", "--all", "--force")
    images = docker("image", "ls", "--quiet", "--all").stdout.split()
    if images:
        docker("image", "rm", "--force", *sorted(set(images)), check=False)
