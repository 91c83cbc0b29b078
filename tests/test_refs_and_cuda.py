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
    assert cuda.wheel_tag("13.0.2") == "cu130"
    assert cuda.wheel_tag("12.6.3") == "cu126"
    assert cuda.wheel_tag("13") == "cu13", "text that is no release keeps its digits"


def test_the_default_arch_list_starts_each_arch_at_its_own_cuda() -> None:
    """12.0 (Blackwell) needs CUDA 12.8 exactly or later; 12.1 needs 12.9."""
    assert cuda.default_arch_list("12.8.1") == "8.0;8.6;8.9;9.0;12.0"
    assert cuda.default_arch_list("12.9.1") == "8.0;8.6;8.9;9.0;12.0;12.1"
    assert cuda.default_arch_list("12.3.2") == "8.0;8.6;9.0"
    assert cuda.default_arch_list("not a release") == ""


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
