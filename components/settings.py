"""The model of shapes: one pydantic model per section of a stack's config.

Each field says its type, its form and its description (``Pulumi.yaml``'s declared keys, the
decoder's key lists and the README's config reference are checked against it), and the
model validators hold the rules between the fields of one model, from the values alone.
Nothing here reads a file: the rules that do, or that span the whole stack, are
``rules.py``'s, and ``config.validate`` applies them after these. Secrets never pass through
these models: the decoder checks their shape and records *whether* each is present and
which names a secret object holds; the values stay ``pulumi.Output`` secrets.

About 780 lines, over the house's 400 on purpose: the shapes of every key stay in one place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from components import accelerators, cuda, platforms
from components.catalog import TARGETS
from components.cuda import TORCH_TRIO
from components.errors import SettingsError, key
from components.graph import selected_with_parents
from components.platforms import AMD64, Platform
from components.refs import (
    address_problem,
    has_credentials,
    is_tag,
    path_problem,
    repository_problem,
)

PASSWORD_ENV = "COMFYUI_IMAGES_REGISTRY_PASSWORD"  # noqa: S105 (a variable name)
# BuildKit refuses a secret larger than this (500 KiB).
MAX_SECRET_BYTES = 500 * 1024


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


class LayerCompression(StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"


# Levels per algorithm (BuildKit's zstd maps 1-22 onto four encoder speeds). No 0: the
# docker-build provider reads level 0 as unset and then drops the compression altogether.
COMPRESSION_LEVELS = {LayerCompression.GZIP: range(1, 10), LayerCompression.ZSTD: range(1, 23)}
# The level sent when none is set: zstd's own default, which BuildKit also uses.
DEFAULT_LEVEL = {LayerCompression.ZSTD: 3}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BUILDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+")


def _no_control(v: str) -> str:
    if _CONTROL.search(v):
        raise ValueError("contains a newline or another control character; remove it")
    return v


def _no_credentials(v: str) -> str:
    if has_credentials(v):
        raise ValueError(
            "carries credentials, which would be stored in the state and printed in the plan "
            "on pull requests; use a location without user:password@ and give git or pip "
            "their credentials another way (a credential helper, netrc, a BuildKit secret)"
        )
    return v


class RegistrySettings(_Strict):
    """Where images, tags and the registry cache live."""

    address: StrictStr = Field(description="Registry host[:port], e.g. ghcr.io, localhost:5000.")
    namespace: StrictStr = Field(description="Repository path under the address: acme/comfyui.")
    username: StrictStr | None = Field(
        default=None, description="Login user; requires comfyui-images:registryPassword."
    )

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if problem := address_problem(v):
            raise ValueError(problem)
        return v

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if problem := path_problem(v):
            raise ValueError(problem)
        return v

    @field_validator("username")
    @classmethod
    def _username(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or _CONTROL.search(v) or ":" in v):
            raise ValueError("must be a login name without blanks, colons or newlines")
        return v


class CacheSettings(_Strict):
    """BuildKit cache backends; see docs/caching.md."""

    backends: list[CacheBackend] = Field(
        default_factory=list,
        description="Backends in order of preference; [] disables caching.",
    )
    mode: CacheMode = Field(default=CacheMode.MAX, description="min: final layers; max: all.")
    imageManifest: StrictBool = Field(
        default=False,
        description="Registry cache as an OCI image manifest (ECR and similar need it).",
    )
    localDir: StrictStr = Field(default=".buildcache", description="Root of the local cache.")
    registryRepository: StrictStr | None = Field(
        default=None,
        description="Repository for registry cache refs; default <address>/<namespace>/buildcache.",
    )

    @field_validator("backends")
    @classmethod
    def _unique(cls, v: list[CacheBackend]) -> list[CacheBackend]:
        seen = [b for i, b in enumerate(v) if b in v[:i]]
        if seen:
            raise ValueError(f"lists {seen[0].value!r} twice; list each backend once")
        return v

    @field_validator("localDir")
    @classmethod
    def _local_dir(cls, v: str) -> str:
        _no_control(v)
        if not v.strip() or not v.rstrip("/"):
            raise ValueError(
                "must name a directory; empty or / would write the cache at the filesystem "
                "root. Use e.g. .buildcache"
            )
        return v

    @field_validator("registryRepository")
    @classmethod
    def _registry_repository(cls, v: str | None) -> str | None:
        if v is not None and (problem := repository_problem(v, need_domain=True)):
            raise ValueError(problem)
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


class CompressionSettings(_Strict):
    """How the layers BuildKit makes are compressed, for the image and every cache export
    (one setting: a layer is compressed once and its blob shared). gzip is read by every
    client; zstd compresses and unpacks faster but needs Docker 23+ or containerd 1.5+ to
    pull the images. Layers of base images keep the compression they were pulled with."""

    type: LayerCompression = Field(
        default=LayerCompression.GZIP, description="gzip (every client) or zstd (faster)."
    )
    level: StrictInt | None = Field(
        default=None, description="gzip 1-9, zstd 1-22; default BuildKit's own (zstd: 3)."
    )

    @model_validator(mode="after")
    def _level_in_range(self) -> CompressionSettings:
        allowed = COMPRESSION_LEVELS[self.type]
        if self.level is not None and self.level not in allowed:
            raise ValueError(
                f"compression.level {self.level} is out of range for {self.type.value}: "
                f"use {allowed.start}-{allowed.stop - 1}, or leave it out for BuildKit's default"
            )
        return self


def check_platforms(v: list[str] | None) -> list[str] | None:
    """A list of platforms: at least one, each once (their order does not matter)."""
    if v is None:
        return v
    if not v:
        raise ValueError(
            f"is empty; name at least one platform, e.g. [{platforms.AMD64}, {platforms.ARM64}]"
        )
    if twice := [p for i, p in enumerate(v) if p in v[:i]]:
        raise ValueError(f"lists {twice[0]!r} twice; list each platform once")
    return v


_PIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")
_SHORT_COMMIT = re.compile(r"[0-9a-f]{7,39}")
# Pins that name a git ref: BuildKit git contexts take a tag or a full 40-hex commit.
GIT_PINS = frozenset({"comfyui", "sageattention"})


def check_pin(v: Any, name: str) -> Any:
    """A pin is a quoted version-like string; git pins are a tag or a full commit."""
    example = PIN_EXAMPLES[name]
    if not isinstance(v, str):
        raise ValueError(
            f"must be a quoted string such as {example!r} (YAML reads an unquoted 3.10 as "
            "the number 3.1)"
        )
    if not _PIN.fullmatch(v):
        raise ValueError(f"is not a version; write it like {example!r}")
    if name == "cuda" and cuda.major_minor(v) is None:
        raise ValueError(f"is not a CUDA release; write it like {example!r}")
    if name == "rocm" and not accelerators.is_rocm_release(v):
        raise ValueError(f"is not a ROCm release; write it like {example!r}")
    if name == "cuda" and (cuda.major_minor(v) or (0, 0)) < cuda.OLDEST:
        raise ValueError(
            f"is older than CUDA {cuda.OLDEST[0]}.{cuda.OLDEST[1]}, the oldest SageAttention "
            f"builds for; write e.g. {example!r}"
        )
    if name in GIT_PINS and _SHORT_COMMIT.fullmatch(v):
        raise ValueError(
            "looks like a short commit; BuildKit git contexts need a tag or the full "
            f"40-hex commit, e.g. {PIN_EXAMPLES['sageattention']!r}"
        )
    return v


class Versions(_Strict):
    """Pinned versions. Each reaches only the targets whose layers it changes."""

    python: str = Field(default="3.12", description="Python from the OS packages.")
    ubuntu: str = Field(default="24.04", description="Ubuntu release of every base image.")
    cuda: str = Field(
        default="13.0.2", description="CUDA of a single-line stack; matrices use cudaLines."
    )
    rocm: str = Field(
        default="7.14", description="ROCm of a single ROCm line; matrices use rocmLines."
    )
    torch: str = Field(default="2.15.0", description="torch, from the line's own index.")
    torchvision: str = "0.29.2"
    torchaudio: str = "2.11.1"
    comfyCli: str = Field(default="1.23.0", description="comfy-cli from PyPI.")
    comfyui: str = Field(default="v0.44.0", description="ComfyUI git tag or full commit.")
    sageattention: str = Field(
        default="d1a57a546c3d395b1ffcbeecc66d81db76f3b4b5",
        description="SageAttention git commit (main, 2026-01-17): sm80-sm90, sm120, sm121.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _pin(cls, v: Any, info: Any) -> Any:
        return check_pin(v, info.field_name)


# An example of a valid value per pin, what an error message shows instead of a regex: the
# defaults themselves.
PIN_EXAMPLES: dict[str, str] = {name: f.default for name, f in Versions.model_fields.items()}


class Sources(_Strict):
    """Network inputs, overridable so builds can run against mirrors or local stand-ins."""

    cudaImage: StrictStr = Field(default="nvidia/cuda", description="Repository of CUDA bases.")
    ubuntuImage: StrictStr = Field(default="ubuntu", description="Repository of the Ubuntu base.")
    comfyui: StrictStr = Field(
        default="https://github.com/Comfy-Org/ComfyUI.git#{version}",
        description="ComfyUI source location; {version} is replaced by versions.comfyui.",
    )
    sageattention: StrictStr = Field(
        default="https://github.com/thu-ml/SageAttention.git#{version}",
        description="SageAttention source; {version} is replaced by versions.sageattention.",
    )
    torchIndexCpu: StrictStr = Field(default="https://download.pytorch.org/whl/cpu")
    torchIndexCuda: StrictStr = Field(
        default="https://download.pytorch.org/whl/{line}",
        description="Torch index of the CUDA targets; {line} becomes the line, e.g. cu130.",
    )
    torchIndexRocm: StrictStr = Field(
        default="https://download.pytorch.org/whl/{line}",
        description="Torch index of the ROCm targets; {line} becomes the line, e.g. rocm7.14.",
    )
    torchIndexXpu: StrictStr = Field(
        default="https://download.pytorch.org/whl/{line}",
        description="Torch index of the XPU targets; {line} becomes xpu.",
    )
    pypiMirror: StrictStr = Field(default="", description="PyPI mirror index URL; empty: PyPI.")
    wheelhouse: StrictStr = Field(
        default="", description="Directory of local wheels offered to every pip step."
    )
    comfyuiLock: StrictStr = Field(
        default="locks/comfyui/{version}",
        description="Directory of the lock scripts/lock writes for versions.comfyui "
        "(constraints.txt); relative to the project.",
    )

    @field_validator("*")
    @classmethod
    def _clean(cls, v: str | None) -> str | None:
        return v if v is None else _no_credentials(_no_control(v))

    @field_validator("comfyuiLock")
    @classmethod
    def _local_lock(cls, v: str) -> str:
        if "://" in v or v.startswith("git@"):
            raise ValueError(
                "must be a local directory (the program reads the lock's header before any "
                "build), e.g. locks/comfyui/{version}"
            )
        return v

    @field_validator("cudaImage", "ubuntuImage")
    @classmethod
    def _image_repository(cls, v: str) -> str:
        if problem := repository_problem(v):
            raise ValueError(f"{problem}; e.g. nvidia/cuda or mirror.example:5000/nvidia/cuda")
        return v

    @field_validator("comfyui", "sageattention", "comfyuiLock")
    @classmethod
    def _templated(cls, v: str) -> str:
        if "{version}" not in v:
            raise ValueError(
                "has no {version} placeholder, so the pinned version would not reach the "
                "layer; write e.g. https://host/repo.git#{version} (or locks/comfyui/{version})"
            )
        return v

    @field_validator("torchIndexCpu", "torchIndexCuda", "torchIndexRocm", "torchIndexXpu")
    @classmethod
    def _torch_index(cls, v: str) -> str:
        if not v:
            raise ValueError(
                "is empty, but torch installs only from its own index (never PyPI's CUDA "
                "build); point it at the PyTorch index or a mirror of it, e.g. "
                "https://download.pytorch.org/whl/cpu, or file:///wheelhouse/... for a "
                "PEP 503 index inside sources.wheelhouse"
            )
        return v

    @field_validator(
        "torchIndexCpu", "torchIndexCuda", "torchIndexRocm", "torchIndexXpu", "pypiMirror"
    )
    @classmethod
    def _index_url(cls, v: str | None) -> str | None:
        if v and not _URL.fullmatch(v):
            raise ValueError("needs a scheme and no blanks, e.g. https://mirror.example/simple")
        return v


def _line_platforms() -> Any:
    """Every kind of line's ``platforms`` field, declared last in each (keys are listed in
    field order, and a line's release comes first)."""
    return Field(
        default=None, description="Platforms of every build of this line; default: the stack's."
    )


class _Line(_Strict):
    """What every kind of line checks: the platforms of its builds."""

    @field_validator("platforms", check_fields=False)
    @classmethod
    def _platforms(cls, v: list[str] | None) -> list[str] | None:
        return check_platforms(v)


class CudaLine(_Line):
    """One CUDA line of a matrix: its CUDA release and, where its index lags, its own torch."""

    cuda: StrictStr = Field(description="CUDA release of the line's bases, e.g. 13.0.2.")
    torch: StrictStr | None = None
    torchvision: StrictStr | None = None
    torchaudio: StrictStr | None = None
    cudaArchList: StrictStr | None = Field(
        default=None, description="SageAttention archs; default: all this CUDA can build."
    )
    arm64CudaArchList: StrictStr | None = Field(
        default=None,
        description="SageAttention archs of the line's linux/arm64 builds; default: the arm64 "
        "GPUs SageAttention runs on that this CUDA can build (A100, GH200, GB10).",
    )
    platforms: list[Platform] | None = _line_platforms()

    @field_validator("cuda", *TORCH_TRIO, mode="before")
    @classmethod
    def _pin(cls, v: Any, info: Any) -> Any:
        return v if v is None else check_pin(v, info.field_name)


class RocmLine(_Line):
    """One ROCm line of a matrix: its ROCm release (its index) and, where that index lags,
    its own torch. The wheels carry ROCm's user space, so the line needs no ROCm base."""

    rocm: StrictStr = Field(description="ROCm release of the line's torch index, e.g. 7.14.")
    torch: StrictStr | None = None
    torchvision: StrictStr | None = None
    torchaudio: StrictStr | None = None
    platforms: list[Platform] | None = _line_platforms()

    @field_validator("rocm", *TORCH_TRIO, mode="before")
    @classmethod
    def _pin(cls, v: Any, info: Any) -> Any:
        return v if v is None else check_pin(v, info.field_name)


class XpuLine(_Line):
    """The XPU line: PyTorch publishes one XPU index, so a stack has at most this one line,
    with its own torch where that index lags."""

    torch: StrictStr | None = None
    torchvision: StrictStr | None = None
    torchaudio: StrictStr | None = None
    platforms: list[Platform] | None = _line_platforms()

    @field_validator(*TORCH_TRIO, mode="before")
    @classmethod
    def _pin(cls, v: Any, info: Any) -> Any:
        return v if v is None else check_pin(v, info.field_name)


# A line of any kind: what the builds of a line read from it (its trio, its kind's release).
LineSpec = CudaLine | RocmLine | XpuLine


class GithubSettings(_Strict):
    """Optional GitHub side of a stack: one deployment environment of one repository.

    A stack without it creates no GitHub resources. Reviewers are numeric ids because
    GitHub's API takes nothing else; ids also survive renames, and keeping them in config
    means no lookup calls (so previews and the offline plan stay deterministic). The secret
    values live in ``comfyui-images:githubSecrets``, never here.
    """

    owner: StrictStr = Field(description="User or organization that owns the repository.")
    repository: StrictStr = Field(description="Bare repository name (no owner), e.g. comfyui.")
    environment: StrictStr = Field(description="Deployment environment the workflows run in.")
    reviewers: dict[str, StrictInt] = Field(
        default_factory=dict,
        description="Required reviewers, login -> numeric user id (gh api users/LOGIN --jq .id).",
    )
    reviewerTeams: dict[str, StrictInt] = Field(
        default_factory=dict,
        description="Required reviewer teams, slug -> numeric team id "
        "(gh api orgs/OWNER/teams/SLUG --jq .id).",
    )
    variables: dict[str, StrictStr] = Field(
        default_factory=dict, description="Extra plain environment variables, NAME -> value."
    )

    # Written from the stack's own settings (components/github.environment_variables), so
    # user variables may not take these names; a test holds the two lists equal.
    GENERATED_VARIABLES: ClassVar[frozenset[str]] = frozenset(
        {
            "REGISTRY_ADDRESS",
            "REGISTRY_NAMESPACE",
            "CACHE_BACKENDS",
            "CUDA_LINES",
            "ROCM_LINES",
            "XPU_LINES",
            "PLATFORMS",
        }
    )
    # GitHub allows up to six reviewers (users and teams together) per environment.
    MAX_REVIEWERS: ClassVar[int] = 6
    # GitHub refuses a variable value over 48 KB.
    MAX_VARIABLE_BYTES: ClassVar[int] = 48 * 1024
    _OWNER: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
    _REPOSITORY: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9._-]{1,100}")
    _NAME: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """Why GitHub would refuse ``name`` as a secret or variable name (None: it is fine)."""
        if not cls._NAME.fullmatch(name):
            return "must contain only letters, digits and _, and not start with a digit"
        if name.upper().startswith("GITHUB_"):
            return "must not start with GITHUB_ (GitHub reserves that prefix)"
        return None

    @staticmethod
    def case_duplicate(names: Iterable[str]) -> tuple[str, str] | None:
        """Two names GitHub would take as one (its names are case-insensitive)."""
        seen: dict[str, str] = {}
        for name in names:
            if (other := seen.setdefault(name.upper(), name)) != name:
                return other, name
        return None

    @field_validator("owner")
    @classmethod
    def _owner(cls, v: str) -> str:
        if not cls._OWNER.fullmatch(v):
            raise ValueError("must be the name of a GitHub user or organization, e.g. acme")
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
        if not cls._REPOSITORY.fullmatch(v) or v in {".", ".."}:
            raise ValueError("is not a valid repository name, e.g. comfyui")
        return v

    @field_validator("environment")
    @classmethod
    def _environment(cls, v: str) -> str:
        if not v.strip() or len(v) > 255 or _CONTROL.search(v) or "," in v or ";" in v:
            raise ValueError("must be an environment name such as prod")
        return v

    @field_validator("reviewers", "reviewerTeams")
    @classmethod
    def _ids(cls, v: dict[str, int]) -> dict[str, int]:
        for name, ident in v.items():
            if ident <= 0:
                raise ValueError(
                    f"reviewer {name!r} has id {ident}; GitHub needs the numeric id, a "
                    f"positive number, e.g. `gh api users/{name} --jq .id`"
                )
        return v

    @field_validator("variables")
    @classmethod
    def _variables(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            problem = cls.name_problem(name)
            if name.upper() in cls.GENERATED_VARIABLES:
                problem = (
                    "is written from the stack's registry/cache/cudaLines settings; change those"
                )
            elif not problem and not value.strip():
                problem = "has an empty value, which GitHub refuses; give it a value or remove it"
            elif not problem and len(value.encode()) > cls.MAX_VARIABLE_BYTES:
                problem = "is longer than the 48 KB GitHub allows for a variable"
            if problem:
                raise ValueError(f"variable {name!r} {problem}")
        if pair := cls.case_duplicate(v):
            raise ValueError(
                f"variables {pair[0]!r} and {pair[1]!r} differ only in case; GitHub names are "
                "case-insensitive, so keep one"
            )
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
    targets: list[StrictStr] = Field(min_length=1)
    push: StrictBool = True
    cache: CacheSettings = Field(default_factory=CacheSettings)
    compression: CompressionSettings = Field(default_factory=CompressionSettings)
    versions: Versions = Field(default_factory=Versions)
    sources: Sources = Field(default_factory=Sources)
    builder: StrictStr | None = None
    platformBuilders: dict[Platform, StrictStr] = Field(
        default_factory=dict,
        description="A builder per platform (platform -> builder), over builder.",
    )
    buildOnPreview: StrictBool = True
    platforms: list[Platform] = Field(
        default_factory=lambda: [AMD64],
        description="Platforms every target is published for; one Image per platform.",
    )
    targetPlatforms: dict[StrictStr, list[Platform]] = Field(
        default_factory=dict,
        description="Platforms per target (target -> list), over the stack's platforms.",
    )
    # The one platform of a build (matrix.platform_settings sets it); not a config key.
    platform: Platform = AMD64
    movingTag: StrictStr = "latest"
    caBundle: StrictStr | None = None
    cudaArchList: StrictStr | None = Field(
        default=None, description="SageAttention archs; default: all the line's CUDA can build."
    )
    arm64CudaArchList: StrictStr | None = Field(
        default=None,
        description="SageAttention archs of linux/arm64 builds; default: the arm64 GPUs it runs on",
    )
    cudaLines: dict[StrictStr, CudaLine] = Field(
        default_factory=dict, description="CUDA matrix: line (cu130) -> its pins. Default: one."
    )
    rocmLines: dict[StrictStr, RocmLine] = Field(
        default_factory=dict, description="ROCm matrix: line (rocm7.14) -> its pins. Default: one."
    )
    xpuLines: dict[StrictStr, XpuLine] = Field(
        default_factory=dict, description="The XPU line's own pins: {xpu: {torch: ...}}."
    )
    cacheThresholds: dict[str, float] = Field(default_factory=dict)
    requireLock: StrictBool = Field(
        default=False,
        description="Refuse core builds without a lock of ComfyUI's dependencies (scripts/lock).",
    )
    github: GithubSettings | None = None
    # Presence only: the values stay pulumi secrets (see decode_config).
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

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, v: list[str]) -> list[str]:
        return check_platforms(v) or v

    @field_validator("targetPlatforms")
    @classmethod
    def _target_platforms(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, listed in v.items():
            if name not in TARGETS:
                raise ValueError(
                    f"names {name!r}, which is not a target; known targets: "
                    f"{', '.join(sorted(TARGETS))}"
                )
            try:
                check_platforms(listed)
            except ValueError as e:
                raise ValueError(f"{name} {e}") from None
        return v

    @field_validator("platformBuilders")
    @classmethod
    def _platform_builders(cls, v: dict[str, str]) -> dict[str, str]:
        for platform, name in v.items():
            if not _BUILDER.fullmatch(name):
                raise ValueError(
                    f"{platform}: {name!r} must be the name of an existing buildx builder "
                    "(letters, digits, _ . -), e.g. comfyui-images-arm64"
                )
        return v

    @field_validator("builder")
    @classmethod
    def _builder(cls, v: str | None) -> str | None:
        if v is not None and not _BUILDER.fullmatch(v):
            raise ValueError(
                "must be the name of an existing buildx builder (letters, digits, _ . -), "
                "e.g. comfyui-images; leave it unset for the provider's default"
            )
        return v

    @field_validator("movingTag")
    @classmethod
    def _tag(cls, v: str) -> str:
        if not is_tag(v):
            raise ValueError("is not an image tag (up to 128 of A-Z a-z 0-9 _ . -), e.g. latest")
        return v

    @field_validator("caBundle")
    @classmethod
    def _ca_bundle(cls, v: str | None) -> str | None:
        """Its shape only; that it names a readable PEM bundle is ``rules.ca_bundle_problem``."""
        return _no_control(v) if v else None

    @field_validator("cacheThresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        for name, rate in v.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} = {rate} must be between 0 and 1, e.g. 0.8")
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
                f"{', '.join(dict.fromkeys(TARGETS[with_parents[0]].parents.values()))}, which "
                "it can only "
                "reach as a pushed image; set push to true or list only runtime targets"
            )
        if not self.push and CacheBackend.INLINE in self.cache.backends:
            raise SettingsError(
                f"{key('cache')}.backends has inline but {key('push')} is false: inline cache "
                "travels inside the pushed image, so nothing would hold it; use registry or "
                "local, or push"
            )
        self._lines_consistent()
        self._repositories_fit()
        self._platforms_fit()
        return self

    def _platforms_fit(self) -> None:
        """Several platforms of a target can be joined. (targetPlatforms may name a target
        the stack does not build: a stack may narrow its targets and keep its platforms.)"""
        listed = [self.platforms, *self.targetPlatforms.values()]
        listed += [
            line.platforms
            for kind in accelerators.KINDS
            for line in self.lines_of(kind).values()
            if line.platforms
        ]
        if not self.push and any(len(p) > 1 for p in listed):
            raise SettingsError(
                f"{key('push')} is false but the stack publishes a target for several "
                "platforms: they are joined in an Index of pushed images; set push to true, "
                "or build one platform per target"
            )

    def _lines_consistent(self) -> None:
        """Each line named by its torch index, pinned once, with buildable architectures."""
        lines_key = key("cudaLines")
        self._line_map_rules("cudaLines", "cuda", "CUDA", cuda.wheel_tag, "torchIndexCuda")
        for arch_key in ("cudaArchList", "arm64CudaArchList"):
            if self.cudaLines and getattr(self, arch_key) is not None:
                raise SettingsError(
                    f"{key(arch_key)} is {getattr(self, arch_key)!r} but {lines_key} is set: "
                    f"set {arch_key} per line ({lines_key}.<line>.{arch_key}) or leave it "
                    "to the line's default"
                )
        self._line_map_rules(
            "rocmLines", "rocm", "ROCm", accelerators.rocm_line_name, "torchIndexRocm"
        )
        for name in self.xpuLines:
            if name != accelerators.XPU_LINE:
                raise SettingsError(
                    f"{key('xpuLines')} names the line {name!r}, but PyTorch publishes one XPU "
                    f"index, so the one XPU line is {accelerators.XPU_LINE!r}: write "
                    f"xpuLines: {{{accelerators.XPU_LINE}: {{torch: ...}}}}"
                )
        for name, line in self.lines.items():
            for platform in platforms.PLATFORMS:
                arch_key = cuda.ARCH_LIST_KEYS[platform]
                arch_list = cuda.arch_list_of(line, platform)
                # Only a list the stack sets can break: each CUDA's default list builds.
                where = f"{lines_key}.{name}.{arch_key}" if self.cudaLines else key(arch_key)
                if problem := cuda.arch_list_problem(arch_list, line.cuda, platform):
                    raise SettingsError(f"{where} {arch_list!r} {problem}")

    def _line_map_rules(
        self,
        lines_key: str,
        pin: str,
        label: str,
        index_of: Callable[[str], str],
        index_source: str,
    ) -> None:
        """A map of lines (cudaLines, rocmLines): each line named after the index of its
        release, the release pinned there alone, and one index per line."""
        lines: dict[str, CudaLine | RocmLine] = getattr(self, lines_key)
        if not lines:
            return
        shown_key = key(lines_key)
        if pin in self.versions.model_fields_set:
            raise SettingsError(
                f"{key('versions')}.{pin} is {getattr(self.versions, pin)!r} but {shown_key} is "
                f"set: each line pins its own {label} there; remove versions.{pin}"
            )
        for name, line in lines.items():
            release: str = getattr(line, pin)
            index = index_of(release)
            if name != index:
                raise SettingsError(
                    f"{shown_key}.{name} pins {label} {release}, whose torch index is "
                    f"{index!r}; name the line after its index: {index}: {{{pin}: '{release}'}}"
                )
        url = getattr(self.sources, index_source)
        if len(lines) > 1 and url and "{line}" not in url:
            raise SettingsError(
                f"{key('sources')}.{index_source} is {url!r} with no {{line}} placeholder, "
                f"so every line of {shown_key} would install the same torch; write e.g. "
                "https://mirror.example/whl/{line}"
            )

    def lines_of(self, kind: str) -> dict[str, LineSpec]:
        """The lines of one accelerator kind this stack builds, each with its spec; without
        the kind's map, one line from the stack's pins (as for CUDA)."""
        if kind == accelerators.CUDA:
            return dict(self.lines)
        if kind == accelerators.ROCM:
            if self.rocmLines:
                return dict(self.rocmLines)
            rocm = self.versions.rocm
            return {accelerators.rocm_line_name(rocm): RocmLine(rocm=rocm)}
        if kind == accelerators.XPU:
            return dict(self.xpuLines) or {accelerators.XPU_LINE: XpuLine()}
        raise KeyError(f"no accelerator kind {kind!r}")

    def has_line_map(self, kind: str) -> bool:
        """Whether the kind's lines are a matrix of the stack file (``cudaLines``, ...):
        then their builds, caches and moving tags carry the line's name."""
        return bool(getattr(self, accelerators.LINES_KEYS[kind]))

    @property
    def lines(self) -> dict[str, CudaLine]:
        """The CUDA lines this stack builds: cudaLines, or one line from versions.cuda."""
        if self.cudaLines:
            return dict(self.cudaLines)
        return {
            cuda.wheel_tag(self.versions.cuda): CudaLine(
                cuda=self.versions.cuda,
                cudaArchList=self.cudaArchList,
                arm64CudaArchList=self.arm64CudaArchList,
            )
        }

    def _repositories_fit(self) -> None:
        """Every written repository is valid and the registry cache is none of them."""
        base = f"{self.registry.address}/{self.registry.namespace}"
        images = {f"{base}/{name}": name for name in TARGETS}
        for repo, name in images.items():
            if name in self.build_order and (problem := repository_problem(repo)):
                raise SettingsError(
                    f"{key('registry')}: the repository of {name}, {repo!r}, {problem}; "
                    "shorten registry.namespace"
                )
        cache_repo = self.cache.registryRepository or f"{base}/buildcache"
        if self.cache.registryRepository is None and (problem := repository_problem(cache_repo)):
            raise SettingsError(
                f"{key('registry')}: the cache repository {cache_repo!r} {problem}; "
                "shorten registry.namespace or set cache.registryRepository"
            )
        if cache_repo in images:
            raise SettingsError(
                f"{key('cache')}.registryRepository is {cache_repo!r}, the repository of the "
                f"image {images[cache_repo]}: its cache refs would overwrite image tags; use a "
                f"repository of its own, e.g. {base}/buildcache"
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
        """The builder of this build's platform: its own in platformBuilders, else builder."""
        return self.platformBuilders.get(self.platform) or self.builder or None
