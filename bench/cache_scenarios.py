"""Benchmark: rebuild time and cache reuse per change scenario, on the real engine.

Not a test: it asserts nothing, it measures. It runs the scenarios of
``bench.scenarios`` (the same ones the engine tests check) on the `ci` stack, each on a
pruned builder with no local images (a fresh CI runner), twice side by side:

- bake: every target built on its own from the bake translation of the plan;
- pulumi up: the real CLI and provider on a throwaway backend, which rebuilds only the
  Images whose inputs changed; steps and reuse come from the builder's history.

Per scenario and target: steps, steps reused, hit rate, seconds, the ratio to the cold
build, and the bytes BuildKit pulled from and pushed to the registry (its access log,
bench/registry_traffic.py). Results go to ``bench/results/<timestamp>.md``, ``.json`` (with
the payload and the machine's details) and ``.png`` (seconds and bytes per scenario).

Payloads: ``small`` (default; the stand-ins of the engine tests) or ``realistic``: the six
CUDA and CPU targets, torch stand-ins with incompressible payloads as large as the real libraries
(2.5 GB per CUDA line, 200 MB CPU; bench/payloads.py), and ComfyUI's real requirements from
PyPI when the upstream snapshot is on this machine (``--comfyui-requirements``).
``--scaling 0.5,1,2.5`` adds the app-change cost of core-cuda at those CUDA payloads (GB).

    engine/up && . .engine/env && venv/bin/python -m bench.cache_scenarios \
        [--payload realistic] [--scaling 0.5,1,2.5] [--no-pulumi]
"""

from __future__ import annotations

import argparse
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

from bench.deployment import Deployment
from bench.engine import Engine, engine_from_env, reset_local_state
from bench.payloads import GB, REALISTIC, fill_torch_indexes
from bench.registry_traffic import Traffic, offset, traffic
from bench.scenarios import (
    REGISTRY_LOG,
    REGISTRY_STORE,
    RUNS,
    SCENARIOS,
    Scenario,
    TargetRun,
    apply,
    relock,
    run_scenario,
)
from bench.standin_inputs import INDEX, NS, WORK, ci_config, ensure_inputs, prepare
from components.project import ROOT
from tools.cache_report import (
    is_local_context,
    read_history,
    read_vertices,
    reports_from_history,
    seconds_of,
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench.cache_scenarios", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--payload", choices=("small", "realistic"), default="small")
    parser.add_argument(
        "--comfyui-requirements",
        type=Path,
        default=None,
        help="a real ComfyUI requirements.txt for realistic mode (default: the fetched "
        "upstream snapshot, when present)",
    )
    parser.add_argument(
        "--scaling", default="", help="CUDA payload sizes in GB for the app-change scaling figure"
    )
    parser.add_argument("--no-pulumi", action="store_true", help="skip the pulumi up path")
    return parser.parse_args(argv)


UPSTREAM_SNAPSHOT = Path("/work/.mirror/Comfy-Org+ComfyUI/repo")


def upstream_requirements(given: Path | None) -> str | None:
    """ComfyUI's real requirements.txt: a file given, or the fetched upstream snapshot."""
    if given is not None:
        return given.read_text()
    if UPSTREAM_SNAPSHOT.is_dir():
        shown = subprocess.run(
            ["git", "-C", str(UPSTREAM_SNAPSHOT), "show", "HEAD:requirements.txt"],
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode == 0:
            return shown.stdout
    return None


def realistic(config: dict[str, Any]) -> dict[str, Any]:
    """The six CUDA and CPU targets and heavy torch stand-ins (the real ComfyUI requirements
    are written into each stand-in source once the scenario has made it)."""
    fill_torch_indexes(INDEX, REALISTIC)
    return {**config, f"{NS}:targets": ["core-cpu", "complete-cuda"]}


def context_seconds(progress: Path) -> float:
    """Seconds a build spent sending local contexts (the client's file sync): the
    Dockerfiles, app files, ComfyUI tree and lock, so near zero. Kept as a column because a
    stand-in that rides in a context costs here, and a real input does not: the torch
    indexes once rode in the `wheelhouse` context (31-45 s per scenario with the realistic
    payload); engine/up now serves them over HTTP, as PyTorch's index serves the real ones,
    and the torch step pays their download like a real build."""
    return seconds_of(read_vertices(progress.read_text()).values(), is_local_context)


def row(
    scenario: Any, target: str, run: TargetRun | None, cold: float, **extra: Any
) -> dict[str, Any]:
    moved = run.traffic if run else Traffic()
    seconds = run.seconds if run else 0.0
    return {
        "scenario": scenario.name,
        "title": scenario.title,
        "target": target,
        "steps": len(run.steps) if run else 0,
        "cached": run.cached if run else 0,
        "seconds": round(seconds, 1),
        "ratio_to_cold": round(seconds / cold, 3) if cold else 0.0,
        "bytes_pulled": moved.bytes_pulled,
        "bytes_pushed": moved.bytes_pushed,
        "context_seconds": context_seconds(run.progress_file) if run else 0.0,
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    engine = engine_from_env()
    if engine is None:
        print("bench: no engine; run engine/up and `. .engine/env` first", file=sys.stderr)
        return 1
    run_id = f"bench{int(time.time())}"
    config = ci_config(engine, run_id)
    prepare(config)
    requirements = upstream_requirements(args.comfyui_requirements)
    payload: dict[str, Any] = {"mode": args.payload}
    if args.payload == "realistic":
        config = realistic(config)
        payload |= {
            "torch_payload_bytes": REALISTIC,
            "comfyui_requirements": "upstream" if requirements else "stand-in",
        }
    rows: list[dict[str, Any]] = []
    cold: dict[str, float] = {}
    # Each scenario's config as bake built it: the pulumi up path deploys the same ones.
    configs: list[tuple[Scenario, dict[str, Any]]] = []
    for scenario in SCENARIOS:
        config = apply(config, scenario)
        ensure_inputs(engine, config)
        if args.payload == "realistic" and requirements is not None:
            for source in (WORK / "build" / "standins").glob("comfyui-*"):
                (source / "requirements.txt").write_text(requirements)
            # The committed ci locks are of the stand-in's requirements: lock the upstream
            # ones, as a real stack commits its lock (deterministic, so a scenario that
            # changes no input of the lock gets the same bytes back).
            config = relock(config)
        configs.append((scenario, config))
        runs = run_scenario(config, scenario, RUNS / run_id / scenario.name)
        for target, run in runs.items():
            if scenario.name == "cold":
                cold[target] = run.seconds
            rows.append(row(scenario, target, run, cold[target]))
        total = sum(r.seconds for r in runs.values())
        if scenario.name == "cold":
            cold["(all)"] = total
        rows.append(
            {
                **row(scenario, "(all)", None, cold["(all)"]),
                "steps": sum(len(r.steps) for r in runs.values()),
                "cached": sum(r.cached for r in runs.values()),
                "seconds": round(total, 1),
                "ratio_to_cold": round(total / cold["(all)"], 3),
                "bytes_pulled": sum(r.traffic.bytes_pulled for r in runs.values()),
                "bytes_pushed": sum(r.traffic.bytes_pushed for r in runs.values()),
                "context_seconds": round(
                    sum(context_seconds(r.progress_file) for r in runs.values()), 1
                ),
            }
        )
    for r in rows:
        r["path"] = "bake"
    table = render(rows)
    partial = save_bake_rows(run_id, payload, rows)
    if not args.no_pulumi:
        provider = provider_rows(engine, run_id, configs)
        table += "\n\nThrough `pulumi up`:\n\n" + render(provider)
        rows += provider
    scaling = scaling_rows(engine, run_id, args.scaling) if args.scaling else []
    if scaling:
        table += "\n\nApp change vs payload (core-cuda):\n\n" + render_scaling(scaling)
    print(table)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    details = machine()
    document = {"payload": payload, "machine": details, "rows": rows, "scaling": scaling}
    (RESULTS / f"{stamp}.json").write_text(json.dumps(document, indent=2))
    header = ", ".join(f"{k} {v}" for k, v in details.items())
    (RESULTS / f"{stamp}.md").write_text(f"Payload: {payload}\n\nMachine: {header}\n\n{table}\n")
    from bench.chart import draw  # noqa: PLC0415 (matplotlib only for the benchmark)

    draw(document, RESULTS / f"{stamp}.png")
    partial.unlink()
    print(f"\nbench: wrote bench/results/{stamp}.md, .json and .png")
    return 0


def save_bake_rows(run_id: str, payload: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    """bake's rows, written before the pulumi up path runs and removed once the whole
    result is: a later path that fails (a full disk, a refused up) loses nothing of bake's."""
    RESULTS.mkdir(exist_ok=True)
    partial = RESULTS / f"{run_id}.bake.json"
    partial.write_text(json.dumps({"payload": payload, "machine": machine(), "rows": rows}))
    print(f"bench: bake's rows in {partial.relative_to(ROOT)}", file=sys.stderr)
    return partial


def scaling_rows(engine: Engine, run_id: str, sizes: str) -> list[dict[str, Any]]:
    """Cold, then an app change, of core-cuda at each CUDA payload size: how the cost of
    an app change grows with what lies under it."""
    out = []
    for text in sizes.split(","):
        size = int(float(text) * GB)
        config = ci_config(engine, f"{run_id}-scale{text.replace('.', '_')}")
        config[f"{NS}:targets"] = ["core-cuda"]
        prepare(config)
        ensure_inputs(engine, config)
        fill_torch_indexes(INDEX, {"cuda": size, "cpu": 0})
        by_name = {s.name: s for s in SCENARIOS}
        runs = {}
        for name in ("cold", "app-change"):
            scenario = by_name[name]
            config = apply(config, scenario)
            runs[name] = run_scenario(config, scenario, RUNS / run_id / f"scale-{text}-{name}")
        cold, app = runs["cold"]["core-cuda"], runs["app-change"]["core-cuda"]
        out.append(
            {
                "payload_gb": float(text),
                "cold_seconds": round(cold.seconds, 1),
                "app_change_seconds": round(app.seconds, 1),
                "app_change_context_seconds": context_seconds(app.progress_file),
                "ratio_to_cold": round(app.seconds / cold.seconds, 3),
                "bytes_pulled": app.traffic.bytes_pulled,
                "bytes_pushed": app.traffic.bytes_pushed,
            }
        )
    return out


def render_scaling(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| CUDA payload | cold s | app change s | of which local contexts | vs cold "
        "| pulled | pushed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        contexts = r.get("app_change_context_seconds")
        shown = "-" if contexts is None else f"{contexts:.1f}"
        lines.append(
            f"| {r['payload_gb']} GB | {r['cold_seconds']} | {r['app_change_seconds']} | "
            f"{shown} | {r['ratio_to_cold']:.3f} | {size(r['bytes_pulled'])} | "
            f"{size(r['bytes_pushed'])} |"
        )
    return "\n".join(lines)


def size(n: int) -> str:
    for unit, scale in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def provider_rows(
    engine: Engine, run_id: str, configs: list[tuple[Scenario, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The scenarios through `pulumi up`: what a deploy costs, per Image it rebuilds. Each
    scenario deploys the config bake built (the same payloads, stand-in sources and lock),
    in a namespace of its own, so both paths start cold."""
    registry = ci_config(engine, f"{run_id}-pulumi")[f"{NS}:registry"]
    app = ROOT / "dockerfiles" / "core" / "app"
    originals = {path: path.read_text() for path in app.iterdir()}
    rows: list[dict[str, Any]] = []
    cold: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        deployment: Deployment | None = None
        try:
            for scenario, baked in configs:
                config = baked
                if config[f"{NS}:sources"].get("comfyuiLock", "").startswith(str(WORK)):
                    # Later scenarios relocked into the same file: lock this one's pins
                    # again (deterministic: the bytes bake built with).
                    config = relock(config)
                config = from_work_dir({**config, f"{NS}:registry": registry})
                if deployment is None:
                    deployment = Deployment.create(Path(root), "bench", config)
                if scenario.edit is not None:
                    scenario.edit(ROOT)  # the program builds from the project's dockerfiles/
                deployment.write_config(config)
                reset_local_state()
                since = datetime.now(UTC).isoformat()
                log_start = offset(REGISTRY_LOG)
                started = time.monotonic()
                deployment.pulumi("up", "--yes", "--skip-preview")
                wall = time.monotonic() - started
                moved = traffic(REGISTRY_LOG, log_start, REGISTRY_STORE)
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
                            # The registry log cannot tell the Images of one `up` apart.
                            "bytes_pulled": None,
                            "bytes_pushed": None,
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
                        "bytes_pulled": moved.bytes_pulled,
                        "bytes_pushed": moved.bytes_pushed,
                    }
                )
        finally:
            for path, text in originals.items():
                path.write_text(text)
    return rows


def from_work_dir(config: dict[str, Any]) -> dict[str, Any]:
    """A bake config for the program, which runs in the project root: its local stand-in
    sources (relative to the bake work dir) made absolute."""
    sources = dict(config[f"{NS}:sources"])
    for key in ("comfyui", "sageattention"):
        if sources.get(key) and "://" not in sources[key]:
            sources[key] = str(WORK / sources[key])
    return {**config, f"{NS}:sources": sources}


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
        "| scenario | target | steps | reused | hit rate | seconds | of which local contexts "
        "| vs cold | pulled | pushed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rate = r["cached"] / r["steps"] if r["steps"] else 1.0
        if not r["steps"] and r.get("path") == "pulumi up":
            lines.append(
                f"| {r['title']} | {r['target']} | - | - | not rebuilt | - | - | - | - | - |"
            )
            continue
        name = f"**{r['title']}**" if r["target"] == "(all)" else r["title"]
        moved = [
            "-" if r.get(key) is None else size(r[key]) for key in ("bytes_pulled", "bytes_pushed")
        ]
        contexts = r.get("context_seconds")
        shown = "-" if contexts is None else f"{contexts:.1f}"
        lines.append(
            f"| {name} | {r['target']} | {r['steps']} | {r['cached']} | {rate:.0%} | "
            f"{r['seconds']:.1f} | {shown} | {r['ratio_to_cold']:.2f} | {moved[0]} | {moved[1]} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
