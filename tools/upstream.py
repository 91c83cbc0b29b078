"""Upstream releases as release tracking reads them: ComfyUI's GitHub releases and package
indexes (PEP 691 JSON or PEP 503 HTML simple pages, PEP 658 metadata), with the rule that
picks a torch trio whose torchvision and torchaudio accept its torch.

Every fetch goes through a ``Fetcher`` (``http_fetcher`` for real, canned pages in the
tests); every failure names its source.
"""

from __future__ import annotations

import email.parser
import hashlib
import io
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
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
from pypi_simple import ProjectPage

from components.cuda import TORCH_TRIO
from components.indexes import installable
from components.refs import redact_credentials

COMFYUI_REPOSITORY = "Comfy-Org/ComfyUI"
GITHUB_API = "https://api.github.com"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
# PyPI answers PEP 691 JSON; PyTorch's indexes answer PEP 503 HTML whatever is asked.
SIMPLE_ACCEPT = f"{SIMPLE_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
_RELEASE_TAG = re.compile(r"v?\d+\.\d+\.\d+")
# Where a Requires-Dist marker is evaluated: the images are Linux, and the stack's Python.
_LINUX = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "extra": ""}


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
    # (interpreter, platform) of a wheel's tags: ("cp312", "manylinux_2_28_x86_64").
    tags: frozenset[tuple[str, str]] = frozenset()


@dataclass
class Index:
    """A simple index (PEP 691 JSON or PEP 503 HTML) read through a ``Fetcher``; answers are
    cached per run. ``label`` names it in errors: pip's index, or a line's torch index."""

    url: str
    fetch: Fetcher
    label: str = "package index"
    _files: dict[str, list[Dist]] = field(default_factory=dict)
    _requires: dict[str, list[Requirement]] = field(default_factory=dict)

    def source(self, project: str) -> str:
        return f"{self.label} ({project})"

    def files(self, project: str) -> list[Dist]:
        name = canonicalize_name(project)
        if name in self._files:
            return self._files[name]
        page = f"{self.url.rstrip('/')}/{name}/"
        try:
            raw = self.fetch(page, {"Accept": SIMPLE_ACCEPT})
        except FetchError as err:
            raise SourceError(self.source(project), str(err)) from None
        entries = self._json_entries(project, raw)
        if entries is None:
            entries = _html_entries(name, raw, page)
        if entries is None:
            raise SourceError(
                self.source(project),
                f"{page} is neither a PEP 691 JSON nor a PEP 503 HTML project page",
            )
        dists = [d for e in entries if (d := _dist(name, page, e)) is not None]
        self._files[name] = dists
        return dists

    def _json_entries(self, project: str, raw: bytes) -> list[Mapping[str, Any]] | None:
        try:
            document = json.loads(raw)
            api = str(document["meta"]["api-version"])
            entries = list(document["files"])
        except (ValueError, KeyError, TypeError):
            return None
        if not api.startswith("1."):
            raise SourceError(self.source(project), f"unsupported simple API version {api}")
        return entries

    def carried(self, project: str, python: str, machine: str) -> list[Version]:
        """Final releases with a wheel for ``python`` on ``machine`` (a manylinux or pure
        wheel), public versions (a local label like ``+cu126`` dropped), oldest first."""
        return sorted(
            version
            for version, dists in self.releases(project).items()
            if any(d.wheel and not d.yanked and installable(d.tags, python, machine) for d in dists)
        )

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
        tags: frozenset[tuple[str, str]] = frozenset()
        if filename.endswith(".whl"):
            name, version, _, wheel_tags = parse_wheel_filename(filename)
            tags = frozenset((tag.interpreter, tag.platform) for tag in wheel_tags)
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
        tags=tags,
    )


def _html_entries(project: str, raw: bytes, page: str) -> list[Mapping[str, Any]] | None:
    """A PEP 503 page's links as PEP 691 file entries (None: not such a page)."""
    if b"<a" not in raw.lower():
        return None
    parsed = ProjectPage.from_html(project, raw, base_url=page)
    return [
        {
            "filename": package.filename,
            "url": package.url,
            "yanked": package.is_yanked,
            "core-metadata": (package.metadata_digests or True if package.has_metadata else False),
            "size": package.size or 0,
        }
        for package in parsed.packages
    ]


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

    @classmethod
    def of(cls, pins: Mapping[str, str]) -> Trio | None:
        """The trio of a pins mapping (None: a pin is not a version)."""
        try:
            return cls(*(Version(pins[name]) for name in TORCH_TRIO))
        except InvalidVersion:
            return None


def newer(candidate: str, pinned: str) -> bool:
    """``candidate`` is a later version than ``pinned`` (never, when either is no version)."""
    try:
        return Version(candidate) > Version(pinned)
    except InvalidVersion:
        return False


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
