"""Mutation testing of the product's code against the fast suite, with a score per module.

    scripts/mutation                      # every mutant of components/ (hours on 2 cores)
    scripts/mutation "components.cache*"  # one module, or any mutmut name pattern
    scripts/mutation --score              # the table only, from the last run's results
    scripts/mutation --fresh-stats        # map tests to functions anew (after moving code)

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) plants one bug at a time in a copy
of ``components/`` under ``mutants/`` and runs the tests that reach the mutated function;
a mutant no test fails on *survives*. The score of a module is killed (or timed out) over
every mutant checked; ``no tests`` counts against it, ``not checked`` is left out. Survivors
are listed with ``venv/bin/mutmut results`` and shown with ``venv/bin/mutmut show NAME``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from components.project import ROOT

MUTMUT = Path(sys.executable).parent / "mutmut"
KILLED = frozenset({"killed", "timeout", "caught by type check", "segfault"})
UNCHECKED = frozenset({"not checked", "skipped"})


def tally(lines: Iterable[str]) -> dict[str, Counter[str]]:
    """``mutmut results --all true`` lines (``name: status``) -> status counts per module."""
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        name, sep, status = line.strip().rpartition(": ")
        if not sep or "__mutmut_" not in name:
            continue
        module = name.split(".x")[0] if ".x" in name else name.rpartition(".")[0]
        per_module[module][status] += 1
    return dict(per_module)


def score(counts: Counter[str]) -> tuple[int, int]:
    """(killed, checked) of one module."""
    checked = sum(n for status, n in counts.items() if status not in UNCHECKED)
    return sum(n for status, n in counts.items() if status in KILLED), checked


def table(per_module: dict[str, Counter[str]]) -> str:
    rows = [
        "| module | killed | checked | survived | no tests | score |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total_killed = total_checked = 0
    for module in sorted(per_module):
        counts = per_module[module]
        killed, checked = score(counts)
        if not checked:
            continue
        total_killed += killed
        total_checked += checked
        rows.append(
            f"| {module} | {killed} | {checked} | {counts['survived']} | {counts['no tests']} | "
            f"{killed / checked:.0%} |"
        )
    if total_checked:
        rows.append(
            f"| **all** | {total_killed} | {total_checked} | | | "
            f"**{total_killed / total_checked:.0%}** |"
        )
    return "\n".join(rows)


def results() -> list[str]:
    out = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


COPIED_PACKAGES = ("tests", "tools")
STATS = "mutmut-stats.json"  # mutmut's record of the tests that reach each function


def prepare(root: Path = ROOT, *, fresh_stats: bool = False) -> None:
    """mutants/ runs the project's scripts too (the plan and lint tests): they must find
    this virtualenv, with mutmut in it, not bootstrap a new one.

    mutmut copies the tests and ``tools/`` over what an earlier run left, so a test module
    moved or deleted since would still be collected there (and fail to import): those
    copies start afresh every run.

    mutmut traces which tests reach each function once, and later only for new tests: code
    moved into a new function keeps no tests, and its mutants survive untested.
    ``fresh_stats`` drops that record, so the next run traces every test again."""
    mutants = root / "mutants"
    mutants.mkdir(exist_ok=True)
    for package in COPIED_PACKAGES:
        shutil.rmtree(mutants / package, ignore_errors=True)
    if fresh_stats:
        (mutants / STATS).unlink(missing_ok=True)
    link = mutants / "venv"
    if not link.is_symlink():
        if link.exists():
            subprocess.run(["rm", "-rf", str(link)], check=True)
        os.symlink("../venv", link)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutation", description=__doc__.split("\n")[0])
    parser.add_argument("--score", action="store_true", help="print the last run's scores only")
    parser.add_argument(
        "--fresh-stats",
        action="store_true",
        help="forget which tests reach which function, and trace them all again",
    )
    parser.add_argument("patterns", nargs="*", help="mutmut name patterns (default: all)")
    args = parser.parse_args(argv)
    if not args.score:
        prepare(fresh_stats=args.fresh_stats)
        run = subprocess.run([str(MUTMUT), "run", *args.patterns], cwd=ROOT, check=False)
        if run.returncode != 0:
            print(f"mutation: mutmut run exited {run.returncode}", file=sys.stderr)
            return run.returncode
    print(table(tally(results())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
