"""Benchmark: rebuild time and cache reuse per change scenario, on the real engine.

Not a test: it asserts nothing, it measures. It runs the scenarios of
``tools.scenarios`` (the same ones the engine tests check) on the `ci` stack, each on a
pruned builder with no local images (a fresh CI runner), twice side by side:

- bake: every target built on its own from the bake translation of the plan;
- pulumi up: the real CLI and provider on a throwaway backend, which rebuilds only the
  Images whose inputs changed; steps and reuse come from the builder's history.

Per scenario and target: steps, steps reused, hit rate, seconds and the ratio to the cold
build. Results go to ``bench/results/<timestamp>.md`` and ``.json`` with the machine's details.

    scripts/engine-up && . .engine/env && venv/bin/python -m bench.cache_scenarios
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.cache_report import read_history, reports_from_history
from tools.deployment import Deployment
from tools.offline import ROOT
from tools.scenarios import (
    RUNS,
    SCENARIOS,
    Engine,
    apply,
    ci_config,
    engine_from_env,
    ensure_inputs,
    prepare,
    reset_local_state,
    run_scenario,
)
from tools.standins import make_standins

RESULTS = Path(__file__).resolve().parent / "results"


def _version(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return (
        (result.stdout or result.stderr).strip().splitlines()[0] if result.returncode == 0 else "?"
    )


def machine() -> dict[str, Any]:
    memory = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "memory_gib": round(int(memory) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "builder": os.environ.get("ENGINE_BUILDER", "(current)"),
        "buildkit": _version("buildkitd", "--version"),
        "buildx": _version("docker", "buildx", "version"),
    }


def main() -> int:
    engine = engine_from_env()
    if engine is None:
        print("bench: no engine; run scripts/engine-up and `. .engine/env` first", file=sys.stderr)
        return 1
    run_id = f"bench{int(time.time())}"
    config = ci_config(engine, run_id)
    prepare(config)
    rows: list[dict[str, Any]] = []
    cold: dict[str, float] = {}
    for scenario in SCENARIOS:
        config = apply(config, scenario)
        ensure_inputs(engine, config)
        runs = run_scenario(config, scenario, RUNS / run_id / scenario.name)
        for target, run in runs.items():
            if scenario.name == "cold":
                cold[target] = run.seconds
            rows.append(
                {
                    "scenario": scenario.name,
                    "title": scenario.title,
                    "target": target,
                    "steps": len(run.steps),
                    "cached": run.cached,
                    "seconds": round(run.seconds, 1),
                    "ratio_to_cold": round(run.seconds / cold[target], 2),
                }
            )
        total = sum(r.seconds for r in runs.values())
        rows.append(
            {
                "scenario": scenario.name,
                "title": scenario.title,
                "target": "(all)",
                "steps": sum(len(r.steps) for r in runs.values()),
                "cached": sum(r.cached for r in runs.values()),
                "seconds": round(total, 1),
                "ratio_to_cold": round(total / sum(cold.values()), 2),
            }
        )
    for row in rows:
        row["path"] = "bake"
    provider = provider_rows(engine, run_id)
    table = render(rows) + "\n\nThrough `pulumi up`:\n\n" + render(provider)
    rows += provider
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    details = machine()
    (RESULTS / f"{stamp}.json").write_text(json.dumps({"machine": details, "rows": rows}, indent=2))
    header = ", ".join(f"{k} {v}" for k, v in details.items())
    (RESULTS / f"{stamp}.md").write_text(f"Machine: {header}\n\n{table}\n")
    print(f"\nbench: wrote bench/results/{stamp}.md and .json")
    return 0


def provider_rows(engine: Engine, run_id: str) -> list[dict[str, Any]]:
    """The scenarios through `pulumi up`: what a deploy costs, per Image it rebuilds."""
    config = ci_config(engine, f"{run_id}-pulumi")
    app = ROOT / "dockerfiles" / "core" / "app"
    originals = {path: path.read_text() for path in app.iterdir()}
    rows: list[dict[str, Any]] = []
    cold: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        deployment = Deployment.create(Path(root), "bench", config)
        try:
            for scenario in SCENARIOS:
                config = apply(config, scenario)
                if scenario.edit is not None:
                    scenario.edit(ROOT)
                make_standins(config)
                deployment.write_config(config)
                reset_local_state()
                since = datetime.now(UTC).isoformat()
                started = time.monotonic()
                deployment.pulumi("up", "--yes", "--skip-preview")
                wall = time.monotonic() - started
                built = {r.target: r for r in reports_from_history(*read_history(None), since)}
                for target in _images(deployment):
                    report = built.get(target)
                    seconds = report.seconds if report else 0.0
                    if scenario.name == "cold":
                        cold[target] = seconds
                    rows.append(
                        {
                            "path": "pulumi up",
                            "scenario": scenario.name,
                            "title": scenario.title,
                            "target": target,
                            "steps": report.steps if report else 0,
                            "cached": report.cached if report else 0,
                            "seconds": round(seconds, 1),
                            "ratio_to_cold": round(seconds / cold[target], 2),
                        }
                    )
                if scenario.name == "cold":
                    cold["(all)"] = wall
                rows.append(
                    {
                        "path": "pulumi up",
                        "scenario": scenario.name,
                        "title": scenario.title,
                        "target": "(all)",
                        "steps": sum(r.steps for r in built.values()),
                        "cached": sum(r.cached for r in built.values()),
                        "seconds": round(wall, 1),
                        "ratio_to_cold": round(wall / cold["(all)"], 2),
                    }
                )
        finally:
            for path, text in originals.items():
                path.write_text(text)
    return rows


def _images(deployment: Deployment) -> list[str]:
    """The stack's Images, parents first (their order in the state)."""
    resources = deployment.state()["deployment"].get("resources") or []
    return [
        r["urn"].rpartition("::")[2].removesuffix("-image")
        for r in resources
        if r["type"] == "docker-build:index:Image"
    ]


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | target | steps | reused | hit rate | seconds | vs cold |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rate = r["cached"] / r["steps"] if r["steps"] else 1.0
        if not r["steps"] and r.get("path") == "pulumi up":
            lines.append(f"| {r['title']} | {r['target']} | - | - | not rebuilt | - | - |")
            continue
        name = f"**{r['title']}**" if r["target"] == "(all)" else r["title"]
        lines.append(
            f"| {name} | {r['target']} | {r['steps']} | {r['cached']} | {rate:.0%} | "
            f"{r['seconds']:.1f} | {r['ratio_to_cold']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
