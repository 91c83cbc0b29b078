"""The recorded plan of a stack as a ``docker buildx bake`` file.

Input is the offline plan (what the docker-build provider would receive), so targets,
named contexts, args, tags, cache and outputs are never described twice. Parents become
``target:<parent>`` contexts (one bake builds the chain in one go), or, with
``--parents image``, stay ``docker-image://<parent tag>`` as the provider builds them:
one target per build, each reading its parent from the registry.

Secrets are redacted in the plan, so each secret id needs a local source:
``--secret ca=/etc/ssl/certs/ca-certificates.crt`` becomes ``id=ca,src=...``.

    scripts/bake --stack dev [--output build/bake.dev.json] [--secret ID=PATH]
"""

from __future__ import annotations

import argparse
import json
import posixpath
import sys
from pathlib import Path
from typing import Any

from components.errors import SettingsError
from components.graph import GraphError
from components.project import ROOT
from tools.offline import pushes, run_stack
from tools.plan import DOCKER_IMAGE, cache_entry_to_string, to_plan


class BakeError(ValueError):
    """The plan cannot be expressed as a bake file as asked."""


def _parent_location(plan: dict[str, Any], parent: str, how: str) -> str:
    """A parent as a bake target, or as its pushed image: its version tag, or (one platform
    of an Index, pushed without a tag) the Index's, which BuildKit reads for the child's
    platform."""
    if how == "target":
        return f"target:{parent}"
    tags = plan["targets"][parent]["inputs"].get("tags") or [
        index["tag"]
        for index in (plan.get("indexes") or {}).values()
        if parent in index["platforms"].values() and not index["moving"]
    ]
    return f"{DOCKER_IMAGE}{tags[0]}"


def to_bake(
    plan: dict[str, Any], *, secrets: dict[str, str], parents: str = "target"
) -> dict[str, Any]:
    """Translate a plan (``tools.plan.to_plan``) into bake's JSON form."""
    targets: dict[str, Any] = {}
    for name in plan["order"]:
        entry = plan["targets"][name]
        i = entry["inputs"]
        context = i["context"]["location"]
        dockerfile = i["dockerfile"]["location"]
        contexts: dict[str, str] = {}
        for ctx, spec in (i["context"].get("named") or {}).items():
            parent = entry["parents"].get(ctx)
            contexts[ctx] = _parent_location(plan, parent, parents) if parent else spec["location"]
        missing = sorted(set(i.get("secrets") or {}) - set(secrets))
        if missing:
            raise BakeError(
                f"target {name} needs build secret {missing[0]!r}; pass "
                f"--secret {missing[0]}=<file> (the plan never holds secret values)"
            )
        bake: dict[str, Any] = {
            "context": context,
            # Bake reads it relative to the context, which may be a subdirectory of the
            # Dockerfile's own (core's environment: dockerfiles/core/env).
            "dockerfile": posixpath.relpath(dockerfile, context),
            "target": i["target"],
            "args": i.get("buildArgs") or {},
            "tags": i.get("tags") or [],
            "labels": i.get("labels") or {},
            "platforms": i.get("platforms") or [],
            "cache-from": [cache_entry_to_string(e) for e in i.get("cacheFrom") or []],
            "cache-to": [cache_entry_to_string(e) for e in i.get("cacheTo") or []],
            "output": [cache_entry_to_string(e) for e in i.get("exports") or []]
            or (["type=registry"] if pushes(i) else ["type=cacheonly"]),
            # No provenance attestation: it records build times, so an unchanged rebuild
            # would get a new index digest, and children key their FROM by that digest.
            "attest": ["type=provenance,disabled=true"],
        }
        if contexts:
            bake["contexts"] = contexts
        if i.get("secrets"):
            bake["secret"] = [f"id={sid},src={secrets[sid]}" for sid in sorted(i["secrets"])]
        targets[name] = bake
    return {"group": {"default": {"targets": list(plan["order"])}}, "target": targets}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bake", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--output", help="file to write (default: standard output)")
    parser.add_argument("--preview", action="store_true", help="translate a preview plan")
    parser.add_argument(
        "--parents",
        choices=("target", "image"),
        default="target",
        help="target: build parents in the same bake; image: read them from the registry",
    )
    parser.add_argument(
        "--secret", action="append", default=[], metavar="ID=PATH", help="source of a secret"
    )
    args = parser.parse_args(argv)
    secrets = {}
    for item in args.secret:
        sid, sep, path = item.partition("=")
        if not sep or not sid or not path:
            parser.error(f"--secret {item!r}: expected ID=PATH")
        secrets[sid] = path
    try:
        plan = to_plan(run_stack(args.stack, preview=args.preview))
        document = to_bake(plan, secrets=secrets, parents=args.parents)
    except (SettingsError, GraphError, BakeError, FileNotFoundError) as err:
        print(f"bake: stack {args.stack}: {err}", file=sys.stderr)
        return 1
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if args.output:
        out = Path(args.output)
        out = out if out.is_absolute() else ROOT / out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"bake: wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
