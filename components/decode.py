"""From Pulumi's config strings to ``StackSettings``: decoding, secrets by shape, messages.

Pulumi hands the program every value as a string (objects as JSON) and tells which keys
are secrets. This module decodes them, checks each secret by shape without ever repeating
its value, reads the stack file for secrets stored in plain text (Pulumi decrypts a partly
secret object before the program sees it), and turns pydantic's errors into messages that
name the key, the value (redacted) and the fix. The models themselves live in
``settings.py``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from components.errors import SettingsError, invalid_configuration, key, shown
from components.project import NAMESPACE, without_declared_defaults
from components.settings import PASSWORD_ENV, StackSettings

# Set by decode_config from what the stack holds, or per build by the matrix (a build's one
# platform), never by the stack itself.
_PRESENCE_FLAGS = {"hasRegistryPassword", "githubSecretNames", "platform"}
# Keys of earlier releases, with what replaced them.
RENAMED_KEYS = {
    "platform": "platforms, a list: `pulumi config set --path 'comfyui-images:platforms[0]' "
    "linux/arm64` (or targetPlatforms per target)"
}


def _is_structured(annotation: Any) -> bool:
    """An object or list in the stack file (Pulumi hands it over as JSON)."""
    members = [annotation, *get_args(annotation)] if get_origin(annotation) is not dict else []
    return get_origin(annotation) in (dict, list) or any(
        isinstance(m, type) and issubclass(m, BaseModel) for m in members
    )


# The shape of each key's value, read from the model when a value is decoded: a new key
# needs no list kept here.
def json_keys() -> frozenset[str]:
    """Keys whose values are objects or lists (Pulumi hands them over as JSON text)."""
    return frozenset(
        name
        for name, field in StackSettings.model_fields.items()
        if name not in _PRESENCE_FLAGS and _is_structured(field.annotation)
    )


def bool_keys() -> frozenset[str]:
    """Keys whose values are true or false."""
    return frozenset(
        name
        for name, field in StackSettings.model_fields.items()
        if name not in _PRESENCE_FLAGS and field.annotation is bool
    )


# Keys whose values are secrets; everything else is a plain setting.
SECRET_KEYS = frozenset({"registryPassword", "githubSecrets"})
# Secrets of other namespaces this program reads.
FOREIGN_SECRET_KEYS = frozenset({"github:token"})
KNOWN_KEYS = frozenset(StackSettings.model_fields) - _PRESENCE_FLAGS | SECRET_KEYS
_SECRET_HOW = {"registryPassword": "{}", "githubSecrets": "--path {}.NAME", "token": "{}"}


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    """The settings model that holds the field at ``loc[:-1]`` (for listing its keys),
    through optional fields (``github``) and mappings of models (``cudaLines.<line>``)."""
    annotation: Any = StackSettings
    for part in loc[:-1]:
        if get_origin(annotation) is dict:  # `part` is one of the mapping's own keys
            annotation = get_args(annotation)[1]
            continue
        model = _model_of(annotation)
        field = model.model_fields.get(part) if model else None
        if field is None:
            return None
        annotation = field.annotation
    return _model_of(annotation)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation names: ``X`` or ``X | None`` (a mapping of models is not one)."""
    if get_origin(annotation) is dict:
        return None
    candidates = [annotation, *get_args(annotation)]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _describe(e: Any, loc: list[str]) -> str:
    """One pydantic error as a sentence a user can act on."""
    kind = e["type"]
    given = e.get("input")
    if kind == "extra_forbidden":
        model = _model_at(loc)
        known = KNOWN_KEYS if len(loc) == 1 else frozenset(model.model_fields if model else ())
        return (
            f"unknown key; remove it or check its spelling (got {shown(given)}); "
            f"known keys: {', '.join(sorted(known - _PRESENCE_FLAGS))}"
        )
    if kind == "missing":
        return f"required; set it with `pulumi config set --path {_where(loc)} ...` (see README)"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        model = _model_at([*loc, ""])
        keys = f" with keys such as {', '.join(list(model.model_fields)[:4])}" if model else ""
        return f"must be a YAML mapping{keys} (got {type(given).__name__} {shown(given)})"
    if kind == "list_type":
        return f"must be a YAML list (got {shown(given)})"
    msg = str(e["msg"]).removeprefix("Value error, ")
    if isinstance(given, dict | list):  # the rule names the entry it refused
        return msg
    return f"{msg} (got {shown(given)})"


_PLAIN_PART = re.compile(r"[A-Za-z0-9_.-]+")


def _where(loc: list[str]) -> str:
    """The key path as a user writes it; a part that is not a plain name is quoted, so that
    ``comfyui-images:cache.@0`` cannot read as ``user:password@`` and be redacted away."""
    parts = [p if _PLAIN_PART.fullmatch(p) else repr(p) for p in loc[1:]]
    return key(loc[0]) + "".join(f".{p}" for p in parts) if loc else NAMESPACE


def _format_error(err: ValidationError) -> SettingsError:
    lines = []
    for e in err.errors():
        # Drop pydantic's internal location parts (validator and type names).
        loc = [str(p) for p in e["loc"] if not any(c in str(p) for c in "[(")]
        if not loc:  # model-level rules name their keys themselves
            lines.append(str(e["msg"]).removeprefix("Value error, "))
        else:
            lines.append(f"{_where(loc)}: {_describe(e, loc)}")
    return invalid_configuration(lines)


def parse_settings(raw: Mapping[str, Any]) -> StackSettings:
    """Validate already-decoded config values (keys without namespace).

    Secret values must not be in ``raw``; pass presence flags instead. Unknown keys are
    the model's ``extra="forbid"`` errors, reported together with every other problem.
    """
    try:
        return StackSettings.model_validate(raw)
    except ValidationError as err:
        raise _format_error(err) from None


def _secret_problem(name: str, text: str) -> tuple[str | None, list[str]]:
    """Shape check of a secret key's value; the message never repeats the value.

    Returns (problem, names held by a secret object).
    """
    if name == "registryPassword":
        return ("is empty; set the registry token" if not text.strip() else None), []
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        obj = text
    if not isinstance(obj, dict):
        return (
            f"must be an object of NAME -> secret value, not a {type(obj).__name__} (value not "
            "shown); set each entry with "
            f"`pulumi config set --secret --path '{key(name)}.NAME' <value>`"
        ), []
    for entry, value in obj.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            return (
                f"entry {entry!r} must be a non-empty string (value not shown); set it with "
                f"`pulumi config set --secret --path '{key(name)}.{entry}' <value>`"
            ), []
    return None, sorted(obj)


def _decode_one(  # noqa: PLR0911 (one return per kind of key reads as the table it is)
    full: str, text: str, *, secret: bool
) -> tuple[str | None, dict[str, Any]]:
    """One namespaced key -> (problem, decoded values). Secrets come back as names only."""
    name = full.partition(":")[2]
    if name in RENAMED_KEYS:
        return (
            f"{full}: no longer a key (got {shown(text)}); it became {RENAMED_KEYS[name]}. "
            f"Remove it with `pulumi config rm {full}`"
        ), {}
    if name in _PRESENCE_FLAGS or (secret and name not in KNOWN_KEYS):
        hidden = " (a secret, value not shown)" if secret else ""
        return (
            f"{full}: unknown key{hidden}; remove it with `pulumi config rm {full}`; known "
            f"keys: {', '.join(sorted(KNOWN_KEYS))}"
        ), {}
    if name in SECRET_KEYS:
        if not secret:
            return (
                f"{full}: stored in plain text; run `pulumi config rm {full}`, then `pulumi "
                f"config set --secret {_SECRET_HOW[name].format(full)} <value>`, and revoke "
                "the exposed value"
            ), {}
        problem, held = _secret_problem(name, text)
        if problem:
            return f"{full}: {problem}", {}
        return None, {"githubSecretNames": held} if name == "githubSecrets" else {}
    if secret:
        return (
            f"{full}: a plain setting stored as a secret (value not shown), so it cannot be "
            f"validated or shown in plans; run `pulumi config rm {full}` and "
            f"`pulumi config set {full} <value>` without --secret"
        ), {}
    if name in json_keys():
        try:
            return None, {name: json.loads(text)}
        except json.JSONDecodeError:
            return f"{full}: must be a YAML mapping or list (got {shown(text)})", {}
    if name in bool_keys():
        if text not in ("true", "false"):
            return f"{full}: must be true or false (got {shown(text)})", {}
        return None, {name: text == "true"}
    return None, {name: text}


def decode_config(values: Mapping[str, str], secret_keys: Iterable[str]) -> dict[str, Any]:
    """Turn Pulumi's namespaced config strings into plain values for ``parse_settings``.

    Every key is checked, secret or not; secret values are never decoded into settings and
    never repeated in a message. A plain setting stored as a secret, or a secret stored in
    plain text, is refused with the commands that fix it. A key holding its declared default
    (``Pulumi.yaml``) is unset: the CLI sends those whether or not the stack sets them.
    """
    values = without_declared_defaults(values)
    secret = set(secret_keys)
    problems = [
        f"{full}: stored in plain text; run `pulumi config rm {full}` and `pulumi config set "
        f"--secret {full} <value>`, and revoke the exposed value"
        for full in sorted(FOREIGN_SECRET_KEYS & set(values) - secret)
    ]
    raw: dict[str, Any] = {}
    for full, text in values.items():
        if full.partition(":")[0] == NAMESPACE:
            problem, decoded = _decode_one(full, text, secret=full in secret)
            problems += [problem] if problem else []
            raw |= decoded
    if problems:
        raise invalid_configuration(problems)
    names = {full.partition(":")[2] for full in values if full.startswith(NAMESPACE + ":")}
    raw["hasRegistryPassword"] = "registryPassword" in names or bool(
        os.environ.get(PASSWORD_ENV, "").strip()
    )
    return raw


def stack_file_problems(config: Mapping[str, Any]) -> list[str]:
    """Secrets written in plain text inside a stack file's ``config:`` mapping.

    Pulumi marks a whole object secret when any entry is ``secure:``, and hands the program
    every entry decrypted: a plain entry inside ``githubSecrets`` is invisible from the
    program's config, so the stack file itself is read for it.
    """
    problems = []
    for raw_key, value in config.items():
        full = raw_key if ":" in raw_key else key(raw_key)
        name = full.partition(":")[2]
        if not (full.startswith(NAMESPACE + ":") and name in SECRET_KEYS) and (
            full not in FOREIGN_SECRET_KEYS
        ):
            continue
        if _is_secure(value):
            continue
        entries = value.items() if name == "githubSecrets" and isinstance(value, dict) else []
        if not entries:
            problems.append(
                f"{full}: stored in plain text in the stack file; run `pulumi config rm "
                f"{full}`, then `pulumi config set --secret "
                f"{_SECRET_HOW[name].format(full)} <value>`, and revoke the exposed value"
            )
        for entry, inner in entries:
            if not _is_secure(inner):
                problems.append(
                    f"{full}.{entry}: stored in plain text inside a secret object; run "
                    f"`pulumi config set --secret --path '{full}.{entry}' <value>` and revoke "
                    "the exposed value"
                )
    return problems


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}
