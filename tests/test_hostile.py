"""Hostile input: every class of bad config is refused before any resource, naming the key.

Each test runs the real ``__main__.py`` under mocks (or the pure decoder where the point is
what a message may show), and asserts three things: the error names the key, nothing was
registered, and no secret or credential is repeated.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import config
from components.config import validate
from components.decode import decode_config, parse_settings, stack_file_problems
from components.errors import SettingsError, invalid_configuration
from components.project import ROOT
from tests.conftest import NS, Evaluate, with_overrides
from tools.offline import Recording, run_stack

SECRET = "SECRET-VALUE-4711"


def refused(evaluate: Evaluate, config: dict[str, Any]) -> str:
    """The validation message for ``config``; asserts nothing was registered."""
    recording = Recording(stack="test", preview=False)
    with pytest.raises(SettingsError) as info:
        evaluate(config, into=recording)
    assert recording.resources == [], f"registered before failing: {recording.resources}"
    return str(info.value)


def decode_error(values: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> str:
    strings = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    with pytest.raises(SettingsError) as info:
        validate(strings, set(secret_keys), "test")
    return str(info.value)


BASE_STRINGS = {
    f"{NS}:registry": {"address": "ghcr.io", "namespace": "acme/comfy"},
    f"{NS}:targets": ["core-cpu"],
}


# --- 1. keys set with --secret are validated too --------------------------------------


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("registryPassword", "  ", "registryPassword: is empty; set the registry token"),
        (
            "githubSecrets",
            "[1, 2]",
            "githubSecrets: must be an object of NAME -> secret value, not a list (value not "
            "shown); set each entry with `pulumi config set --secret --path "
            "'comfyui-images:githubSecrets.NAME' <value>`",
        ),
        ("githubSecrets", "plain text", "not a str (value not shown)"),
        (
            "githubSecrets",
            '{"A": ""}',
            "githubSecrets: entry 'A' must be a non-empty string (value not shown); set it "
            "with `pulumi config set --secret --path 'comfyui-images:githubSecrets.A' <value>`",
        ),
        ("githubSecrets", '{"A": [1]}', "entry 'A' must be a non-empty string"),
    ],
)
def test_a_secret_of_the_wrong_shape_says_how_to_set_it_without_showing_it(
    key: str, text: str, expected: str
) -> None:
    values = {**BASE_STRINGS, f"{NS}:{key}": text}
    if key == "registryPassword":
        values[f"{NS}:registry"] = {"address": "ghcr.io", "namespace": "a", "username": "bot"}
    message = decode_error(values, (f"{NS}:{key}",))
    assert f"\n  {NS}:{expected}" in message or expected in message, message
    assert "plain text" not in message


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("movingTagz", "unknown key (a secret, value not shown)"),
        ("movingTag", "a plain setting stored as a secret"),
        ("registry", "a plain setting stored as a secret"),
        ("cache", "a plain setting stored as a secret"),
    ],
)
def test_secret_keys_are_validated_without_showing_the_value(name: str, fragment: str) -> None:
    full = f"{NS}:{name}"
    message = decode_error({**BASE_STRINGS, full: SECRET}, (full,))
    assert f"{full}: {fragment}" in message
    assert "required" not in message
    assert SECRET not in message


def test_secret_plain_setting_is_refused_by_the_program(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    message = refused(evaluate, with_overrides(base_config, movingTag={"secure": "v1:abc"}))
    assert f"{NS}:movingTag: a plain setting stored as a secret" in message
    assert "without --secret" in message


# --- 2. full matches: a trailing newline is never accepted ----------------------------


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"registry": {"address": "ghcr.io\n", "namespace": "a/b"}}, "registry.address"),
        ({"registry": {"address": "ghcr.io", "namespace": "a/b\n"}}, "registry.namespace"),
        ({"movingTag": "latest\n"}, "movingTag"),
        ({"builder": "comfyui-images\n"}, "builder"),
        ({"versions": {"comfyui": "v0.8.1\n"}}, "versions.comfyui"),
        ({"cudaArchList": "8.0;9.0\n"}, "cudaArchList"),
        ({"sources": {"cudaImage": "nvidia/cuda\n"}}, "sources.cudaImage"),
        (
            {"github": {"owner": "acme\n", "repository": "c", "environment": "prod"}},
            "github.owner",
        ),
        (
            {"github": {"owner": "acme", "repository": "c\n", "environment": "prod"}},
            "github.repository",
        ),
        (
            {
                "github": {
                    "owner": "acme",
                    "repository": "c",
                    "environment": "prod",
                    "variables": {"NAME\n": "x"},
                }
            },
            "github.variables",
        ),
    ],
)
def test_trailing_newline_is_refused(
    evaluate: Evaluate, base_config: dict[str, Any], override: dict[str, Any], where: str
) -> None:
    assert f"{NS}:{where}" in refused(evaluate, with_overrides(base_config, **override))


# --- 3. values that were never validated ------------------------------------------------


@pytest.fixture
def not_pem(tmp_path: Path) -> tuple[Path, Path]:
    text = tmp_path / "ca.txt"
    text.write_text("just some text\n")
    binary = tmp_path / "ca.der"
    binary.write_bytes(b"\x30\x82\xff\xfe\x00binary")
    return text, binary


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ({"builder": {"name": "x"}}, ["builder", "existing buildx builder"]),
        ({"builder": "   "}, ["builder", "existing buildx builder"]),
        ({"sources": {"cudaImage": ""}}, ["sources.cudaImage", "not a repository"]),
        ({"sources": {"ubuntuImage": ""}}, ["sources.ubuntuImage", "not a repository"]),
        (
            {"cache": {"backends": ["local"], "localDir": ""}},
            ["cache.localDir", "filesystem root"],
        ),
        (
            {"cache": {"backends": ["local"], "localDir": "/"}},
            ["cache.localDir", "filesystem root"],
        ),
        (
            {
                "cache": {
                    "backends": ["registry"],
                    "registryRepository": "registry.example.test:5000/team/comfy/core-cpu",
                }
            },
            ["cache.registryRepository", "repository of the image core-cpu", "overwrite"],
        ),
        (
            {"cache": {"backends": ["registry"], "registryRepository": "Not A Repo"}},
            ["cache.registryRepository", "registry host"],
        ),
        (
            {"sources": {"comfyui": "https://user:tok3n@git.example/ComfyUI.git#{version}"}},
            ["sources.comfyui", "credentials", "***@"],
        ),
        (
            {"sources": {"sageattention": "https://tok3n@git.example/sa.git#{version}"}},
            ["sources.sageattention", "credentials"],
        ),
        (
            {"sources": {"wheelhouse": "https://u:tok3n@files.example/wheels"}},
            ["sources.wheelhouse", "credentials"],
        ),
        ({"registry": {"address": "host:0", "namespace": "a"}}, ["registry.address", "1-65535"]),
        (
            {"registry": {"address": "host:65536", "namespace": "a"}},
            ["registry.address", "1-65535"],
        ),
        ({"registry": {"address": "...", "namespace": "a"}}, ["registry.address", "host name"]),
        ({"registry": {"address": ".", "namespace": "a"}}, ["registry.address", "host name"]),
        (
            {"registry": {"address": "ghcr.io", "namespace": "a" * 250}},
            ["registry", "at most 255"],
        ),
        (
            {
                "push": False,
                "targets": ["runtime-cpu"],
                "cache": {"backends": ["inline"], "mode": "min"},
            },
            ["cache", "inline", "push"],
        ),
    ],
)
def test_values_never_validated_before_are_refused(
    evaluate: Evaluate,
    base_config: dict[str, Any],
    override: dict[str, Any],
    fragments: list[str],
) -> None:
    message = refused(evaluate, with_overrides(base_config, **override))
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"
    assert "tok3n" not in message


def test_ca_bundle_must_be_pem_text(
    evaluate: Evaluate, base_config: dict[str, Any], not_pem: tuple[Path, Path]
) -> None:
    text, binary = not_pem
    message = refused(evaluate, with_overrides(base_config, caBundle=str(text)))
    assert f"{NS}:caBundle" in message
    assert "PEM" in message
    message = refused(evaluate, with_overrides(base_config, caBundle=str(binary)))
    assert f"{NS}:caBundle: is not UTF-8" in message


def test_version_tags_differ_whenever_pins_differ(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    """``+`` and ``-`` both sanitise to ``-``; truncation cuts long pins: tags must still differ."""
    # An index with no recorded page: these pins are about tags, not what an index carries.
    base_config[f"{NS}:sources"] = {"torchIndexCpu": "https://mirror.example/whl/cpu"}
    tags = set()
    for torch in ("2.8.0+a", "2.8.0-a", "2.8.0_a", "2" + "0" * 120 + "1", "2" + "0" * 120 + "2"):
        config = with_overrides(base_config, versions={"torch": torch})
        image = evaluate(config).images()["core-cpu"]
        tag = image.inputs["tags"][0].rpartition(":")[2]
        assert len(tag) <= 128
        tags.add(tag)
    assert len(tags) == 5, tags


# --- 4. the GitHub side -------------------------------------------------------------------

GITHUB = {"owner": "acme", "repository": "comfyui", "environment": "staging"}


@pytest.mark.parametrize(
    ("github", "fragments"),
    [
        ({**GITHUB, "reviewers": {"octocat": True}}, ["github.reviewers.octocat", "integer"]),
        ({**GITHUB, "reviewerTeams": {"ops": 1.0}}, ["github.reviewerTeams.ops", "integer"]),
        ({**GITHUB, "variables": {"HF_HOME": ""}}, ["github.variables", "empty value"]),
        ({**GITHUB, "variables": {"HF_HOME": "  "}}, ["github.variables", "empty value"]),
        (
            {**GITHUB, "variables": {"Hf_Home": "a", "HF_HOME": "b"}},
            ["github.variables", "differ only in case"],
        ),
    ],
)
def test_github_values_are_refused(
    evaluate: Evaluate, base_config: dict[str, Any], github: dict[str, Any], fragments: list[str]
) -> None:
    message = refused(evaluate, with_overrides(base_config, github=github))
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


def test_secret_names_differing_only_in_case_are_refused() -> None:
    secrets = f"{NS}:githubSecrets"
    values = {
        **BASE_STRINGS,
        f"{NS}:github": GITHUB,
        secrets: {"HF_TOKEN": "a", "hf_token": "b"},
    }
    message = decode_error(values, (secrets,))
    assert "differ only in case" in message
    assert f"{secrets}.HF_TOKEN" in message


@pytest.mark.parametrize("value", [SECRET, json.dumps([SECRET]), json.dumps({"A": {"b": SECRET}})])
def test_github_secrets_of_the_wrong_shape_never_print_the_value(value: str) -> None:
    secrets = f"{NS}:githubSecrets"
    message = decode_error({**BASE_STRINGS, f"{NS}:github": GITHUB, secrets: value}, (secrets,))
    assert secrets in message
    assert "value not shown" in message
    assert SECRET not in message


# --- 5. leaks -------------------------------------------------------------------------------


def test_plain_text_github_token_is_refused(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    config = {**base_config, "github:token": "ghp_plaintext"}
    message = refused(evaluate, config)
    assert "github:token: stored in plain text" in message
    assert "ghp_plaintext" not in message


@pytest.fixture
def stack_file() -> Iterator[tuple[str, Path]]:
    """A throwaway stack file in stacks/, as `pulumi config set` would leave it."""
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    path = ROOT / "stacks" / f"Pulumi.{name}.yaml"
    yield name, path
    path.unlink(missing_ok=True)


def test_plain_entry_inside_a_secret_object_is_refused(stack_file: tuple[str, Path]) -> None:
    name, path = stack_file
    config = {
        f"{NS}:registry": {"address": "ghcr.io", "namespace": "acme/comfy"},
        f"{NS}:targets": ["core-cpu"],
        f"{NS}:github": {"owner": "acme", "repository": "comfyui", "environment": "prod"},
        f"{NS}:githubSecrets": {
            "GH_ADMIN_TOKEN": {"secure": "v1:abc"},
            "HF_TOKEN": "hf_plaintext_value",
        },
    }
    path.write_text(yaml.safe_dump({"config": config}))
    recording = Recording(stack=name, preview=False)
    with pytest.raises(SettingsError) as info:
        run_stack(name, into=recording)
    message = str(info.value)
    assert f"{NS}:githubSecrets.HF_TOKEN: stored in plain text inside a secret object" in message
    assert "hf_plaintext_value" not in message
    assert recording.resources == []


@pytest.mark.parametrize(
    ("values", "leak"),
    [
        ({f"{NS}:registri": "https://bob:hunter2@ghcr.io"}, "hunter2"),
        (
            {f"{NS}:registry": {"address": "bob:hunter2@ghcr.io", "namespace": "a"}},
            "hunter2",
        ),
        ({f"{NS}:movingTag": "https://bob:hunter2@x"}, "hunter2"),
        # A rule's own message (not the decoder's): only SettingsError's redaction stands
        # between this key and the error text.
        ({f"{NS}:cacheThresholds": {"https://bob:hunter2@host": 0.5}}, "hunter2"),
    ],
)
def test_messages_redact_credentials(values: dict[str, Any], leak: str) -> None:
    message = decode_error({**BASE_STRINGS, **values})
    assert leak not in message
    assert "***@" in message


def test_a_cut_value_is_redacted_before_it_is_cut() -> None:
    """The decoder shortens long values; cut first, the '@' would be gone and with it the
    only sign that the text before it is a password, which no later redaction could see."""
    value = "https://bob:" + "hunter2" * 9 + "@registry.example"
    message = decode_error({**BASE_STRINGS, f"{NS}:movingTag": value})
    assert "hunter2" not in message


# --- 6. messages ------------------------------------------------------------------------------


def refusal(**extra: Any) -> str:
    """The message parse_settings gives for a minimal stack plus ``extra`` (decoded values):
    one header, then one indented line per problem."""
    base = {"registry": {"address": "ghcr.io", "namespace": "a"}, "targets": ["core-cpu"]}
    with pytest.raises(SettingsError) as info:
        parse_settings({**base, **extra})
    message = str(info.value)
    assert message.startswith("invalid stack configuration:\n  "), message
    return message


def test_a_rule_over_several_keys_is_reported_in_its_own_words() -> None:
    """A model-level rule has no location; its message is shown as written, without
    pydantic's 'Value error, ' prefix."""
    message = refusal(push=False, targets=["core-cpu"])
    # core-cpu's first build with a parent: its environment, on runtime-cpu (named once).
    assert (
        f"\n  {NS}:push is false but core-env-cpu is built from runtime-cpu, which it can "
        "only reach as a pushed image" in message
    )
    assert "Value error" not in message


def test_a_rule_of_one_field_drops_the_validator_from_the_location() -> None:
    """pydantic adds the validator to the location of an error raised by one
    (``function-after[...]``); the key shown is the user's key alone."""
    message = refusal(cacheThresholds={"core-cpu": 1.5})
    assert f"\n  {NS}:cacheThresholds: core-cpu = 1.5 must be between 0 and 1" in message
    assert "function" not in message
    assert "Value error" not in message


def test_control_characters_and_credentials_in_a_location_are_refused_in_full_words() -> None:
    message = refusal(sources={"pypiMirror": "https://mirror.example/simple\n"})
    assert (
        f"{NS}:sources.pypiMirror: contains a newline or another control character; remove it"
        in message
    )
    message = refusal(sources={"comfyui": "https://bob:pw@git.example/c.git#{version}"})
    assert (
        f"{NS}:sources.comfyui: carries credentials, which would be stored in the state and "
        "printed in the plan on pull requests; use a location without user:password@ and give "
        "git or pip their credentials another way (a credential helper, netrc, a BuildKit "
        "secret)"
    ) in message
    assert "pw@" not in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"typo": 1},
            f"{NS}:typo: unknown key; remove it or check its spelling (got 1); known keys: "
            "arm64CudaArchList, buildOnPreview, builder, caBundle, cache, cacheThresholds, "
            "compression, cudaArchList, cudaLines, github, githubSecrets, movingTag, "
            "platformBuilders, platforms, push, registry, registryPassword, requireLock, "
            "rocmLines, sources, targetPlatforms, targets, versions, xpuLines",
        ),
        (
            {"registry": {"address": "ghcr.io", "namespace": "a", "adress": "x"}},
            f"{NS}:registry.adress: unknown key; remove it or check its spelling (got 'x'); "
            "known keys: address, namespace, username",
        ),
        (
            {"cudaLines": {"cu130": {"cuda": "13.0.2", "torhc": "2"}}},
            f"{NS}:cudaLines.cu130.torhc: unknown key; remove it or check its spelling "
            "(got '2'); known keys: arm64CudaArchList, cuda, cudaArchList, platforms, torch, "
            "torchaudio, torchvision",
        ),
        (
            {"github": {"owner": "a", "repository": "b", "environment": "c", "variabls": {}}},
            f"{NS}:github.variabls: unknown key; remove it or check its spelling (got {{}}); "
            "known keys: environment, owner, repository, reviewerTeams, reviewers, variables",
        ),
    ],
)
def test_an_unknown_key_lists_the_keys_known_where_it_stands(
    extra: dict[str, Any], expected: str
) -> None:
    message = refusal(**extra)
    assert expected in message
    assert "hasRegistryPassword" not in message, "presence flags are not keys a user writes"


def test_an_odd_key_is_named_quoted_and_a_credential_in_one_still_hidden() -> None:
    """Found by hypothesis: ``comfyui-images:cache.@0`` has the shape ``user:password@``, so
    redaction ate the key the message must name."""
    message = refusal(cache={"@0": None})
    assert f"{NS}:cache.'@0': unknown key" in message
    message = refusal(registry={"address": "ghcr.io", "namespace": "a", "bob:hunter2@x": 1})
    assert f"{NS}:registry.'***@x': unknown key" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"registry": "ghcr.io"},
            f"{NS}:registry: must be a YAML mapping with keys such as address, namespace, "
            "username (got str 'ghcr.io')",
        ),
        (
            {"cudaLines": {"cu130": "13.0.2"}},
            f"{NS}:cudaLines.cu130: must be a YAML mapping with keys such as cuda, torch, "
            "torchvision, torchaudio (got str '13.0.2')",
        ),
        ({"cache": []}, f"{NS}:cache: must be a YAML mapping with keys such as backends,"),
        ({"cudaLines": ["cu130"]}, f"{NS}:cudaLines: must be a YAML mapping (got list"),
        ({"targets": "core-cpu"}, f"{NS}:targets: must be a YAML list (got 'core-cpu')"),
        (
            {"registry": {"address": "ghcr.io"}},
            f"{NS}:registry.namespace: required; set it with `pulumi config set --path "
            f"{NS}:registry.namespace ...`",
        ),
    ],
)
def test_a_value_of_the_wrong_shape_says_the_shape_and_what_it_got(
    extra: dict[str, Any], expected: str
) -> None:
    assert expected in refusal(**extra)


@pytest.mark.parametrize(("length", "cut"), [(78, False), (79, True)])
def test_a_long_value_is_cut_to_eighty_characters(length: int, cut: bool) -> None:
    """repr adds two quotes: a value of 78 characters is shown whole (80), one more is cut
    to 76 characters and an ellipsis."""
    value = "v" * (length - 1) + "!"  # '!' is refused in a tag, so the value is shown
    message = refusal(movingTag=value)
    shown = message.split("(got ", 1)[1].split(")", 1)[0]
    if cut:
        assert shown == repr(value)[:76] + "...'"
    else:
        assert shown == repr(value)


@pytest.mark.parametrize(
    ("pin", "value", "example"),
    [
        ("python", 3.1, "'3.12'"),
        ("comfyui", "v 1", "'v0.44.0'"),
        ("torch", "", "'2.15.0'"),
        ("sageattention", "d1a57a5", "40-hex"),
        ("comfyui", "abcdef1234", "40-hex"),
    ],
)
def test_pin_errors_name_the_key_and_show_an_example(pin: str, value: Any, example: str) -> None:
    message = decode_error({**BASE_STRINGS, f"{NS}:versions": {pin: value}})
    assert f"{NS}:versions.{pin}" in message
    assert example in message
    assert "pattern" not in message
    assert "[A-Za-z" not in message


@pytest.mark.parametrize(
    "values",
    [
        {f"{NS}:versions": "v0.8.1"},
        {f"{NS}:versions": ["v0.8.1"]},
        {f"{NS}:cache": "registry"},
        {f"{NS}:github": "acme/comfyui"},
        {f"{NS}:registry": 5},
        {f"{NS}:registry": {"address": "ghcr.io", "namespace": "https://x.example/a"}},
    ],
)
def test_messages_name_no_internal_class_and_say_got_once(values: dict[str, Any]) -> None:
    message = decode_error({**BASE_STRINGS, **values})
    assert "instance of" not in message
    assert not re.search(r"\b(Versions|CacheSettings|GithubSettings|RegistrySettings)\b", message)
    for line in message.splitlines():
        assert line.count("got") <= 1, line


def test_valid_pins_still_parse() -> None:
    settings = parse_settings(
        decode_config(
            {
                f"{NS}:registry": json.dumps({"address": "ghcr.io", "namespace": "a"}),
                f"{NS}:targets": json.dumps(["core-cpu"]),
                f"{NS}:versions": json.dumps({"comfyui": "a" * 40, "torch": "2.8.0+cpu"}),
            },
            (),
        )
    )
    assert settings.versions.comfyui == "a" * 40


def test_the_one_error_header_names_the_kind_of_problem_and_indents_each_line() -> None:
    assert str(invalid_configuration(["a", "b"], "two targets would write the same place")) == (
        "invalid stack configuration: two targets would write the same place:\n  a\n  b"
    )
    assert str(invalid_configuration(["a"])) == "invalid stack configuration:\n  a"


def test_secret_keys_the_cli_hands_over_in_the_environment_are_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real CLI passes config and its secret keys in PULUMI_CONFIG and
    PULUMI_CONFIG_SECRET_KEYS: both reach validation, so a plain key stored with --secret
    is refused there too."""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({f"{NS}:push": "true"}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps([f"{NS}:push"]))
    values, secret = config.current_config()
    assert values[f"{NS}:push"] == "true"
    assert secret == {f"{NS}:push"}


def test_the_stack_file_is_read_for_every_plain_secret_and_passes_secure_ones() -> None:
    """A bare key is the project's; a ``secure:`` value passes and the keys after it are
    still read; each plain one gets the whole fix."""
    problems = stack_file_problems(
        {
            "github:token": {"secure": "v1:AAAA"},
            "comfyui-images:githubSecrets": {"A": {"secure": "v1:BBBB"}, "B": "plain-b"},
            "registryPassword": "plain-password",
            "comfyui-images:push": "true",
        }
    )
    assert problems == [
        f"{NS}:githubSecrets.B: stored in plain text inside a secret object; run "
        f"`pulumi config set --secret --path '{NS}:githubSecrets.B' <value>` and revoke the "
        "exposed value",
        f"{NS}:registryPassword: stored in plain text in the stack file; run `pulumi config rm "
        f"{NS}:registryPassword`, then `pulumi config set --secret {NS}:registryPassword "
        "<value>`, and revoke the exposed value",
    ]
    assert stack_file_problems({"github:token": {"secure": "v1:AAAA"}}) == []


def test_a_plain_object_where_a_single_secret_belongs_is_refused_as_a_whole() -> None:
    """Only githubSecrets holds one secret per entry: a mapping written as registryPassword
    is one plain value, and the fix is the key's own."""
    problems = stack_file_problems({f"{NS}:registryPassword": {"user": "plain"}})
    assert problems == [
        f"{NS}:registryPassword: stored in plain text in the stack file; run `pulumi config rm "
        f"{NS}:registryPassword`, then `pulumi config set --secret {NS}:registryPassword "
        "<value>`, and revoke the exposed value"
    ]
