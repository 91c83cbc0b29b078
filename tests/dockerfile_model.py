"""A small model of the parsed Dockerfiles, shared by the Dockerfile, image and script tests.

The files are read with BuildKit's own parser (the ``dockerfile`` package), so what is
checked is what a builder sees; no Docker engine is needed.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import dockerfile

from components.catalog import DOCKERFILES_DIR, TARGETS, Target
from components.project import ROOT

DOCKERFILES = sorted({t.dockerfile for t in TARGETS.values()})
APP_SCRIPTS = sorted((ROOT / DOCKERFILES_DIR / "core" / "app").glob("*.sh"))
CA_SECRET = "/run/secrets/ca.pem"
CA_GUARD = f"if [ -s {CA_SECRET} ]; then export PIP_CERT={CA_SECRET}; fi"
SECRET_NAME = re.compile(
    r"PASSW|TOKEN|SECRET|KEY|CREDENTIAL|AUTH|CERT|PEM|PRIVATE|(^|_)CA(_|$)", re.IGNORECASE
)
DEPENDENCY_INSTALL = re.compile(r"apt-get install|pip install|pip wheel")
TORCH_DOCKERFILES = sorted({t.dockerfile for t in TARGETS.values() if "TORCH_INDEX_URL" in t.args})
PIP = re.compile(r"(^|[\s;&|(])(pip3?|python3? -m pip)\s")


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None
    base: str
    commands: tuple[dockerfile.Command, ...]  # the instructions after FROM

    @property
    def label(self) -> str:
        return self.name or f"#{self.index}"


@dataclass(frozen=True)
class Parsed:
    path: str
    lines: tuple[str, ...]
    global_args: tuple[dockerfile.Command, ...]
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    @property
    def stage_names(self) -> set[str]:
        return {s.name for s in self.stages if s.name}


@cache
def parse(path: str) -> Parsed:
    full = ROOT / path
    commands = dockerfile.parse_file(str(full))
    global_args: list[dockerfile.Command] = []
    stages: list[Stage] = []
    current: list[dockerfile.Command] | None = None
    head: dockerfile.Command | None = None

    def close() -> None:
        if head is not None and current is not None:
            value = head.value
            name = value[2] if len(value) >= 3 and value[1].upper() == "AS" else None
            stages.append(Stage(len(stages), name, value[0], tuple(current)))

    for command in commands:
        if command.cmd == "FROM":
            close()
            head, current = command, []
        elif current is None:
            global_args.append(command)
        else:
            current.append(command)
    close()
    return Parsed(path, tuple(full.read_text().splitlines()), tuple(global_args), tuple(stages))


def arg_names(command: dockerfile.Command) -> list[str]:
    return [v.split("=", 1)[0] for v in command.value]


def arg_defaults(command: dockerfile.Command) -> dict[str, str | None]:
    return {v.split("=", 1)[0]: (v.split("=", 1)[1] if "=" in v else None) for v in command.value}


def text(command: dockerfile.Command) -> str:
    """Everything a variable can be referenced in: flags and arguments."""
    return " ".join((*command.flags, *command.value))


def references(command: dockerfile.Command, name: str) -> bool:
    if command.cmd == "ARG":
        return False
    return re.search(rf"\$\{{?{re.escape(name)}(?![A-Za-z0-9_])", text(command)) is not None


def flag_values(command: dockerfile.Command, flag: str) -> list[str]:
    prefix = f"--{flag}="
    return [f[len(prefix) :] for f in command.flags if f.startswith(prefix)]


def mounts(command: dockerfile.Command) -> list[dict[str, str]]:
    parsed = []
    for spec in flag_values(command, "mount"):
        options = {}
        for item in spec.split(","):
            key, _, value = item.partition("=")
            options[key] = value or "true"
        parsed.append(options)
    return parsed


def stage_refs(command: dockerfile.Command) -> list[str]:
    """Stages or named contexts a COPY/ADD/RUN reads from (besides its own stage)."""
    refs = flag_values(command, "from") if command.cmd in {"COPY", "ADD"} else []
    if command.cmd == "RUN":
        refs += [m["from"] for m in mounts(command) if "from" in m]
    return refs


def chain(parsed: Parsed, stage_name: str, contexts: Iterable[str] = ()) -> list[Stage]:
    """The target stage and every stage of the file it builds on or reads from.

    A stage named like one of ``contexts`` (the named contexts the build is given) is not
    followed: BuildKit replaces that stage by the context, so what it would build is not
    part of the target (``FROM scratch AS wheelhouse``, ``FROM torch AS comfyui-env``)."""
    replaced = set(contexts)
    seen: dict[int, Stage] = {}
    todo = [stage_name]
    while todo:
        name = todo.pop()
        stage = parsed.stage(name)
        if stage is None or stage.index in seen or (name in replaced and name != stage_name):
            continue
        seen[stage.index] = stage
        todo.append(stage.base)
        for command in stage.commands:
            todo.extend(stage_refs(command))
    return [seen[i] for i in sorted(seen)]


def external_refs(parsed: Parsed, stages: list[Stage], contexts: Iterable[str] = ()) -> set[str]:
    """Names used as FROM/--from/mount from= that are not stages, or are stages the build's
    named ``contexts`` replace: named build contexts."""
    names = {s.base for s in stages} | {
        ref for s in stages for c in s.commands for ref in stage_refs(c)
    }
    replaced = set(contexts)
    return {
        n
        for n in names
        if (n not in parsed.stage_names or n in replaced) and n != "scratch" and "$" not in n
    }


def target_chain(target: Target) -> tuple[Parsed, list[Stage]]:
    """A target's Dockerfile and the stages its build runs, given the catalog's contexts."""
    parsed = parse(target.dockerfile)
    return parsed, chain(parsed, target.stage, contexts(target))


def contexts(target: Target) -> set[str]:
    """The named contexts the catalog passes to a target (parents and sources)."""
    return {*target.parents, *target.sources}


def global_arg_table(parsed: Parsed) -> dict[str, str | None]:
    table: dict[str, str | None] = {}
    for command in parsed.global_args:
        if command.cmd == "ARG":
            table.update(arg_defaults(command))
    return table


def stage_arg_positions(stage: Stage) -> Iterator[tuple[int, str]]:
    for i, command in enumerate(stage.commands):
        if command.cmd == "ARG":
            for name in arg_names(command):
                yield i, name


def is_pip_run(command: dockerfile.Command) -> bool:
    return command.cmd == "RUN" and PIP.search(" ".join(command.value)) is not None


def targets_of(path: str) -> list[Target]:
    return [t for t in TARGETS.values() if t.dockerfile == path]


def effective_commands(target: Target) -> list[dockerfile.Command]:
    """What the pushed image of a target is made of: its parents' layers, then its own."""
    parsed = parse(target.dockerfile)
    lineage: list[Stage] = []
    stage = parsed.stage(target.stage)
    while stage is not None:
        lineage.insert(0, stage)
        root = stage.base
        # A parent's named context replaces the stage of that name (chain()).
        stage = None if root in target.parents else parsed.stage(root)
    inherited = effective_commands(TARGETS[target.parents[root]]) if root in target.parents else []
    return inherited + [c for s in lineage for c in s.commands]


def dockerignore_excludes(context: Path, relative: str) -> bool:
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return False
    parts = Path(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for line in ignore.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            excluded = not negate
    return excluded


def find_tool(name: str) -> str | None:
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which(name)


def core_target() -> Target:
    return next(t for t in TARGETS.values() if t.stage == "core")


def context_copy(c: dockerfile.Command) -> bool:
    return c.cmd in {"COPY", "ADD"} and not flag_values(c, "from")
