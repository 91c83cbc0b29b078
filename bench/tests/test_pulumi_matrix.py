"""The CUDA matrix deployed for real: a two-line stack shaped like prod, through the real CLI.

runtime, core, the SageAttention builder and complete on two CUDA lines (prod's cu130 and
cu126), plus the CPU pair and the ROCm and XPU cores (from the shared runtime-cpu, each from
its own stand-in index), on the stand-ins of the ``ci`` stack, in a namespace of its own.
``pulumi up`` once, then nothing may change: ``preview --expect-no-changes`` and
``up --expect-no-changes`` build nothing. The exported refs are what the registry holds, and
each child is built from its own line's parent, by digest.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from bench.deployment import Deployment
from bench.engine import Engine
from bench.standin_inputs import NS, ci_config
from bench.standins import make_standins
from bench.tests.test_pulumi_e2e import _images_in_state, _manifest_digest, engine  # noqa: F401
from components.catalog import TARGETS
from components.matrix import parents_of
from tools.cache_report import history_records

pytestmark = pytest.mark.engine

LINES = {"cu130": {"cuda": "13.0.2"}, "cu126": {"cuda": "12.6.3"}}  # prod's lines


@pytest.fixture(scope="module")
def matrix(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Deployment:  # noqa: F811
    config = ci_config(engine, f"matrix{int(time.time())}")
    versions = {k: v for k, v in config[f"{NS}:versions"].items() if k != "cuda"}
    config.pop(f"{NS}:cacheThresholds")  # ci's thresholds name its single-line builds
    config |= {
        f"{NS}:targets": list(TARGETS),  # every target: the CUDA lines, ROCm, XPU, CPU
        f"{NS}:versions": versions,
        f"{NS}:cudaLines": LINES,
    }
    make_standins(config)
    deployment = Deployment.create(tmp_path_factory.mktemp("matrix"), "matrix", config)
    started = time.monotonic()
    deployment.pulumi("up", "--yes", "--skip-preview")
    seconds = time.monotonic() - started
    print(f"matrix: cold pulumi up of every target (two CUDA lines) took {seconds:.0f} s")
    return deployment


def _expected_builds() -> set[str]:
    per_line = {
        "runtime-cuda",
        "core-env-cuda",
        "core-cuda",
        "sageattention-builder",
        "complete-cuda",
    }
    others = {"runtime-cpu", "core-cpu", "core-rocm", "core-xpu"}
    others |= {"core-env-cpu", "core-env-rocm", "core-env-xpu"}
    return {f"{t}-{line}" for t in per_line for line in LINES} | others


def test_refs_are_what_the_registry_holds(matrix: Deployment, engine: Engine) -> None:  # noqa: F811
    refs: dict[str, str] = matrix.outputs()["refs"]
    assert set(refs) == _expected_builds()
    for build, ref in refs.items():
        name, _, digest = ref.partition("@")
        repository, _, tag = name.removeprefix(f"{engine.registry}/").rpartition(":")
        assert digest.startswith("sha256:"), f"{build}: {ref} is not digest-pinned"
        assert _manifest_digest(engine.registry, repository, tag) == digest, build


def test_each_child_is_built_from_its_own_lines_parent(matrix: Deployment) -> None:
    refs: dict[str, str] = matrix.outputs()["refs"]
    images: dict[str, dict[str, Any]] = _images_in_state(matrix.state())
    for build in refs:
        for context, parent in parents_of(build).items():
            named = images[build]["inputs"]["context"]["named"][context]["location"]
            assert named == f"docker-image://{refs[parent]}", f"{build} not built from {parent}"
    assert any(parents_of(b) for b in refs), "no child in the matrix"


def test_nothing_changes_after_the_matrix_up(matrix: Deployment) -> None:
    before = len(history_records())
    matrix.pulumi("preview", "--expect-no-changes")
    matrix.pulumi("up", "--yes", "--expect-no-changes", "--skip-preview")
    assert len(history_records()) == before, "a no-change run built something"


def test_the_lines_have_their_own_tags(matrix: Deployment) -> None:
    tags: dict[str, list[str]] = matrix.outputs()["tags"]
    for line in LINES:
        assert any(t.endswith(f":latest-{line}") for t in tags[f"core-cuda-{line}"]), tags
    written = [tag for t in tags.values() for tag in t]
    assert len(written) == len(set(written)), "a tag is written twice"
