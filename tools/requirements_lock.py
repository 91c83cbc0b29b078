"""The program's and the tooling's Python packages, locked in full: requirements.lock.

    scripts/lock-requirements        # after editing requirements.txt or requirements-dev.txt

``requirements*.txt`` pin the packages we chose; grpcio, protobuf and every other package
under them would float. ``uv pip compile`` resolves both files into one lock with every
package pinned and hashed, for every platform (``--universal``) and the oldest Python the
project supports. ``scripts/bootstrap`` installs exactly that lock (``--require-hashes
--no-deps``), so two machines get the same packages. The index and CA bundle are pip's own
(tools/lock.py reads them the same way); no index URL is written into the lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from components.project import ROOT
from tools.lock import index_settings

LOCK = ROOT / "requirements.lock"
INPUT = "requirements-dev.txt"  # includes requirements.txt
PYTHON = "3.11"  # pyproject's requires-python floor


def command(output: Path, index_url: str) -> list[str]:
    uv = Path(sys.executable).parent / "uv"
    return [
        str(uv) if uv.exists() else "uv",
        "pip",
        "compile",
        "--quiet",
        "--no-config",
        "--universal",
        "--generate-hashes",
        "--no-emit-index-url",
        "--custom-compile-command=scripts/lock-requirements",
        f"--python-version={PYTHON}",
        f"--index-url={index_url}",
        INPUT,
        "--output-file",
        str(output),
    ]


def main() -> int:
    index = index_settings(os.environ)
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    if index["cert"]:
        env["SSL_CERT_FILE"] = index["cert"]
    # The existing lock is the starting point: only what the requirements changed moves.
    result = subprocess.run(command(LOCK, index["index-url"]), cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        print("lock-requirements: uv pip compile failed (see above)", file=sys.stderr)
        return 1
    print(f"lock-requirements: wrote {LOCK.relative_to(ROOT)}; commit it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
