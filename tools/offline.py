"""Run the real Pulumi program offline, under recording mocks.

No Pulumi CLI or provider plugin exists on the machines that run the tests, and PRs from
forks get no secrets. This module is how both the tests and the offline plan evaluate
``__main__.py``: it feeds a stack file's config to the program, records every resource
registration (inputs with camelCase wire keys, plus parent and dependencies) and returns
them. Secret values are never decrypted: a ``secure:`` entry becomes a placeholder that
is still marked secret, so it reaches the program exactly as a secret would.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import runpy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as runtime_settings

from components.decode import decode_config, parse_settings
from components.project import NAMESPACE, ROOT, cli_string, with_declared_defaults
from components.settings import StackSettings

IMAGE_TYPE = "docker-build:index:Image"
INDEX_TYPE = "docker-build:index:Index"
SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 (what is shown instead of a secret)
# How the SDK marks a secret value inside deserialized inputs.
_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # noqa: S105 (SDK constant)
_SECRET_TAG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 (SDK constant)


@dataclass
class Resource:
    """One registration as the provider (and the engine) would see it."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    provider: str = ""


@dataclass
class Recording:
    stack: str
    preview: bool
    resources: list[Resource] = field(default_factory=list)
    # register_outputs() of each component, keyed by URN.
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # pulumi.log.warn messages, in order: what `pulumi up` would print as warnings.
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def images(self) -> dict[str, Resource]:
        """docker-build Images keyed by target name (resource name minus ``-image``)."""
        return {r.name.removesuffix("-image"): r for r in self.of_type(IMAGE_TYPE)}

    def indexes(self) -> dict[str, Resource]:
        """docker-build Indexes keyed by resource name (``core-cpu-index``,
        ``core-cpu-moving-index``)."""
        return {r.name: r for r in self.of_type(INDEX_TYPE)}

    def by_urn(self, urn: str) -> Resource | None:
        return next((r for r in self.resources if r.urn == urn), None)


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SECRET_SIG) == _SECRET_TAG


def _map_secrets(value: Any, on_secret: Callable[[Any], Any]) -> Any:
    """Copy ``value``, replacing each secret wrapper (at any level) by ``on_secret(inner)``."""
    if is_secret(value):
        return on_secret(value.get("value"))
    if isinstance(value, dict):
        return {k: _map_secrets(v, on_secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_secrets(v, on_secret) for v in value]
    return value


def unwrap(value: Any) -> Any:
    """Remove secret wrappers at every level, keeping the values (for assertions)."""
    return _map_secrets(value, unwrap)


def redact(value: Any, placeholder: Any = SECRET_PLACEHOLDER) -> Any:
    """Replace every secret (at any level) by ``placeholder`` (for printing, or None to drop)."""
    return _map_secrets(value, lambda _inner: placeholder)


def redact_image_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """Redact an Image's inputs but keep their shape where the schema says what is secret.

    The SDK marks a whole top-level input secret when any part is; the provider's schema
    says which parts really are: the values of ``secrets`` and each registry ``password``.
    Any other secret input is hidden whole.
    """
    result: dict[str, Any] = {}
    for name, value in inputs.items():
        if is_secret(value) and name == "secrets":
            result[name] = dict.fromkeys(unwrap(value) or {}, SECRET_PLACEHOLDER)
        elif is_secret(value) and name == "registries":
            result[name] = [
                {**entry, "password": SECRET_PLACEHOLDER if entry.get("password") else None}
                for entry in unwrap(value) or []
            ]
        else:
            result[name] = redact(value)
    return result


def pushes(inputs: Mapping[str, Any]) -> bool:
    """Whether an Image's inputs push it: ``push`` or a registry export (what we use)."""
    exports = inputs.get("exports") or []
    return bool(inputs.get("push")) or any("registry" in e for e in exports)


def fake_digest(name: str) -> str:
    """A stable, per-resource digest so parent pinning is visible and checkable."""
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


class RecordingMocks(pulumi.runtime.Mocks):
    """Echo inputs as state and fill in what the docker-build provider computes."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == IMAGE_TYPE:
            tags = unwrap(args.inputs.get("tags")) or []
            pushed = pushes(unwrap(args.inputs))
            digest = fake_digest(args.name) if pushed else ""
            state["digest"] = digest
            # As the provider: the first tag at the digest; no tag (pushed by digest): "".
            first = tags[0] if tags else ""
            state["ref"] = f"{first}@{digest}" if digest and first else first
        elif args.typ == INDEX_TYPE:
            tag = unwrap(args.inputs.get("tag")) or ""
            state["ref"] = f"{tag}@{fake_digest(args.name)}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:  # noqa: ARG002 (SDK signature)
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that also keeps resource options and component outputs."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Resource] = []
        self.outputs: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            inputs = pulumi.runtime.rpc.deserialize_properties(request.object, keep_unknowns=True)
            self.recorded.append(
                Resource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=dict(inputs),
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    provider=request.provider,
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        outputs = pulumi.runtime.rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        self.outputs[request.urn] = dict(outputs)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def stack_file(stack: str) -> Path:
    return ROOT / "stacks" / f"Pulumi.{stack}.yaml"


def _has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secure(v) for v in value)
    return False


def _placeholders(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return value


def config_from_mapping(config: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Stack-file style ``config:`` mapping -> (namespaced strings, secret keys), as the real
    CLI hands them to the program: every value a string, plus the declared default of each
    ``Pulumi.yaml`` key the mapping leaves out."""
    values: dict[str, str] = {}
    secrets: list[str] = []
    for raw_key, value in config.items():
        full = raw_key if ":" in raw_key else f"{NAMESPACE}:{raw_key}"
        if _has_secure(value):
            secrets.append(full)
        values[full] = cli_string(_placeholders(value))
    return with_declared_defaults(values), secrets


def stack_names() -> list[str]:
    """Every stack file in stacks/, by glob, so a stack added later is covered too."""
    return sorted(p.name.split(".")[1] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def stack_settings(stack: str) -> StackSettings:
    """The validated settings of ``stacks/Pulumi.<stack>.yaml`` as the program decodes
    them (secrets by shape only); raises ``SettingsError`` or ``FileNotFoundError``."""
    values, secret_keys = config_from_mapping(load_stack_config(stack))
    return parse_settings(decode_config(values, set(secret_keys)))


def load_stack_config(stack: str) -> dict[str, Any]:
    path = stack_file(stack)
    if not path.is_file():
        raise FileNotFoundError(
            f"no stack file {path.relative_to(ROOT)}; known stacks: {', '.join(stack_names())}"
        )
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path.relative_to(ROOT)}: `config` must be a mapping")
    return config


@contextlib.contextmanager
def _project_cwd() -> Iterator[None]:
    """Pulumi runs programs from the project directory; relative paths depend on it."""
    before = Path.cwd()
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(before)


class _Warnings(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def _warning_recorder(recording: Recording) -> logging.Logger:
    """A logger of its own per run (the mock engine logs there), keeping the warnings; they
    still reach the root logger, as they did before anything kept them."""
    logger = logging.getLogger(f"{__name__}.run{id(recording)}")
    logger.handlers = [_Warnings(recording.warnings)]
    return logger


def run_program(
    config: Mapping[str, Any],
    *,
    stack: str = "test",
    preview: bool = False,
    env: Mapping[str, str] | None = None,
    into: Recording | None = None,
) -> Recording:
    """Evaluate the real ``__main__.py`` with ``config`` (a stack file's ``config:``).

    Pass ``into`` to keep what was registered even when the program raises.
    """
    values, secret_keys = config_from_mapping(config)
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    recording = into or Recording(stack=stack, preview=preview)
    monitor.recorded = recording.resources
    monitor.outputs = recording.outputs
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks,
        project=NAMESPACE,
        stack=stack,
        preview=preview,
        monitor=monitor,
        logger=_warning_recorder(recording),
    )
    pulumi.runtime.set_all_config(values, secret_keys)
    os.environ.update(env or {})

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def evaluate() -> None:
        with _project_cwd():
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    try:
        evaluate()
    finally:
        for k, old in saved_env.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old
        pulumi.runtime.set_all_config({}, [])
        runtime_settings.reset_options()
    return recording


def run_stack(stack: str, *, preview: bool = False, into: Recording | None = None) -> Recording:
    """Evaluate ``__main__.py`` with the committed ``stacks/Pulumi.<stack>.yaml``."""
    return run_program(load_stack_config(stack), stack=stack, preview=preview, into=into)
