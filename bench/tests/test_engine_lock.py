"""The lock constrains a real build (engine/up): core-cpu of the `ci` stack, built
from a stand-in ComfyUI whose requirements leave tqdm unpinned, under a stand-in lock that
pins tqdm older than the newest release. The image must hold exactly the locked tqdm, and
every other locked package it installs at exactly the locked version.

Like test_engine_runtime, it never prunes the builder or removes images: the engine is
shared. Its own namespace and ComfyUI version keep it apart from the other tests' images.
"""

from __future__ import annotations

import json
import re

import pytest

from bench.engine import docker, engine_from_env
from bench.scenarios import bake_plan
from bench.standin_inputs import NS, WORK, ci_config, ensure_inputs, make_comfyui_standin, prepare
from components.cuda import TORCH_TRIO
from components.locks import LOCK_FILE, sections
from components.project import ROOT
from components.settings import PIN_EXAMPLES
from tools.lock import LockInputs, normalize, render
from tools.offline import run_program
from tools.plan import to_plan

pytestmark = pytest.mark.engine

NAMESPACE = "comfyui-ci/lock-tests"
VERSION = "v0.8.9"  # a stand-in version of this test's own
LOCKED_TQDM = "4.66.0"  # older than tqdm's newest release (and than ci's 4.67.1)


def stand_in_lock(config: dict[str, object]) -> str:
    """ci's committed lock of v0.8.1 with tqdm moved back, under a header for ci's pins."""
    versions = config[f"{NS}:versions"]
    assert isinstance(versions, dict)
    committed = (ROOT / "locks" / "comfyui" / versions["comfyui"] / LOCK_FILE).read_text()
    parts = sections(committed)
    pins = parts["comfyui"]
    assert any(normalize(p.split("==")[0]) == "tqdm" for p in pins), "ci's lock pins tqdm"
    parts["comfyui"] = [f"tqdm=={LOCKED_TQDM}" if p.startswith("tqdm==") else p for p in pins]
    inputs = LockInputs(
        comfyui=VERSION,
        comfy_cli=versions.get("comfyCli", PIN_EXAMPLES["comfyCli"]),
        python=versions.get("python", PIN_EXAMPLES["python"]),
        platform="linux/amd64",
        torch={name: versions[name] for name in TORCH_TRIO},
    )
    requirements = (WORK / "standin-src" / VERSION / "requirements.txt").read_bytes()
    return render(inputs, {"requirements.txt": requirements}, parts, "ci")


def test_the_lock_decides_what_core_installs() -> None:
    engine = engine_from_env()
    if engine is None:
        pytest.skip("no engine: source .engine/env after engine/up")
    config = ci_config(engine, "unused")
    config[f"{NS}:registry"] = {"address": engine.registry, "namespace": NAMESPACE}
    config[f"{NS}:targets"] = ["core-cpu"]
    prepare(config)
    source = WORK / "standin-src" / VERSION
    make_comfyui_standin(source, VERSION)
    requirements = (source / "requirements.txt").read_text()
    unpinned = re.sub(r"(?m)^tqdm==.*$", "tqdm", requirements)
    assert unpinned != requirements, "the stand-in no longer pins tqdm"
    (source / "requirements.txt").write_text(unpinned)
    lock_text = stand_in_lock(config)
    (WORK / "test-locks" / VERSION).mkdir(parents=True)
    (WORK / "test-locks" / VERSION / LOCK_FILE).write_text(lock_text)
    versions = {**config[f"{NS}:versions"], "comfyui": VERSION}
    sources = {
        **config[f"{NS}:sources"],
        "comfyui": str(WORK / "standin-src" / "{version}"),
        "comfyuiLock": str(WORK / "test-locks" / "{version}"),
    }
    config = {**config, f"{NS}:versions": versions, f"{NS}:sources": sources}
    ensure_inputs(engine, config)

    recording = run_program(config, stack="ci")
    assert recording.warnings == []
    digest = bake_plan(to_plan(recording))["core-cpu"]
    ref = f"{engine.registry}/{NAMESPACE}/core-cpu@{digest}"
    docker("pull", "--quiet", ref)

    locked = {
        section: {
            normalize(name): version for line in pins for name, _, version in [line.partition("==")]
        }
        for section, pins in sections(lock_text).items()
    }
    # Each environment holds its own section: ComfyUI's in /opt/venv, comfy-cli's apart.
    for section, venv in (("comfyui", "/opt/venv"), ("comfy-cli", "/opt/comfy-cli")):
        listed = docker(
            "run", "--rm", "--entrypoint", f"{venv}/bin/pip", ref, "list", "--format", "json"
        )
        installed = {normalize(p["name"]): p["version"] for p in json.loads(listed.stdout)}
        wanted = locked[section]
        wrong = {n: (v, wanted[n]) for n, v in installed.items() if n in wanted and v != wanted[n]}
        assert not wrong, f"{venv}: installed (got, locked): {wrong}"
        if section == "comfyui":
            assert installed.get("tqdm") == LOCKED_TQDM, installed.get("tqdm")
            assert "comfy-cli" not in installed, "comfy-cli belongs in its own environment"
        else:
            assert installed.get("comfy-cli") == wanted["comfy-cli"]
