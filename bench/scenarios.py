"""Cache scenarios on the real engine: shared by the integration tests and the benchmark.

Each scenario changes one input of the `ci` stack (stacks/Pulumi.ci.yaml), then rebuilds
the family the way the docker-build provider does: one build per target, parents read
from the registry as ``docker-image://`` refs, with the stack's real cache settings,
all taken from the recorded plan through ``tools.bake``. Before every scenario the
builder cache and all local images are removed, so anything reused comes from the
registry cache, as on a fresh CI runner.

Inputs the engine cannot reach are the stand-ins of ``bench/standin_inputs.py``; the
engine itself is reached through ``bench/engine.py``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.engine import CA_BUNDLE, reset_local_state
from bench.registry_traffic import Traffic, offset, traffic
from bench.standin_inputs import NS, WORK, make_comfyui_standin
from components.cuda import TORCH_TRIO
from components.locks import HEADER_PINS
from components.project import ROOT
from tools.bake import to_bake
from tools.cache_report import Step, read_vertices, steps_of
from tools.offline import run_program
from tools.plan import to_plan

# buildx 0.38 asks bake files to be granted what they read outside their directory: here
# the CA bundle handed to pip as the `ca` secret.
BAKE_ALLOW = (f"--allow=fs.read={CA_BUNDLE}",)
# The loopback registry of engine/up: its access log and its blob store.
REGISTRY_LOG = ROOT / ".engine" / "logs" / "registry.log"
REGISTRY_STORE = ROOT / ".engine" / "registry-data"
RUNS = ROOT / "build" / "engine-runs"
ALL = "<every step>"

# The steps of core's graph (dockerfiles/core/Dockerfile), each named by a marker found in
# BuildKit's text for it and nowhere else. The scenarios below say which of them must run.
CORE_STEPS = {
    "venv": 'python -m venv "/opt/venv"',
    "torch": "--index-url",
    "lock-split": "from=comfyui-lock,target=/tmp/comfyui-lock",
    "comfy-cli-venv": "python -m venv /opt/comfy-cli",
    "comfy-cli": "comfy-cli==",
    "requirements": "from=comfyui-src,source=requirements.txt",
    "manager-file": "COPY --from=comfyui-src manager_requirements.tx[t]",
    "manager": "from=comfyui-manager-requirements",
    "workdir": "WORKDIR /opt/comfyui",
    "comfyui-tree": "from=comfyui-src,target=/tmp/comfyui-src",
    "join-comfy-cli": "COPY --link --from=comfy-cli",
    "join-comfyui-tree": "COPY --link --from=comfyui-tree",
    "app": "COPY --link app/",
}
# BuildKit shows a `COPY --link` as two steps: the copy onto nothing (keyed to the copied
# files alone) and "LINK ...", the join onto the image. A join runs no command and moves no
# file; it is keyed to the layer it adds and to the joins under it, so it reruns when either
# changed. Their names here: "link:<step>".
LINKED = ("join-comfy-cli", "join-comfyui-tree", "app")  # in the final stage's order
EVERY_CORE_STEP = (*CORE_STEPS, *(f"link:{name}" for name in LINKED))


def relinks_from(name: str) -> tuple[str, ...]:
    """The joins that rerun when the linked layer ``name`` changes: its own and those above."""
    return tuple(f"link:{n}" for n in LINKED[LINKED.index(name) :])


@dataclass(frozen=True)
class Scenario:
    """One change, and the minimal set of steps it must rerun: a step reruns exactly when
    its own inputs changed. ``reruns`` maps a target family ("runtime", "core") to ALL or
    to names of CORE_STEPS; ``why`` says, per step named there, which of its inputs changed
    (or, under ALL, why whole families rerun)."""

    name: str
    title: str
    versions: dict[str, str] = field(default_factory=dict)
    edit: Callable[[Path], None] | None = None
    reruns: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)


def _edit_start_script(work: Path) -> None:
    script = work / "dockerfiles" / "core" / "app" / "start.sh"
    script.write_text(script.read_text() + f"# edited by the app-change scenario {time.time()}\n")


# Steps keyed to files that a base image change leaves alone (see SHARED_STEPS).
_CONTENT_ONLY = ("manager-file", "join-comfyui-tree", "app")

SCENARIOS = [
    Scenario(
        "cold",
        "first build",
        reruns={"runtime": ALL, "core": EVERY_CORE_STEP},
        why={ALL: "nothing is cached: a fresh namespace, a pruned builder"},
    ),
    Scenario("no-change", "no change", reruns={"runtime": (), "core": ()}),
    Scenario(
        "app-change",
        "code change only (startup script)",
        edit=_edit_start_script,
        reruns={"runtime": (), "core": ("app", *relinks_from("app"))},
        why={
            "app": "its only input, dockerfiles/core/app/, changed",
            "link:app": "the layer it joins changed; nothing under it is rebuilt or pulled",
        },
    ),
    Scenario(
        "comfyui-bump",
        "ComfyUI version bump",
        versions={"comfyui": "v0.8.2"},
        reruns={
            "runtime": (),
            "core": ("comfyui-tree", "join-comfyui-tree", *relinks_from("join-comfyui-tree")),
        },
        why={
            "comfyui-tree": "the source tree and COMFYUI_VERSION changed",
            "join-comfyui-tree": "it copies that stage's new output",
            "link:join-comfyui-tree": "the layer it joins changed",
            "link:app": "a join under it changed (the app layer itself is reused)",
            # and not: requirements.txt, manager_requirements.txt and the lock (whose bytes
            # hold no ComfyUI version) are the same, so no pip layer reruns.
        },
    ),
    Scenario(
        "comfy-cli-bump",
        "dependency update (comfy-cli)",
        versions={"comfyCli": "1.22.0"},
        reruns={
            "runtime": (),
            "core": ("lock-split", "comfy-cli", "join-comfy-cli", *relinks_from("join-comfy-cli")),
        },
        why={
            "lock-split": "the lock is regenerated (its header and comfy-cli section changed)",
            "comfy-cli": "COMFY_CLI_VERSION and the lock's comfy-cli section changed",
            "join-comfy-cli": "it copies that stage's new /opt/comfy-cli",
            "link:join-comfy-cli": "the layer it joins changed",
            "link:join-comfyui-tree": "a join under it changed (the tree itself is reused)",
            "link:app": "a join under it changed (the app layer itself is reused)",
            # and not: the lock's comfyui section is the same bytes, so ComfyUI's
            # requirement and Manager layers (keyed to that section) stay cached.
        },
    ),
    Scenario(
        "base-change",
        "base image update",
        versions={"ubuntu": "24.10"},
        reruns={
            "runtime": ALL,
            "core": tuple(n for n in EVERY_CORE_STEP if n not in _CONTENT_ONLY),
        },
        why={
            ALL: "every runtime step is built on the base image, and every core step on the "
            "runtime image, which changed; except the copies of files the base does not "
            "change: the Manager's requirement file, the ComfyUI tree (rebuilt on the new "
            "runtime, to the same files) and the app code",
        },
    ),
]


@dataclass
class TargetRun:
    target: str
    seconds: float
    steps: list[Step]
    progress_file: Path
    metadata: dict[str, Any]
    # What the build moved through the engine's registry (bench/registry_traffic.py).
    traffic: Traffic = field(default_factory=Traffic)

    @property
    def cached(self) -> int:
        return sum(s.cached for s in self.steps)


def bake_target(bake_file: Path, target: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """``docker buildx bake`` of one target with rawjson progress (on stderr)."""
    command = ["docker", "buildx", "bake", *BAKE_ALLOW, "--file", str(bake_file)]
    return subprocess.run(
        [*command, "--progress", "rawjson", *flags, target],
        cwd=WORK,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )


def bake_plan(plan: dict[str, Any]) -> dict[str, str]:
    """Build every target of a plan in order, each on its own reading its parents from the
    registry (as the provider does), without pruning anything: target -> pushed digest."""
    bake_file = WORK / "bake.json"
    bake_file.write_text(json.dumps(to_bake(plan, secrets={"ca": CA_BUNDLE}, parents="image")))
    digests = {}
    for target in plan["order"]:
        meta = WORK / f"{target}.metadata.json"
        result = bake_target(bake_file, target, "--metadata-file", str(meta))
        if result.returncode != 0:
            raise RuntimeError(f"bake {target} failed:\n{result.stderr[-4000:]}")
        digests[target] = json.loads(meta.read_text())[target]["containerimage.digest"]
    return digests


def run_scenario(config: dict[str, Any], scenario: Scenario, out_dir: Path) -> dict[str, TargetRun]:
    plan = to_plan(run_program(config, stack="ci"))
    bake = to_bake(plan, secrets={"ca": CA_BUNDLE}, parents="image")
    bake_file = WORK / "bake.json"
    bake_file.write_text(json.dumps(bake, indent=2))
    out_dir.mkdir(parents=True, exist_ok=True)
    reset_local_state()
    runs: dict[str, TargetRun] = {}
    for target in plan["order"]:
        meta_file = out_dir / f"{target}.metadata.json"
        log_start = offset(REGISTRY_LOG)
        started = time.monotonic()
        result = bake_target(bake_file, target, "--metadata-file", str(meta_file))
        seconds = time.monotonic() - started
        moved = (
            traffic(REGISTRY_LOG, log_start, REGISTRY_STORE) if REGISTRY_LOG.exists() else Traffic()
        )
        progress = out_dir / f"{target}.rawjson"
        progress.write_text(result.stderr)
        if result.returncode != 0:
            raise RuntimeError(
                f"scenario {scenario.name}: bake {target} failed; progress in {progress}\n"
                + result.stderr[-3000:]
            )
        steps = steps_of(read_vertices(result.stderr).values(), target)
        runs[target] = TargetRun(
            target=target,
            seconds=seconds,
            steps=steps,
            progress_file=progress,
            metadata=json.loads(meta_file.read_text())[target],  # bake keys it by target
            traffic=moved,
        )
    return runs


# Steps with one cache key in every target of the core family, so the first target that
# has them (re)builds them and the others reuse it: the stages core builds on the runtime
# every core shares (`common-runtime`, runtime-cpu's image: the lock split, comfy-cli's
# environment, the ComfyUI tree), a stage FROM scratch (the Manager's requirement file), and
# the copy half of each `COPY --link` (BuildKit shows a linked copy as two steps: the copy
# onto nothing, and "LINK ..." joining it to the image, which is per target).
SHARED_STEPS = tuple(
    CORE_STEPS[name]
    for name in (
        "lock-split",
        "comfy-cli-venv",
        "comfy-cli",
        "comfyui-tree",
        "manager-file",
        "join-comfy-cli",
        "join-comfyui-tree",
        "app",
    )
)


def is_shared(step: Step) -> bool:
    return not step.text.startswith("LINK ") and any(m in step.text for m in SHARED_STEPS)


def step_name(step: Step) -> str:
    """The name of a core step: its CORE_STEPS key, "link:<key>" for the join of a linked
    copy (AssertionError for a step no marker names, or more than one)."""
    names = [name for name, marker in CORE_STEPS.items() if marker in step.text]
    if len(names) != 1:
        raise AssertionError(f"{len(names)} CORE_STEPS markers match {step.text[:80]!r}")
    return f"link:{names[0]}" if step.text.startswith("LINK ") else names[0]


def expected_reruns(scenario: Scenario, runs: dict[str, list[Step]]) -> dict[str, list[str]]:
    """Per target (in build order), the texts of the steps the scenario must rerun.

    ``runs`` maps each target to its steps. A shared step reruns in the first target that
    has it at most: later targets find the same cache key already built."""
    expected: dict[str, list[str]] = {}
    seen_shared: set[str] = set()
    for target, steps in runs.items():
        rule = scenario.reruns[family(target)]
        expected[target] = []
        for step in steps:
            # Only core's steps have names; a family reruns all of them or the ones named.
            runs_now = rule == ALL or (bool(rule) and step_name(step) in rule)
            if is_shared(step):
                runs_now = runs_now and step.text not in seen_shared
                seen_shared.add(step.text)
            if runs_now:
                expected[target].append(step.text)
    return expected


def relock(config: dict[str, Any], resolver: Any = None) -> dict[str, Any]:
    """A new lock of the stand-in for the config's pins, in the work dir, and the config
    reading it there (a real comfy-cli bump comes with its regenerated lock, as release
    tracking makes it); the program and the build both read that one file."""
    from tools import lock  # noqa: PLC0415 (uv is only needed here)

    v, s = config[f"{NS}:versions"], config[f"{NS}:sources"]
    source = WORK / s["comfyui"].replace("{version}", v["comfyui"])
    if not source.exists():
        make_comfyui_standin(source, v["comfyui"])
    argv = ["--comfyui-src", str(source), "--comfyui", v["comfyui"]]
    argv += ["--comfy-cli", v["comfyCli"], "--python", v["python"]]
    argv += [arg for name in TORCH_TRIO for arg in (f"--{name}", v[name])]
    argv += ["--output-dir", str(WORK / "locks" / "comfyui")]
    # A week's cooldown: the build's pip reads the index through the machine's mirror, which
    # may not list a release uploaded hours ago that uv already sees.
    week_ago = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    resolver = resolver or lock.uv_resolver(exclude_newer=week_ago)
    # One lock per platform the config names (a two-platform stack builds core on both).
    named = [*(config.get(f"{NS}:platforms") or ["linux/amd64"])]
    named += [p for listed in (config.get(f"{NS}:targetPlatforms") or {}).values() for p in listed]
    for platform in dict.fromkeys(named):
        if lock.main([*argv, "--platform", platform], resolver=resolver) != 0:
            raise RuntimeError(f"could not lock the stand-in for {v} on {platform}")
    where = {**s, "comfyuiLock": str(WORK / "locks" / "comfyui" / "{version}")}
    return {**config, f"{NS}:sources": where}


def apply(config: dict[str, Any], scenario: Scenario) -> dict[str, Any]:
    if scenario.versions:
        versions = dict(config[f"{NS}:versions"])
        versions.update(scenario.versions)
        config = {**config, f"{NS}:versions": versions}
        if set(scenario.versions) & HEADER_PINS:
            config = relock(config)
    if scenario.edit:
        scenario.edit(WORK)
    return config


def family(target: str) -> str:
    return target.split("-", 1)[0]
