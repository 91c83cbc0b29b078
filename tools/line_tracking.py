"""Release tracking per line: each accelerator line's torch trio against its own index.

torch, torchvision and torchaudio install from the index of the build's line (PyTorch's
``/whl/cu130``, ``/whl/cu126``, ``/whl/rocm7.14``, ``/whl/xpu``, ``/whl/cpu``, or a mirror
of them), never from PyPI. An
index can stop carrying a line: PyTorch dropped cu126 at 2.15. So the trio pip's index
offers is only a proposal for the builds that follow ``versions``; each line is read on
its own index (PEP 503 or 691 pages):

- a line with its own trio is proposed the newest trio its index carries;
- a line that follows ``versions`` stays with it while its index carries the new trio,
  and otherwise gets its own trio, the newest its index carries, so it stays on its last
  pins instead of breaking; the pull request's body says why;
- the builds that cannot pin their own trio (the CPU ones, and every build of a kind the
  stack gives no map of lines: ``cudaLines``, ``rocmLines``, ``xpuLines``) bind the stack's
  trio: it moves only to what their indexes carry.

Compatibility (which torchvision and torchaudio accept which torch) is read from the
metadata of pip's index, where every final release is published with PEP 658 metadata;
the line's index answers only what it carries, for the stack's Python and platform.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version

from components.accelerators import KINDS, LINES_KEYS
from components.cuda import TORCH_TRIO
from components.indexes import INDEX_ARG
from components.inputs import for_target
from components.matrix import builds
from components.settings import StackSettings
from tools.upstream import Fetcher, Index, Trio, choose_trio, newer

# (package, release, torch) -> whether that release accepts that torch.
Fits = Callable[[str, Version, Version], bool]


@dataclass
class LineCheck:
    """One line of a stack's map of lines against its own torch index."""

    key: str  # where the line sits in the stack file: cudaLines.cu126, rocmLines.rocm7.14
    line: str
    index: str
    pinned: dict[str, str]  # the line's trio today: its own, or the stack's
    own: bool  # the stack file sets the line's own trio
    newest: dict[str, str]  # the newest trio its index carries, never older than ``pinned``
    write: dict[str, str] = field(default_factory=dict)  # set under the line's key
    why: str = ""


@dataclass
class Indexes:
    """The indexes a run reads, one ``Index`` per URL (its pages are fetched once)."""

    fetch: Fetcher
    python: str
    machine: str
    _by_url: dict[str, Index] = field(default_factory=dict)

    def carried(self, url: str, label: str) -> dict[str, list[Version]]:
        index = self._by_url.setdefault(url, Index(url, self.fetch, label=label))
        return {name: index.carried(name, self.python, self.machine) for name in TORCH_TRIO}


def _text(trio: Trio) -> dict[str, str]:
    return {name: str(getattr(trio, name)) for name in TORCH_TRIO}


def _carries(available: Mapping[str, list[Version]], pins: Mapping[str, str]) -> bool:
    try:
        return all(Version(pins[name]) in available[name] for name in TORCH_TRIO)
    except InvalidVersion:
        return False


def torch_indexes(settings: StackSettings) -> tuple[dict[str, str], dict[str, str]]:
    """(each mapped line's index by its key, the indexes that bind the stack's trio by name).

    Read from the builds' own ``TORCH_INDEX_URL``, so a mirror in ``sources`` is what is read.
    Only http(s) indexes are read: a ``file://`` wheelhouse is the stack's own.
    """
    lines: dict[str, str] = {}
    binding: dict[str, str] = {}
    for build in builds(settings).values():
        url = for_target(build.target, build.settings).build_args.get(INDEX_ARG, "")
        if not url.startswith(("https://", "http://")):
            continue
        kind = build.target.line_kind
        if build.line and kind and settings.has_line_map(kind):
            lines[f"{LINES_KEYS[kind]}.{build.line}"] = url
        else:
            binding[build.line or "cpu"] = url
    return lines, binding


def binding_releases(
    settings: StackSettings, indexes: Indexes, offered: Mapping[str, list[Version]]
) -> dict[str, list[Version]]:
    """The releases pip's index offers that every binding index also carries."""
    _, binding = torch_indexes(settings)
    available = {name: list(offered[name]) for name in TORCH_TRIO}
    for name, url in binding.items():
        carried = indexes.carried(url, f"torch index of {name} builds ({url})")
        available = {p: [v for v in available[p] if v in carried[p]] for p in TORCH_TRIO}
    return available


def check_lines(
    settings: StackSettings,
    file_lines: Mapping[str, Mapping[str, str]],
    stack_pins: Mapping[str, str],
    indexes: Indexes,
    fits: Fits,
) -> list[LineCheck]:
    """Each matrix line against its index, given the stack's trio after any bump."""
    line_indexes, _ = torch_indexes(settings)
    checks: list[LineCheck] = []
    kind_of = {LINES_KEYS[kind]: kind for kind in KINDS}
    for key, url in line_indexes.items():
        lines_key, _, line = key.partition(".")
        own = any(name in file_lines.get(key, {}) for name in TORCH_TRIO)
        spec = settings.lines_of(kind_of[lines_key])[line]
        today = {
            name: getattr(spec, name) or getattr(settings.versions, name) for name in TORCH_TRIO
        }
        pinned = Trio.of(today)
        if pinned is None:
            continue
        available = indexes.carried(url, f"torch index of line {line} ({url})")
        newest = _text(choose_trio(pinned, available, fits))
        check = LineCheck(key, line, url, today, own, newest)
        if own:
            if newest != today:
                check.write = newest
                check.why = f"its index carries torch {newest['torch']}"
            else:
                check.why = f"its index carries nothing newer than torch {today['torch']}"
                if newer(stack_pins["torch"], today["torch"]):
                    check.why += f" (the stack's torch is {stack_pins['torch']})"
                check.why += "; the line stays on its pins"
        elif not _carries(available, stack_pins):
            check.write = newest
            check.why = (
                f"{url} publishes no torch {stack_pins['torch']} trio for Python "
                f"{indexes.python} on {indexes.machine}: the line stays on the newest trio it "
                f"carries, torch {newest['torch']}, now pinned under the line"
            )
        checks.append(check)
    return checks


def render_lines(checks: list[LineCheck], stack_bumped: bool) -> list[str]:
    """The lines' table and their reasons, for the job summary and the PR body."""
    if not checks:
        return []
    out = [
        "",
        "Lines, each against its own torch index (`comfyui-images:cudaLines`, `rocmLines`, "
        "`xpuLines`):",
        "",
        "| line | index | pinned (torch / vision / audio) | newest it carries | proposal |",
        "|---|---|---|---|---|",
    ]
    for c in checks:
        pinned = " / ".join(c.pinned[n] for n in TORCH_TRIO) + (
            " (its own)" if c.own else " (the stack's)"
        )
        newest = " / ".join(c.newest[n] for n in TORCH_TRIO)
        if c.write:
            proposal = "**" + " / ".join(c.write[n] for n in TORCH_TRIO) + "** under the line"
        elif c.own:
            proposal = "stays"
        else:
            proposal = "follows `versions`" + (" (bumped with it)" if stack_bumped else "")
        out.append(f"| `{c.key}` | {c.index} | {pinned} | {newest} | {proposal} |")
    reasons = [f"- `{c.key}`: {c.why}." for c in checks if c.why]
    return [*out, "", *reasons] if reasons else out
