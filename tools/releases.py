"""Release tracking: newer ComfyUI, comfy-cli and torch trio releases than a stack pins.

    scripts/track-releases --stack prod [--write]

Sources (read by ``tools/upstream.py``), each named in any error it causes:

- ComfyUI: the GitHub releases of Comfy-Org/ComfyUI, newest non-draft, non-prerelease
  ``vX.Y.Z`` tag (``$GITHUB_TOKEN``, when set, only lifts the anonymous rate limit);
- comfy-cli, torch, torchvision, torchaudio: the package index pip is configured with
  (``--index-url``, else ``$PIP_INDEX_URL``, else ``pip config list``, else pip's own
  default), read as PEP 691 JSON. The trio is the newest torch for which a torchvision and a
  torchaudio release exist whose ``Requires-Dist`` accepts it, read from PEP 658 metadata
  files (or, where an index serves none, from the smallest wheel itself). A package without
  a torch requirement does not count as accepting one: that is a packaging slip, not a promise.

Versions compare with ``packaging``; prereleases, dev releases and fully yanked releases are
never proposed, and a proposal is never older than the pin. Each CUDA line is then read on
its own torch index (``tools/line_tracking.py``): a line with its own trio is proposed the
newest that index carries, a line that follows ``versions`` gets its own trio where its
index does not carry the stack's new one, and the builds that cannot pin their own (the CPU
ones, every build of a stack without ``cudaLines``) hold the stack's trio to what their
index carries. A pin the stack file does not set (it uses the default of
``components/settings.py``) is reported but never written: ``--write`` only rewrites values
present in the file (and a line's trio, under ``cudaLines.<line>``), with ruamel.yaml
round-trip, so comments, quoting and layout stay as they were.

Exit codes: 0 every pin is current; 10 newer releases found (written with ``--write``);
1 a source or the stack file failed (the message names which); 2 bad command line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from components import accelerators
from components.cuda import TORCH_TRIO
from components.decode import KNOWN_KEYS, decode_config, parse_settings
from components.errors import SettingsError
from components.indexes import MACHINES
from components.inputs import for_target
from components.locks import HEADER_PINS
from components.matrix import Build, builds
from components.project import NAMESPACE, ROOT
from components.settings import StackSettings, Versions
from tools.line_tracking import Indexes, LineCheck, binding_releases, check_lines, render_lines
from tools.lock import LockError
from tools.pip_config import pip_default_index, pip_settings
from tools.upstream import (
    COMFYUI_REPOSITORY,
    Fetcher,
    Index,
    SourceError,
    Trio,
    accepts,
    choose_trio,
    http_fetcher,
    newer,
    newest_comfyui,
)

EXIT_CURRENT = 0
EXIT_BUMPS = 10
EXIT_ERROR = 1

VERSIONS_KEY = f"{NAMESPACE}:versions"
# The maps of lines, each line's own trio under <key>.<line> (cudaLines.cu126).
LINES_KEYS = tuple(f"{NAMESPACE}:{key}" for key in accelerators.LINES_KEYS.values())
TRACKED = ("comfyui", "comfyCli", *TORCH_TRIO)
_FULL_COMMIT = re.compile(r"[0-9a-f]{40}")


def _yaml() -> YAML:
    """Round-trip settings that reproduce this project's stack files byte for byte."""
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def _styled(old: Any, value: str) -> Any:
    """``value`` quoted as ``old`` was, or double-quoted where YAML would not read it as
    text (``2.10`` would be a number)."""
    if isinstance(old, DoubleQuotedScalarString | SingleQuotedScalarString):
        return type(old)(value)
    if not isinstance(_yaml().load(value), str):
        return DoubleQuotedScalarString(value)
    return value


@dataclass(frozen=True)
class StackFile:
    path: Path
    document: Any

    @classmethod
    def read(cls, path: Path) -> StackFile:
        try:
            document = _yaml().load(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise SourceError(f"stack file {path}", str(err)) from None
        if not isinstance(document, CommentedMap) or not isinstance(
            document.get("config"), CommentedMap
        ):
            raise SourceError(f"stack file {path}", "has no `config:` mapping")
        return cls(path, document)

    @property
    def config(self) -> CommentedMap:
        config: CommentedMap = self.document["config"]
        return config

    def pins(self) -> dict[str, str]:
        """The pins the file sets (never the defaults it falls back on)."""
        versions = self.config.get(VERSIONS_KEY) or {}
        return {str(k): str(v) for k, v in versions.items()}

    def lines(self) -> dict[str, dict[str, str]]:
        """Every line's keys as the file sets them, by the line's key (cudaLines.cu126)."""
        return {
            f"{lines_key.partition(':')[2]}.{n}": {str(k): str(v) for k, v in (o or {}).items()}
            for lines_key in LINES_KEYS
            for n, o in (self.config.get(lines_key) or {}).items()
        }

    def write_pins(
        self,
        new: Mapping[str, str],
        lines: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Replace pin values in place, keeping each value's quoting (or quoting a value that
        YAML would read as something other than a string); ``lines`` sets pins under each
        line's key (``cudaLines.cu126``), after the line's other keys when they are new."""
        versions = self.config.get(VERSIONS_KEY)
        for name, value in new.items():
            versions[name] = _styled(versions[name], value)
        for line_key, pins in (lines or {}).items():
            lines_key, _, line = line_key.partition(".")
            spec = self.config[f"{NAMESPACE}:{lines_key}"][line]
            for name, value in pins.items():
                spec[name] = _styled(spec.get(name), value)
        buffer = io.StringIO()
        _yaml().dump(self.document, buffer)
        self.path.write_text(buffer.getvalue(), encoding="utf-8")

    def settings(self) -> StackSettings:
        """The validated settings, as the program sees them (secrets as placeholders).

        A map of lines is left out when this checkout's settings do not know it yet, since
        only the rebuild routing of ``components/inputs.py`` is asked of them here.
        """
        from tools.offline import config_from_mapping  # noqa: PLC0415 (pulumi is heavy)

        plain = json.loads(json.dumps(self.config))
        for lines_key in LINES_KEYS:
            if lines_key.partition(":")[2] not in KNOWN_KEYS:
                plain.pop(lines_key, None)
        values, secret_keys = config_from_mapping(plain)
        try:
            return parse_settings(decode_config(values, secret_keys))
        except SettingsError as err:
            raise SourceError(f"stack file {self.path}", str(err)) from None


# --- what rebuilds ----------------------------------------------------------------------------


def rebuilt_targets(
    settings: StackSettings,
    bumps: Mapping[str, str],
    line_bumps: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, list[str]]:
    """Builds of the stack a bump rebuilds: ``{"direct": [...], "descendants": [...]}``.

    Direct: a build's own build args or source contexts (``components/catalog.py``, resolved
    per CUDA line by ``components/matrix.py``) differ after the bump; a line that overrides
    a bumped torch pin keeps its own; ``line_bumps`` are pins written under a line.
    Descendants: builds with a direct one among their
    ancestors, rebuilt through the parent's new digest. Each is named once for all its
    platforms (``core-cpu`` for core-cpu and core-cpu-arm64).
    """
    update: dict[str, Any] = {"versions": settings.versions.model_copy(update=bumps)}
    for lines_key in accelerators.LINES_KEYS.values():
        mapped = getattr(settings, lines_key)
        if line_bumps and mapped:
            update[lines_key] = {
                name: line.model_copy(update=dict(line_bumps.get(f"{lines_key}.{name}", {})))
                for name, line in mapped.items()
            }
    bumped = settings.model_copy(update=update)
    before, after = builds(settings), builds(bumped)

    def own(build: Build) -> tuple[Mapping[str, str], Mapping[str, str]]:
        resolved = for_target(build.target, build.settings)
        return resolved.build_args, resolved.source_contexts

    direct = [name for name in before if own(before[name]) != own(after[name])]

    def ancestors(name: str) -> set[str]:
        parents = set(before[name].parents.values())
        return parents.union(*(ancestors(p) for p in parents))

    descendants = [n for n in before if n not in direct and ancestors(n) & set(direct)]

    def published(names: list[str]) -> list[str]:
        """By the image published, once for all its platforms (they rebuild together)."""
        return list(dict.fromkeys(before[n].published for n in names))

    return {"direct": published(direct), "descendants": published(descendants)}


# --- the check --------------------------------------------------------------------------------


@dataclass
class Report:
    stack: str
    path: Path
    rows: list[tuple[str, str, str, str]]  # pin, pinned, newest, source
    bumps: dict[str, str]
    unwritable: list[str]
    notes: list[str]
    rebuilds: dict[str, list[str]]
    lines: list[LineCheck]
    written: bool = False

    @property
    def line_bumps(self) -> dict[str, dict[str, str]]:
        """The pins to write under each line, by its key (``cudaLines.cu126``)."""
        return {c.key: c.write for c in self.lines if c.write}


def check(
    stack_file: StackFile,
    stack: str,
    fetch: Fetcher,
    index_url: str,
    github_token: str | None = None,
) -> Report:
    """Compare the stack's pins with the sources; raises ``SourceError`` naming a source."""
    settings = stack_file.settings()
    in_file = stack_file.pins()
    pins: dict[str, str] = {**Versions().model_dump(), **in_file}
    index = Index(index_url, fetch)
    newest: dict[str, tuple[str, str]] = {}
    notes: list[str] = []

    comfyui = newest_comfyui(fetch, github_token)
    newest["comfyui"] = (comfyui, f"GitHub releases of {COMFYUI_REPOSITORY}")

    cli = index.releases("comfy-cli")
    if not cli:
        raise SourceError(index.source("comfy-cli"), "no final release")
    newest["comfyCli"] = (str(max(cli)), index.source("comfy-cli"))

    python, machine = settings.versions.python, MACHINES[settings.platform]
    indexes = Indexes(fetch, python, machine)

    def fits(package: str, release: Version, torch: Version) -> bool:
        return accepts(index.requires(package, release), torch, python, machine)

    pinned_trio = Trio.of(pins)
    if pinned_trio is None:
        notes.append("the torch pins are not versions; the torch trio was not compared")
    else:
        offered = {name: list(index.releases(name)) for name in TORCH_TRIO}
        available = binding_releases(settings, indexes, offered)
        trio = choose_trio(pinned_trio, available, fits)
        for name in TORCH_TRIO:
            newest[name] = (str(getattr(trio, name)), index.source(name))

    rows, bumps = [], {}
    for name in TRACKED:
        if name not in newest:
            continue
        value, source = newest[name]
        old = pins[name]
        if name == "comfyui" and _FULL_COMMIT.fullmatch(old):
            notes.append(f"comfyui is pinned to a commit; the newest release is {value}")
            rows.append((name, old, f"{value} (not compared)", source))
            continue
        is_newer = newer(value, old)
        rows.append((name, old, value if is_newer else f"{old} (current)", source))
        if is_newer:
            bumps[name] = value
    unwritable = [name for name in bumps if name not in in_file]
    after = {**pins, **{n: v for n, v in bumps.items() if n not in unwritable}}
    line_checks = (
        check_lines(settings, stack_file.lines(), after, indexes, fits) if pinned_trio else []
    )
    line_bumps = {c.key: c.write for c in line_checks if c.write}
    return Report(
        stack=stack,
        path=stack_file.path,
        rows=rows,
        bumps=bumps,
        unwritable=unwritable,
        notes=notes,
        rebuilds=rebuilt_targets(settings, bumps, line_bumps),
        lines=line_checks,
    )


def _shown(path: Path) -> Path:
    try:
        return path.resolve().relative_to(ROOT)
    except ValueError:
        return path


def render(report: Report) -> str:
    """The markdown summary: the job summary and the release PR's body."""
    shown = _shown(report.path)
    lines = [
        f"## Release tracking: stack `{report.stack}`",
        "",
        "| pin | pinned | newest | source |",
        "|---|---|---|---|",
        *(
            f"| `{pin}` | {old} | {'**' + new + '**' if pin in report.bumps else new} | {source} |"
            for pin, old, new, source in report.rows
        ),
        "",
    ]
    changes = report.bumps or report.line_bumps
    if changes:
        bumped = [f"`{p}` {_old(report, p)} → {v}" for p, v in report.bumps.items()]
        bumped += [f"`{line}` → torch {pins['torch']}" for line, pins in report.line_bumps.items()]
        lines.append(f"Bumps: {', '.join(bumped)}.")
        direct = ", ".join(f"`{t}`" for t in report.rebuilds["direct"]) or "none"
        lines.append(f"Rebuilds: {direct} (their build args or sources change)")
        if report.rebuilds["descendants"]:
            children = ", ".join(f"`{t}`" for t in report.rebuilds["descendants"])
            lines[-1] += f", then {children} (a parent's digest changes)"
        lines[-1] += "."
    else:
        lines.append("Every tracked pin is current.")
    lines += render_lines(report.lines, bool(set(report.bumps) & set(TORCH_TRIO)))
    for note in report.notes:
        lines += ["", f"Note: {note}."]
    if report.unwritable:
        names = ", ".join(f"`{n}`" for n in report.unwritable)
        lines += [
            "",
            f"Not written: {names} (the stack file does not set them and uses the default "
            "of components/settings.py; add them to `comfyui-images:versions` to pin them).",
        ]
    if changes:
        if report.written:
            lines += ["", f"Written to `{shown}`."]
        else:
            lines += ["", "Run with `--write` to update the stack file."]
    return "\n".join(lines) + "\n"


def _old(report: Report, pin: str) -> str:
    return next(old for name, old, _, _ in report.rows if name == pin)


# Pins whose bump needs a lock written: a new ComfyUI version has none yet, and the lock's
# header records the others (components/locks.py).
NEEDS_NEW_LOCK = frozenset({"comfyui"}) | HEADER_PINS
# (settings as written, stack name) -> the lock file written; raises tools.lock.LockError.
Relock = Callable[[StackSettings, str], Path]


def _relock(settings: StackSettings, stack: str) -> Path:
    from tools.lock import lock_stack  # noqa: PLC0415 (uv is only needed here)

    return lock_stack(settings, stack)


def main(
    argv: list[str] | None = None,
    *,
    fetch: Fetcher | None = None,
    env: Mapping[str, str] | None = None,
    relock: Relock = _relock,
) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/track-releases", description=__doc__.splitlines()[0]
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="stack name (stacks/Pulumi.<stack>.yaml)")
    where.add_argument("--file", type=Path, help="a stack file elsewhere")
    parser.add_argument("--write", action="store_true", help="rewrite the pins in place")
    parser.add_argument("--index-url", help="package index (default: pip's configuration)")
    parser.add_argument(
        "--lock",
        action="store_true",
        help="with --write: regenerate the lock of the ComfyUI version the stack now pins "
        "(scripts/lock) when a pin it is resolved for was written",
    )
    args = parser.parse_args(argv)
    if args.lock and not args.write:
        parser.error("--lock needs --write")
    environ = dict(os.environ if env is None else env)
    path = args.file or ROOT / "stacks" / f"Pulumi.{args.stack}.yaml"
    stack = args.stack or path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    try:
        stack_file = StackFile.read(path)
        pip = pip_settings(environ) if fetch is None or args.index_url is None else {}
        try:
            index_url = args.index_url or pip.get("index-url") or pip_default_index()
        except LookupError as err:
            raise SourceError("package index", str(err)) from None
        fetcher = fetch or http_fetcher(cafile=pip.get("cert"))
        report = check(stack_file, stack, fetcher, index_url, environ.get("GITHUB_TOKEN"))
        writable = {k: v for k, v in report.bumps.items() if k not in report.unwritable}
        if args.write and (writable or report.line_bumps):
            stack_file.write_pins(writable, report.line_bumps)
            report.written = True
            if args.lock and set(writable) & NEEDS_NEW_LOCK:
                locked = relock(StackFile.read(path).settings(), stack)
                report.notes.append(f"regenerated the lock `{_shown(locked)}` for the new pins")
    except SourceError as err:
        print(f"track-releases: {err}", file=sys.stderr)
        return EXIT_ERROR
    except LockError as err:
        print(
            f"track-releases: the pins are written, but their lock could not be made: {err}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    print(render(report), end="")
    return EXIT_BUMPS if report.bumps or report.line_bumps else EXIT_CURRENT


if __name__ == "__main__":
    sys.exit(main())
