"""What emulation costs: core-cpu's chain built for linux/amd64 (native) and linux/arm64 (the
engine's arm64 node, under QEMU), cold and after an app change, through the real
``pulumi up`` on the two-node builder.

    engine/up && . .engine/env && venv/bin/python -m bench.platform_cost

Both nodes' local caches are pruned first and the namespace is new, so the first up is cold.
Each up runs with ``--parallel 1``, so every Image builds alone and its time is its own
(BuildKit's duration of the build record, from the builder's history). Results go to
``bench/results/platforms-<timestamp>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.deployment import Deployment
from bench.engine import docker, engine_from_env
from bench.platforms import has_two_nodes, trusting_engine_ca, two_platform_config
from components.platforms import split_name
from components.project import ROOT
from tools.cache_report import read_history, reports_from_history

RESULTS = Path(__file__).resolve().parent / "results"
APP = ROOT / "dockerfiles" / "core" / "app" / "start.sh"


def timed_up(deployment: Deployment) -> tuple[float, dict[str, Any]]:
    """One ``pulumi up`` (an Image at a time): its wall seconds and each build's record."""
    since = datetime.now(UTC).isoformat()
    started = time.monotonic()
    deployment.pulumi("up", "--yes", "--skip-preview", "--parallel", "1")
    wall = time.monotonic() - started
    reports = reports_from_history(*read_history(os.environ["ENGINE_BUILDER"]), since=since)
    return wall, {
        r.target: {"seconds": r.seconds, "steps": r.steps, "cached": r.cached} for r in reports
    }


def rows(scenario: str, builds: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, build in sorted(builds.items()):
        target, platform = split_name(name)
        out.append({"scenario": scenario, "target": target, "platform": platform, **build})
    return out


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Machine: {result['machine']}",
        "",
        "| scenario | target | linux/amd64 (native) s | linux/arm64 (emulated) s | arm64 / amd64 |",
        "|---|---|---:|---:|---:|",
    ]
    table: dict[tuple[str, str], dict[str, float]] = {}
    for row in result["rows"]:
        table.setdefault((row["scenario"], row["target"]), {})[row["platform"]] = row["seconds"]
    for (scenario, target), seconds in table.items():
        amd, arm = seconds.get("linux/amd64"), seconds.get("linux/arm64")
        ratio = f"{arm / amd:.1f}x" if amd and arm else "-"
        shown = [f"{s:.1f}" if s is not None else "-" for s in (amd, arm)]
        lines.append(f"| {scenario} | {target} | {shown[0]} | {shown[1]} | {ratio} |")
    lines += [
        "",
        "Wall seconds of each `pulumi up`: "
        + ", ".join(f"{k} {v:.0f}" for k, v in result["wall"].items()),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.platform_cost", description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    engine = engine_from_env()
    if engine is None or not has_two_nodes():
        print("bench: run engine/up (with its arm64 node) and source .engine/env", file=sys.stderr)
        return 2
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    original = APP.read_bytes()
    with trusting_engine_ca(), tempfile.TemporaryDirectory() as work:
        config = two_platform_config(engine, f"cost{int(time.time())}")
        deployment = Deployment.create(Path(work), "platformcost", config)
        # Cold on both nodes: no local cache (the namespace is new, so no registry cache).
        docker("buildx", "prune", "--builder", os.environ["ENGINE_BUILDER"], "--all", "--force")
        wall: dict[str, float] = {}
        wall["cold"], cold = timed_up(deployment)
        try:
            APP.write_bytes(original + b"\n# bench.platform_cost\n")
            wall["app change"], app = timed_up(deployment)
        finally:
            APP.write_bytes(original)
    result = {
        "machine": {"date": datetime.now(UTC).isoformat(), "cpus": "2", "note": "arm64 under QEMU"},
        "wall": wall,
        "rows": rows("cold", cold) + rows("app change", app),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"platforms-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = to_markdown(result)
    (RESULTS / f"platforms-{stamp}.md").write_text(markdown)
    print(markdown)
    print(f"bench: wrote bench/results/platforms-{stamp}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
