"""Realistic payloads for the benchmark: stand-in torch wheels as heavy as the real ones.

The engine tests use torch stand-ins of a few kilobytes, which hide what a rebuild really
costs: a CUDA torch is several GB that a fresh runner pulls, unpacks and pushes. Here a
stand-in wheel gets a file of incompressible bytes (random, so gzip and zstd cannot shrink
it), about as large as the real wheel's libraries: 2.5 GB per CUDA line, 200 MB for CPU.
The wheel stays valid: its RECORD lists the payload with its sha256.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

from bench.pep503 import write_project_page

GB = 1000**3
MB = 1000**2
# Roughly the installed size of PyPI's torch libraries (CUDA) and of a CPU build.
REALISTIC = {"cuda": int(2.5 * GB), "cpu": 200 * MB}
_CHUNK = 16 * 1024 * 1024
_WHEN = (2020, 1, 1, 0, 0, 0)


def add_payload(wheel: Path, size: int, name: str = "_payload.bin") -> None:
    """Rewrite ``wheel`` with ``size`` incompressible bytes in its package directory."""
    with zipfile.ZipFile(wheel) as old:
        entries = {info.filename: old.read(info) for info in old.infolist()}
    record_name = next(n for n in entries if n.endswith(".dist-info/RECORD"))
    package = next(n for n in entries if not n.startswith(record_name.split("/")[0])).split("/")[0]
    payload_path = f"{package}/{name}"
    entries.pop(payload_path, None)
    record = [
        line
        for line in entries.pop(record_name).decode().splitlines()
        if line and not line.startswith(payload_path + ",")
    ]
    tmp = wheel.with_suffix(".tmp")
    digest = hashlib.sha256()
    with zipfile.ZipFile(tmp, "w") as new:
        for path, data in entries.items():
            new.writestr(zipfile.ZipInfo(path, date_time=_WHEN), data)
        info = zipfile.ZipInfo(payload_path, date_time=_WHEN)
        with new.open(info, "w", force_zip64=True) as out:
            left = size
            while left > 0:
                chunk = os.urandom(min(_CHUNK, left))
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
        encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
        lines = [line for line in record if not line.startswith(record_name + ",")]
        lines += [f"{payload_path},sha256={encoded},{size}", f"{record_name},,"]
        new.writestr(zipfile.ZipInfo(record_name, date_time=_WHEN), "\n".join(lines) + "\n")
    tmp.replace(wheel)


def fill_torch_indexes(index: Path, sizes: dict[str, int]) -> dict[str, int]:
    """Add payloads to the torch wheels of the stand-in indexes under ``index`` (one
    directory per line): ``sizes["cpu"]`` to the cpu index, ``sizes["cuda"]`` to every CUDA
    line's. Each grown wheel's project page gets its new sha256, which pip checks."""
    done = {}
    for wheel in sorted(index.glob("*/torch/torch-*.whl")):
        line = wheel.parent.parent.name
        size = sizes["cpu" if line == "cpu" else "cuda"]
        if size:
            add_payload(wheel, size)
            write_project_page(wheel.parent)
            done[line] = size
    return done
