"""Where pip looks for packages here: its index and CA bundle, read as pip itself reads them.

Release tracking asks that index for new releases; the lock of ComfyUI's dependencies and
requirements.lock resolve on it with uv, which does not read pip's configuration. No file
in the project names a registry host: it is always read from the machine.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any


def pip_settings(
    env: Mapping[str, str], run: Callable[..., Any] = subprocess.run
) -> dict[str, str]:
    """``index-url`` and ``cert`` as pip would use them: environment, then ``pip config``.

    ``pip config list`` prints ``section.key='value'``; the environment (``PIP_*``) wins, as
    in pip, then the sections ``download``, ``install`` and ``global``.
    """
    found: dict[str, str] = {}
    for name in ("index-url", "cert"):
        value = env.get("PIP_" + name.upper().replace("-", "_"), "").strip()
        if value:
            found[name] = value
    result = run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    listed: dict[str, str] = {}
    for line in str(result.stdout).splitlines():
        match = re.fullmatch(r"(?P<section>[^.=]*)\.(?P<key>[a-z-]+)=(?P<value>.*)", line.strip())
        if match:
            value = match.group("value").strip().strip("'\"")
            listed[f"{match.group('section')}.{match.group('key')}"] = value
    for name in ("index-url", "cert"):
        for section in (":env:", "download", "install", "global"):
            if name not in found and listed.get(f"{section}.{name}"):
                found[name] = listed[f"{section}.{name}"]
    return found


def pip_default_index() -> str:
    """pip's built-in index, asked of pip itself so no file here names a registry host."""
    try:
        module = importlib.import_module("pip._internal.models.index")
        return str(module.PyPI.simple_url)
    except (ImportError, AttributeError) as err:
        raise LookupError(
            f"no index-url in the environment or `pip config list`, and pip's default could "
            f"not be read ({err}); pass --index-url"
        ) from None
