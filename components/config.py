"""Reads this stack's Pulumi config once and turns it into settings plus secrets.

The only module that touches ``pulumi.Config``. Plain values go through
``settings.parse_settings``; secret values are only ever handled as ``pulumi.Output``
secrets, so they cannot leak into plan text, logs or unencrypted state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pulumi
from pulumi.runtime import config as runtime_config

from components.settings import (
    NAMESPACE,
    PASSWORD_ENV,
    SettingsError,
    StackSettings,
    decode_config,
    key,
    parse_settings,
)

# Secret keys and how `pulumi config set --secret` spells them.
_SECRET_ONLY = {"registryPassword": "{}", "githubSecrets": "--path {}.NAME"}


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

    The engine hands config to Python through ``PULUMI_CONFIG``; mocks through
    ``set_all_config``. Both are read so unknown keys can be reported, not ignored.
    """
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = set(runtime_config.get_config_secret_keys_env())
    secret |= {k for k in values if runtime_config.is_config_secret(k)}
    return values, secret


def load() -> tuple[StackSettings, StackSecrets]:
    """Validate the whole stack config; raise ``SettingsError`` before any resource."""
    values, secret_keys = current_config()
    for name, how in _SECRET_ONLY.items():
        full = key(name)
        if full in values and full not in secret_keys:
            raise SettingsError(
                f"invalid stack configuration:\n  {full}: stored in plain text; "
                f"remove it and run `pulumi config set --secret {how.format(full)} <value>`"
            )
    settings = parse_settings(decode_config(values, secret_keys))
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
    github_secrets = cfg.get_secret_object("githubSecrets")
    return settings, StackSecrets(
        registry_password=password,
        ca_bundle=ca,
        github_secrets=github_secrets,
        github_token=pulumi.Config("github").get_secret("token"),
    )
