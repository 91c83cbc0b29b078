"""Each line pins what its own torch index carries, checked on the recorded index pages.

PyTorch dropped its cu126 wheels at 2.15; a cu126 line at the stack's 2.15.0 would fail its
torch layer on deploy day. These tests hold the check to the recorded pages
(``locks/indexes``) and to the real stack files, before any resource is registered.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import indexes, rules
from components.decode import decode_config, parse_settings
from components.errors import SettingsError
from tests.conftest import NS, Evaluate, with_overrides
from tools.offline import Recording, config_from_mapping, load_stack_config

CU126 = "https://download.pytorch.org/whl/cu126"


def settings_of(config: dict[str, Any]) -> Any:
    values, secret_keys = config_from_mapping(config)
    return parse_settings(decode_config(values, set(secret_keys)))


def prod_with_cu126(**line: str | None) -> dict[str, Any]:
    """The real prod stack with its cu126 line's own pins replaced (None drops one)."""
    config = load_stack_config("prod")
    cu126 = {k: v for k, v in {**config[f"{NS}:cudaLines"]["cu126"], **line}.items() if v}
    config[f"{NS}:cudaLines"] = {**config[f"{NS}:cudaLines"], "cu126": cu126}
    return config


def test_prod_plans_every_line_at_pins_its_recorded_index_carries() -> None:
    settings = settings_of(load_stack_config("prod"))
    uses = list(indexes.pin_uses(settings))
    unrecorded = {u.index for u in uses if indexes.recorded_page(u.index, u.project) is None}
    assert not unrecorded, f"prod installs torch from indexes with no recorded page: {unrecorded}"
    assert {u.index for u in uses} >= {CU126, CU126.replace("cu126", "cu130")}
    assert indexes.pin_problems(settings) == []
    cu126 = {u.project: u.pin for u in uses if u.index == CU126}
    assert cu126 == {"torch": "2.14.1", "torchvision": "0.29.1", "torchaudio": "2.11.0"}


def test_prod_cu126_at_the_stack_torch_fails_naming_the_line_key_and_newest_pin(
    evaluate: Evaluate,
) -> None:
    recording = Recording(stack="prod", preview=False)
    config = prod_with_cu126(torch=None, torchvision=None, torchaudio=None)
    with pytest.raises(SettingsError) as raised:
        evaluate(config, stack="prod", into=recording)
    message = str(raised.value)
    assert "comfyui-images:versions.torch is '2.15.0'" in message
    assert f"{CU126} has no torch 2.15.0 wheel for Python 3.12 on linux/amd64" in message
    assert "set comfyui-images:cudaLines.cu126.torch to a release" in message
    assert "(newest: 2.14.1)" in message
    assert "versions.torchvision is '0.29.2'" in message
    assert "versions.torchaudio is '2.11.1'" in message
    assert "cu130" not in message, "the cu130 line carries the stack's pins"
    assert recording.resources == [], "resources were registered before validation failed"


def test_a_line_pin_the_index_lacks_names_the_line_key() -> None:
    settings = settings_of(prod_with_cu126(torchvision="0.29.2"))
    [problem] = indexes.pin_problems(settings)
    assert problem.startswith("comfyui-images:cudaLines.cu126.torchvision is '0.29.2'")
    # The builds that install torch from the index: core's environment, not core itself.
    assert "builds core-env-cuda-cu126, sageattention-builder-cu126;" in problem
    assert "core-cuda-cu126" not in problem
    assert "(newest: 0.29.1), one made for the line's torch" in problem


def test_the_local_label_of_a_wheel_does_not_hide_its_release() -> None:
    page = indexes.recorded_page(CU126, "torch")
    assert page is not None
    assert "torch-2.14.1%2Bcu126-cp312" in page.read_text()
    offer = indexes.carried(CU126, "torch", "3.12", "linux/amd64")
    assert offer is not None
    assert offer.has("2.14.1")
    assert offer.has("2.14.1+cu126")
    assert not offer.has("2.14.1+cu130"), "a pin with a local label takes only that label"
    assert not offer.has("2.15.0")
    assert not offer.has("not a version")


def test_a_release_without_a_wheel_for_the_python_is_not_carried() -> None:
    # torch 2.15.0 needs Python 3.11+: the cpu index has no cp310 wheel of it.
    config = with_overrides(
        {f"{NS}:registry": {"address": "r.example:5000", "namespace": "t"}},
        targets=["core-cpu"],
        versions={"python": "3.10"},
    )
    # torchvision 0.29.2 and torchaudio 2.11.1 are py3 wheels: only torch lacks a cp310 one.
    [torch] = indexes.pin_problems(settings_of(config))
    assert "versions.torch is '2.15.0'" in torch
    assert "for Python 3.10 on linux/amd64" in torch
    # No matrix: the fix is the stack's own pin, and the trio moves together.
    assert torch.endswith(
        "set comfyui-images:versions.torch to a release that index carries (newest: 2.14.1), "
        "with the torchvision and torchaudio made for it"
    )


def test_a_platform_the_index_has_no_wheels_for_says_so() -> None:
    config = prod_with_cu126()
    config[f"{NS}:platforms"] = ["linux/arm64"]
    config[f"{NS}:targets"] = ["core-cuda"]
    problems = indexes.pin_problems(settings_of(config))
    assert problems, "cu126 has no aarch64 wheels"
    assert all(CU126 in p for p in problems), problems
    assert "has no torch wheel for Python 3.12 on linux/arm64 at all" in problems[0]


def test_an_index_without_a_recorded_page_is_left_to_the_build() -> None:
    config = prod_with_cu126(torch=None, torchvision=None, torchaudio=None)
    config[f"{NS}:sources"] = {"torchIndexCuda": "https://mirror.example/whl/{line}"}
    settings = settings_of(config)
    assert indexes.recorded_page("https://mirror.example/whl/cu126", "torch") is None
    assert [p for p in indexes.pin_problems(settings) if "mirror.example" in p] == []


@pytest.mark.parametrize(
    "url",
    ["file:///wheelhouse/cu126", "https://download.pytorch.org/whl/../../etc", "not a url"],
)
def test_only_plain_http_index_urls_map_to_records(url: str) -> None:
    assert indexes.recorded_page(url, "torch") is None


def test_every_recorded_page_offers_wheels_of_its_own_project() -> None:
    pages = sorted(indexes.RECORDS.rglob("index.html"))
    assert pages, "no recorded index pages"
    for page in pages:
        project = page.parent.name
        index = "https://" + str(page.parent.parent.relative_to(indexes.RECORDS))
        offer = indexes.carried(index, project, "3.12", "linux/amd64")
        assert offer is not None
        assert offer.versions, f"{page}: no {project} wheel for cp312"


def test_a_pin_newer_than_the_records_is_a_warning_not_an_error(evaluate: Evaluate) -> None:
    """The records are one snapshot: a release after it is unknown to them, not missing."""
    newest = indexes.newest_recorded("torch")
    assert newest is not None
    later = f"{newest.major}.{newest.minor + 1}.0"
    config = load_stack_config("prod")
    config[f"{NS}:versions"] = {**config[f"{NS}:versions"], "torch": later}
    settings = settings_of(config)
    assert indexes.pin_problems(settings) == []
    [warning] = indexes.pin_warnings(settings)
    assert warning.startswith(f"comfyui-images:versions.torch is '{later}', newer than every")
    assert f"(newest: {newest})" in warning
    assert "locks/indexes/README.md" in warning
    recording = evaluate(config, stack="prod")
    assert any(f"versions.torch is '{later}'" in w for w in recording.warnings)


def test_a_release_one_index_skipped_is_missing_not_newer() -> None:
    """cu126 lacks 2.15.0 while cu130 has it: that is the dropped line, an error."""
    settings = settings_of(prod_with_cu126(torch="2.15.0"))
    assert any("cudaLines.cu126.torch is '2.15.0'" in p for p in indexes.pin_problems(settings))
    assert indexes.pin_warnings(settings) == []


def test_an_unrecorded_mirror_is_skipped_and_the_recorded_indexes_still_warn() -> None:
    """The CUDA lines install from a mirror with no record (left to their builds' own check);
    core-cpu's recorded index still warns about a pin newer than its records."""
    newest = indexes.newest_recorded("torch")
    assert newest is not None
    later = f"{newest.major}.{newest.minor + 1}.0"
    config = load_stack_config("prod")
    config[f"{NS}:versions"] = {**config[f"{NS}:versions"], "torch": later}
    config[f"{NS}:sources"] = {"torchIndexCuda": "https://mirror.example.test/whl/{line}"}
    settings = settings_of(config)
    uses = [u for u in indexes.pin_uses(settings) if u.project == "torch"]
    assert uses[0].index.startswith("https://mirror.example.test/"), "the mirror comes first"
    [warning] = indexes.pin_warnings(settings)
    assert warning.startswith(f"comfyui-images:versions.torch is '{later}', newer than every")


def test_a_pure_python_wheel_is_installable_on_every_platform() -> None:
    assert indexes.installable(frozenset({("py3", "any")}), "3.12", "aarch64")
    assert indexes.installable(frozenset({("cp312", "manylinux_2_28_x86_64")}), "3.12", "x86_64")
    assert not indexes.installable(frozenset({("cp312", "win_amd64")}), "3.12", "x86_64")
    assert not indexes.installable(frozenset({("cp311", "any")}), "3.12", "x86_64")


def test_a_recorded_page_is_found_by_http_or_https_url_and_never_outside_the_records() -> None:
    page = indexes.RECORDS / "download.pytorch.org" / "whl" / "cu130" / "torch" / "index.html"
    for scheme in ("https", "http"):
        assert indexes.recorded_page(f"{scheme}://download.pytorch.org/whl/cu130", "Torch") == page
    assert indexes.recorded_page("file:///download.pytorch.org/whl/cu130", "torch") is None
    assert indexes.recorded_page("https:///whl/cu130", "torch") is None, "no host"
    # Each would resolve to the cu130 page on disk; a URL is not a path to walk.
    for url in (
        "https://download.pytorch.org/whl/./cu130",
        "https://download.pytorch.org/whl/cu126/../cu130",
    ):
        assert indexes.recorded_page(url, "torch") is None, url
    offer = indexes.carried(
        "https://download.pytorch.org/whl/cu130", "Torch", "3.12", "linux/amd64"
    )
    assert offer is not None
    assert (offer.index, offer.project) == ("https://download.pytorch.org/whl/cu130", "Torch")
    assert offer.newest == "2.15.0"


def test_the_rules_report_index_problems_under_their_own_header() -> None:
    """Through the rules, as a plan or preview meets them: one header naming the kind of
    problem, then each pin (github keys left out: their secrets are not part of this)."""
    config = prod_with_cu126(torch="2.15.0")
    for key in (f"{NS}:github", f"{NS}:githubSecrets"):
        config.pop(key)
    with pytest.raises(SettingsError) as err:
        rules.check(settings_of(config), "prod")
    message = str(err.value)
    assert message.startswith(
        "invalid stack configuration: a torch pin its index does not carry:\n"
        "  comfyui-images:cudaLines.cu126.torch is '2.15.0', but "
        "https://download.pytorch.org/whl/cu126 has no torch 2.15.0 wheel"
    ), message
