"""Stack settings: the one place where config is read and validated.

Pure pydantic models plus one loader. Every rule that spans fields lives here, so a bad
stack fails before any resource is registered, and the message names the config key, the
bad value and the fix. Secrets never pass through these models as plain strings: the
loader only records *whether* a secret is present and hands the ``pulumi.Output`` on.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from components.catalog import TARGETS
from components.graph import selected_with_parents

NAMESPACE = "comfyui-images"
PASSWORD_ENV = "COMFYUI_IMAGES_REGISTRY_PASSWORD"  # noqa: S105 (a variable name)


class SettingsError(ValueError):
    """A stack configuration problem, phrased for the person who must fix it."""


def key(name: str) -> str:
    """The fully qualified config key, as ``pulumi config set`` spells it."""
    return f"{NAMESPACE}:{name}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CacheBackend(StrEnum):
    GHA = "gha"
    REGISTRY = "registry"
    INLINE = "inline"
    LOCAL = "local"


class CacheMode(StrEnum):
    MIN = "min"
    MAX = "max"


_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_REPO_PATH = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class RegistrySettings(_Strict):
    """Where images, tags and the registry cache live."""

    address: str = Field(description="Registry host[:port], e.g. ghcr.io or localhost:5000.")
    namespace: str = Field(description="Repository path under the address, e.g. acme/comfyui.")
    username: str | None = Field(
        default=None, description="Login user; requires comfyui-images:registryPassword."
    )

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if "://" in v or "/" in v or not _HOST.match(v):
            raise ValueError(
                f"registry.address must be host[:port] without scheme or path, got {v!r}; "
                "e.g. ghcr.io or localhost:5000"
            )
        return v

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if not _REPO_PATH.match(v):
            raise ValueError(
                f"registry.namespace must be a lowercase repository path, got {v!r}; "
                "e.g. acme/comfyui"
            )
        return v


class CacheSettings(_Strict):
    """BuildKit cache backends; see README 'How the caches work'."""

    backends: list[CacheBackend] = Field(
        default_factory=list,
        description="Backends in order of preference; [] disables caching.",
    )
    mode: CacheMode = Field(default=CacheMode.MAX, description="min: final layers; max: all.")
    imageManifest: bool = Field(
        default=False,
        description="Registry cache as an OCI image manifest (ECR and similar need it).",
    )
    writeOnPreview: bool = Field(
        default=False,
        description="Let previews write the registry cache (off: unmerged branches can't "
        "overwrite the shared cache).",
    )
    localDir: str = Field(default=".buildcache", description="Root of the local cache.")
    registryRepository: str | None = Field(
        default=None,
        description="Repository for registry cache refs; default <address>/<namespace>/buildcache.",
    )

    @field_validator("backends")
    @classmethod
    def _unique(cls, v: list[CacheBackend]) -> list[CacheBackend]:
        seen = [b for i, b in enumerate(v) if b in v[:i]]
        if seen:
            raise ValueError(f"cache.backends lists {seen[0].value!r} twice; list each once")
        return v

    @model_validator(mode="after")
    def _inline_has_no_max(self) -> CacheSettings:
        if self.backends == [CacheBackend.INLINE] and self.mode is CacheMode.MAX:
            raise ValueError(
                "cache.backends [inline] with cache.mode max: inline cache has no max mode "
                "(it embeds only the final image's layers). Use backends [registry] for "
                "mode max, or set cache.mode to min"
            )
        return self


Version = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")]


class Versions(_Strict):
    """Pinned versions. Each reaches only the targets whose layers it changes."""

    python: Version = Field(default="3.12", description="Python from the OS packages.")
    ubuntu: Version = Field(default="24.04", description="Ubuntu release of every base image.")
    cuda: Version = Field(default="12.9.1", description="CUDA of the runtime and devel bases.")
    torch: Version = Field(default="2.8.0", description="The last torch with cu129 wheels.")
    torchvision: Version = "0.23.0"
    torchaudio: Version = "2.8.0"
    comfyCli: Version = Field(default="1.23.0", description="comfy-cli from PyPI.")
    comfyui: Version = Field(default="v0.8.1", description="ComfyUI git tag or commit.")
    sageattention: Version = Field(
        default="d1a57a546c3d395b1ffcbeecc66d81db76f3b4b5",
        description="SageAttention git commit (main, 2026-01-17); v2.2.0 lacks sm_100.",
    )


_SOURCE_URL = re.compile(r"^[a-z][a-z0-9+.-]*://")


class Sources(_Strict):
    """Network inputs, overridable so builds can run against mirrors or local stand-ins."""

    cudaImage: str = Field(default="nvidia/cuda", description="Repository of CUDA base images.")
    ubuntuImage: str = Field(default="ubuntu", description="Repository of the Ubuntu base.")
    comfyui: str = Field(
        default="https://github.com/comfyanonymous/ComfyUI.git#{version}",
        description="ComfyUI source location; {version} is replaced by versions.comfyui.",
    )
    sageattention: str = Field(
        default="https://github.com/thu-ml/SageAttention.git#{version}",
        description="SageAttention source; {version} is replaced by versions.sageattention.",
    )
    torchIndexCpu: str = Field(default="https://download.pytorch.org/whl/cpu")
    torchIndexCuda: str | None = Field(
        default=None,
        description="Torch index for CUDA targets; default derived from versions.cuda (cuXYZ).",
    )
    pypiMirror: str = Field(default="", description="PyPI mirror index URL; empty: pip default.")
    wheelhouse: str = Field(
        default="", description="Directory of local wheels offered to every pip step."
    )

    @field_validator("comfyui", "sageattention")
    @classmethod
    def _templated(cls, v: str) -> str:
        if "{version}" not in v:
            raise ValueError(
                f"source location {v!r} has no {{version}} placeholder, so the pinned version "
                "would not reach the layer; write e.g. https://host/repo.git#{version}"
            )
        return v

    @field_validator("torchIndexCpu", "torchIndexCuda", "pypiMirror")
    @classmethod
    def _no_credentials(cls, v: str | None) -> str | None:
        if v and re.match(r"^[a-z]+://[^/]*@", v):
            raise ValueError(
                "index URLs are passed as build args, which persist in image metadata; "
                f"{v.split('@')[0]}@... carries credentials. Use a credential-free mirror URL"
            )
        if v and not _SOURCE_URL.match(v):
            raise ValueError(f"index URL {v!r} needs a scheme, e.g. https://mirror/simple")
        return v


class GithubSettings(_Strict):
    """Optional GitHub side of a stack: one deployment environment of one repository.

    A stack without it creates no GitHub resources. Reviewers are numeric ids because
    GitHub's API takes nothing else; ids also survive renames, and keeping them in config
    means no lookup calls (so previews and the offline plan stay deterministic). The secret
    values live in ``comfyui-images:githubSecrets``, never here.
    """

    owner: str = Field(description="User or organization that owns the repository.")
    repository: str = Field(description="Bare repository name (no owner), e.g. comfyui.")
    environment: str = Field(description="Deployment environment the workflows run in.")
    reviewers: dict[str, int] = Field(
        default_factory=dict,
        description="Required reviewers, login -> numeric user id (gh api users/LOGIN --jq .id).",
    )
    reviewerTeams: dict[str, int] = Field(
        default_factory=dict,
        description="Required reviewer teams, slug -> numeric team id "
        "(gh api orgs/OWNER/teams/SLUG --jq .id).",
    )
    variables: dict[str, str] = Field(
        default_factory=dict, description="Extra plain environment variables, NAME -> value."
    )

    # Written from the stack's own settings, so user variables may not take these names.
    GENERATED_VARIABLES: ClassVar[frozenset[str]] = frozenset(
        {"REGISTRY_ADDRESS", "REGISTRY_NAMESPACE", "CACHE_BACKENDS"}
    )
    # GitHub allows up to six reviewers (users and teams together) per environment.
    MAX_REVIEWERS: ClassVar[int] = 6
    _OWNER: ClassVar[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
    _REPOSITORY: ClassVar[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
    _NAME: ClassVar[re.Pattern[str]] = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """Why GitHub would refuse ``name`` as a secret or variable name (None: it is fine)."""
        if not cls._NAME.match(name):
            return "must contain only letters, digits and _, and not start with a digit"
        if name.upper().startswith("GITHUB_"):
            return "must not start with GITHUB_ (GitHub reserves that prefix)"
        return None

    @field_validator("owner")
    @classmethod
    def _owner(cls, v: str) -> str:
        if not cls._OWNER.match(v):
            raise ValueError("must be the name of a GitHub user or organization")
        return v

    @field_validator("repository")
    @classmethod
    def _repository(cls, v: str) -> str:
        if "/" in v:
            owner, _, bare = v.partition("/")
            raise ValueError(
                "must be the bare repository name; put the owner in github.owner "
                f"(owner: {owner}, repository: {bare})"
            )
        if not cls._REPOSITORY.match(v):
            raise ValueError("is not a valid repository name")
        return v

    @field_validator("environment")
    @classmethod
    def _environment(cls, v: str) -> str:
        if not v.strip() or len(v) > 255 or "," in v or ";" in v:
            raise ValueError("must be an environment name such as prod")
        return v

    @field_validator("reviewers", "reviewerTeams")
    @classmethod
    def _ids(cls, v: dict[str, int]) -> dict[str, int]:
        for name, ident in v.items():
            if isinstance(ident, bool) or ident <= 0:
                raise ValueError(
                    f"reviewer {name!r} has id {ident!r}; GitHub needs the numeric id, "
                    f"e.g. `gh api users/{name} --jq .id`"
                )
        return v

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            problem = cls.name_problem(name)
            if name.upper() in cls.GENERATED_VARIABLES:
                problem = "is written from the stack's registry/cache settings; change those"
            if problem:
                raise ValueError(f"{name!r} {problem}")
        return v

    @model_validator(mode="after")
    def _reviewer_limit(self) -> GithubSettings:
        count = len(self.reviewers) + len(self.reviewerTeams)
        if count > self.MAX_REVIEWERS:
            raise ValueError(
                f"reviewers and reviewerTeams name {count} reviewers together; GitHub "
                f"allows at most {self.MAX_REVIEWERS} per environment"
            )
        return self


class StackSettings(_Strict):
    """Everything one stack asks for, validated as a whole."""

    registry: RegistrySettings
    targets: list[str] = Field(min_length=1)
    push: bool = True
    cache: CacheSettings = Field(default_factory=CacheSettings)
    versions: Versions = Field(default_factory=Versions)
    sources: Sources = Field(default_factory=Sources)
    builder: str | None = None
    buildOnPreview: bool = True
    platform: Literal["linux/amd64", "linux/arm64"] = "linux/amd64"
    movingTag: str = "latest"
    caBundle: str | None = None
    cudaArchList: str = "8.0;8.6;8.9;9.0;10.0;12.0+PTX"
    cacheThresholds: dict[str, float] = Field(default_factory=dict)
    github: GithubSettings | None = None
    # Presence only: the values stay pulumi secrets (see load_settings).
    hasRegistryPassword: bool = False
    githubSecretNames: list[str] = Field(default_factory=list)

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in TARGETS:
                raise ValueError(
                    f"unknown target {name!r}; known targets: {', '.join(sorted(TARGETS))}"
                )
        return v

    @field_validator("movingTag")
    @classmethod
    def _tag(cls, v: str) -> str:
        if not _TAG.match(v):
            raise ValueError(f"movingTag {v!r} is not a valid image tag")
        return v

    @field_validator("cudaArchList")
    @classmethod
    def _arch_list(cls, v: str) -> str:
        if not re.fullmatch(r"\d+\.\d+(\+PTX)?(;\d+\.\d+(\+PTX)?)*", v):
            raise ValueError(f"cudaArchList {v!r} must look like '8.0;8.6;8.9;9.0;10.0;12.0+PTX'")
        return v

    @field_validator("caBundle")
    @classmethod
    def _ca_exists(cls, v: str | None) -> str | None:
        if v and not Path(v).is_file():
            raise ValueError(f"caBundle {v!r} is not a readable file; point it at a PEM bundle")
        return v or None

    @field_validator("cacheThresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        for name, rate in v.items():
            if name not in TARGETS:
                raise ValueError(f"cacheThresholds names unknown target {name!r}")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"cacheThresholds.{name} = {rate} must be between 0 and 1")
        return v

    @model_validator(mode="after")
    def _cross_field(self) -> StackSettings:
        if self.registry.username and not self.hasRegistryPassword:
            raise SettingsError(
                f"{key('registry')}.username is {self.registry.username!r} but no password is "
                f"set; run `pulumi config set --secret {key('registryPassword')} <token>` "
                f"or export {PASSWORD_ENV}"
            )
        with_parents = [t for t in self.build_order if TARGETS[t].parents]
        if not self.push and with_parents:
            raise SettingsError(
                f"{key('push')} is false but {with_parents[0]} is built from "
                f"{', '.join(TARGETS[with_parents[0]].parents.values())}, which it can only "
                "reach as a pushed image; set push to true or list only runtime targets"
            )
        if self.cache.writeOnPreview and CacheBackend.REGISTRY not in self.cache.backends:
            raise SettingsError(
                f"{key('cache')}.writeOnPreview is true but backends {self.backend_names} "
                "has no registry; remove writeOnPreview or add registry"
            )
        self._github_secrets_complete()
        return self

    def _github_secrets_complete(self) -> None:
        """githubSecrets: valid names, a github object to receive them, and every secret the
        workflow jobs in the stack's environment read (derived from the workflow files)."""
        secrets_key = key("githubSecrets")
        if self.github is None:
            if self.githubSecretNames:
                raise SettingsError(
                    f"{secrets_key} sets {', '.join(self.githubSecretNames)} but {key('github')} "
                    f"is not set, so they would go nowhere; add {key('github')} or run "
                    f"`pulumi config rm --path {secrets_key}`"
                )
            return
        for name in self.githubSecretNames:
            if problem := GithubSettings.name_problem(name):
                raise SettingsError(
                    f"{secrets_key}.{name}: the secret name {problem}; rename it with "
                    f"`pulumi config rm --path {secrets_key}.{name}` and set it again"
                )
        # Lazy: the workflow parser lives with the GitHub component (and pulumi_github);
        # stacks without github never load it.
        from components.github import workflow_secrets  # noqa: PLC0415

        wanted = workflow_secrets(self.github.environment)
        have = {name.upper() for name in self.githubSecretNames}
        missing = [name for name in wanted.needed if name not in have]
        if missing:
            raise SettingsError(
                "\n  ".join(
                    f"{secrets_key}.{name} is not set, but {', '.join(wanted.needed[name])} "
                    f"runs in environment {self.github.environment!r} and reads "
                    f"secrets.{name}; set it with "
                    f"`pulumi config set --secret --path '{secrets_key}.{name}' <value>`"
                    for name in missing
                )
            )

    @property
    def build_order(self) -> list[str]:
        """Selected targets plus their parents, parents first."""
        return selected_with_parents(self.targets)

    @property
    def backend_names(self) -> list[str]:
        return [b.value for b in self.cache.backends]

    @property
    def builder_name(self) -> str | None:
        return self.builder or None


# Keys a stack may set; anything else under the namespace is a typo worth failing on.
# Keys whose stack values are YAML objects or lists (Pulumi hands them over as JSON).
_JSON_KEYS = {"registry", "cache", "versions", "sources", "github", "cacheThresholds", "targets"}
_SECRET_KEYS = {"registryPassword", "githubSecrets"}
# Set by decode_config from what the stack holds, never by the stack itself.
_PRESENCE_FLAGS = {"hasRegistryPassword", "githubSecretNames"}
KNOWN_KEYS = frozenset(StackSettings.model_fields) - _PRESENCE_FLAGS | _SECRET_KEYS


def _format_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        where = key(loc[0]) + "".join(f".{p}" for p in loc[1:]) if loc else NAMESPACE
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key; remove it or check its spelling (value {e['input']!r})"
            if len(loc) == 1:
                msg += f"; known keys: {', '.join(sorted(KNOWN_KEYS))}"
        elif e["type"] == "missing":
            msg = f"required; set it with `pulumi config set {where} ...` (see README)"
        elif e["type"] in ("enum", "literal_error") or (
            "input" in e and not isinstance(e["input"], dict | list)
        ):
            msg = f"{msg} (got {e['input']!r})"
        # Model-level rules already name their keys in the message.
        lines.append(f"  {where}: {msg}" if loc else f"  {msg}")
    return "invalid stack configuration:\n" + "\n".join(lines)


def parse_settings(raw: Mapping[str, Any]) -> StackSettings:
    """Validate already-decoded config values (keys without namespace).

    Secret values must not be in ``raw``; pass presence flags instead. Unknown keys are
    the model's ``extra="forbid"`` errors, reported together with every other problem.
    """
    try:
        return StackSettings.model_validate(raw)
    except ValidationError as err:
        raise SettingsError(_format_error(err)) from None


def decode_config(values: Mapping[str, str], secret_keys: Iterable[str]) -> dict[str, Any]:
    """Turn Pulumi's namespaced config strings into plain values for ``parse_settings``.

    Secret keys are replaced by presence flags; their values are never decoded here.
    """
    secret = set(secret_keys)
    raw: dict[str, Any] = {}
    for full, text in values.items():
        ns, _, name = full.partition(":")
        if ns != NAMESPACE:
            continue
        if name in _PRESENCE_FLAGS:
            raise SettingsError(
                f"invalid stack configuration:\n  {full}: unknown key; remove it (the program "
                "derives it from the stack's secrets)"
            )
        if name in _SECRET_KEYS or full in secret:
            continue
        if name in _JSON_KEYS:
            try:
                raw[name] = json.loads(text)
            except json.JSONDecodeError:
                raise SettingsError(
                    f"invalid stack configuration:\n  {full}: must be a YAML object or "
                    f"list, got {text!r}"
                ) from None
        elif name in {"push", "buildOnPreview"}:
            if text not in ("true", "false"):
                raise SettingsError(
                    f"invalid stack configuration:\n  {full}: must be true or false, got {text!r}"
                )
            raw[name] = text == "true"
        else:
            raw[name] = text
    names = {full.partition(":")[2] for full in values if full.startswith(NAMESPACE + ":")}
    raw["hasRegistryPassword"] = "registryPassword" in names or bool(os.environ.get(PASSWORD_ENV))
    if "githubSecrets" in names:
        raw["githubSecretNames"] = _secret_object_keys(values.get(key("githubSecrets"), "{}"))
    for empty in ("builder", "caBundle"):
        if raw.get(empty) == "":
            raw.pop(empty)
    return raw


def _secret_object_keys(text: str) -> list[str]:
    """Names (never values) of a secret object such as githubSecrets."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return []
    return sorted(obj) if isinstance(obj, dict) else []
