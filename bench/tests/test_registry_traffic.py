"""Bytes moved through the registry, from its access log and blob store (tools/registry_traffic).

The log lines are the registry's own format, as engine/up's registry writes them.
"""

from __future__ import annotations

from pathlib import Path

from bench.registry_traffic import Traffic, blob_size, offset, traffic

BK = '"buildkit/v0.34"'
DOCKER = '"docker/26.1.5+dfsg1 go/go1.24.4"'
A = "a" * 64
B = "b" * 64
C = "c" * 64


def line(method: str, uri: str, status: int, size: int | str, agent: str = BK) -> str:
    when = "[30/Nov/2026:02:05:54 +0000]"
    return f'127.0.0.1 - - {when} "{method} {uri} HTTP/1.1" {status} {size} "" {agent}\n'


def store_with(tmp_path: Path, blobs: dict[str, int]) -> Path:
    store = tmp_path / "registry-data"
    for hexdigest, size in blobs.items():
        data = store / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
        data.parent.mkdir(parents=True)
        data.write_bytes(b"x" * size)
    return store


def test_counts_what_buildkit_moved_after_the_offset(tmp_path: Path) -> None:
    store = store_with(tmp_path, {A: 1000, B: 250})
    log = tmp_path / "registry.log"
    log.write_text(line("GET", f"/v2/ns/old/blobs/sha256:{A}", 200, 999_999))  # before
    since = offset(log)
    with log.open("a") as f:
        f.write('time="2026-11-30T02:05:57Z" level=info msg="response completed"\n')
        f.write(line("GET", f"/v2/ns/core-cpu/blobs/sha256:{A}", 200, 1000))
        f.write(line("GET", f"/v2/ns/core-cpu/blobs/sha256:{B}", 206, 100))
        f.write(line("HEAD", f"/v2/ns/core-cpu/blobs/sha256:{B}", 200, 0))
        f.write(
            line("GET", f"/v2/ns/core-cpu/blobs/sha256:{A}", 200, 1000, DOCKER)
        )  # a test's pull
        f.write(
            line("PUT", f"/v2/ns/core-cpu/blobs/uploads/u1?_state=x&digest=sha256%3A{A}", 201, 0)
        )
        f.write(line("PUT", f"/v2/ns/buildcache/blobs/uploads/u2?digest=sha256%3A{B}", 201, 0))
        f.write(line("PUT", f"/v2/ns/core-cpu/blobs/uploads/u3?digest=sha256%3A{C}", 400, 0))
        f.write(line("POST", f"/v2/ns/core-cpu/blobs/uploads/?mount=sha256:{A}&from=ns/x", 201, 0))
        f.write(line("PUT", "/v2/ns/core-cpu/manifests/v1", 201, 0))
        f.write(line("GET", f"/v2/other/blobs/sha256:{A}", 200, 1000))
    found = traffic(log, since, store, repo_prefix="ns/")
    assert found == Traffic(
        bytes_pulled=1100,
        bytes_pushed=1250,
        blobs_pulled=2,
        blobs_pushed=2,
        blobs_mounted=1,
        manifests_pushed=1,
    )
    assert traffic(log, offset(log), store) == Traffic(), "nothing after the end"


def test_a_blob_missing_from_the_store_counts_zero(tmp_path: Path) -> None:
    assert blob_size(tmp_path, f"sha256:{C}") == 0
