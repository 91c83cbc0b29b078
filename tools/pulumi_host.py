"""Run the real Pulumi CLI on this project: ``scripts/pulumi <any pulumi command>``.

Where the ``pulumi-language-python`` plugin is installed (a laptop with the CLI's own
distribution, the GitHub workflows), plain ``pulumi`` runs and starts the program itself.
Where it is missing (a CLI built from Go modules: the module proxy does not serve the
plugin's module), the program is hosted in this Python process: the SDK carries its own
language server (the one Automation API uses for inline programs), and the CLI connects to
it with ``--client``. That server is private API (``pulumi.automation._server``), imported
only in this fallback and pinned to the SDK release it was read from (``HOSTED_WITH_SDK``).
Everything else is the real thing: the CLI, the engine, the state backend, the provider
plugins, BuildKit. The program is the real ``__main__.py``, run from the project directory
with the project's virtualenv, so ``pulumi up`` hosted here and run by the plugin register
the same resources.

    venv/bin/python -m tools.pulumi_host preview --stack dev --diff

Either way, a command that runs the program (``up``, ``preview``, wherever it stands among
the flags) first gives the build contexts' files the modes git would check them out with.
Commands that do not run the program (``config``, ``stack``, ``refresh``, ``destroy``...)
pass straight through. Exit code, stdin and signals are the CLI's own.
"""

from __future__ import annotations

import os
import runpy
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

from components.project import ROOT

# CLI commands that run the program and so need a language host.
RUNS_PROGRAM = frozenset({"up", "update", "preview", "pre"})
# Build contexts the provider hashes, permission bits included (pulumi-docker-build #358).
CONTEXT_DIRS = ("dockerfiles", "build/standins")


def normalise_modes(root: Path = ROOT) -> int:
    """Give every build-context file the mode git would check it out with under umask 022.

    The provider's ``contextHash`` covers every permission bit, so a checkout made under
    umask 002 (many laptops) and one under 022 (CI runners) would disagree forever and
    every preview would show every Image as changed. Git itself records only "executable
    or not", so that is all that is kept: 0755 for executables and directories, 0644 for
    the rest. Returns how many modes changed.
    """
    changed = 0
    for top in CONTEXT_DIRS:
        for path in [root / top, *(root / top).rglob("*")] if (root / top).exists() else []:
            if path.is_symlink():
                continue
            mode = path.stat().st_mode & 0o7777
            want = 0o755 if path.is_dir() or mode & 0o100 else 0o644
            if mode != want:
                path.chmod(want)
                changed += 1
    return changed


def program() -> None:
    """The project's entry point, exactly as the language plugin would run it."""
    os.chdir(ROOT)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def start_language_server(hosted: Callable[[], None] = program) -> tuple[Any, int]:
    """The SDK's language server on a free loopback port, hosting ``hosted``."""
    import grpc  # noqa: PLC0415 (only commands that run the program need it)
    from pulumi.automation._server import LanguageServer  # noqa: PLC0415
    from pulumi.runtime.proto import language_pb2_grpc  # noqa: PLC0415

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)],
    )
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(LanguageServer(hosted), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


# The root's boolean flags, which take no value (pulumi 3.274.0, pkg/cmd/pulumi/pulumi.go,
# plus cobra's --help); every other flag before the command takes the next word.
_ROOT_BOOL_FLAGS = frozenset(
    {
        "--emoji",
        "--fully-qualify-stack-names",
        "--disable-integrity-checking",
        "--logflow",
        "--logtostderr",
        "--non-interactive",
        "--help",
    }
)
_ROOT_BOOL_SHORTHANDS = frozenset({"-e", "-Q", "-h"})


def command_of(args: list[str]) -> str | None:
    """The CLI command in ``args``, found as the CLI's own parser (cobra) finds it.

    A flag before the command takes the next word as its value (``--stack dev preview``)
    unless it is written ``--flag=value``, is one of the root's boolean flags, or is a
    shorthand with its value attached (``-sdev``); ``--`` ends the search.
    """
    words = iter(args)
    for word in words:
        if word == "--":
            return None
        if not word.startswith("-") or word == "-":
            return word
        takes_next = (
            word.startswith("--") and "=" not in word and word not in _ROOT_BOOL_FLAGS
        ) or (len(word) == 2 and word not in _ROOT_BOOL_SHORTHANDS)
        if takes_next:
            next(words, None)
    return None


# The SDK release whose private language server (pulumi.automation._server) the fallback
# was read from and tested against; tests/test_pulumi_host.py holds requirements.txt to it.
HOSTED_WITH_SDK = "3.272.0"


def language_plugin() -> str | None:
    """Where the CLI would find ``pulumi-language-python`` (None: nowhere).

    The CLI ships it beside itself (so on PATH) or installs it under ``$PULUMI_HOME/plugins``.
    """
    if found := shutil.which("pulumi-language-python"):
        return found
    home = Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")
    return next(
        (str(p) for p in sorted(home.glob("plugins/language-python-*")) if p.is_dir()), None
    )


def main(
    argv: list[str] | None = None,
    hosted: Callable[[], None] | None = None,
) -> int:
    """Run ``pulumi <argv>``. A command that runs the program gets its build contexts'
    modes normalised first, and the program hosted here when no language plugin is
    installed (or when ``hosted`` is given: a test's own program)."""
    args = list(sys.argv[1:] if argv is None else argv)
    server = None
    if command_of(args) in RUNS_PROGRAM:
        normalise_modes()
        if hosted is not None or language_plugin() is None:
            server, port = start_language_server(hosted or program)
            args.append(f"--client=127.0.0.1:{port}")
    child = subprocess.Popen(["pulumi", *args], cwd=ROOT)

    def forward(signum: int, _frame: Any) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    try:
        return child.wait()
    finally:
        if server is not None:
            server.stop(0)


if __name__ == "__main__":
    sys.exit(main())
