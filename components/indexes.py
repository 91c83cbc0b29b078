"""What each line's torch index carries, read from its pages recorded in the project.

torch, torchvision and torchaudio install only from the line's own index (never PyPI), and
an index stops carrying a line when PyTorch drops it (cu126 ends at 2.14.x). A pin the
index lacks fails the torch layer, on deploy day. So where an index's PEP 503 project pages
are recorded under ``locks/indexes/<host>/<path>/<project>/index.html`` (the index URL, as a
mirror of it would lay it out), every plan and preview checks the pins of each build that
installs from it, before any build: a wheel of that exact release for the build's Python
and platform must be on the page. An index with no recorded page (a mirror, a stand-in) is
not checked here; the build's own strict torch check still stands.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version
from pypi_simple import ProjectPage

from components import matrix
from components.accelerators import LINES_KEYS
from components.cuda import TORCH_TRIO
from components.inputs import resolve
from components.project import ROOT

if TYPE_CHECKING:
    from components.settings import StackSettings

RECORDS = ROOT / "locks" / "indexes"
# The build arg that carries a target's torch index; its input key says which index.
INDEX_ARG = "TORCH_INDEX_URL"
# Docker platform -> the machine a manylinux wheel tag names.
MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


def recorded_page(index_url: str, project: str) -> Path | None:
    """Where this index's page of ``project`` is recorded (None: it is not)."""
    url = urllib.parse.urlsplit(index_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        return None
    parts = [p for p in url.path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        return None
    page = RECORDS.joinpath(url.hostname, *parts, canonicalize_name(project), "index.html")
    return page if page.is_file() else None


@cache
def _releases(page: Path, project: str) -> dict[Version, frozenset[tuple[str, str]]]:
    """Release (as the wheel names it, local label kept: ``2.14.1+cu126``) -> the
    (interpreter, platform) tags of its wheels on the page."""
    parsed = ProjectPage.from_html(project, page.read_bytes(), base_url=page.as_uri())
    found: dict[Version, set[tuple[str, str]]] = {}
    for package in parsed.packages:
        try:
            _, version, _, tags = parse_wheel_filename(package.filename)
        except (InvalidWheelFilename, InvalidVersion):
            continue  # an sdist, a stray link: not installable from a wheel-only index
        if not package.is_yanked:
            found.setdefault(version, set()).update((t.interpreter, t.platform) for t in tags)
    return {v: frozenset(t) for v, t in found.items()}


def installable(tags: frozenset[tuple[str, str]], python: str, machine: str) -> bool:
    """Whether a wheel with these (interpreter, platform) tags installs on ``python`` for
    ``machine``: a cpXY or pure-Python wheel, manylinux for that machine or ``any``."""
    digits = python.replace(".", "")
    return any(
        interpreter in (f"cp{digits}", f"py{digits}", "py3")
        and (platform == "any" or platform.endswith("_" + machine))
        for interpreter, platform in tags
    )


def _matches(pin: Version, release: Version) -> bool:
    """pip's ``==`` on a wheel: a pin without a local label accepts any label
    (``2.14.1`` takes ``2.14.1+cu126``); one with a label takes only that label."""
    return release == pin if pin.local else Version(release.public) == pin


@dataclass(frozen=True)
class Carried:
    """What a recorded index page offers the builds of one Python and platform."""

    index: str
    project: str
    page: Path
    versions: tuple[Version, ...]  # newest first, as the wheels name them

    def has(self, pin: str) -> bool:
        try:
            wanted = Version(pin)
        except InvalidVersion:
            return False
        return any(_matches(wanted, v) for v in self.versions)

    @property
    def newest(self) -> str | None:
        return self.versions[0].public if self.versions else None


def carried(index_url: str, project: str, python: str, platform: str) -> Carried | None:
    """The releases of ``project`` this index has a wheel of for ``python`` on ``platform``
    (None: the index is not recorded, or the platform is not one we know)."""
    page = recorded_page(index_url, project)
    machine = MACHINES.get(platform)
    if page is None or machine is None:
        return None
    releases = _releases(page, canonicalize_name(project))
    versions = sorted(v for v, t in releases.items() if installable(t, python, machine))
    return Carried(index_url, project, page, tuple(reversed(versions)))


@cache
def newest_recorded(project: str) -> Version | None:
    """The newest release of ``project`` on any recorded page: what the records know of.

    The pages are recorded together, so a release older than this that one index lacks was
    skipped by that index (cu126 has no 2.15.0 while cu130 has); a pin newer than this is
    simply newer than the records.
    """
    name = canonicalize_name(project)
    versions = [
        Version(v.public)
        for page in RECORDS.glob(f"**/{name}/index.html")
        for v in _releases(page, name)
    ]
    return max(versions, default=None)


@dataclass(frozen=True)
class PinUse:
    """One trio pin as one build installs it: from which index, set by which config key."""

    build: str
    # The line's key in a stack with the kind's map (cudaLines.cu126), else None.
    line: str | None
    project: str
    pin: str
    key: str
    index: str
    python: str
    platform: str


def pin_uses(settings: StackSettings) -> Iterator[PinUse]:
    """Every trio pin of every build that installs torch, with the key a user would edit."""
    for build in matrix.builds(settings).values():
        index_key = build.target.args.get(INDEX_ARG)
        if index_key is None:
            continue
        kind = build.target.line_kind
        own = settings.lines_of(kind)[build.line] if kind and build.line else None
        lines_key = f"{LINES_KEYS[kind]}.{build.line}" if kind else ""
        for project in TORCH_TRIO:
            line_pin = getattr(own, project) if own is not None else None
            key = f"{lines_key}.{project}" if line_pin is not None else f"versions.{project}"
            yield PinUse(
                build=build.name,
                line=lines_key if kind and settings.has_line_map(kind) else None,
                project=project,
                pin=getattr(build.settings.versions, project),
                key=key,
                index=resolve(build.settings)[index_key],
                python=build.settings.versions.python,
                platform=build.settings.platform,
            )


def _unchecked(use: PinUse) -> bool:
    """Whether the pin is newer than everything recorded (or no version at all)."""
    try:
        pin = Version(use.pin)
    except InvalidVersion:
        return True
    newest = newest_recorded(use.project)
    return newest is None or Version(pin.public) > newest


def pin_problems(settings: StackSettings) -> list[str]:
    """One error per pin a recorded index does not carry: key, value, index and fix."""
    missing: dict[tuple[str, str, str], tuple[PinUse, Carried, list[str]]] = {}
    for use in pin_uses(settings):
        offer = carried(use.index, use.project, use.python, use.platform)
        if offer is None or offer.has(use.pin) or _unchecked(use):
            continue
        missing.setdefault((use.key, use.pin, use.index), (use, offer, []))[2].append(use.build)
    return [
        f"comfyui-images:{use.key} is {use.pin!r}, but {use.index} has no {use.project} "
        f"{use.pin} wheel for Python {use.python} on {use.platform} (builds "
        f"{', '.join(builds)}; index recorded in {_shown(offer.page)}): {_fix(use, offer)}"
        for use, offer, builds in missing.values()
    ]


def pin_warnings(settings: StackSettings) -> list[str]:
    """One warning per pin newer than the records of an index it installs from."""
    seen: dict[tuple[str, str], str] = {}
    for use in pin_uses(settings):
        if carried(use.index, use.project, use.python, use.platform) is None:
            continue
        if _unchecked(use) and (use.key, use.pin) not in seen:
            seen[(use.key, use.pin)] = (
                f"comfyui-images:{use.key} is {use.pin!r}, newer than every recorded "
                f"{use.project} page (newest: {newest_recorded(use.project)}), so no recorded "
                f"index can vouch for it; record the indexes again "
                f"({_shown(RECORDS / 'README.md')})"
            )
    return list(seen.values())


def _fix(use: PinUse, offer: Carried) -> str:
    if offer.newest is None:
        return (
            f"that index has no {use.project} wheel for Python {use.python} on {use.platform} "
            "at all; change versions.python or the index"
        )
    # A stack-wide pin on a matrix line: the other lines may carry it, so the fix is the
    # line's own pin, not a change for every line.
    key = f"{use.line}.{use.project}" if use.line else use.key
    pairing = (
        "with the torchvision and torchaudio made for it"
        if use.project == "torch"
        else "one made for the line's torch"
    )
    return (
        f"set comfyui-images:{key} to a release that index carries (newest: "
        f"{offer.newest}), {pairing}"
    )


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)
