"""The engine as the bench uses it: the variables engine/up exports, and docker on it."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Engine:
    registry: str
    base_image: str
    # The stand-in torch indexes engine/up serves over HTTP, e.g. http://127.0.0.1:5056.
    index_url: str


def engine_from_env() -> Engine | None:
    """The engine started by engine/up, if its variables are in the environment (an
    engine/up older than the index server exports no ENGINE_INDEX_URL: run it again)."""
    registry = os.environ.get("ENGINE_REGISTRY")
    base = os.environ.get("ENGINE_BASE_IMAGE")
    index_url = os.environ.get("ENGINE_INDEX_URL")
    if not (registry and base and index_url and os.environ.get("DOCKER_HOST")):
        return None
    return Engine(registry=registry, base_image=base, index_url=index_url)


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
