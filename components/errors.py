"""The one error of a stack's configuration, and how its messages name a key.

Every rule (the model's shapes in ``settings.py``, the file and stack rules in ``rules.py``)
raises ``SettingsError``; several problems at once go under the one header of
``invalid_configuration``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from components.project import NAMESPACE
from components.refs import redact_credentials


class SettingsError(ValueError):
    """A stack configuration problem, phrased for the person who must fix it.

    Credentials that look like ``user:password@`` are redacted from every message, whatever
    rule wrote it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(redact_credentials(message))


def key(name: str) -> str:
    """The fully qualified config key, as ``pulumi config set`` spells it."""
    return f"{NAMESPACE}:{name}"


def invalid_configuration(lines: Iterable[str], what: str = "") -> SettingsError:
    """The one error of a stack's configuration: a header (naming ``what`` kind of problem,
    when all lines share one), then one indented line per problem."""
    header = f"invalid stack configuration: {what}:" if what else "invalid stack configuration:"
    return SettingsError(header + "".join(f"\n  {x}" for x in lines))


def shown(value: Any) -> str:
    """A bad value as messages repeat it: redacted and cut short."""
    text = redact_credentials(repr(value))
    return text if len(text) <= 80 else text[:76] + "...'"
