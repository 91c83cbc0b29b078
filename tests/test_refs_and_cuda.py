"""Reference grammar (components/refs.py) and CUDA line facts (components/cuda.py), value by
value: the small rules every tag, cache ref and arch list goes through."""

from __future__ import annotations

import pytest

from components import cuda, refs


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("ghcr.io/acme/comfyui", ("ghcr.io", "acme/comfyui")),
        ("registry:5000/a/b", ("registry:5000", "a/b")),
        ("localhost/a", ("localhost", "a")),
        ("library/ubuntu", (None, "library/ubuntu")),
        ("ubuntu", (None, "ubuntu")),
        ("Localhost/a", (None, "Localhost/a")),
    ],
)
def test_the_first_component_is_a_domain_only_with_a_dot_a_port_or_localhost(
    name: str, split: tuple[str | None, str]
) -> None:
    assert refs.split_domain(name) == split


def test_repository_problems_say_what_a_repository_is() -> None:
    assert refs.repository_problem("acme/cache", need_domain=True) == (
        "must start with a registry host, e.g. ghcr.io/acme/comfyui-cache"
    )
    assert refs.repository_problem("ghcr.io/Acme/cache") == (
        "is not a repository: lowercase letters, digits and . _ - separators, "
        "components joined by /"
    )
    longest = "ghcr.io/" + "a" * (refs.MAX_NAME - len("ghcr.io/"))
    assert refs.repository_problem(longest) is None, "exactly the limit is allowed"
    assert refs.repository_problem(longest + "a") == (
        f"is {refs.MAX_NAME + 1} characters long; registries allow at most {refs.MAX_NAME}"
    )


def test_a_line_is_named_after_its_torch_index() -> None:
    assert (cuda.wheel_tag("13.0.2"), cuda.torch_cuda("13.0.2")) == ("cu130", "13.0")
    assert (cuda.wheel_tag("12.6"), cuda.torch_cuda("12.6.3")) == ("cu126", "12.6")
    assert cuda.wheel_tag("12.10.1") == "cu1210"


@pytest.mark.parametrize("text", ["13", "thirteen", "", "13.0.2.1"])
def test_text_that_is_no_cuda_release_is_a_bug_not_a_line(text: str) -> None:
    """The settings refuse such a pin first; past them it can only be a bug."""
    for rule in (cuda.wheel_tag, cuda.torch_cuda, cuda.default_arch_list):
        with pytest.raises(ValueError, match=f"{text!r} is not a CUDA release"):
            rule(text)


def test_the_default_arch_list_starts_each_arch_at_its_own_cuda() -> None:
    """12.0 (Blackwell) needs CUDA 12.8 exactly or later; 12.1 needs 12.9."""
    assert cuda.default_arch_list("12.8.1") == "8.0;8.6;8.9;9.0;12.0"
    assert cuda.default_arch_list("12.9.1") == "8.0;8.6;8.9;9.0;12.0;12.1"
    assert cuda.default_arch_list("12.3.2") == "8.0;8.6;9.0"


def test_arch_list_problems_name_the_fix() -> None:
    example = repr(cuda.default_arch_list("12.6.3"))
    assert cuda.arch_list_problem("8.0;", "12.6.3") == (
        f"is empty or has an empty entry; e.g. {example}"
    )
    assert cuda.arch_list_problem("7.5", "12.6.3") == (
        "has 7.5, which the pinned SageAttention cannot dispatch to (it supports "
        f"8.0, 8.6, 8.9, 9.0, 12.0, 12.1); e.g. {example}"
    )
    assert cuda.arch_list_problem("8.0;8.0", "12.6.3") == (
        "names an architecture twice; list each once"
    )
    assert cuda.arch_list_problem("8.0;9.0", "12.6.3") is None


NO_SCHEME = f"must be host[:port] without scheme or path, e.g. {refs.EXAMPLE_ADDRESS}"
NO_HOST = f"is not a host name or IP address, e.g. {refs.EXAMPLE_ADDRESS}"
BAD_PORT = "has a port outside 1-65535"


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("ghcr.io", None),
        ("localhost:5000", None),
        ("registry.example:1", None),
        ("registry.example:65535", None),
        ("[::1]", None),
        ("[::1]:5000", None),
        ("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61, None),  # 253
        ("a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 62, NO_HOST),  # 254
        ("https://ghcr.io", NO_SCHEME),
        ("ghcr.io/acme", NO_SCHEME),
        ("ghcr.io:", BAD_PORT),
        ("ghcr.io:0", BAD_PORT),
        ("ghcr.io:65536", BAD_PORT),
        ("ghcr.io:http", BAD_PORT),
        ("host:5000:6000", NO_HOST),
        ("-bad-.io", NO_HOST),
    ],
)
def test_a_registry_address_is_host_and_optional_port(address: str, problem: str | None) -> None:
    """Bounds included: ports 1 and 65535, a 253-character host; an IPv6 literal's own colons
    are not a port."""
    assert refs.address_problem(address) == problem


@pytest.mark.parametrize(
    ("name", "split"),
    [("registry.example/a", ("registry.example", "a")), ("local/a", (None, "local/a"))],
)
def test_only_localhost_is_a_domain_without_a_dot_or_port(
    name: str, split: tuple[str | None, str]
) -> None:
    assert refs.split_domain(name) == split


def test_a_path_is_lowercase_components() -> None:
    assert refs.path_problem("acme/comfyui") is None
    assert refs.path_problem("Acme/comfyui") == (
        "must be a lowercase repository path, e.g. acme/comfyui"
    )
    assert refs.repository_problem("ghcr.io:0/acme/c") == f"registry part {BAD_PORT}"
