"""Every stack file, previewed by the real Pulumi CLI: a stack ships only if this passes.

Mocks are blind to what only the CLI does (declared defaults, config strings, the provider's
own checks), so each ``stacks/Pulumi.*.yaml``, found by glob, goes through a real
``pulumi preview`` in a throwaway ``file://`` backend:

- with the stand-ins of ``stacks/standins.yaml`` merged in where the engine of
  ``engine/up`` runs (upstream inputs are unreachable there), as ``scripts/up`` does;
- with ``buildOnPreview: false``: the program runs and the real provider plans every
  resource, but nothing is built (a quick evaluation pass; the engine tests build);
- with the stack's secrets set anew under the throwaway passphrase (placeholder values);
- without the GitHub keys only where the GitHub provider plugin is not installed, and the
  output says so.

    bench/preview-stacks            # every stack file
    bench/preview-stacks prod dev   # some
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.deployment import Deployment, PulumiError, without_secure
from components.project import NAMESPACE
from tools.offline import load_stack_config, stack_names

# Keys that declare GitHub resources, which need the pulumi-resource-github plugin.
GITHUB_KEYS = (f"{NAMESPACE}:github", f"{NAMESPACE}:githubSecrets", "github:token")


def installed_plugins() -> set[str]:
    """Resource plugins the CLI has (names only)."""
    out = subprocess.run(
        ["pulumi", "plugin", "ls", "--json"], capture_output=True, text=True, check=True
    ).stdout
    return {p["name"] for p in json.loads(out or "[]") if p.get("kind") == "resource"}


def preview_config(stack: str, *, standins: bool, github: bool) -> tuple[dict[str, Any], str]:
    """The config a stack is previewed with, and what was changed from its file."""
    notes = []
    if standins:
        from bench.standins import make_standins, merged  # noqa: PLC0415 (engine only)

        config = merged(stack)
        make_standins(config)
        notes.append("stand-ins of stacks/standins.yaml")
    else:
        config = load_stack_config(stack)
    if not github and (left := [k for k in GITHUB_KEYS if k in config]):
        for k in left:
            config.pop(k)
        notes.append(
            f"GitHub keys left out ({', '.join(left)}): the pulumi-resource-github plugin is "
            "not installed here, so the GitHub side is proven under mocks only"
        )
    config[f"{NAMESPACE}:buildOnPreview"] = False
    notes.append("buildOnPreview false")
    return config, "; ".join(notes)


def preview(stack: str, root: Path, *, standins: bool, github: bool) -> str:
    """One stack through ``pulumi preview``; returns a line saying what it planned."""
    config, notes = preview_config(stack, standins=standins, github=github)
    deployment = Deployment.create(root / stack, stack, without_secure(config))
    deployment.set_secrets(config, "preview-placeholder-secret")
    started = time.monotonic()
    out = deployment.pulumi("preview", "--json").stdout
    steps = json.loads(out).get("steps", [])
    images = [
        s["urn"].rpartition("::")[2].removesuffix("-image")
        for s in steps
        if s["urn"].split("::")[2].endswith("docker-build:index:Image")
    ]
    return (
        f"{stack}: {len(steps)} resources planned by the real CLI in "
        f"{time.monotonic() - started:.0f} s, {len(images)} Images ({', '.join(images)}); "
        f"{notes}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="*", help="stack names (default: every stack file)")
    args = parser.parse_args(argv)
    if shutil.which("pulumi") is None:
        print("preview-stacks: no Pulumi CLI; install it or run engine/up", file=sys.stderr)
        return 1
    from bench.engine import engine_from_env  # noqa: PLC0415

    standins = engine_from_env() is not None
    github = "github" in installed_plugins()
    failed = []
    with tempfile.TemporaryDirectory(prefix="preview-stacks-") as tmp:
        for stack in args.stacks or stack_names():
            try:
                line = preview(stack, Path(tmp), standins=standins, github=github)
                print(f"preview-stacks: {line}", flush=True)
            except PulumiError as err:
                failed.append(stack)
                print(f"preview-stacks: {stack}: FAILED\n{err}", file=sys.stderr)
    if failed:
        print(f"preview-stacks: {', '.join(failed)} did not preview", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
