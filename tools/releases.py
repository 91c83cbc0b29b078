"""Release tracking: newer ComfyUI, comfy-cli and torch trio releases than a stack pins.

    scripts/track-releases --stack prod [--write]

Sources, each named in any error it causes:

- ComfyUI: the GitHub releases of Comfy-Org/ComfyUI, newest non-draft, non-prerelease
  ``vX.Y.Z`` tag (``$GITHUB_TOKEN``, when set, only lifts the anonymous rate limit);
- comfy-cli, torch, torchvision, torchaudio: the package index pip is configured with
  (``--index-url``, else ``$PIP_INDEX_URL``, else ``pip config list``, else pip's own
  default), read as PEP 691 JSON. The trio is the newest torch for which a torchvision and a
  torchaudio release exist whose ``Requires-Dist`` accepts it, read from PEP 658 metadata
  files (or, where an index serves none, from the smallest wheel itself). A package without
  a torch requirement does not count as accepting one: that is a packaging slip, not a promise.

Versions compare with ``packaging``; prereleases, dev releases and fully yanked releases are
never proposed, and a proposal is never older than the pin. Per-line overrides under
``comfyui-images:cudaLines`` are reported and left alone: a line's wheels come from that line's
own PyTorch index, which this tool does not read. A pin the stack file does not set (it uses
the default of ``components/settings.py``) is reported but never written: ``--write`` only
rewrites values present in the file, with ruamel.yaml round-trip, so comments, quoting and
layout stay as they were.

Exit codes: 0 every pin is current; 10 newer releases found (written with ``--write``);
1 a source or the stack file failed (the message names which); 2 bad command line.
"""

from __future__ import annotations

import argparse
import email.parser
import hashlib
import io
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from components.cuda import TORCH_TRIO
from components.decode import KNOWN_KEYS, decode_config, parse_settings
from components.errors import SettingsError
from components.inputs import for_target
from components.locks import HEADER_PINS
from components.matrix import Build, builds
from components.project import NAMESPACE, ROOT
from components.refs import redact_credentials
from components.settings import StackSettings, Versions
from tools.lock import LockError
from tools.pip_config import pip_default_index, pip_settings

EXIT_CURRENT = 0
EXIT_BUMPS = 10
EXIT_ERROR = 1

COMFYUI_REPOSITORY = "Comfy-Org/ComfyUI"
GITHUB_API = "https://api.github.com"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
VERSIONS_KEY = f"{NAMESPACE}:versions"
LINES_KEY = f"{NAMESPACE}:cudaLines"
TRACKED = ("comfyui", "comfyCli", *TORCH_TRIO)
_RELEASE_TAG = re.compile(r"v?\d+\.\d+\.\d+")
_FULL_COMMIT = re.compile(r"[0-9a-f]{40}")
# Where a Requires-Dist marker is evaluated: the images are Linux, and the stack's Python.
_LINUX = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "extra": ""}
_MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


class FetchError(Exception):
    """One HTTP request failed; ``str()`` says which URL (credentials redacted) and why."""


class SourceError(Exception):
    """A release source failed: the message starts with the source's name."""

    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"{source}: {redact_credentials(detail)}")
        self.source = source


class Fetcher(Protocol):
    """The only way this module reaches the network, so tests can answer from fixtures."""

    def __call__(self, url: str, headers: Mapping[str, str]) -> bytes: ...


def http_fetcher(cafile: str | None = None, timeout: float = 60.0) -> Fetcher:
    """urllib with pip's CA bundle (``cert``), so it works behind the same proxies pip does."""
    context = ssl.create_default_context(cafile=cafile)

    def fetch(url: str, headers: Mapping[str, str]) -> bytes:
        request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 (https only)
        if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
            raise FetchError(f"{redact_credentials(url)}: only http(s) URLs are fetched")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:  # noqa: S310
                return bytes(answer.read())
        except urllib.error.HTTPError as err:
            raise FetchError(f"HTTP {err.code} from {redact_credentials(url)}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise FetchError(f"{redact_credentials(url)}: {reason}") from None

    return fetch


# --- the package index (PEP 691 JSON, PEP 658 metadata) --------------------------------------


@dataclass(frozen=True)
class Dist:
    """One file of a release on the index."""

    filename: str
    url: str
    version: Version
    wheel: bool
    yanked: bool
    metadata: bool
    size: int
    metadata_sha256: str | None = None


@dataclass
class Index:
    """A PEP 691 simple index read through a ``Fetcher``; answers are cached per run."""

    url: str
    fetch: Fetcher
    _files: dict[str, list[Dist]] = field(default_factory=dict)
    _requires: dict[str, list[Requirement]] = field(default_factory=dict)

    def source(self, project: str) -> str:
        return f"package index ({project})"

    def files(self, project: str) -> list[Dist]:
        name = canonicalize_name(project)
        if name in self._files:
            return self._files[name]
        page = f"{self.url.rstrip('/')}/{name}/"
        try:
            raw = self.fetch(page, {"Accept": SIMPLE_JSON})
        except FetchError as err:
            raise SourceError(self.source(project), str(err)) from None
        try:
            document = json.loads(raw)
            api = str(document["meta"]["api-version"])
            entries = document["files"]
        except (ValueError, KeyError, TypeError):
            raise SourceError(
                self.source(project),
                f"{page} is not a PEP 691 JSON project page (the index must answer "
                f"Accept: {SIMPLE_JSON})",
            ) from None
        if not api.startswith("1."):
            raise SourceError(self.source(project), f"unsupported simple API version {api}")
        dists = [d for e in entries if (d := _dist(name, page, e)) is not None]
        self._files[name] = dists
        return dists

    def releases(self, project: str) -> dict[Version, list[Dist]]:
        """Final releases (no pre or dev releases, not fully yanked), keyed by version."""
        found: dict[Version, list[Dist]] = {}
        for dist in self.files(project):
            if dist.version.is_prerelease or dist.version.is_devrelease:
                continue
            found.setdefault(dist.version, []).append(dist)
        return {v: d for v, d in found.items() if not all(x.yanked for x in d)}

    def requires(self, project: str, version: Version) -> list[Requirement]:
        """``Requires-Dist`` of one release, from its smallest wheel's core metadata."""
        wheels = [d for d in self.releases(project).get(version, []) if d.wheel and not d.yanked]
        if not wheels:
            return []
        dist = min(wheels, key=lambda d: (not d.metadata, d.size, d.filename))
        if dist.filename in self._requires:
            return self._requires[dist.filename]
        try:
            if dist.metadata:
                raw = self.fetch(dist.url + ".metadata", {})
                digest = hashlib.sha256(raw).hexdigest()
                if dist.metadata_sha256 and digest != dist.metadata_sha256:
                    raise ValueError(f"sha256 {digest} is not the index's {dist.metadata_sha256}")
                text = raw.decode("utf-8", "replace")
            else:
                text = _wheel_metadata(self.fetch(dist.url, {}), dist.filename)
        except (FetchError, ValueError, zipfile.BadZipFile) as err:
            raise SourceError(self.source(project), f"metadata of {dist.filename}: {err}") from None
        requirements = []
        for line in email.parser.Parser().parsestr(text).get_all("Requires-Dist") or []:
            try:
                requirements.append(Requirement(line))
            except InvalidRequirement:
                continue
        self._requires[dist.filename] = requirements
        return requirements


def _dist(project: str, page: str, entry: Mapping[str, Any]) -> Dist | None:
    filename = str(entry.get("filename", ""))
    try:
        if filename.endswith(".whl"):
            name, version, *_ = parse_wheel_filename(filename)
            wheel = True
        else:
            name, version = parse_sdist_filename(filename)
            wheel = False
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    if name != project:
        return None
    # PEP 714 renamed data-dist-info-metadata to core-metadata; either may be served.
    metadata = entry.get("core-metadata", entry.get("data-dist-info-metadata", False))
    return Dist(
        filename=filename,
        url=urllib.parse.urljoin(page, str(entry.get("url", ""))),
        version=Version(str(version.public)),
        wheel=wheel,
        yanked=bool(entry.get("yanked", False)),
        metadata=bool(metadata),
        size=int(entry.get("size") or 0),
        metadata_sha256=metadata.get("sha256") if isinstance(metadata, dict) else None,
    )


def _wheel_metadata(data: bytes, filename: str) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        names = [n for n in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        if len(names) != 1:
            raise ValueError(f"{filename} has {len(names)} .dist-info/METADATA files")
        return wheel.read(names[0]).decode("utf-8", "replace")


def accepts(
    requirements: Iterable[Requirement], torch: Version, python: str, machine: str = "x86_64"
) -> bool:
    """Whether a release's requirements name torch and allow this torch version, with markers
    read for the image (Linux, the stack's Python and platform), not for this machine."""
    environment = {
        **_LINUX,
        "python_version": python,
        "python_full_version": f"{python}.0",
        "platform_machine": machine,
    }
    wanted = [
        r
        for r in requirements
        if canonicalize_name(r.name) == "torch"
        and (r.marker is None or r.marker.evaluate(environment))
    ]
    return bool(wanted) and all(r.specifier.contains(torch, prereleases=True) for r in wanted)


@dataclass(frozen=True)
class Trio:
    torch: Version
    torchvision: Version
    torchaudio: Version


def choose_trio(
    pinned: Trio,
    available: Mapping[str, Iterable[Version]],
    fits: Callable[[str, Version, Version], bool],
) -> Trio:
    """The newest torch that a torchvision and a torchaudio release both accept.

    ``available`` maps each package to its final releases; ``fits(package, release, torch)``
    answers from metadata and is asked lazily, newest first. Nothing older than a pin is
    considered, so the answer is never older than ``pinned``; when nothing newer fits, the
    pins themselves come back.
    """
    floor = {name: getattr(pinned, name) for name in TORCH_TRIO}
    newest_first = {
        name: sorted((v for v in available.get(name, ()) if v >= floor[name]), reverse=True)
        for name in TORCH_TRIO
    }
    for torch in newest_first["torch"]:
        vision = next(
            (v for v in newest_first["torchvision"] if fits("torchvision", v, torch)), None
        )
        audio = next((v for v in newest_first["torchaudio"] if fits("torchaudio", v, torch)), None)
        if vision is not None and audio is not None:
            return Trio(torch, vision, audio)
    return pinned


# --- GitHub releases --------------------------------------------------------------------------


def newest_comfyui(fetch: Fetcher, token: str | None = None) -> str:
    """The newest non-draft, non-prerelease ``vX.Y.Z`` tag of Comfy-Org/ComfyUI.

    One page of 100 releases, newest first as GitHub lists them: ComfyUI releases weekly, so
    the newest final release is always on it.
    """
    source = f"GitHub releases of {COMFYUI_REPOSITORY}"
    url = f"{GITHUB_API}/repos/{COMFYUI_REPOSITORY}/releases?per_page=100"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        releases = json.loads(fetch(url, headers))
    except FetchError as err:
        raise SourceError(source, str(err)) from None
    except ValueError:
        raise SourceError(source, f"{url} did not answer JSON") from None
    if not isinstance(releases, list):
        message = releases.get("message") if isinstance(releases, dict) else None
        raise SourceError(source, f"expected a list of releases, got: {message or releases!r}")
    tags = [
        str(r["tag_name"])
        for r in releases
        if isinstance(r, dict)
        and not r.get("draft")
        and not r.get("prerelease")
        and _RELEASE_TAG.fullmatch(str(r.get("tag_name", "")))
    ]
    if not tags:
        raise SourceError(source, "no final vX.Y.Z release in the newest 100 releases")
    return max(tags, key=Version)


# --- the stack file ---------------------------------------------------------------------------


def _yaml() -> YAML:
    """Round-trip settings that reproduce this project's stack files byte for byte."""
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


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
        lines = self.config.get(LINES_KEY) or {}
        return {str(n): {str(k): str(v) for k, v in (o or {}).items()} for n, o in lines.items()}

    def write_pins(self, new: Mapping[str, str]) -> None:
        """Replace pin values in place, keeping each value's quoting (or quoting a value that
        YAML would read as something other than a string)."""
        versions = self.config[VERSIONS_KEY]
        for name, value in new.items():
            old = versions[name]
            styled: Any = value
            if isinstance(old, DoubleQuotedScalarString | SingleQuotedScalarString):
                styled = type(old)(value)
            elif not isinstance(_yaml().load(value), str):
                styled = DoubleQuotedScalarString(value)
            versions[name] = styled
        buffer = io.StringIO()
        _yaml().dump(self.document, buffer)
        self.path.write_text(buffer.getvalue(), encoding="utf-8")

    def settings(self) -> StackSettings:
        """The validated settings, as the program sees them (secrets as placeholders).

        ``cudaLines`` is left out when this checkout's settings do not know it yet, since
        only the rebuild routing of ``components/inputs.py`` is asked of them here.
        """
        from tools.offline import config_from_mapping  # noqa: PLC0415 (pulumi is heavy)

        plain = json.loads(json.dumps(self.config))
        if LINES_KEY.partition(":")[2] not in KNOWN_KEYS:
            plain.pop(LINES_KEY, None)
        values, secret_keys = config_from_mapping(plain)
        try:
            return parse_settings(decode_config(values, secret_keys))
        except SettingsError as err:
            raise SourceError(f"stack file {self.path}", str(err)) from None


# --- what rebuilds ----------------------------------------------------------------------------


def rebuilt_targets(settings: StackSettings, bumps: Mapping[str, str]) -> dict[str, list[str]]:
    """Builds of the stack a bump rebuilds: ``{"direct": [...], "descendants": [...]}``.

    Direct: a build's own build args or source contexts (``components/catalog.py``, resolved
    per CUDA line by ``components/matrix.py``) differ after the bump; a line that overrides
    a bumped torch pin keeps its own. Descendants: builds with a direct one among their
    ancestors, rebuilt through the parent's new digest.
    """
    bumped = settings.model_copy(update={"versions": settings.versions.model_copy(update=bumps)})
    before, after = builds(settings), builds(bumped)

    def own(build: Build) -> tuple[Mapping[str, str], Mapping[str, str]]:
        resolved = for_target(build.target, build.settings)
        return resolved.build_args, resolved.source_contexts

    direct = [name for name in before if own(before[name]) != own(after[name])]

    def ancestors(name: str) -> set[str]:
        parents = set(before[name].parents.values())
        return parents.union(*(ancestors(p) for p in parents))

    descendants = [n for n in before if n not in direct and ancestors(n) & set(direct)]
    return {"direct": direct, "descendants": descendants}


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
    lines: dict[str, dict[str, str]]
    written: bool = False


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

    pinned_trio = _trio(pins)
    if pinned_trio is None:
        notes.append("the torch pins are not versions; the torch trio was not compared")
    else:
        available = {name: list(index.releases(name)) for name in TORCH_TRIO}

        python, machine = settings.versions.python, _MACHINES[settings.platform]

        def fits(package: str, release: Version, torch: Version) -> bool:
            return accepts(index.requires(package, release), torch, python, machine)

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
        newer = _newer(value, old)
        rows.append((name, old, value if newer else f"{old} (current)", source))
        if newer:
            bumps[name] = value
    unwritable = [name for name in bumps if name not in in_file]
    return Report(
        stack=stack,
        path=stack_file.path,
        rows=rows,
        bumps=bumps,
        unwritable=unwritable,
        notes=notes,
        rebuilds=rebuilt_targets(settings, bumps) if bumps else {"direct": [], "descendants": []},
        lines=stack_file.lines(),
    )


def _trio(pins: Mapping[str, str]) -> Trio | None:
    try:
        return Trio(*(Version(pins[n]) for n in TORCH_TRIO))
    except InvalidVersion:
        return None


def _newer(candidate: str, pinned: str) -> bool:
    try:
        return Version(candidate) > Version(pinned)
    except InvalidVersion:
        return False


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
    if report.bumps:
        bumped = ", ".join(f"`{p}` {_old(report, p)} → {v}" for p, v in report.bumps.items())
        lines.append(f"Bumps: {bumped}.")
        direct = ", ".join(f"`{t}`" for t in report.rebuilds["direct"]) or "none"
        lines.append(f"Rebuilds: {direct} (their build args or sources change)")
        if report.rebuilds["descendants"]:
            children = ", ".join(f"`{t}`" for t in report.rebuilds["descendants"])
            lines[-1] += f", then {children} (a parent's digest changes)"
        lines[-1] += "."
    else:
        lines.append("Every tracked pin is current.")
    lines += _render_lines(report)
    for note in report.notes:
        lines += ["", f"Note: {note}."]
    if report.unwritable:
        names = ", ".join(f"`{n}`" for n in report.unwritable)
        lines += [
            "",
            f"Not written: {names} (the stack file does not set them and uses the default "
            "of components/settings.py; add them to `comfyui-images:versions` to pin them).",
        ]
    if report.bumps:
        if report.written:
            lines += ["", f"Written to `{shown}`."]
        else:
            lines += ["", "Run with `--write` to update the stack file."]
    return "\n".join(lines) + "\n"


def _render_lines(report: Report) -> list[str]:
    """Per CUDA line: its own torch overrides (left alone, and why) or that it follows
    ``versions``."""
    if not report.lines:
        return []
    lines = ["", "CUDA lines (`comfyui-images:cudaLines`):", ""]
    for name, line in report.lines.items():
        trio = {k: v for k, v in line.items() if k in TORCH_TRIO}
        cuda = line.get("cuda", "?")
        if trio:
            pinned = ", ".join(f"`{k}` {v}" for k, v in trio.items())
            lines.append(
                f"- `{name}` (CUDA {cuda}) overrides {pinned}: left as they are; a line's "
                "wheels come from its own PyTorch index, which this tool does not read. Bump "
                "them by hand if that index has the newer trio."
            )
        else:
            follows = " (bumped with it)" if set(report.bumps) & set(TORCH_TRIO) else ""
            lines.append(f"- `{name}` (CUDA {cuda}) follows `versions` for torch{follows}.")
    return lines


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
        if args.write and writable:
            stack_file.write_pins(writable)
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
    return EXIT_BUMPS if report.bumps else EXIT_CURRENT


if __name__ == "__main__":
    sys.exit(main())
