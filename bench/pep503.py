"""Pages of a PEP 503 "simple" index, as PyPI and download.pytorch.org serve them.

The stand-in torch indexes are directories that engine/up serves over HTTP on loopback: a
root page linking each project (``<name>/``), and per project a page linking each wheel
with a ``#sha256=`` fragment. pip checks a download against that fragment, so a page must
be rewritten whenever a wheel's bytes change (``bench/payloads.py`` grows wheels in place).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 16 * 1024 * 1024
# PEP 629: the API version, as PyPI's pages declare it.
_HEAD = '<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.0"></head>'


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_project_page(project: Path) -> Path:
    """``<project>/index.html`` linking every wheel in the directory with its sha256."""
    links = "".join(
        f'<a href="{wheel.name}#sha256={sha256_of(wheel)}">{wheel.name}</a><br>'
        for wheel in sorted(project.glob("*.whl"))
    )
    page = project / "index.html"
    page.write_text(f"{_HEAD}<body>{links}</body></html>\n", encoding="utf-8")
    return page


def write_root_page(root: Path) -> Path:
    """``<root>/index.html`` linking every project directory under it."""
    links = "".join(
        f'<a href="{project.name}/">{project.name}</a><br>'
        for project in sorted(p for p in root.iterdir() if p.is_dir())
    )
    page = root / "index.html"
    page.write_text(f"{_HEAD}<body>{links}</body></html>\n", encoding="utf-8")
    return page
