"""Benchmark: what layer compression and loading cost a build, on the real engine.

Not a test: it asserts nothing, it measures. One image whose only large layer holds a
payload as compressible as torch's (native code: the shared libraries and executables of
this machine, repeated to the size asked), built on a pruned builder (a fresh CI runner)
and pushed to the engine's registry with its cache (``mode=max``), once per compression:

- cold: seconds of the whole build, seconds BuildKit spent exporting the image and the
  cache (compressing and pushing), the compressed layer's size and the bytes pushed;
- pull: seconds for a Docker daemon to pull and unpack the image (what a node pays);
- cached: the same build again on a pruned builder, every step found in the registry
  cache, pushed without loading (what the provider does, ``exports: registry``) and with
  ``--load`` into the Docker daemon (what a Docker-driver builder does): seconds and bytes
  pulled. A cached step of a push-only build is lazy, so it pulls nothing.

Every build also sends the payload as its local context (the client's file sync, shown as
``context s``); that is the benchmark's way of making a layer, not a cost of compression.

Results go to ``bench/results/compression-<timestamp>.json`` and ``.md``.

    engine/up && . .engine/env && venv/bin/python -m bench.compression \
        [--payload-gb 1] [--settings gzip,gzip-1,zstd-1,zstd-3,zstd-9]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.cache_scenarios import machine, size
from bench.engine import docker, engine_from_env, reset_local_state
from bench.image_layers import layers
from bench.registry_traffic import offset, traffic
from bench.scenarios import REGISTRY_LOG, REGISTRY_STORE
from bench.standin_inputs import WORK
from tools.cache_report import Vertex, is_local_context, read_vertices, seconds_of

RESULTS = Path(__file__).resolve().parent / "results"
CORPUS_DIRS = (Path("/usr/lib"), Path("/usr/local/lib"), Path(sys.prefix))
MB = 1000**2
GB = 1000**3


def corpus_files(minimum: int = MB) -> list[Path]:
    """Native code on this machine: ELF files over ``minimum`` bytes, in a fixed order."""
    found = []
    for top in CORPUS_DIRS:
        for path in sorted(top.rglob("*")):
            try:
                if path.is_symlink() or not path.is_file() or path.stat().st_size < minimum:
                    continue
                with path.open("rb") as f:
                    if f.read(4) == b"\x7fELF":
                        found.append(path)
            except OSError:
                continue
    return found


def make_payload(dest: Path, total: int) -> int:
    """``total`` bytes of native code in ``dest``, repeating the corpus past its end (the
    period is far beyond gzip's and zstd's windows, so repeats do not compress better)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    files = corpus_files()
    if not files:
        raise RuntimeError(f"no native code found under {CORPUS_DIRS}")
    written, index = 0, 0
    while written < total:
        source = files[index % len(files)]
        data = source.read_bytes()[: total - written]
        (dest / f"{index:05d}-{source.name}").write_bytes(data)
        written += len(data)
        index += 1
    return written


DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY payload/ /opt/payload/
"""


def compression_options(setting: str) -> str:
    kind, _, level = setting.partition("-")
    options = f"compression={kind},force-compression=true"
    if kind == "zstd":
        options += ",oci-mediatypes=true"
    return options + (f",compression-level={level}" if level else "")


def named(prefix: str) -> Callable[[Vertex], bool]:
    """Vertices whose name starts with ``prefix`` (BuildKit's export steps)."""
    return lambda vertex: vertex.name.startswith(prefix)


def build(context: Path, ref: str, cache_ref: str, setting: str, *extra: str) -> dict[str, Any]:
    """One build on a pruned builder; its seconds, export seconds and registry bytes."""
    reset_local_state()
    options = compression_options(setting)
    command = [
        "docker",
        "buildx",
        "build",
        "--progress=rawjson",
        # No attestation: the image is then one manifest (as the provider's builds are).
        "--provenance=false",
        "--build-arg",
        f"BASE={engine_base()}",
        "--output",
        f"type=image,name={ref},push=true,{options}",
        "--cache-to",
        f"type=registry,ref={cache_ref},mode=max,{options}",
        "--cache-from",
        f"type=registry,ref={cache_ref}",
        *extra,
        str(context),
    ]
    since = offset(REGISTRY_LOG)
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"build {setting} failed:\n{result.stderr[-3000:]}")
    moved = traffic(REGISTRY_LOG, since, REGISTRY_STORE)
    vertices = list(read_vertices(result.stderr).values())
    exporting = {
        name: seconds_of(vertices, named(name))
        for name in ("exporting to image", "exporting cache", "exporting to docker")
    }
    return {
        "seconds": round(seconds, 1),
        "export_image_seconds": exporting["exporting to image"],
        "export_cache_seconds": exporting["exporting cache"],
        "load_seconds": exporting["exporting to docker"],
        "bytes_pulled": moved.bytes_pulled,
        "bytes_pushed": moved.bytes_pushed,
        "cached_steps": sum(1 for v in vertices if v.cached),
        "context_seconds": seconds_of(vertices, is_local_context),
    }


def engine_base() -> str:
    engine = engine_from_env()
    assert engine is not None
    return engine.base_image


def layer_size(ref: str) -> int:
    """Compressed size of the image's largest layer, from its manifest in the engine's
    loopback registry (plain HTTP)."""
    return max(layer.size for layer in layers(ref))


def pull_seconds(ref: str) -> float:
    docker("image", "rm", "--force", ref, check=False)
    docker("builder", "prune", "--all", "--force", check=False)
    started = time.monotonic()
    docker("pull", "--quiet", ref)
    seconds = time.monotonic() - started
    docker("image", "rm", "--force", ref, check=False)
    return round(seconds, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.compression", description=__doc__.split("\n")[0])
    parser.add_argument("--payload-gb", type=float, default=1.0)
    parser.add_argument("--settings", default="gzip,gzip-1,zstd-1,zstd-3,zstd-9")
    args = parser.parse_args(argv)
    engine = engine_from_env()
    if engine is None:
        print("bench: no engine; run engine/up and `. .engine/env` first", file=sys.stderr)
        return 1
    run_id = f"compress{int(time.time())}"
    context = WORK / "compression"
    payload = make_payload(context / "payload", int(args.payload_gb * GB))
    (context / "Dockerfile").write_text(DOCKERFILE)
    rows = []
    for setting in args.settings.split(","):
        repo = f"{engine.registry}/bench/{run_id}/{setting}"
        ref, cache_ref = f"{repo}:image", f"{repo}:cache"
        cold = build(context, ref, cache_ref, setting)
        compressed = layer_size(ref)
        pulled = pull_seconds(ref)
        push_only = build(context, ref, cache_ref, setting)
        loaded = build(context, ref, cache_ref, setting, "--load")
        rows.append(
            {
                "setting": setting,
                "payload_bytes": payload,
                "layer_bytes": compressed,
                "ratio": round(compressed / payload, 3),
                "cold": cold,
                "pull_seconds": pulled,
                "cached_push_only": push_only,
                "cached_with_load": loaded,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    table = render(rows)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    details = machine()
    document: dict[str, Any] = {"payload": {"bytes": payload, "kind": "native code"}}
    document["machine"] = details
    document["rows"] = rows
    (RESULTS / f"compression-{stamp}.json").write_text(json.dumps(document, indent=2))
    header = ", ".join(f"{k} {v}" for k, v in details.items())
    (RESULTS / f"compression-{stamp}.md").write_text(f"Machine: {header}\n\n{table}\n")
    print(f"\nbench: wrote bench/results/compression-{stamp}.md and .json")
    return 0


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| compression | layer | of payload | cold build s | export image s | export cache s "
        "| pull+unpack s | cached, push only: s, pulled | cached, --load: s, pulled "
        "| context s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cold, push, load = r["cold"], r["cached_push_only"], r["cached_with_load"]
        lines.append(
            f"| {r['setting']} | {size(r['layer_bytes'])} | {r['ratio']:.2f} | {cold['seconds']} "
            f"| {cold['export_image_seconds']} | {cold['export_cache_seconds']} "
            f"| {r['pull_seconds']} | {push['seconds']}, {size(push['bytes_pulled'])} "
            f"| {load['seconds']}, {size(load['bytes_pulled'])} | {cold['context_seconds']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
