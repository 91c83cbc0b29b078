"""The lock of ComfyUI's Python dependencies a stack's core builds install with.

``scripts/lock`` (tools/lock.py) writes ``locks/comfyui/<version>/constraints.txt``; core
receives that directory as the ``comfyui-lock`` context and the file's sha256 as
``COMFYUI_LOCK``. Its Dockerfile checks the file against the sha256 and splits it into
one section per environment, which the comfy-cli and the requirement layers mount: a change
to a section is in exactly the cache keys of the layers installing from it, and shows in
every plan. This module finds the lock of the pinned ComfyUI version and says
what is wrong with it.

A lock is resolved for one platform (its wheels' tags, its markers): linux/amd64's is
``<dir>/constraints.txt`` as it always was, any other platform's sits in a directory of its
own below it, ``<dir>/linux-arm64/constraints.txt``, which that platform's builds receive as
their ``comfyui-lock`` context. A stack needs a lock per platform it builds core for.

A missing lock is a warning by default: a stack may pin a ComfyUI whose source cannot be
reached where its lock would be made, and a plan must still work; ``requireLock: true``
makes it an error. A lock resolved for other pins (comfy-cli, Python, platform, torch) is
always an error: it would install a set of packages nobody resolved together.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from components import matrix, platforms
from components.catalog import TARGETS
from components.cuda import TORCH_TRIO
from components.project import ROOT

if TYPE_CHECKING:
    from components.settings import StackSettings

LOCK_FILE = "constraints.txt"
CONTEXT = "comfyui-lock"
_FIELD = re.compile(r"# (?P<key>[a-z-]+): (?P<value>\S+)$")
# The lock's sections, one per environment, in file order: ComfyUI's requirement files for
# /opt/venv, comfy-cli for /opt/comfy-cli. core's Dockerfile (stage comfyui-lock-parts)
# splits the file at the marker lines into <section>.txt, one file per pip layer.
SECTIONS = ("comfyui", "comfy-cli")


def section_marker(name: str) -> str:
    return f"# == {name} =="


@dataclass(frozen=True)
class Lock:
    """Where the pinned version's lock lives (as the build context names it) and, if it
    exists, the sha256 of its file."""

    location: str
    path: Path
    sha256: str | None


def platform_dir(platform: str) -> str:
    """Where a platform's lock sits below the version's lock directory ("" for amd64)."""
    return "" if platform == platforms.AMD64 else platform.replace("/", "-")


def find(settings: StackSettings) -> Lock:
    """The lock of the pinned ComfyUI for the settings' platform (a build's own)."""
    location = settings.sources.comfyuiLock.replace("{version}", settings.versions.comfyui)
    if sub := platform_dir(settings.platform):
        location = f"{location.rstrip('/')}/{sub}"
    # Relative to the project wherever the program runs; an absolute location stays itself.
    path = ROOT / location / LOCK_FILE
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:  # absent, a directory, unreadable, a name too long: no lock
        digest = None
    return Lock(location=location, path=path, sha256=digest)


def _shown(path: Path) -> Path:
    """A path as messages show it: relative to the project when inside it."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def regenerate(stack: str) -> str:
    return f"scripts/lock --stack {stack}"


def sections(text: str) -> dict[str, list[str]]:
    """The pins of each section of a lock's text (a section absent from it: no key)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    markers = {section_marker(n): n for n in SECTIONS}
    for line in text.splitlines():
        if line in markers:
            current = found.setdefault(markers[line], [])
        elif current is not None and line.strip() and not line.startswith("#"):
            current.append(line.strip())
    return found


def header(text: str) -> dict[str, str]:
    """The ``# key: value`` fields of a lock's leading comment block."""
    fields = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if match := _FIELD.match(line):
            fields[match.group("key")] = match.group("value")
    return fields


# The pins a lock is resolved for, each recorded in its header (pin -> header field): a
# bump of one needs a new lock (scripts/lock), or the stack refuses the old one.
HEADER_FIELDS: dict[str, str] = {
    "comfyCli": "comfy-cli",
    "python": "python",
    **{name: name for name in TORCH_TRIO},
}
HEADER_PINS = frozenset(HEADER_FIELDS)


def expected_header(settings: StackSettings) -> dict[str, tuple[str, str]]:
    """Header field -> (the stack's value, the config key that sets it)."""
    pins = {
        field: (getattr(settings.versions, pin), f"versions.{pin}")
        for pin, field in HEADER_FIELDS.items()
    }
    return {**pins, "platform": (settings.platform, "platforms")}


def uses_lock(settings: StackSettings) -> bool:
    """Whether the stack builds anything that installs under the lock (core)."""
    return any(CONTEXT in TARGETS[name].sources for name in settings.build_order)


def lock_platforms(settings: StackSettings) -> list[str]:
    """The platforms the stack builds anything for that installs under the lock."""
    built = matrix.platforms_of(settings)
    return platforms.ordered(
        p for (name, _), listed in built.items() if CONTEXT in TARGETS[name].sources for p in listed
    )


def for_platforms(settings: StackSettings) -> list[StackSettings]:
    """The settings once per platform that needs a lock (what ``find`` reads per build)."""
    return [settings.model_copy(update={"platform": p}) for p in lock_platforms(settings)]


def mismatch(settings: StackSettings, stack: str) -> str | None:
    """Why a lock of the pinned version cannot be used with these pins, on any platform the
    stack builds core for (None: each can, or there is none)."""
    return next(
        (problem for each in for_platforms(settings) if (problem := _mismatch(each, stack))),
        None,
    )


def _mismatch(settings: StackSettings, stack: str) -> str | None:
    lock = find(settings)
    if lock.sha256 is None or not uses_lock(settings):
        return None
    text = lock.path.read_text(encoding="utf-8", errors="replace")
    if absent := [n for n in SECTIONS if n not in sections(text)]:
        return (
            f"{_shown(lock.path)}, the lock of ComfyUI {settings.versions.comfyui}, has no "
            f"{' and no '.join(repr(section_marker(n)) for n in absent)} section: it was made "
            "before ComfyUI and comfy-cli got environments of their own; regenerate it with "
            f"`{regenerate(stack)}` and commit it"
        )
    found = header(text)
    wrong = [
        f"{field} {found.get(field, '(missing)')} where comfyui-images:{where} is {value}"
        for field, (value, where) in expected_header(settings).items()
        if found.get(field) != value
    ]
    if not wrong:
        return None
    return (
        f"{_shown(lock.path)}, the lock of ComfyUI {settings.versions.comfyui}, was resolved for "
        f"{'; '.join(wrong)}: it would install packages nobody resolved together; "
        f"regenerate it with `{regenerate(stack)}` and commit it"
    )


def missing(settings: StackSettings, stack: str) -> str | None:
    """The warning (or, with requireLock, the error) for core builds without a lock, on the
    first platform that has none."""
    lock = next((lk for each in for_platforms(settings) if (lk := find(each)).sha256 is None), None)
    if lock is None:
        return None
    return (
        f"no lock of ComfyUI {settings.versions.comfyui}'s Python dependencies "
        f"({_shown(lock.path)}): "
        "core builds resolve ComfyUI's requirements and comfy-cli's dependencies to whatever "
        f"is newest on build day; generate it with `{regenerate(stack)}` where the ComfyUI "
        "source is reachable, and commit it"
    )
