"""The mutation score's arithmetic: what counts as killed, what is left out."""

from __future__ import annotations

import os
from pathlib import Path

from tools.mutation import prepare, score, table, tally

RESULTS = """\
    components.cache.x_gha_scope__mutmut_1: killed
    components.cache.x_gha_scope__mutmut_2: survived
    components.cache.x_local_cache_dir__mutmut_1: timeout
    components.cache.x_local_cache_dir__mutmut_2: not checked
    components.image.xǁImageTargetǁ__init____mutmut_1: no tests
    components.image.xǁImageTargetǁ__init____mutmut_2: killed
    components.image.x_build_args__mutmut_1: caught by type check
    a line that is not a result
"""


def test_results_are_counted_per_module() -> None:
    per_module = tally(RESULTS.splitlines())
    assert set(per_module) == {"components.cache", "components.image"}
    assert per_module["components.cache"]["not checked"] == 1
    assert per_module["components.image"]["no tests"] == 1


def test_timeouts_and_type_errors_count_as_killed_and_no_tests_against() -> None:
    per_module = tally(RESULTS.splitlines())
    assert score(per_module["components.cache"]) == (2, 3), "not checked is left out"
    assert score(per_module["components.image"]) == (2, 3), "no tests is a survivor"


def test_table_has_a_row_per_module_and_the_total() -> None:
    rendered = table(tally(RESULTS.splitlines())).splitlines()
    assert rendered[2] == "| components.cache | 2 | 3 | 1 | 0 | 67% |"
    assert rendered[3] == "| components.image | 2 | 3 | 0 | 1 | 67% |"
    assert rendered[4] == "| **all** | 4 | 6 | | | **67%** |"


def test_prepare_drops_copies_of_moved_tests_and_links_the_virtualenv(tmp_path: Path) -> None:
    """A test module moved away since the last run stays in mutants/ unless removed, and
    then breaks mutmut's collection there (it happened when the engine tests moved)."""
    stale = tmp_path / "mutants" / "tests" / "test_moved_away.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("from tests.conftest import gone\n")
    (tmp_path / "mutants" / "tools").mkdir()
    (tmp_path / "mutants" / "tools" / "old.py").write_text("")
    kept = tmp_path / "mutants" / "components" / "cache.py"
    kept.parent.mkdir()
    kept.write_text("# mutated\n")

    prepare(tmp_path)

    assert not stale.exists()
    assert not (tmp_path / "mutants" / "tools").exists()
    assert kept.read_text() == "# mutated\n"
    assert os.readlink(tmp_path / "mutants" / "venv") == "../venv"


def test_fresh_stats_forgets_which_tests_reach_which_function(tmp_path: Path) -> None:
    """Code moved into a new function has no tests in mutmut's record: a run with the old
    record leaves its mutants untested."""
    stats = tmp_path / "mutants" / "mutmut-stats.json"
    stats.parent.mkdir()
    stats.write_text("{}")
    prepare(tmp_path)
    assert stats.exists(), "kept by default: tracing every test again is slow"
    prepare(tmp_path, fresh_stats=True)
    assert not stats.exists()
