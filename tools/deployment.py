"""A throwaway deployment: a ``file://`` backend, a stack, and its config file.

Used by the end-to-end tests and the benchmark's provider path to run the real CLI
(``tools.pulumi_host``) on a stack config they write themselves, without touching the
committed stack files: every command gets ``--config-file``, and the passphrase salt that
``pulumi stack init`` writes into ``stacks/`` is moved into that config file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.offline import ROOT

# Commands that read the stack's config (and so take --stack and --config-file).
_CONFIGURED = frozenset({"preview", "up", "refresh", "destroy", "config"})


class PulumiError(RuntimeError):
    """A pulumi command that failed, with everything it printed."""


@dataclass
class Deployment:
    backend: Path
    config_file: Path
    stack: str
    config: dict[str, Any] = field(default_factory=dict)
    salt: str = ""
    passphrase: str = "throwaway-passphrase"  # noqa: S105 (a throwaway local backend)

    @classmethod
    def create(cls, root: Path, stack: str, config: dict[str, Any]) -> Deployment:
        """A new stack in a new backend under ``root``, with ``config``."""
        backend = root / "backend"
        backend.mkdir(parents=True)
        deployment = cls(backend, root / f"Pulumi.{stack}.yaml", stack)
        deployment.pulumi("stack", "init", stack, "--secrets-provider", "passphrase")
        created = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
        deployment.salt = yaml.safe_load(created.read_text())["encryptionsalt"]
        created.unlink()
        deployment.write_config(config)
        return deployment

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PULUMI_BACKEND_URL": f"file://{self.backend}",
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
        }

    def write_config(self, config: dict[str, Any]) -> None:
        self.config = config
        document: dict[str, Any] = {"config": config}
        if self.salt:
            document["encryptionsalt"] = self.salt
        self.config_file.write_text(yaml.safe_dump(document))

    def command(self, *args: str) -> list[str]:
        command = [sys.executable, "-m", "tools.pulumi_host", *args]
        if args[0] in _CONFIGURED:
            command += ["--stack", self.stack, "--config-file", str(self.config_file)]
        return command

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args),
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
        )
        if check and result.returncode != 0:
            raise PulumiError(f"pulumi {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def preview_ops(self, config: dict[str, Any] | None = None) -> dict[str, str]:
        """Image target -> the operation a `pulumi preview --json` plans for it."""
        if config is not None:
            self.write_config(config)
        out = self.pulumi("preview", "--json").stdout
        steps = json.loads(out).get("steps", [])
        return {
            s["urn"].rpartition("::")[2].removesuffix("-image"): s["op"]
            for s in steps
            if s["urn"].endswith("-image")
        }

    def state(self) -> dict[str, Any]:
        return dict(json.loads(self.pulumi("stack", "export", "--stack", self.stack).stdout))

    def outputs(self) -> dict[str, Any]:
        out = self.pulumi("stack", "output", "--json", "--stack", self.stack).stdout
        return dict(json.loads(out))
