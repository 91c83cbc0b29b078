"""The engine's builder has two nodes (engine/up): linux/amd64 on the host, linux/arm64 under
QEMU; buildx sends each platform's build to the node that serves it. Also the stand-in base
image (an index of both platforms) and the registry's TLS listener, which clients that speak
HTTPS only (pulumi-docker-build's Index) reach with the engine's CA bundle.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from bench.engine import AMD64, ARM64, Engine, docker
from bench.standin_inputs import image_configs
from bench.tests.conftest import engine_missing
from bench.tests.test_engine import engine  # noqa: F401 (a fixture)

ARCH_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
ARG NONCE
RUN echo "${NONCE}" > /nonce && uname -m > /arch
"""
UNAME = {AMD64: "x86_64", ARM64: "aarch64"}

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def arm64(engine: Engine) -> Engine:  # noqa: F811 (the fixture imported above)
    if "ENGINE_PLATFORMS" not in os.environ:
        engine_missing("an engine/up older than the arm64 node: run engine/up again")
    if not engine.arm64:
        pytest.skip("engine/up ran with ENGINE_ARM64=0: no arm64 node")
    return engine


@pytest.fixture(scope="module")
def tls(engine: Engine) -> Engine:  # noqa: F811 (the fixture imported above)
    if not (engine.tls_registry and engine.ca_bundle and engine.tls_builder):
        engine_missing("no ENGINE_TLS_REGISTRY/_BUILDER, ENGINE_CA_BUNDLE: run engine/up again")
    return engine


def _declared(builder: str) -> dict[str, list[str]]:
    """Each node of ``builder``, in order, with the platforms it was registered for
    (``buildx inspect`` stars them). buildx routes a build by these first; a worker also
    reports the platforms it can emulate (with QEMU registered, both nodes list both)."""
    shown = docker("buildx", "inspect", builder).stdout
    nodes: dict[str, list[str]] = {}
    node = ""
    for line in shown.partition("\nNodes:")[2].splitlines():
        key, _, value = line.partition(":")
        if key == "Name":
            node = value.strip()
            nodes[node] = []
        elif key == "Platforms" and node:
            nodes[node] = [p.strip()[:-1] for p in value.split(",") if p.strip().endswith("*")]
    return nodes


@pytest.mark.usefixtures("arm64")
def test_the_builder_has_an_amd64_node_and_an_arm64_node() -> None:
    nodes = _declared(os.environ.get("ENGINE_BUILDER", "comfyui-images"))
    arm64_node = os.environ["ENGINE_ARM64_NODE"]
    assert len(nodes) == 2, nodes
    assert nodes[arm64_node] == [ARM64], nodes
    amd64_node = next(iter(nodes))
    assert amd64_node != arm64_node, "node 0 (the default) is the host's amd64 node"
    assert nodes[amd64_node] == [AMD64], nodes


def _build_arch(on: Engine, platform: str, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """Build and push FROM the base image + `uname -m > /arch` for ``platform`` (a fresh
    nonce: the RUN step really runs); return the image ref and buildx's metadata."""
    (tmp_path / "Dockerfile").write_text(ARCH_DOCKERFILE)
    ref = f"{on.registry}/test/nodes:{platform.replace('/', '-')}"
    metadata = tmp_path / "metadata.json"
    nonce = uuid.uuid4().hex
    built = docker(
        "buildx", "build", "--platform", platform, "--push", "-t", ref,
        "--build-arg", f"BASE={on.base_image}", "--build-arg", f"NONCE={nonce}",
        "--metadata-file", str(metadata), str(tmp_path),
        check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    return ref, json.loads(metadata.read_text())


@pytest.mark.parametrize("platform", [ARM64, AMD64])
def test_each_platform_builds_on_its_own_node(arm64: Engine, platform: str, tmp_path: Path) -> None:
    """The RUN step runs on the node of its platform (arm64: under QEMU, `uname -m` says
    aarch64), the pushed image holds that platform, and Docker runs it."""
    ref, metadata = _build_arch(arm64, platform, tmp_path)
    builder, node, _ = metadata["buildx.build.ref"].split("/")
    arm64_node = os.environ["ENGINE_ARM64_NODE"]
    assert builder == os.environ.get("ENGINE_BUILDER", "comfyui-images")
    assert (node == arm64_node) == (platform == ARM64), metadata["buildx.build.ref"]
    inspected = docker("buildx", "imagetools", "inspect", ref, "--format", "{{json .Image}}")
    assert set(image_configs(json.loads(inspected.stdout))) == {platform}
    ran = docker("run", "--rm", "--pull", "always", "--platform", platform, ref, "cat", "/arch")
    assert ran.stdout.strip() == UNAME[platform], ran.stderr


def test_the_base_image_is_an_index_of_both_platforms(arm64: Engine) -> None:
    raw = docker("buildx", "imagetools", "inspect", arm64.base_image, "--raw")
    index = json.loads(raw.stdout)
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}"
        for m in index.get("manifests") or []
        if m.get("platform", {}).get("os") != "unknown"
    }
    assert platforms == {AMD64, ARM64}, raw.stdout


def _curl(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-fsS", "-o", "/dev/null", "--max-time", "10", *args, url],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_the_tls_listener_answers_with_the_engine_ca_and_refuses_without(tls: Engine) -> None:
    url = f"https://{tls.tls_registry}/v2/"
    trusted = _curl(url, "--cacert", tls.ca_bundle)
    assert trusted.returncode == 0, trusted.stderr
    untrusted = _curl(url, "--cacert", "/etc/ssl/certs/ca-certificates.crt")
    assert untrusted.returncode == 60, untrusted  # the peer's certificate is not trusted
    plain = _curl(f"http://{tls.tls_registry}/v2/")
    assert plain.returncode != 0, "the TLS listener answered plain HTTP"


def test_the_tls_listener_serves_the_registry_s_storage(tls: Engine) -> None:
    """An image pushed over plain HTTP is there over TLS, and buildx imagetools, as
    pulumi-docker-build's Index runs it (BUILDX_BUILDER = the TLS builder entry, the CA
    bundle as SSL_CERT_FILE), writes an index there and reads it back."""
    repo = tls.base_image.rsplit(":", 1)[0].split("/", 1)[1]
    sources = [f"{tls.tls_registry}/{repo}:trixie-{p.split('/')[1]}" for p in tls.platforms]
    target = f"{tls.tls_registry}/test/tls-index:{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "SSL_CERT_FILE": tls.ca_bundle, "BUILDX_BUILDER": tls.tls_builder}

    def imagetools(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "buildx", "imagetools", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            env=env,
        )

    made = imagetools("create", "-t", target, *sources)
    assert made.returncode == 0, made.stderr
    raw = imagetools("inspect", target, "--raw")
    assert raw.returncode == 0, raw.stderr
    manifests = json.loads(raw.stdout)["manifests"]
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}" for m in manifests}
    assert platforms == set(tls.platforms)
    # The same index over plain HTTP: one storage behind both listeners.
    plain = target.replace(tls.tls_registry, tls.registry, 1)
    over_http = docker("buildx", "imagetools", "inspect", plain, "--raw").stdout
    assert over_http.strip() == raw.stdout.strip()
