"""The grammar of what a stack writes into image references, and credential redaction.

Follows the reference grammar registries and BuildKit parse (distribution/reference): a
domain is ``host[:port]``, a repository path is lowercase components joined by ``/``, a tag
is at most 128 word characters, and a whole repository name is at most 255 characters.
Every check is a full match: a ``$`` under ``re.match`` lets ``"value\\n"`` through.
Pure: no Pulumi, no pydantic, so settings, the family checks and the tests share it.
"""

from __future__ import annotations

import re

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]{{2,45}}\]")
_PORT = re.compile(r"[0-9]{1,5}")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# Any URL user-info (`scheme://user[:password]@`) or an scp-like `user:password@host`.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
_BARE_USERINFO = re.compile(r"(?<![\w/:.-])[^\s/:@'\"]+:[^\s/@'\"]+@(?=[A-Za-z0-9\[])")

MAX_NAME = 255  # distribution's NameTotalLengthMax: the whole name, domain included
MAX_TAG = 128
EXAMPLE_ADDRESS = "ghcr.io or localhost:5000"


def address_problem(address: str) -> str | None:
    """Why ``address`` is not a registry ``host[:port]`` (None: it is one)."""
    if "://" in address or "/" in address:
        return f"must be host[:port] without scheme or path, e.g. {EXAMPLE_ADDRESS}"
    host, sep, port = address.rpartition(":") if not address.endswith("]") else (address, "", "")
    if not sep:
        host = address
    if not _HOST.fullmatch(host) or len(host) > 253:
        return f"is not a host name or IP address, e.g. {EXAMPLE_ADDRESS}"
    if sep and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        return "has a port outside 1-65535"
    return None


def split_domain(name: str) -> tuple[str | None, str]:
    """``registry:5000/a/b`` -> (``registry:5000``, ``a/b``); ``a/b`` -> (None, ``a/b``).

    As in distribution: the first component is a domain when it has a dot or a port, or is
    ``localhost``.
    """
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, name


def repository_problem(name: str, *, need_domain: bool = False) -> str | None:
    """Why ``name`` is not a repository such as ``ghcr.io/acme/comfyui`` (None: it is)."""
    domain, path = split_domain(name)
    if domain is None and need_domain:
        return "must start with a registry host, e.g. ghcr.io/acme/comfyui-cache"
    if domain is not None and (problem := address_problem(domain)):
        return f"registry part {problem}"
    if not _PATH.fullmatch(path):
        return (
            "is not a repository: lowercase letters, digits and . _ - separators, "
            "components joined by /"
        )
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long; registries allow at most {MAX_NAME}"
    return None


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a lowercase repository path such as ``acme/comfyui``."""
    if not _PATH.fullmatch(path):
        return "must be a lowercase repository path, e.g. acme/comfyui"
    return None


def is_tag(tag: str) -> bool:
    return bool(_TAG.fullmatch(tag))


def has_credentials(text: str) -> bool:
    """Whether ``text`` carries URL user-info or ``user:password@`` (which would end up in
    state and in the plan printed on pull requests)."""
    return bool(_URL_USERINFO.search(text) or _BARE_USERINFO.search(text))


def redact_credentials(text: str) -> str:
    """``text`` with every user-info part replaced by ``***``."""
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)
    return _BARE_USERINFO.sub("***@", text)
