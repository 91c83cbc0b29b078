"""requirements.lock is the full lock of what requirements*.txt pin, and what bootstrap
installs (issue 17: grpcio, protobuf and the rest floated under the top-level pins)."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from components.project import ROOT

LOCK = ROOT / "requirements.lock"
_ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+)(?: ;.*)?\s*\\?$")


def locked() -> dict[str, set[str]]:
    """Package -> its versions in the lock (a universal lock may hold one per Python, each
    behind a marker)."""
    found: dict[str, set[str]] = {}
    for line in LOCK.read_text().splitlines():
        if match := _ENTRY.match(line):
            found.setdefault(canonicalize_name(match["name"]), set()).add(match["version"])
    return found


def pinned(path: Path) -> dict[str, str]:
    """The ``name==version`` pins of a requirements file (``-r`` lines and comments skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        requirement = Requirement(text)
        [spec] = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {text} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_every_pin_of_the_requirements_files_is_in_the_lock_at_that_version() -> None:
    lock = locked()
    for name in ("requirements.txt", "requirements-dev.txt"):
        for package, version in pinned(ROOT / name).items():
            assert lock.get(package) == {version}, (
                f"{name} pins {package}=={version} but requirements.lock has "
                f"{lock.get(package)}; run scripts/lock-requirements and commit the lock"
            )


def test_the_lock_pins_what_floated_before_and_hashes_every_package() -> None:
    lock = locked()
    for package in ("grpcio", "protobuf", "pydantic-core", "requests"):
        assert package in lock, f"{package} is not locked"
    text = LOCK.read_text()
    entries = len(re.findall(r"^[A-Za-z0-9._-]+==", text, re.M))
    assert entries == sum(len(versions) for versions in lock.values())
    assert text.count("--hash=sha256:") >= entries, "a package without a hash"
    assert "index-url" not in text, "no index URL is written into the lock"


def test_bootstrap_installs_exactly_the_lock() -> None:
    bootstrap = (ROOT / "scripts" / "bootstrap").read_text()
    assert "--require-hashes --no-deps -r requirements.lock" in bootstrap
    assert "sha256sum requirements.lock" in bootstrap, "the lock decides when to reinstall"
