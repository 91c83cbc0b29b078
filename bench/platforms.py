"""A two-platform stack on the engine: core-cpu for linux/amd64 and linux/arm64.

Shared by the engine test (``bench/tests/test_engine_platforms.py``) and the cost benchmark
(``bench.platform_cost``). The stack is the ``ci`` stack pointed at the engine, in a
namespace of its own (truly cold), published through the registry's TLS listener: the
docker-build ``Index`` resource reads a registry over HTTPS only. The plain-HTTP listener
serves the same storage, and is where the checks and Docker read it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.engine import Engine
from bench.scenarios import relock
from bench.standin_inputs import NS, ci_config
from bench.standins import make_standins

TWO = ["linux/amd64", "linux/arm64"]


def has_two_nodes() -> bool:
    """engine/up ran with its arm64 node and its TLS listener (ENGINE_ARM64 not 0)."""
    wanted = (
        "ENGINE_TLS_REGISTRY",
        "ENGINE_TLS_BUILDER",
        "ENGINE_ARM64_NODE",
        "ENGINE_ARM64_BUILDER",
        "ENGINE_BUILDER",
    )
    return all(os.environ.get(name) for name in wanted)


def two_platform_config(engine: Engine, run: str) -> dict[str, Any]:
    """The ci stack's core-cpu on both platforms, its inputs made and a lock per platform."""
    config = ci_config(engine, run)
    config[f"{NS}:registry"] = {
        "address": os.environ["ENGINE_TLS_REGISTRY"],
        "namespace": f"comfyui-ci/{run}",
    }
    config[f"{NS}:targets"] = ["core-cpu"]
    config[f"{NS}:targetPlatforms"] = {"core-cpu": TWO}
    # Named, not the current one: BUILDX_BUILDER (trusting_engine_ca) selects another. The
    # arm64 Images go to the arm64 node's own builder: the provider would send them to node 0
    # of the two-node builder, which lists linux/arm64 too (emulated; docs/scaling.md).
    config[f"{NS}:builder"] = os.environ["ENGINE_BUILDER"]
    config[f"{NS}:platformBuilders"] = {"linux/arm64": os.environ["ENGINE_ARM64_BUILDER"]}
    config.pop(f"{NS}:cacheThresholds", None)
    make_standins(config)
    return relock(config)  # a lock per platform


@contextmanager
def trusting_engine_ca() -> Iterator[None]:
    """The CLI and the provider (started from here) reach the TLS listener: they trust the
    engine's CA (its bundle: the system's CAs plus the engine's), and the Index's imagetools
    reads the registry settings of the builder entry that marks the listener HTTPS
    (docs/engine.md). The Images name their builder in the stack, so they keep it."""
    wanted = {
        "SSL_CERT_FILE": os.environ["ENGINE_CA_BUNDLE"],
        "BUILDX_BUILDER": os.environ["ENGINE_TLS_BUILDER"],
    }
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def on_http(ref: str) -> str:
    """The same image through the plain-HTTP listener, which Docker pulls from."""
    return ref.replace(os.environ["ENGINE_TLS_REGISTRY"], os.environ["ENGINE_REGISTRY"], 1)
