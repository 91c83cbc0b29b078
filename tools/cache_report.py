"""Per-target cache hit rates from BuildKit's own progress, as Markdown.

Reads ``--progress=rawjson`` streams (a sequence of pretty-printed JSON objects, decoded
one after another) and optionally bake's ``--metadata-file``. A *step* is a Dockerfile
instruction vertex (``[<target> <stage> 3/8] RUN ...``) other than ``FROM``: a FROM is a
pull of a base or parent image, never a cache hit or miss. BuildKit marks reused steps
``cached: true``; the hit rate is cached steps over steps.

    scripts/cache-report --progress core-cpu=build/core-cpu.json [--metadata FILE]
                         [--stack ci]   # fail below the stack's cacheThresholds
    scripts/cache-report --history [--since 2026-11-29T12:00:00Z] [--stack prod]

``--history`` reads the builder's own build records instead (``docker buildx history``,
buildx 0.20+ against BuildKit 0.13+): every build the docker-build provider made, with
BuildKit's step counts, mapped to targets by the ``org.opencontainers.image.title`` label
each Image carries. That is what ``pulumi up`` leaves behind, so the deploy workflow uses it.

Output is Markdown, so CI can append it to ``$GITHUB_STEP_SUMMARY``. (``docker buildx du``
shows disk use, never a hit rate.)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from components.errors import SettingsError, invalid_configuration
from components.rules import threshold_problems
from tools.offline import stack_settings

STEP = re.compile(r"^\[(?P<prefix>[^\]]*?)\s*(?P<n>\d+)/(?P<m>\d+)\] (?P<instruction>[A-Z]+)\b")


@dataclass(frozen=True)
class Vertex:
    digest: str
    name: str
    cached: bool
    started: datetime | None
    completed: datetime | None
    error: str


@dataclass(frozen=True)
class Step:
    """One Dockerfile instruction as BuildKit ran (or reused) it."""

    target: str
    stage_prefix: str
    number: int
    instruction: str
    text: str
    cached: bool


def decode_stream(text: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a rawjson stream (not one per line: pretty-printed)."""
    decoder = json.JSONDecoder()
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return
        if text[index] != "{":
            # buildx prints its error text after the stream when a build fails.
            return
        obj, index = decoder.raw_decode(text, index)
        yield obj


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    # BuildKit writes nanoseconds; datetime keeps microseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed)


def read_vertices(text: str) -> dict[str, Vertex]:
    """Merge every status update of each vertex (keyed by digest)."""
    merged: dict[str, dict[str, Any]] = {}
    for status in decode_stream(text):
        for v in status.get("vertexes") or []:
            current = merged.setdefault(v["digest"], {})
            current.update({k: val for k, val in v.items() if val not in (None, "")})
    return {
        digest: Vertex(
            digest=digest,
            name=str(v.get("name", "")),
            cached=bool(v.get("cached")),
            started=_time(v.get("started")),
            completed=_time(v.get("completed")),
            error=str(v.get("error", "")),
        )
        for digest, v in merged.items()
    }


def seconds_of(vertices: Iterable[Vertex], wanted: Callable[[Vertex], bool]) -> float:
    """Seconds the ``wanted`` vertices ran, summed (to 0.1 s); unfinished ones count 0."""
    return round(
        sum(
            (v.completed - v.started).total_seconds()
            for v in vertices
            if v.started and v.completed and wanted(v)
        ),
        1,
    )


def is_local_context(vertex: Vertex) -> bool:
    """A transfer of a local directory from the client (the build context or a named one)."""
    name = vertex.name
    return name.endswith("load from client") or name == "[internal] load build context"


def steps_of(vertices: Iterable[Vertex], target: str) -> list[Step]:
    """The build steps in a stream that holds one target's build."""
    steps = []
    for vertex in vertices:
        match = STEP.match(vertex.name)
        if not match or match["instruction"] == "FROM":
            continue
        steps.append(
            Step(
                target=target,
                stage_prefix=match["prefix"],
                number=int(match["n"]),
                instruction=match["instruction"],
                text=vertex.name[match.end("m") + 2 :],
                cached=vertex.cached,
            )
        )
    return sorted(steps, key=lambda s: (s.stage_prefix, s.number))


@dataclass(frozen=True)
class TargetReport:
    target: str
    steps: int
    cached: int
    seconds: float
    digest: str

    @property
    def hit_rate(self) -> float:
        return self.cached / self.steps if self.steps else 1.0


def report_for(target: str, text: str, metadata: dict[str, Any] | None = None) -> TargetReport:
    vertices = list(read_vertices(text).values())
    steps = steps_of(vertices, target)
    starts = [v.started for v in vertices if v.started]
    ends = [v.completed for v in vertices if v.completed]
    seconds = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    digest = str(((metadata or {}).get(target) or {}).get("containerimage.digest", ""))
    return TargetReport(
        target=target,
        steps=len(steps),
        cached=sum(s.cached for s in steps),
        seconds=seconds,
        digest=digest,
    )


TITLE_LABEL = "org.opencontainers.image.title"


def reports_from_history(
    records: Iterable[dict[str, Any]], inspected: dict[str, dict[str, Any]], since: str = ""
) -> list[TargetReport]:
    """One report per target: its latest completed build record at or after ``since``.

    ``records`` are ``history ls --format json`` lines, ``inspected`` maps a record's ref to
    its ``history inspect --format json``. BuildKit counts every vertex, internal ones too.
    """
    latest: dict[str, tuple[datetime, TargetReport]] = {}
    start = datetime.fromisoformat(since) if since else None
    for record in records:
        created = datetime.fromisoformat(str(record["created_at"]))
        if record.get("status") != "Completed" or (start and created < start):
            continue
        doc = inspected.get(str(record["ref"])) or {}
        labels = {item.get("Name"): item.get("Value") for item in doc.get("Labels") or []}
        target = labels.get(TITLE_LABEL)
        if not target:
            continue
        report = TargetReport(
            target=str(target),
            steps=int(record.get("total_steps", 0)),
            cached=int(record.get("cached_steps", 0)),
            seconds=float(doc.get("Duration", 0)) / 1e9,
            digest="",
        )
        if target not in latest or created > latest[target][0]:
            latest[str(target)] = (created, report)
    return [latest[t][1] for t in sorted(latest)]


def history_records(builder: str | None = None) -> list[dict[str, Any]]:
    """The builder's build records (``docker buildx history ls``), newest first."""
    where = ["--builder", builder] if builder else []
    listed = subprocess.run(
        ["docker", "buildx", "history", "ls", *where, "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [json.loads(line) for line in listed.splitlines() if line.strip()]


def read_history(builder: str | None) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The builder's build records and each one's inspection, through the current buildx."""
    base = ["docker", "buildx", "history"]
    where = ["--builder", builder] if builder else []
    records = history_records(builder)
    inspected = {}
    for record in records:
        if record.get("status") != "Completed":
            continue
        ref = str(record["ref"])
        shown = subprocess.run(
            [*base, "inspect", *where, ref.rpartition("/")[2], "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        inspected[ref] = json.loads(shown)
    return records, inspected


def to_markdown(reports: list[TargetReport], thresholds: dict[str, float]) -> str:
    lines = [
        "| target | steps | cached | hit rate | threshold | seconds | digest |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in reports:
        limit = thresholds.get(r.target)
        mark = "" if limit is None or r.hit_rate >= limit else " ❌"
        lines.append(
            f"| {r.target} | {r.steps} | {r.cached} | {r.hit_rate:.0%}{mark} | "
            f"{'-' if limit is None else f'{limit:.0%}'} | {r.seconds:.1f} | "
            f"{r.digest[:19] or '-'} |"
        )
    return "\n".join(lines)


def thresholds_of(stack: str) -> dict[str, float]:
    """``cacheThresholds`` of a stack file, validated like the program validates it."""
    settings = stack_settings(stack)
    if problems := threshold_problems(settings):
        raise invalid_configuration(problems)
    return dict(settings.cacheThresholds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/cache-report", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--progress",
        action="append",
        default=[],
        metavar="TARGET=FILE",
        help="rawjson progress of one target's build (repeat per target)",
    )
    parser.add_argument(
        "--history", action="store_true", help="read the builder's build records instead"
    )
    parser.add_argument("--since", default="", help="with --history: records from this time on")
    parser.add_argument("--builder", help="with --history: the buildx builder (default: current)")
    parser.add_argument("--metadata", help="bake/buildx --metadata-file output")
    parser.add_argument("--stack", help="fail when a target is below this stack's cacheThresholds")
    args = parser.parse_args(argv)
    metadata = json.loads(Path(args.metadata).read_text()) if args.metadata else None
    try:
        thresholds = thresholds_of(args.stack) if args.stack else {}
    except (SettingsError, FileNotFoundError) as err:
        print(f"cache-report: {err}", file=sys.stderr)
        return 2
    if not args.progress and not args.history:
        parser.error("give --progress TARGET=FILE (repeatable) or --history")
    reports = []
    if args.history:
        reports += reports_from_history(*read_history(args.builder), since=args.since)
        if not reports:
            print(
                f"cache-report: no completed builds since {args.since or 'ever'}", file=sys.stderr
            )
    for item in args.progress:
        target, sep, path = item.partition("=")
        if not sep:
            parser.error(f"--progress {item!r}: expected TARGET=FILE")
        reports.append(report_for(target, Path(path).read_text(encoding="utf-8"), metadata))
    print(to_markdown(reports, thresholds))
    below = [r for r in reports if r.target in thresholds and r.hit_rate < thresholds[r.target]]
    for r in below:
        print(
            f"cache-report: {r.target} reused {r.cached}/{r.steps} steps ({r.hit_rate:.0%}), "
            f"below its threshold {thresholds[r.target]:.0%} (comfyui-images:cacheThresholds)",
            file=sys.stderr,
        )
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
