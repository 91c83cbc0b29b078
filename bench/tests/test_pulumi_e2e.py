"""The real Pulumi CLI end to end: preview, up, no-change runs, routing, bad config, secrets,
umask, refresh, destroy.

Runs ``scripts/pulumi`` (the real CLI, the docker-build plugin at the SDK's version, the
program hosted by the SDK's language server) against the engine's BuildKit and loopback
registry, in a temporary ``file://`` backend with a passphrase. The stack is the ``ci``
stack file pointed at the engine, given to every command with ``--config-file``, in a
namespace of its own so the first build is cold. Tests run in file order: each builds on
the state the previous one left.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.deployment import Deployment
from bench.engine import Engine
from bench.scenarios import relock
from bench.standin_inputs import NS, ci_config, push_base_standin
from bench.standins import make_standins
from bench.tests.conftest import engine_with_pulumi
from components.catalog import TARGETS
from components.locks import HEADER_PINS
from components.project import ROOT
from tools.cache_report import history_records, read_history, reports_from_history
from tools.offline import run_program, unwrap

pytestmark = pytest.mark.engine

STACK = "e2e"
PASSWORD = "E2E-REGISTRY-PASSWORD-93b1"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return engine_with_pulumi()


@pytest.fixture(scope="module")
def deployment(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    config = ci_config(engine, f"e2e{int(time.time())}")
    config[f"{NS}:targets"] = ["core-cpu"]
    make_standins(config)
    return Deployment.create(tmp_path_factory.mktemp("pulumi"), STACK, config)


def _manifest_digest(registry: str, repository: str, tag: str) -> str:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": MANIFEST_TYPES},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return str(response.headers["Docker-Content-Digest"])


def _history_count() -> int:
    return len(history_records())


def _images_in_state(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["urn"].rpartition("::")[2].removesuffix("-image"): r
        for r in state["deployment"].get("resources", [])
        if r["type"] == "docker-build:index:Image"
    }


def test_fresh_preview_shows_only_creates(deployment: Deployment) -> None:
    ops = deployment.preview_ops()
    assert set(ops) == {"runtime-cpu", "core-env-cpu", "core-cpu"}
    assert set(ops.values()) == {"create"}, ops


def _now() -> str:
    return datetime.now(UTC).isoformat()


def test_up_pushes_every_image_and_exports_digest_pinned_refs(
    deployment: Deployment, engine: Engine
) -> None:
    since = _now()
    deployment.pulumi("up", "--yes", "--skip-preview")
    # The cache report reads what the provider's builds left in the builder's history.
    reports = {r.target: r for r in reports_from_history(*read_history(None), since=since)}
    assert set(reports) == {"runtime-cpu", "core-env-cpu", "core-cpu"}
    assert all(r.steps > 0 and r.cached < r.steps for r in reports.values()), reports
    refs = deployment.outputs()["refs"]
    registry = engine.registry
    for target, ref in refs.items():
        name, _, digest = ref.partition("@")
        repository, _, tag = name.removeprefix(f"{registry}/").rpartition(":")
        assert digest.startswith("sha256:"), f"{target}: {ref} is not digest-pinned"
        assert _manifest_digest(registry, repository, tag) == digest, target
    images = _images_in_state(deployment.state())
    for target in refs:
        for context, parent in TARGETS[target].parents.items():
            named = images[target]["inputs"]["context"]["named"][context]["location"]
            assert named == f"docker-image://{refs[parent]}", f"{target} not built from {parent}"


def test_preview_and_up_right_after_change_nothing(deployment: Deployment) -> None:
    before = _history_count()
    deployment.pulumi("preview", "--expect-no-changes")
    deployment.pulumi("up", "--yes", "--expect-no-changes", "--skip-preview")
    assert _history_count() == before, "a no-change run built something"


def _routed(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    """Targets the offline plan says change: inputs differ, plus every child of one that does
    (a rebuilt parent gets a new digest, which its children are pinned to)."""
    before = {n: unwrap(r.inputs) for n, r in run_program(old).images().items()}
    after = {n: unwrap(r.inputs) for n, r in run_program(new).images().items()}
    changed = {n for n in after if before.get(n) != after[n]}
    for name in after:  # build order: parents first
        if any(p in changed for p in TARGETS[name].parents.values()):
            changed.add(name)
    return changed


def _with_pins(config: dict[str, Any], **pins: str) -> dict[str, Any]:
    """The config with new pins; a pin the lock is resolved for comes with its new lock, as
    release tracking makes it (the ci stack refuses a lock of other pins)."""
    new = copy.deepcopy(config)
    new[f"{NS}:versions"] = {**new[f"{NS}:versions"], **pins}
    return relock(new) if set(pins) & HEADER_PINS else new


@pytest.mark.parametrize(("pin", "value"), [("comfyCli", "1.22.0"), ("ubuntu", "24.10")])
def test_pin_bump_updates_exactly_the_routed_images(
    deployment: Deployment, engine: Engine, pin: str, value: str
) -> None:
    old = deployment.config
    new = _with_pins(old, **{pin: value})
    if pin == "ubuntu":  # the preview builds runtime-cpu from the new base: stand it in
        base = f"{new[f'{NS}:sources']['ubuntuImage']}:{value}"
        push_base_standin(engine, base, f"ubuntu {value}")
    try:
        ops = deployment.preview_ops(new)
    finally:
        deployment.write_config(old)
    changed = {t for t, op in ops.items() if op != "same"}
    assert changed == _routed(old, new), ops


def test_app_edit_updates_exactly_the_images_of_that_context(deployment: Deployment) -> None:
    script = ROOT / "dockerfiles" / "core" / "app" / "start.sh"
    original = script.read_text()
    since = _now()
    try:
        script.write_text(original + "\n# e2e edit\n")
        ops = deployment.preview_ops()
    finally:
        script.write_text(original)
    changed = {t for t, op in ops.items() if op != "same"}
    # core's environment image takes an empty context: the edit is not among its inputs.
    assert changed == {t for t in ops if TARGETS[t].context_dir == "dockerfiles/core"}, ops
    assert changed == {"core-cpu"}, ops
    # The preview built the changed Image (never pushed), reusing its dependency layers.
    reports = reports_from_history(*read_history(None), since=since)
    assert [r.target for r in reports] == ["core-cpu"]
    assert reports[0].cached > 0, reports


def test_checkouts_under_any_umask_preview_no_changes(deployment: Deployment) -> None:
    """A umask 002 checkout has group-writable files; the provider hashes mode bits."""
    for path in (ROOT / "dockerfiles").rglob("*"):
        path.chmod(path.stat().st_mode | 0o020)
    deployment.pulumi("preview", "--expect-no-changes")
    assert not (ROOT / "dockerfiles" / "core" / "Dockerfile").stat().st_mode & 0o020


def test_bad_config_fails_preview_with_the_message_and_keeps_state(
    deployment: Deployment,
) -> None:
    good = deployment.config
    before = _images_in_state(deployment.state())
    bad = copy.deepcopy(good)
    bad[f"{NS}:movingTag"] = "not a tag"
    try:
        deployment.write_config(bad)
        result = deployment.pulumi("preview", check=False)
    finally:
        deployment.write_config(good)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{NS}:movingTag: is not an image tag" in output, output
    assert "Traceback" not in output
    assert _images_in_state(deployment.state()) == before


def test_registry_password_never_appears_in_plain_text(deployment: Deployment) -> None:
    original = deployment.config
    config = copy.deepcopy(original)
    config[f"{NS}:registry"] = {**config[f"{NS}:registry"], "username": "e2e-bot"}
    deployment.write_config(config)
    try:
        deployment.pulumi("config", "set", "--secret", f"{NS}:registryPassword", PASSWORD)
        stored = deployment.config_file.read_text()
        assert PASSWORD not in stored
        assert "secure" in json.dumps(yaml.safe_load(stored)), "stored as ciphertext"
        up = deployment.pulumi("up", "--yes", "--skip-preview")
        state_files = list(deployment.backend.rglob("*.json"))
        assert state_files
        for path in state_files:
            assert PASSWORD not in path.read_text(), f"{path} holds the password in plain text"
        shown = deployment.pulumi("stack", "output", "--json", "--stack", STACK).stdout
        for text in (up.stdout, up.stderr, shown):
            assert PASSWORD not in text
    finally:
        deployment.write_config(original)
    deployment.pulumi("up", "--yes", "--skip-preview")


def _images_exist_in_registry(deployment: Deployment, engine: Engine) -> None:
    """The state never lists an image the registry does not hold."""
    registry = engine.registry
    for target, resource in _images_in_state(deployment.state()).items():
        digest = resource["outputs"].get("digest")
        if not digest:
            continue
        repository = resource["outputs"]["tags"][0].removeprefix(f"{registry}/").rpartition(":")[0]
        assert _manifest_digest(registry, repository, digest) == digest, target


def _start_up(deployment: Deployment) -> subprocess.Popen[str]:
    return deployment.start("up", "--yes", "--skip-preview")


def _wait_for_a_running_build(since: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    start = datetime.fromisoformat(since)
    while time.monotonic() < deadline:
        if any(
            r.get("status") == "Running" and datetime.fromisoformat(r["created_at"]) >= start
            for r in history_records()
        ):
            time.sleep(2)  # into the build, long before its pip steps end
            return
        time.sleep(0.5)
    pytest.fail("no build started within the time limit")


def _engine_pid(name: str) -> int:
    return int((ROOT / ".engine" / "run" / f"{name}.pid").read_text())


def _engine_up() -> None:
    result = subprocess.run(
        [str(ROOT / "engine" / "up")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("fault", "comfy_cli", "expected"),
    [
        ("interrupt", "1.21.0", "cancel"),
        ("buildkitd", "1.20.0", "error reading from server"),
        ("registry", "1.19.0", "connection refused"),
    ],
)
def test_a_fault_during_up_fails_clearly_and_the_next_up_converges(
    deployment: Deployment, engine: Engine, fault: str, comfy_cli: str, expected: str
) -> None:
    """Recovery is the same each time: bring the part back (`engine/up`), `up` again.

    Each fault interrupts a real rebuild of core-cpu (a comfy-cli version it never built).
    """
    original = deployment.config
    bumped = _with_pins(original, comfyCli=comfy_cli)
    since = _now()
    try:
        deployment.write_config(bumped)
        up = _start_up(deployment)
        _wait_for_a_running_build(since)
        if fault == "interrupt":
            up.send_signal(signal.SIGINT)
        elif fault == "buildkitd":
            os.kill(_engine_pid("buildkitd"), signal.SIGKILL)
        else:
            os.kill(_engine_pid("registry"), signal.SIGKILL)
        output, _ = up.communicate(timeout=600)
        assert up.returncode != 0, output
        assert expected in output.lower(), output
        _engine_up()
        _images_exist_in_registry(deployment, engine)
        deployment.pulumi("up", "--yes", "--skip-preview")
        _images_exist_in_registry(deployment, engine)
        deployment.pulumi("preview", "--expect-no-changes")
    finally:
        deployment.write_config(original)
        _engine_up()
    deployment.pulumi("up", "--yes", "--skip-preview")


def test_refresh_reports_no_drift(deployment: Deployment) -> None:
    deployment.pulumi("refresh", "--yes", "--expect-no-changes", "--skip-preview")


def test_destroy_empties_the_state(deployment: Deployment) -> None:
    deployment.pulumi("destroy", "--yes", "--skip-preview")
    resources = deployment.state()["deployment"].get("resources") or []
    assert [r for r in resources if r["type"] != "pulumi:pulumi:Stack"] == []


def test_the_github_side_previews_as_far_as_it_can_here(
    deployment: Deployment, engine: Engine, tmp_path: Path
) -> None:
    """Without the GitHub plugin (its module is not served here), the preview must stop at
    the provider at once with a message naming it; with it, at GitHub's API. Never a hang."""
    config = {
        f"{NS}:registry": {"address": engine.registry, "namespace": "e2e-github"},
        f"{NS}:targets": ["runtime-cpu"],
        f"{NS}:buildOnPreview": False,
        f"{NS}:github": {"owner": "acme", "repository": "comfyui", "environment": "staging"},
    }
    github = Deployment(deployment.backend, tmp_path / "gh.yaml", STACK, salt=deployment.salt)
    github.write_config(config)
    started = time.monotonic()
    result = github.pulumi("preview", check=False)
    output = result.stdout + result.stderr
    assert time.monotonic() - started < 120
    assert result.returncode != 0, output
    assert "pulumi-resource-github" in output or "api.github.com" in output, output
