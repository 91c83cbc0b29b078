"""The config the program receives from the real Pulumi CLI is what the mocks feed it.

Mocks never read ``Pulumi.yaml``; the CLI hands the program each declared default for a key
the stack leaves out, and every value as a string. ``tools.offline`` imitates that. Here
every stack file is run both ways: through the real CLI (``pulumi preview`` hosting a probe
program that records the config it received and registers nothing) and through the harness,
and the two must agree, so the harness cannot drift from the CLI unseen.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.deployment import Deployment, without_secure
from bench.tests.conftest import engine_missing
from components.project import ROOT
from tools.offline import config_from_mapping, load_stack_config, stack_names

pytestmark = pytest.mark.engine

STACKS = stack_names()
# A program that records what it was given and declares nothing.
PROBE = """
import json, os, sys
from components.config import current_config
from tools import pulumi_host

def probe():
    values, secret = current_config()
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump({"values": values, "secret": sorted(secret)}, out)

sys.exit(pulumi_host.main(sys.argv[1:], hosted=probe))
"""


@pytest.fixture(scope="module")
def cli() -> str:
    found = shutil.which("pulumi")
    if found is None:
        engine_missing("no Pulumi CLI: run engine/up (scripts/test sources .engine/env)")
    return found


def received_from_cli(stack: str, root: Path) -> dict[str, Any]:
    """The config the real CLI hands the program for ``stacks/Pulumi.<stack>.yaml``; its
    secrets are set anew with this backend's passphrase (the committed ciphertexts belong to
    the stack's own secrets provider)."""
    config = load_stack_config(stack)
    deployment = Deployment.create(root, stack, without_secure(config))
    deployment.set_secrets(config, "probe-secret-value")
    out = root / "received.json"
    command = [sys.executable, "-c", PROBE, *deployment.command("preview")[3:]]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env={**deployment.env(), "PROBE_OUT": str(out), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(json.loads(out.read_text()))


def _comparable(text: str, *, secret: bool) -> Any:
    """A config string as the program reads it: JSON values decoded (objects compare by
    content, not by key order or spacing), secret values reduced to their shape."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return "<secret>" if secret else text
    if not isinstance(value, dict | list):
        return "<secret>" if secret else text  # a scalar stays the exact string
    if secret and isinstance(value, dict):
        return sorted(value)
    return value


@pytest.mark.parametrize("stack", STACKS)
def test_mocks_receive_the_config_the_cli_sends(
    cli: str,  # noqa: ARG001 (needs the CLI)
    stack: str,
    tmp_path: Path,
) -> None:
    real = received_from_cli(stack, tmp_path)
    values, secret_keys = config_from_mapping(load_stack_config(stack))
    assert sorted(set(secret_keys)) == real["secret"], "secret keys differ"
    assert sorted(values) == sorted(real["values"]), "keys differ"
    for full, text in values.items():
        secret = full in secret_keys
        assert _comparable(text, secret=secret) == _comparable(
            real["values"][full], secret=secret
        ), f"{stack}: {full}: the harness sends {text!r}, the CLI {real['values'][full]!r}"
