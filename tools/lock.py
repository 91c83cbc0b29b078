"""Locks of ComfyUI's Python dependencies, one per ComfyUI version.

    scripts/lock --stack ci [--comfyui v0.8.2]
    scripts/lock --comfyui-src DIR_OR_GIT_URL --comfyui v0.3.64 --comfy-cli 1.23.0 \\
        --python 3.12 --platform linux/amd64 --torch 2.8.0 --torchvision 0.23.0 \\
        --torchaudio 2.8.0 [--output-dir DIR]

Without a lock, ComfyUI's requirement files and comfy-cli's dependencies resolve to whatever
is newest on build day, so two builds of the same pins can ship different packages. This
resolves them once, with ``uv pip compile`` for the stack's Python and platform, against the
index pip is configured with here (never a host written into a file), and writes
``locks/comfyui/<version>/constraints.txt`` (linux/amd64; another platform's below it,
``<version>/linux-arm64/constraints.txt``, one per platform the stack builds core for): pip
constraints in two sections, resolved
apart, one per environment (ComfyUI's /opt/venv, comfy-cli's /opt/comfy-cli). Core's
Dockerfile splits it, and each pip layer mounts its own section, so a change to one section
is in exactly the cache keys of the layers that install from it.

torch, torchvision and torchaudio are held at the stack's pins during the resolution but
left out of the lock, and so is everything only they need (CUDA libraries, triton, ...):
those come from the line's own torch index in the torch layer, which constrains them
itself. The header records what the resolution depended on (comfy-cli, Python, platform,
the torch pins, the sha256 of each requirement file) but not the ComfyUI version or a date,
so two ComfyUI versions with the same requirement files get byte-identical locks and a
ComfyUI bump that changes no dependency rebuilds no dependency layer.

Exit codes: 0 written; 1 a source, the resolver or the stack file failed; 2 bad command line.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from components.cuda import TORCH_TRIO
from components.locks import LOCK_FILE, SECTIONS, platform_dir, section_marker
from components.project import ROOT
from tools.pip_config import pip_default_index, pip_settings

if TYPE_CHECKING:
    from components.settings import StackSettings

LOCKS_DIR = "locks/comfyui"
# Requirement files of a ComfyUI source; the second only in current ComfyUI.
REQUIREMENT_FILES = ("requirements.txt", "manager_requirements.txt")
# Ubuntu 24.04 and the engine's Debian 12 both run manylinux_2_28 wheels; naming the tag
# (not "linux") keeps the resolution the same on every machine that makes it.
UV_PLATFORMS = {"linux/amd64": "x86_64-manylinux_2_28", "linux/arm64": "aarch64-manylinux_2_28"}
_PIN_LINE = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)(?P<rest>.*)$")


class LockError(Exception):
    """A lock could not be made; the message names the source that failed."""


@dataclass(frozen=True)
class LockInputs:
    """Everything a resolution depends on besides the requirement files themselves."""

    comfyui: str
    comfy_cli: str
    python: str
    platform: str
    torch: Mapping[str, str]

    def header_values(self) -> dict[str, str]:
        return {
            "comfy-cli": self.comfy_cli,
            "python": self.python,
            "platform": self.platform,
            **{name: self.torch[name] for name in TORCH_TRIO},
        }


def regenerate_command(stack: str | None) -> str:
    """What the header and every refusal tell a user to run (no host names, no version:
    the lock's directory names the version, and ``--comfyui`` picks another one)."""
    return (
        f"scripts/lock --stack {stack}" if stack else "scripts/lock --comfyui-src ... (see --help)"
    )


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- the resolver ----------------------------------------------------------------------------

# (work dir, requirement files, constraint files (relative to it), inputs) -> uv's output.
Resolver = Callable[[Path, Sequence[str], Sequence[str], LockInputs], str]


def index_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The index and CA bundle pip uses here (tools/releases.py reads pip the same way)."""
    pip = pip_settings(env)
    return {"index-url": pip.get("index-url") or pip_default_index(), "cert": pip.get("cert", "")}


def uv_resolver(
    env: Mapping[str, str] | None = None, *, exclude_newer: str | None = None
) -> Resolver:
    """``uv pip compile`` for one Python and platform, on pip's index, ignoring uv config.

    ``exclude_newer`` (an RFC 3339 time) leaves out what was uploaded after it, for locks
    that must resolve the same on every mirror of the index (a mirror may lag a day)."""
    environ = dict(os.environ if env is None else env)

    def resolve(
        work: Path, requirements: Sequence[str], constraints: Sequence[str], i: LockInputs
    ) -> str:
        uv = Path(sys.executable).parent / "uv"
        index = index_settings(environ)
        command = [
            str(uv) if uv.exists() else "uv",
            "pip",
            "compile",
            "--quiet",
            "--no-config",
            "--no-header",
            "--annotation-style=line",
            f"--python-version={i.python}",
            f"--python-platform={UV_PLATFORMS[i.platform]}",
            f"--index-url={index['index-url']}",
            *([f"--exclude-newer={exclude_newer}"] if exclude_newer else []),
            *(f"--constraint={c}" for c in constraints),
            *requirements,
        ]
        run_env = {**environ, "UV_NO_PROGRESS": "1"}
        if index["cert"]:
            run_env["SSL_CERT_FILE"] = index["cert"]
        result = subprocess.run(
            command,
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
            env=run_env,
            timeout=900,
        )
        if result.returncode != 0:
            raise LockError(f"uv pip compile failed ({result.returncode}):\n{result.stderr}")
        return result.stdout

    return resolve


def keep_non_torch(compiled: str, roots: Sequence[str]) -> list[str]:
    """``name==version`` lines of everything the roots need, without the torch packages and
    what only they need (the torch layer installs those from the line's own index).

    ``compiled`` is uv's output with line annotations (``pkg==1.0  # via a, -r file``);
    ``roots`` are the requirement file names whose ``-r`` marks a direct requirement.
    """
    pins: dict[str, str] = {}
    vias: dict[str, set[str]] = {}
    for raw in compiled.splitlines():
        line, _, comment = raw.partition("#")
        match = _PIN_LINE.match(line.strip())
        if not match:
            continue
        name = normalize(match.group("name"))
        pins[name] = f"{match.group('name')}=={match.group('version')}{match.group('rest')}"
        via = comment.strip().removeprefix("via").strip()
        vias[name] = {
            normalize(v.strip()) if not v.strip().startswith("-") else v.strip()
            for v in via.split(",")
            if v.strip()
        }
    torch = {normalize(t) for t in TORCH_TRIO}
    direct = {f"-r {r}" for r in roots}
    kept = {n for n, v in vias.items() if n not in torch and v & direct}
    while grown := {n for n, v in vias.items() if n not in torch | kept and v & kept}:
        kept |= grown
    return sorted((pins[n].strip() for n in kept), key=lambda s: normalize(s.split("==")[0]))


def render(
    inputs: LockInputs,
    files: Mapping[str, bytes],
    sections: Mapping[str, Sequence[str]],
    stack: str | None,
) -> str:
    """The lock's text: a header of what the resolutions depended on, then each section's
    sorted pins under its marker line (core's Dockerfile splits the file at them)."""
    lines = [
        "# ComfyUI's Python dependencies, locked for core's pip layers (pip --constraint), in",
        "# two sections resolved apart: ComfyUI's requirement files for its environment",
        "# (/opt/venv), and comfy-cli for its own (/opt/comfy-cli). torch, torchvision,",
        "# torchaudio and what only they need are left out: they come from the torch index.",
        "# Generated by scripts/lock (tools/lock.py); do not edit. Regenerate with:",
        f"#   {regenerate_command(stack)}",
        "# (add --comfyui <version> for another ComfyUI version than the stack pins)",
        *(f"# {key}: {value}" for key, value in inputs.header_values().items()),
        *(
            f"# sha256 {name}: {hashlib.sha256(data).hexdigest()}"
            for name, data in sorted(files.items())
        ),
    ]
    for name in SECTIONS:
        lines += [section_marker(name), *sections[name]]
    return "\n".join(lines) + "\n"


def make_lock(
    inputs: LockInputs, files: Mapping[str, bytes], resolver: Resolver, stack: str | None
) -> str:
    """Resolve ``files`` (name -> content) and, apart, comfy-cli; return the lock's text.

    Two resolutions, because the two land in two environments: a comfy-cli bump then changes
    only comfy-cli's section, and ComfyUI's environment is rebuilt only when its own
    requirements resolve differently."""
    with tempfile.TemporaryDirectory(prefix="comfyui-lock-") as tmp:
        work = Path(tmp)
        for name, data in files.items():
            (work / name).write_bytes(data)
        (work / "comfy-cli.in").write_text(f"comfy-cli=={inputs.comfy_cli}\n")
        (work / "torch.txt").write_text(
            "".join(f"{name}=={inputs.torch[name]}\n" for name in TORCH_TRIO)
        )
        # Relative names, run in `work`: uv annotates `-r <name>` as given, no temp paths.
        roots = {"comfyui": sorted(files), "comfy-cli": ["comfy-cli.in"]}
        constraints = {"comfyui": ["torch.txt"], "comfy-cli": []}
        compiled = {n: resolver(work, roots[n], constraints[n], inputs) for n in SECTIONS}
    sections = {n: keep_non_torch(compiled[n], roots[n]) for n in SECTIONS}
    if not any(normalize(p.split("==")[0]) == "comfy-cli" for p in sections["comfy-cli"]):
        raise LockError(
            f"the resolution holds no comfy-cli=={inputs.comfy_cli}:\n{compiled['comfy-cli']}"
        )
    return render(inputs, files, sections, stack)


# --- the ComfyUI source ----------------------------------------------------------------------


def read_source(location: str, version: str, root: Path = ROOT) -> dict[str, bytes]:
    """The requirement files of ComfyUI ``version`` at ``location`` (``{version}`` filled):
    a local directory, or a git URL ``<repo>#<tag or commit>`` fetched with git.

    The ci stack's ComfyUI is a stand-in under build/standins, made by the test bench
    (``venv/bin/python -m bench.standins --stack ci``), never by this product command.
    """
    where = location.replace("{version}", version)
    if "://" not in where and not where.startswith("git@"):
        path = Path(where) if Path(where).is_absolute() else root / where
        if not (path / REQUIREMENT_FILES[0]).is_file():
            hint = (
                "; it is a stand-in: make it first with "
                "`venv/bin/python -m bench.standins --stack ci`"
                if Path(where).parts[:2] == ("build", "standins")
                else ""
            )
            raise LockError(f"ComfyUI source {path}: no {REQUIREMENT_FILES[0]}{hint}")
        return {n: (path / n).read_bytes() for n in REQUIREMENT_FILES if (path / n).is_file()}
    url, _, ref = where.partition("#")
    ref = ref or version
    with tempfile.TemporaryDirectory(prefix="comfyui-src-") as tmp:

        def git(*args: str) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(
                ["git", "-C", tmp, *args],
                capture_output=True,
                check=False,
                timeout=600,
            )

        git("init", "--quiet")
        fetched = git("fetch", "--quiet", "--depth=1", url, ref)
        if fetched.returncode != 0:
            raise LockError(
                f"ComfyUI source {url} at {ref}: git fetch failed: "
                f"{fetched.stderr.decode(errors='replace').strip()}"
            )
        files = {}
        for name in REQUIREMENT_FILES:
            shown = git("show", f"FETCH_HEAD:{name}")
            if shown.returncode == 0:
                files[name] = shown.stdout
        if REQUIREMENT_FILES[0] not in files:
            raise LockError(f"ComfyUI source {url} at {ref}: no {REQUIREMENT_FILES[0]}")
        return files


# --- command line ----------------------------------------------------------------------------


def inputs_of(settings: StackSettings, comfyui: str | None = None) -> LockInputs:
    """What a stack's lock is resolved for: its pins, its Python and platform."""
    v = settings.versions
    return LockInputs(
        comfyui=comfyui or v.comfyui,
        comfy_cli=v.comfyCli,
        python=v.python,
        platform=settings.platform,
        torch={"torch": v.torch, "torchvision": v.torchvision, "torchaudio": v.torchaudio},
    )


def write_lock(out_dir: Path, comfyui: str, text: str, platform: str = "linux/amd64") -> Path:
    out = out_dir / comfyui / platform_dir(platform) / LOCK_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def stack_platforms(settings: StackSettings) -> list[str]:
    """The platforms a stack needs a lock for (those it builds core for; at least one)."""
    from components.locks import lock_platforms  # noqa: PLC0415 (pulumi-free, but heavy)

    return lock_platforms(settings) or [settings.platform]


def lock_stack(
    settings: StackSettings,
    stack: str,
    *,
    output_dir: Path = ROOT / LOCKS_DIR,
    resolver: Resolver | None = None,
) -> Path:
    """Lock the ComfyUI version a stack pins, from the stack's own source, for each platform
    it builds core for; the first file written (linux/amd64's when it builds that).
    Release tracking calls this after it bumps a pin the lock depends on."""
    written = []
    files = read_source(settings.sources.comfyui, inputs_of(settings).comfyui)
    for platform in stack_platforms(settings):
        inputs = inputs_of(settings.model_copy(update={"platform": platform}))
        text = make_lock(inputs, files, resolver or uv_resolver(), stack)
        written.append(write_lock(output_dir, inputs.comfyui, text, platform))
    return written[0]


def _stack_settings(stack: str) -> StackSettings:
    from components.errors import SettingsError  # noqa: PLC0415
    from tools.offline import stack_settings  # noqa: PLC0415 (pulumi is heavy)

    try:
        return stack_settings(stack)
    except (FileNotFoundError, SettingsError) as err:
        raise LockError(str(err)) from None


def main(argv: list[str] | None = None, *, resolver: Resolver | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/lock", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", help="take every input from stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--comfyui", help="ComfyUI version (default: the stack's pin)")
    parser.add_argument("--comfyui-src", help="directory or git URL#{version} of ComfyUI")
    parser.add_argument("--comfy-cli", dest="comfy_cli")
    parser.add_argument("--python")
    parser.add_argument("--platform", choices=sorted(UV_PLATFORMS))
    for name in TORCH_TRIO:
        parser.add_argument(f"--{name}")
    parser.add_argument("--output-dir", type=Path, default=ROOT / LOCKS_DIR)
    parser.add_argument(
        "--exclude-newer",
        metavar="TIME",
        help="leave out what the index got after TIME (RFC 3339, e.g. 2026-11-28T00:00:00Z): "
        "a lock every mirror of the index can serve, and the same lock again later",
    )
    args = parser.parse_args(argv)
    try:
        if args.stack:
            settings = _stack_settings(args.stack)
            wanted = [args.platform] if args.platform else stack_platforms(settings)
            every = [
                inputs_of(settings.model_copy(update={"platform": p}), args.comfyui) for p in wanted
            ]
            source = args.comfyui_src or settings.sources.comfyui
        else:
            explicit = ("comfyui", "comfyui_src", "comfy_cli", "python", *TORCH_TRIO)
            if missing := [f"--{n.replace('_', '-')}" for n in explicit if not getattr(args, n)]:
                parser.error(f"without --stack, give {' '.join(missing)}")
            every = [
                LockInputs(
                    comfyui=args.comfyui,
                    comfy_cli=args.comfy_cli,
                    python=args.python,
                    platform=args.platform or "linux/amd64",
                    torch={n: getattr(args, n) for n in TORCH_TRIO},
                )
            ]
            source = args.comfyui_src
        files = read_source(source, every[0].comfyui)
        resolve = resolver or uv_resolver(exclude_newer=args.exclude_newer)
        texts = [(i, make_lock(i, files, resolve, args.stack)) for i in every]
    except LockError as err:
        print(f"lock: {err}", file=sys.stderr)
        return 1
    for inputs, text in texts:
        out = write_lock(args.output_dir, inputs.comfyui, text, inputs.platform)
        print(f"lock: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
