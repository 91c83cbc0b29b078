"""The rules of a stack that read files or span its settings, applied after the shapes.

``settings.py`` is the model of shapes: each key's type and form and the rules between the
fields of one model, from the values alone. The rules here need more: a file (the CA
bundle, the workflow files, the ComfyUI lock, the recorded torch indexes) or the whole plan
(what two builds would write, the builds ``cacheThresholds`` may name). ``config.validate``
runs them in order, after the shapes, before any resource is registered; each message
names the key, the value and the fix.
"""

from __future__ import annotations

from pathlib import Path

from components import indexes, locks
from components.catalog import TARGETS
from components.errors import SettingsError, invalid_configuration, key, shown
from components.matrix import build_names
from components.plan import plan
from components.settings import MAX_SECRET_BYTES, GithubSettings, StackSettings
from components.workflows import workflow_secrets
from components.written import collisions, written_by


def check(settings: StackSettings, stack: str) -> None:
    """Every rule of this module, in order; raises ``SettingsError`` at the first broken one."""
    if settings.caBundle and (problem := ca_bundle_problem(settings.caBundle)):
        got = shown(settings.caBundle)
        raise invalid_configuration([f"{key('caBundle')}: {problem} (got {got})"])
    github_secrets_complete(settings)
    # Read only by the cache report, but a typo in a build name must still fail here.
    if problems := threshold_problems(settings):
        raise invalid_configuration(key(p) for p in problems)
    # A lock of other pins is always refused; a missing one only where the stack asks.
    if problem := locks.mismatch(settings, stack):
        raise SettingsError(f"{key('versions')}: {problem}")
    # A pin the line's recorded index does not publish would fail its torch layer.
    if problems := indexes.pin_problems(settings):
        raise invalid_configuration(problems, "a torch pin its index does not carry")
    if settings.requireLock and (problem := locks.missing(settings, stack)):
        raise SettingsError(f"{key('requireLock')} is true, but there is {problem}")
    if problems := collisions(written_by(plan(settings, stack).values(), push=settings.push)):
        raise invalid_configuration(
            [*problems, "fix registry.namespace, movingTag, cache.registryRepository or the pins"],
            "two targets would write the same place",
        )


def threshold_problems(settings: StackSettings) -> list[str]:
    """cacheThresholds naming a build the stack never makes (any target's build on the
    stack's lines counts: a stack may narrow its targets and keep its thresholds)."""
    names = build_names(settings.model_copy(update={"targets": list(TARGETS)}))
    return [
        f"cacheThresholds names {name!r}, which this stack never builds; its builds are "
        f"{', '.join(names)}"
        for name in settings.cacheThresholds
        if name not in names
    ]


def ca_bundle_problem(location: str) -> str | None:
    """Why ``caBundle`` cannot be the build's CA secret (None: a readable PEM bundle)."""
    path = Path(location)
    try:
        data = path.read_bytes() if path.is_file() else None
    except OSError:  # a name too long for the file system, no permission
        data = None
    if data is None:
        return "is not a readable file; point it at a PEM bundle"
    if len(data) > MAX_SECRET_BYTES:
        return (
            f"is {len(data)} bytes; BuildKit refuses secrets over {MAX_SECRET_BYTES} "
            "bytes, so keep only the CAs your proxy needs"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return (
            "is not UTF-8 text; convert it to PEM (`openssl x509 -inform der -in "
            "ca.der -out ca.pem`)"
        )
    if "-----BEGIN CERTIFICATE-----" not in text:
        return "holds no PEM certificate (-----BEGIN CERTIFICATE-----); point it at a PEM bundle"
    return None


def github_secrets_complete(settings: StackSettings) -> None:
    """githubSecrets: valid names, a github object to receive them, and every secret the
    workflow jobs in the stack's environment read (derived from the workflow files)."""
    secrets_key = key("githubSecrets")
    if settings.github is None:
        if settings.githubSecretNames:
            raise SettingsError(
                f"{secrets_key} sets {', '.join(settings.githubSecretNames)} but {key('github')} "
                f"is not set, so they would go nowhere; add {key('github')} or run "
                f"`pulumi config rm --path {secrets_key}`"
            )
        return
    for name in settings.githubSecretNames:
        if problem := GithubSettings.name_problem(name):
            raise SettingsError(
                f"{secrets_key}.{name}: the secret name {problem}; rename it with "
                f"`pulumi config rm --path {secrets_key}.{name}` and set it again"
            )
    if pair := GithubSettings.case_duplicate(settings.githubSecretNames):
        raise SettingsError(
            f"{secrets_key}.{pair[0]} and {secrets_key}.{pair[1]} differ only in case; "
            f"GitHub secret names are case-insensitive, so keep one "
            f"(`pulumi config rm --path {secrets_key}.{pair[1]}`)"
        )
    wanted = workflow_secrets(settings.github.environment)
    have = {name.upper() for name in settings.githubSecretNames}
    missing = [name for name in wanted.needed if name not in have]
    if missing:
        raise SettingsError(
            "\n  ".join(
                f"{secrets_key}.{name} is not set, but {', '.join(wanted.needed[name])} "
                f"runs in environment {settings.github.environment!r} and reads "
                f"secrets.{name}; set it with "
                f"`pulumi config set --secret --path '{secrets_key}.{name}' <value>`"
                for name in missing
            )
        )
