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

from components.project import ROOT

# Commands that read the stack's config (and so take --stack and --config-file).
_CONFIGURED = frozenset({"preview", "up", "refresh", "destroy", "config"})


def is_secure(value: Any) -> bool:
    """A stack file's encrypted entry: ``{secure: <ciphertext>}``."""
    return isinstance(value, dict) and set(value) == {"secure"}


def _secure_paths(value: Any, path: str) -> list[str]:
    if is_secure(value):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _secure_paths(v, f"{path}.{k}")]
    return []


def without_secure(value: Any) -> Any:
    """A stack file's ``config`` (or part of it) without its ``secure:`` entries."""
    if isinstance(value, dict):
        return {k: without_secure(v) for k, v in value.items() if not is_secure(v)}
    return value


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
        # `stack init` writes its salt into stacks/Pulumi.<stack>.yaml: take it, then put
        # back what was there (a committed stack file of that name stays as it was).
        # It would reuse a salt found there, made with another passphrase: move it aside.
        created = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
        committed = created.read_bytes() if created.exists() else None
        created.unlink(missing_ok=True)
        try:
            deployment.pulumi("stack", "init", stack, "--secrets-provider", "passphrase")
            deployment.salt = yaml.safe_load(created.read_text())["encryptionsalt"]
        finally:
            created.unlink(missing_ok=True)
            if committed is not None:
                created.write_bytes(committed)
        deployment.write_config(config)
        return deployment

    def set_secrets(self, config: dict[str, Any], value: str) -> list[str]:
        """Set every ``secure:`` entry of a stack file's ``config`` anew as a secret holding
        ``value`` (a committed ciphertext belongs to its stack's own secrets provider, not
        to this backend's passphrase); returns the ``--path`` of each."""
        paths = [p for k, v in config.items() for p in _secure_paths(v, k)]
        for path in paths:
            self.pulumi("config", "set", "--secret", "--path", path, value)
        return paths

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

    def start(self, *args: str) -> subprocess.Popen[str]:
        """A pulumi command left running (a fault test acts while it works); output merged."""
        return subprocess.Popen(
            self.command(*args),
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

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
