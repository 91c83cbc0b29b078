"""Reads this stack's Pulumi config once and turns it into settings plus secrets.

The only module that touches ``pulumi.Config``. ``validate`` runs the three steps of every
check, all before any resource is registered: the stack file's own problems, the shapes
(``decode.parse_settings`` into ``settings.py``'s model; secrets by shape only), then the
rules that read files or span the stack (``rules.check``). Secret values are only ever
handled as ``pulumi.Output`` secrets, so they cannot leak into plan text, logs or
unencrypted state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as runtime_config

from components import rules
from components.decode import decode_config, parse_settings, stack_file_problems
from components.errors import SettingsError, invalid_configuration
from components.project import NAMESPACE, ROOT
from components.settings import PASSWORD_ENV, StackSettings

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
    rules.check(settings, stack)
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
