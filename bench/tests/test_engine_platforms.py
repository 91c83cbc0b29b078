"""Two platforms through the real Pulumi CLI, on the engine's two-node builder.

core-cpu for linux/amd64 and linux/arm64 (its parents follow): each platform's Images go to
the node serving it (the arm64 one runs its steps under QEMU), are pushed by digest, and
two docker-build Indexes join them under the tags. The stack's registry is the engine's TLS
listener: the Index resource reads the registry over HTTPS only. It serves the same storage
as the plain-HTTP listener, which the checks and Docker read.

Tests run in file order: each builds on the state the previous one left.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bench.deployment import Deployment, PulumiError
from bench.engine import Engine, docker
from bench.image_layers import MANIFEST_TYPES
from bench.platforms import TWO, has_two_nodes, on_http, trusting_engine_ca, two_platform_config
from bench.tests.conftest import engine_missing, engine_with_pulumi
from components.project import ROOT
from tools.cache_report import history_records

pytestmark = pytest.mark.engine

STACK = "platforms"


@pytest.fixture(scope="module")
def engine() -> Engine:
    found = engine_with_pulumi()
    if not has_two_nodes():
        engine_missing("no arm64 node or TLS registry: run engine/up without ENGINE_ARM64=0")
    return found


@pytest.fixture(scope="module")
def setup(
    engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, dict[str, Any]]]:
    with trusting_engine_ca():
        config = two_platform_config(engine, f"plat{int(time.time())}")
        yield Deployment.create(tmp_path_factory.mktemp("pulumi"), STACK, config), config


def _manifest(ref: str) -> dict[str, Any]:
    """The manifest a ``<registry>/<repository>:<tag>@<digest>`` ref pins, read over HTTP."""
    name, _, digest = ref.partition("@")
    repository = name.partition("/")[2].rpartition(":")[0]
    request = urllib.request.Request(
        f"http://{os.environ['ENGINE_REGISTRY']}/v2/{repository}/manifests/{digest}",
        headers={"Accept": MANIFEST_TYPES},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        return dict(json.loads(response.read()))


def test_up_builds_each_platform_and_indexes_them(
    setup: tuple[Deployment, dict[str, Any]],
) -> None:
    deployment, _ = setup
    started, since = time.monotonic(), datetime.now(UTC)
    deployment.pulumi("up", "--yes", "--skip-preview")
    print(f"two-platform up: {time.monotonic() - started:.0f}s")
    outputs = deployment.outputs()
    refs, per_platform = outputs["refs"], outputs["platformRefs"]
    assert set(refs) == {"runtime-cpu", "core-env-cpu", "core-cpu"}
    assert set(per_platform) == {f"{n}{e}" for n in refs for e in ("", "-arm64")}
    index = _manifest(refs["core-cpu"])
    listed = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in index["manifests"]
    }
    assert set(listed) == set(TWO), index
    for name, platform in (("core-cpu", TWO[0]), ("core-cpu-arm64", TWO[1])):
        digest = per_platform[name].rpartition("@")[2]
        assert listed[platform] == digest, (name, listed)
    # Each platform's builds ran on the node serving it: the arm64 ones on the arm64 node.
    on_arm64 = [
        r
        for r in history_records(os.environ["ENGINE_ARM64_BUILDER"])
        if datetime.fromisoformat(r["created_at"]) >= since and r.get("status") == "Completed"
    ]
    assert len(on_arm64) == 3, f"runtime-cpu, core-env-cpu, core-cpu for arm64: {on_arm64}"


def test_the_arm64_image_says_arm64_and_runs_under_emulation(
    setup: tuple[Deployment, dict[str, Any]],
) -> None:
    deployment, _ = setup
    ref = on_http(deployment.outputs()["refs"]["core-cpu"])
    docker("pull", "--quiet", "--platform", "linux/arm64", ref)
    inspected = docker("image", "inspect", "--platform", "linux/arm64", ref, check=False)
    if inspected.returncode == 0:
        assert json.loads(inspected.stdout)[0]["Architecture"] == "arm64"
    machine = docker("run", "--rm", "--platform", "linux/arm64", "--entrypoint", "uname", ref, "-m")
    assert machine.stdout.strip() == "aarch64"
    volume = f"comfyui-arm-{uuid.uuid4().hex[:8]}"
    name = f"comfyui-arm-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", volume)
    try:
        docker(
            "run",
            "--detach",
            "--platform",
            "linux/arm64",
            "--name",
            name,
            "--volume",
            f"{volume}:/data",
            ref,
        )
        deadline, logs = time.monotonic() + 240, ""
        while time.monotonic() < deadline:
            found = docker("logs", name, check=False)
            logs = found.stdout + found.stderr
            if "custom node loaded" in logs:
                break
            time.sleep(2)
        assert "custom node loaded: /opt/comfyui/custom_nodes/standin_bundled_node.py" in logs, logs
        seeded = docker("exec", name, "ls", "/data/custom_nodes").stdout.split()
        assert "standin_bundled_node.py" in seeded, "the entrypoint seeds /data"
    finally:
        docker("rm", "--force", name, check=False)
        docker("volume", "rm", "--force", volume, check=False)


@pytest.mark.parametrize("platform", TWO)
def test_pulling_the_index_by_platform_gives_that_platform(
    setup: tuple[Deployment, dict[str, Any]], platform: str
) -> None:
    deployment, _ = setup
    ref = on_http(deployment.outputs()["refs"]["core-cpu"])
    docker("pull", "--quiet", "--platform", platform, ref)
    arch = docker(
        "run", "--rm", "--platform", platform, "--entrypoint", "cat", ref, "/etc/comfyui-standin"
    )
    assert arch.returncode == 0
    machine = docker("run", "--rm", "--platform", platform, "--entrypoint", "uname", ref, "-m")
    assert machine.stdout.strip() == {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}[platform]


def test_an_unchanged_stack_previews_no_changes_and_builds_nothing(
    setup: tuple[Deployment, dict[str, Any]],
) -> None:
    deployment, _ = setup
    result = deployment.pulumi("preview", "--expect-no-changes", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _reruns(builder: str, record: dict[str, Any]) -> list[str]:
    """The Dockerfile steps a build ran rather than took from the cache, read from its
    plain progress log (``#12 [core 3/3] COPY ...`` without a ``#12 CACHED`` line)."""
    ident = str(record["ref"]).rpartition("/")[2]
    found = docker("buildx", "history", "logs", "--builder", builder, ident)
    log = found.stdout + found.stderr  # buildx prints the progress log on stderr
    # Dockerfile steps only (``[stage n/m]``), not [internal] or [context ...] vertices.
    named = dict(re.findall(r"^#(\d+) \[[\w.-]+ \d+/\d+\] (.+)$", log, flags=re.MULTILINE))
    cached = set(re.findall(r"^#(\d+) CACHED$", log, flags=re.MULTILINE))
    return [step for number, step in named.items() if number not in cached]


def test_an_app_change_reruns_only_each_platforms_app_steps(
    setup: tuple[Deployment, dict[str, Any]],
) -> None:
    """Per platform, from each platform's own cache: the edit rebuilds core-cpu on both
    nodes, rerunning the app copy and nothing else of its steps."""
    deployment, _ = setup
    app = ROOT / "dockerfiles" / "core" / "app" / "start.sh"
    original = app.read_bytes()
    since = datetime.now(UTC)
    try:
        # Unique per run: a builder that saw the same edit before would have it cached.
        app.write_bytes(original + f"\n# platforms cache test {uuid.uuid4()}\n".encode())
        deployment.pulumi("up", "--yes", "--skip-preview")
    finally:
        app.write_bytes(original)
    for builder in (os.environ["ENGINE_BUILDER"], os.environ["ENGINE_ARM64_BUILDER"]):
        node = os.environ["ENGINE_ARM64_NODE"] if builder.endswith("-arm64") else ""
        records = [
            r
            for r in history_records(builder)
            if datetime.fromisoformat(r["created_at"]) >= since
            and r.get("status") == "Completed"
            and (
                node in str(r["ref"])
                if node
                else os.environ["ENGINE_ARM64_NODE"] not in str(r["ref"])
            )
        ]
        assert len(records) == 1, (builder, records)  # core-cpu only: its parents are unchanged
        reruns = _reruns(builder, records[0])
        assert any("app/" in step for step in reruns), (builder, reruns)
        assert all("app/" in step or step.startswith("LINK") for step in reruns), (builder, reruns)
    deployment.pulumi("up", "--yes", "--skip-preview")  # back to the committed app
    result = deployment.pulumi("preview", "--expect-no-changes", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


ARM64_PID = ROOT / ".engine" / "run" / "buildkitd-arm64.pid"


def _kill_arm64_node() -> None:
    """SIGKILL the arm64 buildkitd, as a lost machine; engine/up starts it again."""
    os.kill(int(ARM64_PID.read_text()), signal.SIGKILL)


def test_an_arm64_node_lost_mid_up_fails_naming_it_and_the_next_up_converges(
    setup: tuple[Deployment, dict[str, Any]],
) -> None:
    """An app edit rebuilds core-cpu on both nodes, and the arm64 node is lost as the up
    starts: its app-change build takes under a second on a warm node, too short to be hit
    while it runs, so the node is gone before the up reaches it. The up fails and names the
    arm64 Image (its builder has no other node, so nothing falls back to emulation on
    node 0); amd64 goes on. After engine/up brings the node back, the next up converges and
    a preview then shows nothing to do."""
    deployment, _ = setup
    app = ROOT / "dockerfiles" / "core" / "app" / "start.sh"
    original = app.read_bytes()
    try:
        app.write_bytes(original + f"\n# platforms fault test {uuid.uuid4()}\n".encode())
        process = deployment.start("up", "--yes", "--skip-preview")
        _kill_arm64_node()
        out, _ = process.communicate(timeout=1500)
        assert process.returncode != 0, out
        # The arm64 Image is the one that failed, by name; amd64 went on.
        failed = re.findall(r"(\S+)-image \*\*\w+ failed\*\*", out)
        assert failed == ["core-cpu-arm64"], out
        subprocess.run([str(ROOT / "engine" / "up")], check=True, capture_output=True)
        deployment.pulumi("up", "--yes", "--skip-preview")
        result = deployment.pulumi("preview", "--expect-no-changes", check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        app.write_bytes(original)
        with contextlib.suppress(PulumiError):
            deployment.pulumi("up", "--yes", "--skip-preview")
