"""Bytes a build moved through the engine's registry, read from the registry itself.

A fresh CI runner pays for what it pulls from and pushes to the registry, not for steps.
The loopback registry of engine/up writes an access log line per request (Apache
combined format) into ``.engine/logs/registry.log`` and keeps blobs in its filesystem
store. Between two offsets of that log:

- pulled: the response bytes of every blob GET (200 or 206) made by BuildKit;
- pushed: the size, read from the store, of every blob whose upload BuildKit completed
  (a ``PUT .../blobs/uploads/...?digest=``); a cross-repository mount moves no bytes and
  is counted apart. Manifests are small and counted by number only.

Requests by other clients (the test harness's ``docker run`` pulls) are left out by their
user agent, so the figures are what the build itself cost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

_LINE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]+\] "(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[0-9.]+" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "[^"]*" "(?P<agent>[^"]*)"'
)
_BLOB = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_UPLOAD = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/")
_MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/")


@dataclass(frozen=True)
class Traffic:
    bytes_pulled: int = 0
    bytes_pushed: int = 0
    blobs_pulled: int = 0
    blobs_pushed: int = 0
    blobs_mounted: int = 0
    manifests_pushed: int = 0


def offset(log: Path) -> int:
    """Where the log ends now: pass it to ``traffic`` after the build."""
    return log.stat().st_size if log.exists() else 0


def blob_size(store: Path, digest: str) -> int:
    """Size of a blob in the registry's filesystem store (0 when it is not there)."""
    algorithm, _, hexdigest = digest.partition(":")
    data = store / "docker/registry/v2/blobs" / algorithm / hexdigest[:2] / hexdigest / "data"
    return data.stat().st_size if data.is_file() else 0


def traffic(
    log: Path, since: int, store: Path, *, agent: str = "buildkit", repo_prefix: str = ""
) -> Traffic:
    """What clients whose user agent contains ``agent`` moved after offset ``since``, in
    repositories starting with ``repo_prefix``."""
    pulled = pushed = n_pulled = n_pushed = mounted = manifests = 0
    with log.open("rb") as f:
        f.seek(since)
        text = f.read().decode("utf-8", errors="replace")
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m or agent not in m["agent"]:
            continue
        path = urlsplit(m["uri"]).path
        status, method = int(m["status"]), m["method"]
        if (blob := _BLOB.match(path)) and method == "GET" and status in (200, 206):
            if blob["repo"].startswith(repo_prefix):
                pulled += int(m["bytes"]) if m["bytes"] != "-" else 0
                n_pulled += 1
        elif (upload := _UPLOAD.match(path)) and upload["repo"].startswith(repo_prefix):
            query = parse_qs(urlsplit(m["uri"]).query)
            if method == "PUT" and status == 201 and "digest" in query:
                pushed += blob_size(store, query["digest"][0])
                n_pushed += 1
            elif method == "POST" and status == 201 and "mount" in query:
                mounted += 1
        elif (
            (manifest := _MANIFEST.match(path))
            and method == "PUT"
            and status == 201
            and manifest["repo"].startswith(repo_prefix)
        ):
            manifests += 1
    return Traffic(pulled, pushed, n_pulled, n_pushed, mounted, manifests)
