"""Realistic payloads (bench/payloads.py): a heavy stand-in torch wheel is still a valid
wheel, pip installs the payload, and the bytes are incompressible."""

from __future__ import annotations

import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

from bench.payloads import add_payload, fill_torch_indexes
from bench.standin_inputs import make_torch_index

PINS = {"torch": "2.8.0", "torchvision": "0.23.0", "torchaudio": "2.8.0"}


def test_payload_is_recorded_installed_and_incompressible(tmp_path: Path) -> None:
    make_torch_index(tmp_path, "cu129", PINS)
    make_torch_index(tmp_path, "cpu", PINS)
    done = fill_torch_indexes(tmp_path, {"cuda": 3_000_000, "cpu": 1_000_000})
    assert done == {"cu129": 3_000_000, "cpu": 1_000_000}
    (wheel,) = (tmp_path / "cu129" / "torch").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        payload = archive.read("torch/_payload.bin")
        record = archive.read("torch-2.8.0+cu129.standin.dist-info/RECORD").decode()
    assert len(payload) == 3_000_000
    assert "torch/_payload.bin,sha256=" in record
    assert len(zlib.compress(payload, 9)) > 0.99 * len(payload), "random bytes must not shrink"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-index", str(wheel)], check=True
    )
    installed = next((venv / "lib").glob("python*/site-packages/torch/_payload.bin"))
    assert installed.stat().st_size == 3_000_000


def test_adding_twice_replaces_the_payload(tmp_path: Path) -> None:
    make_torch_index(tmp_path, "cpu", PINS)
    (wheel,) = (tmp_path / "cpu" / "torch").glob("*.whl")
    add_payload(wheel, 1000)
    add_payload(wheel, 2000)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert names.count("torch/_payload.bin") == 1
        assert len(archive.read("torch/_payload.bin")) == 2000
