"""A stack's config for a machine that cannot reach Docker Hub, GitHub or the PyTorch index.

``stacks/standins.yaml`` names, for each unreachable input, the local stand-in that takes
its place (the same overrides users have for mirrors: base images under the loopback
registry, a ComfyUI source directory, PEP 503 indexes of small ``torch*`` wheels that
engine/up serves on loopback, the host's CA bundle for PyPI behind a re-signing proxy).
This module merges it over a stack file, writes the result to
``build/stacks/Pulumi.<stack>.yaml`` for ``pulumi --config-file``, and makes every stand-in
the merged config refers to. The committed stack file is never changed.

    venv/bin/python -m bench.standins --stack dev     # prints the config file's path
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from bench.engine import engine_from_env
from bench.standin_inputs import (
    INDEX,
    NS,
    TORCH_INDEX_KEYS,
    is_standin_index,
    make_comfyui_standin,
    make_sageattention_standin,
    make_torch_index,
    push_base_standin,
    standin_missing,
    torch_lines,
)
from components.project import ROOT
from components.settings import PIN_EXAMPLES
from tools.offline import load_stack_config

OVERLAY = ROOT / "stacks" / "standins.yaml"
OUT = ROOT / "build" / "stacks"


def merged(stack: str) -> dict[str, Any]:
    """The stack's config with the overlay on top; object keys merge field by field."""
    config = load_stack_config(stack)
    overlay = (yaml.safe_load(OVERLAY.read_text(encoding="utf-8")) or {}).get("config") or {}
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def make_standins(config: dict[str, Any]) -> list[str]:
    """Create what a config reads from this machine (missing base images only); returns
    what it refers to."""
    made = []
    versions, sources = config.get(f"{NS}:versions", {}), config.get(f"{NS}:sources", {})
    # The torch indexes, when the config installs from the one engine/up serves.
    if any(is_standin_index(sources.get(key, "")) for key in TORCH_INDEX_KEYS):
        for line, pins in torch_lines(config).items():
            index = make_torch_index(INDEX, line, pins)
            made.append(str(index.relative_to(ROOT) if index.is_relative_to(ROOT) else index))
    comfyui = sources.get("comfyui", "")
    if comfyui and "://" not in comfyui:
        path = ROOT / comfyui.replace("{version}", versions.get("comfyui", PIN_EXAMPLES["comfyui"]))
        if not path.exists():
            make_comfyui_standin(path, versions.get("comfyui", PIN_EXAMPLES["comfyui"]))
        made.append(str(path.relative_to(ROOT)))
    sageattention = sources.get("sageattention", "")
    if sageattention and "://" not in sageattention:
        pin = versions.get("sageattention", PIN_EXAMPLES["sageattention"])
        path = ROOT / sageattention.replace("{version}", pin)
        if not path.exists():
            make_sageattention_standin(path)
        made.append(str(path.relative_to(ROOT)))
    engine = engine_from_env()
    if engine is not None:
        ubuntu = versions.get("ubuntu", PIN_EXAMPLES["ubuntu"])
        releases: list[str] = [
            str((spec or {}).get("cuda")) for spec in (config.get(f"{NS}:cudaLines") or {}).values()
        ] or [str(versions.get("cuda", PIN_EXAMPLES["cuda"]))]
        refs = {f"{sources['ubuntuImage']}:{ubuntu}": (f"ubuntu {ubuntu}", "")}
        for cuda in releases:
            image = sources["cudaImage"]
            refs[f"{image}:{cuda}-base-ubuntu{ubuntu}"] = (f"cuda {cuda}", "")
            refs[f"{image}:{cuda}-devel-ubuntu{ubuntu}"] = (f"cuda {cuda} devel", cuda)
        for ref, (marker, nvcc) in refs.items():
            loopback = ref.replace("localhost:", "127.0.0.1:", 1)
            if standin_missing(loopback, nvcc=nvcc, platforms=engine.platforms):
                push_base_standin(engine, loopback, marker, nvcc=nvcc)
            made.append(ref)
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    args = parser.parse_args(argv)
    config = merged(args.stack)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"Pulumi.{args.stack}.yaml"
    header = f"# Written by bench/standins.py: stacks/Pulumi.{args.stack}.yaml + {OVERLAY.name}\n"
    path.write_text(header + yaml.safe_dump({"config": config}, sort_keys=False))
    for item in make_standins(config):
        print(f"standins: {item}", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
