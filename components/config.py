"""Reads this stack's Pulumi config once and turns it into settings plus secrets.

The only module that touches ``pulumi.Config``. Every key is validated first (plain values
by ``decode.parse_settings``, secrets by shape only), then the family is checked for
collisions, all before any resource is registered. Secret values are only ever handled as
``pulumi.Output`` secrets, so they cannot leak into plan text, logs or unencrypted state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as runtime_config

from components import indexes, locks
from components.decode import decode_config, parse_settings, stack_file_problems
from components.matrix import threshold_problems
from components.plan import plan
from components.project import NAMESPACE, ROOT
from components.settings import (
    PASSWORD_ENV,
    SettingsError,
    StackSettings,
    invalid_configuration,
    key,
)
from components.written import collisions, written_by

STACKS_DIR = ROOT / "stacks"  # Pulumi.yaml's stackConfigDir


class ConfigError(SettingsError, pulumi.RunError):
    """A ``SettingsError`` that Pulumi prints as its message alone, without a traceback."""


@dataclass(frozen=True)
class StackSecrets:
    """Secret inputs, each a secret Output (or None when the stack has none)."""

    registry_password: pulumi.Output[str] | None
    ca_bundle: pulumi.Output[str] | None
    github_secrets: pulumi.Output[dict[str, str]] | None
    # The GitHub provider's token from `github:token`; an explicit provider does not read
    # `github:*` config itself. None: the provider falls back to $GITHUB_TOKEN.
    github_token: pulumi.Output[str] | None


def current_config() -> tuple[dict[str, str], set[str]]:
    """All config of this run and the keys Pulumi marks secret.

    The engine hands config to Python through ``PULUMI_CONFIG`` (or the language host's
    run request); mocks through ``set_all_config``. Both are read so unknown keys can be
    reported, not ignored.
    """
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = set(runtime_config.get_config_secret_keys_env())
    secret |= {k for k in values if runtime_config.is_config_secret(k)}
    return values, secret


def stack_file_config(stack: str) -> dict[str, Any]:
    """The ``config:`` mapping of ``stacks/Pulumi.<stack>.yaml`` ({} when there is none)."""
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return {}
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = document.get("config") if isinstance(document, dict) else None
    return config if isinstance(config, dict) else {}


def validate(values: dict[str, str], secret_keys: set[str], stack: str) -> StackSettings:
    """Every check that needs no Pulumi: raises ``SettingsError`` naming key, value and fix."""
    if problems := stack_file_problems(stack_file_config(stack)):
        raise invalid_configuration(problems)
    settings = parse_settings(decode_config(values, secret_keys))
    # Read only by the cache report, but a typo in a build name must still fail here.
    if problems := threshold_problems(settings):
        raise invalid_configuration(f"{NAMESPACE}:{p}" for p in problems)
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
    return settings


def load() -> tuple[StackSettings, StackSecrets]:
    """Validate the whole stack config; raise ``ConfigError`` before any resource."""
    values, secret_keys = current_config()
    try:
        settings = validate(values, secret_keys, pulumi.get_stack())
    except SettingsError as err:
        raise ConfigError(str(err)) from None
    cfg = pulumi.Config(NAMESPACE)

    password: pulumi.Output[str] | None = None
    if settings.registry.username:
        from_config = cfg.get_secret("registryPassword")
        password = (
            from_config
            if from_config is not None
            else pulumi.Output.secret(os.environ[PASSWORD_ENV])
        )
    ca = (
        pulumi.Output.secret(Path(settings.caBundle).read_text(encoding="utf-8"))
        if settings.caBundle
        else None
    )
    # Shape checked by decode_config, so Pulumi's own type error (which would print the
    # decrypted value) cannot happen here.
    github_secrets = cfg.get_secret_object("githubSecrets")
    return settings, StackSecrets(
        registry_password=password,
        ca_bundle=ca,
        github_secrets=github_secrets,
        github_token=pulumi.Config("github").get_secret("token"),
    )
