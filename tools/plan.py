"""Offline plan: what a stack will build and how it caches, without the Pulumi CLI.

Runs the real ``__main__.py`` under the recording mocks the tests use, then prints per
target its parents, tags, cache sources and destinations, build args and named contexts.
Secrets are redacted. ``--format json`` prints the recorded provider inputs, which
``tools.bake`` turns into a bake file.

    scripts/plan --stack dev [--format json|mermaid] [--preview]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from components.errors import SettingsError
from components.graph import GraphError
from tools.offline import (
    SECRET_PLACEHOLDER,
    Recording,
    fake_digest,
    pushes,
    redact,
    redact_image_inputs,
    run_stack,
    unwrap,
)

DOCKER_IMAGE = "docker-image://"


def cache_entry_to_string(entry: dict[str, Any]) -> str:
    """A provider cache (or export) entry as BuildKit's ``type=...,key=value`` string."""
    ((kind, params),) = entry.items()
    names = {
        "ignoreError": "ignore-error",
        "imageManifest": "image-manifest",
        "ociMediaTypes": "oci-mediatypes",
        "compressionLevel": "compression-level",
        "forceCompression": "force-compression",
        "pushByDigest": "push-by-digest",
        "names": "name",
    }
    parts = [f"type={kind}"]
    first = ("ref", "scope", "src", "dest")
    ordered = sorted((params or {}).items(), key=lambda kv: (kv[0] not in first, kv[0]))
    for name, value in ordered:
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, list):
            text = ",".join(str(v) for v in value)  # an export's names: one here
        elif isinstance(value, float) and value.is_integer():
            text = str(int(value))  # the engine's protobuf numbers are doubles: 3.0 is 3
        else:
            text = str(value)
        parts.append(f"{names.get(name, name)}={text}")
    return ",".join(parts)


def _parent_of(location: str, refs: dict[str, str], digests: dict[str, str]) -> str | None:
    """The build whose image a ``docker-image://`` named context points at: by its first
    tag, or (an image pushed by digest, one platform of an Index) by its digest."""
    if not location.startswith(DOCKER_IMAGE):
        return None
    ref, _, digest = location.removeprefix(DOCKER_IMAGE).partition("@")
    by_tag = next(
        (name for name, first_tag in refs.items() if first_tag and first_tag == ref), None
    )
    return by_tag or next((name for name, d in digests.items() if digest and d == digest), None)


def _platform(inputs: dict[str, Any]) -> str:
    return ",".join(inputs.get("platforms") or []) or "linux/amd64"


def _indexes(recording: Recording, images: dict[str, Any]) -> dict[str, Any]:
    """The recorded Indexes by resource name: their tag and the builds they join."""
    digests = {name: fake_digest(r.name) for name, r in images.items()}
    out: dict[str, Any] = {}
    for name, resource in recording.indexes().items():
        inputs = redact(resource.inputs)
        sources = [str(s) for s in unwrap(resource.inputs.get("sources")) or []]
        out[name] = {
            "tag": inputs.get("tag"),
            # Its moving tag's Index (core-cpu-moving-index), beside its version tag's.
            "moving": name.endswith("-moving-index"),
            "platforms": {
                _platform(images[b].inputs): b
                for source in sources
                if (b := _parent_of(DOCKER_IMAGE + source, {}, digests))
            },
        }
    return out


def to_plan(recording: Recording) -> dict[str, Any]:
    """The machine-readable plan: per target, parents plus redacted provider inputs, and
    the Indexes joining a target's platforms."""
    images = recording.images()
    first_tags = {name: (redact(r.inputs.get("tags")) or [""])[0] for name, r in images.items()}
    digests = {name: fake_digest(r.name) for name, r in images.items()}
    targets: dict[str, Any] = {}
    for name, resource in images.items():
        inputs = redact_image_inputs(resource.inputs)
        named = (inputs.get("context") or {}).get("named") or {}
        parents = {
            ctx: parent
            for ctx, spec in named.items()
            if (parent := _parent_of(str(spec.get("location", "")), first_tags, digests))
        }
        targets[name] = {
            "resource": resource.name,
            "platform": _platform(inputs),
            "parents": parents,
            "inputs": inputs,
        }
    # The recorded Images hold every parent already; order them parents first.
    order = _parents_first({name: list(t["parents"].values()) for name, t in targets.items()})
    github = [
        {"type": r.type, "name": r.name, "inputs": redact(r.inputs)}
        for r in recording.resources
        if r.type.startswith("github:")
    ]
    return {
        "stack": recording.stack,
        "preview": recording.preview,
        "order": order,
        "targets": {name: targets[name] for name in order},
        "indexes": _indexes(recording, images),
        "github": sorted(github, key=lambda g: (g["type"], g["name"])),
        "warnings": list(recording.warnings),
    }


def _parents_first(parents: dict[str, list[str]]) -> list[str]:
    """The recorded builds by depth (roots first), then by name: parents always come
    first, and the order does not depend on the mocks' registration order."""
    depth: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in depth:
            depth[name] = 1 + max((level(p) for p in parents.get(name, [])), default=-1)
        return depth[name]

    return sorted(parents, key=lambda name: (level(name), name))


def render_mermaid(plan: dict[str, Any]) -> str:
    """The stack's image graph as a Mermaid flowchart: one node per build, labelled with its
    version tag, an edge per parent labelled with the named context that consumes it."""
    lines = ["flowchart LR"]
    indexes = plan.get("indexes") or {}
    ids = {name: name.replace("-", "_").replace(".", "_") for name in [*plan["order"], *indexes]}
    for name in plan["order"]:
        target = plan["targets"][name]
        tags = target["inputs"].get("tags") or [""]
        # Pushed by digest (one platform of an Index): its platform stands where a tag would.
        tag = tags[0].rpartition(":")[2] if tags[0] else target.get("platform", "")
        lines.append(f'  {ids[name]}["{name}<br/><small>{tag}</small>"]')
    for name, index in indexes.items():
        tag = str(index.get("tag") or "").rpartition(":")[2]
        lines.append(f'  {ids[name]}{{{{"{name}<br/><small>{tag}</small>"}}}}')
    for name in plan["order"]:
        for ctx, parent in plan["targets"][name]["parents"].items():
            lines.append(f"  {ids[parent]} -->|{ctx}| {ids[name]}")
    for name, index in indexes.items():
        for platform, build in index["platforms"].items():
            lines.append(f"  {ids[build]} -.->|{platform}| {ids[name]}")
    return "\n".join(lines)


def render_text(plan: dict[str, Any]) -> str:
    mode = "pulumi preview" if plan["preview"] else "pulumi up"
    lines = [
        f"stack {plan['stack']} ({mode}): {len(plan['order'])} targets, "
        f"build order {' -> '.join(plan['order'])}",
        *(f"warning: {w}" for w in plan.get("warnings") or []),
    ]
    for name in plan["order"]:
        t = plan["targets"][name]
        i = t["inputs"]
        ctx = i.get("context") or {}
        lines += ["", f"{name}  [{t['resource']}]"]
        row = lines.append

        def items(mapping: dict[str, Any] | None) -> list[str]:
            return [f"{k}={v}" for k, v in sorted((mapping or {}).items())]

        row(f"  parents:      {', '.join(f'{c} <- {p}' for c, p in t['parents'].items()) or '-'}")
        row(
            f"  dockerfile:   {(i.get('dockerfile') or {}).get('location')} "
            f"(target {i.get('target')}, context {ctx.get('location')})"
        )
        row(
            f"  push:         {pushes(i)}   builder: "
            f"{(i.get('builder') or {}).get('name') or '(provider default)'}   "
            f"platform: {t.get('platform', '')}"
        )
        by_digest = [
            name
            for e in i.get("exports") or []
            if (e.get("registry") or {}).get("pushByDigest")
            for name in e["registry"].get("names") or []
        ]
        if by_digest:
            row(f"  by digest:    {', '.join(by_digest)} (one platform of an Index)")
        for n, tag in enumerate(i.get("tags") or []):
            row(f"  {'tags:' if n == 0 else '':13} {tag}")
        for label, key in (("cache from:", "cacheFrom"), ("cache to:", "cacheTo")):
            entries = i.get(key) or []
            if not entries:
                row(f"  {label:13} -")
            for n, entry in enumerate(entries):
                row(f"  {label if n == 0 else '':13} {cache_entry_to_string(entry)}")
        for label, values in (
            ("build args:", items(i.get("buildArgs"))),
            (
                "named ctx:",
                [f"{k}={v['location']}" for k, v in sorted((ctx.get("named") or {}).items())],
            ),
            ("secrets:", items(i.get("secrets"))),
            (
                "registries:",
                [
                    f"{r.get('address')} user={r.get('username')} password={r.get('password')}"
                    for r in i.get("registries") or []
                ],
            ),
        ):
            if not values:
                row(f"  {label:13} -")
            for n, value in enumerate(values):
                row(f"  {label if n == 0 else '':13} {value}")
    for name, index in (plan.get("indexes") or {}).items():
        joined = ", ".join(f"{b} ({p})" for p, b in index["platforms"].items())
        lines += [
            "",
            f"{name}  [Index]",
            f"  tag:          {index['tag']}",
            f"  joins:        {joined}",
        ]
    lines += _render_github(plan.get("github") or [])
    return "\n".join(lines)


def _render_github(resources: list[dict[str, Any]]) -> list[str]:
    """The stack's GitHub environment, its variables and its secrets (names only)."""
    if not resources:
        return []
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_type.setdefault(r["type"].rsplit(":", 1)[-1], []).append(r["inputs"])
    lines = [""]
    for env in by_type.get("RepositoryEnvironment", []):
        policy = env.get("deploymentBranchPolicy") or {}
        reviewers = env.get("reviewers") or []
        who = "; ".join(f"users {r.get('users', [])} teams {r.get('teams', [])}" for r in reviewers)
        lines += [
            f"github  [{env.get('repository')} environment {env.get('environment')}]",
            f"  deployments:  {'protected branches' if policy.get('protectedBranches') else 'any'}",
            f"  reviewers:    {who or '-'}",
        ]
    variables = sorted(
        f"{v.get('variableName')}={v.get('value')}"
        for v in by_type.get("ActionsEnvironmentVariable", [])
    )
    secrets = sorted(
        f"{s.get('secretName')}={SECRET_PLACEHOLDER}"
        for s in by_type.get("ActionsEnvironmentSecret", [])
    )
    for label, values in (("variables:", variables), ("secrets:", secrets)):
        if not values:
            lines.append(f"  {label:13} -")
        for n, value in enumerate(values):
            lines.append(f"  {label if n == 0 else '':13} {value}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml)")
    parser.add_argument("--format", choices=("text", "json", "mermaid"), default="text")
    parser.add_argument(
        "--preview", action="store_true", help="plan a `pulumi preview` instead of a `pulumi up`"
    )
    args = parser.parse_args(argv)
    try:
        recording = run_stack(args.stack, preview=args.preview)
    except (SettingsError, GraphError, FileNotFoundError) as err:
        print(f"plan: stack {args.stack}: {err}", file=sys.stderr)
        return 1
    plan = to_plan(recording)
    if args.format == "json":
        print(json.dumps(plan, indent=2, sort_keys=True))
    elif args.format == "mermaid":
        print(render_mermaid(plan))
    else:
        print(render_text(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
