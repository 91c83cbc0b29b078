"""Benchmark: rebuild time and cache reuse per change scenario, on the real engine.

Not a test: it asserts nothing, it measures. It runs the scenarios of
``tools.scenarios`` (the same ones the engine tests check) on the `ci` stack, each on a
pruned builder with no local images (a fresh CI runner), and prints per scenario and
target: steps, steps reused, hit rate, wall seconds and the ratio to the cold build.
Results go to ``bench/results/<timestamp>.md`` and ``.json`` with the machine's details.

    scripts/engine-up && . .engine/env && venv/bin/python -m bench.cache_scenarios
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.scenarios import (
    RUNS,
    SCENARIOS,
    apply,
    ci_config,
    engine_from_env,
    ensure_inputs,
    prepare,
    run_scenario,
)

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
    table = render(rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    details = machine()
    (RESULTS / f"{stamp}.json").write_text(json.dumps({"machine": details, "rows": rows}, indent=2))
    header = ", ".join(f"{k} {v}" for k, v in details.items())
    (RESULTS / f"{stamp}.md").write_text(f"Machine: {header}\n\n{table}\n")
    print(f"\nbench: wrote bench/results/{stamp}.md and .json")
    return 0


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | target | steps | reused | hit rate | seconds | vs cold |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rate = r["cached"] / r["steps"] if r["steps"] else 1.0
        name = f"**{r['title']}**" if r["target"] == "(all)" else r["title"]
        lines.append(
            f"| {name} | {r['target']} | {r['steps']} | {r['cached']} | {rate:.0%} | "
            f"{r['seconds']:.1f} | {r['ratio_to_cold']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
