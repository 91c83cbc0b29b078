"""The CUDA matrix: one stack, several CUDA lines, each with its own builds, pins and refs.

Runs the real ``__main__.py`` under mocks on the real prod stack file and on variations of
it: every CUDA target is built once per line from the same line's parents, pins route per
line, every written ref is unique, and a bad matrix is refused before any resource.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components import cuda, rules
from components.decode import decode_config, parse_settings
from components.errors import SettingsError
from components.matrix import target_of
from components.plan import plan
from components.project import ROOT
from components.settings import StackSettings
from components.written import Written, collisions, written_by
from tests.conftest import NS, Evaluate, with_overrides
from tests.test_hostile import refused
from tests.test_pins import own_inputs
from tools.offline import fake_digest, unwrap

# As in prod: cu126's index stopped at torch 2.14.1 (locks/indexes), so the line pins its own.
CU126_TRIO = {"torch": "2.14.1", "torchvision": "0.29.1", "torchaudio": "2.11.0"}
LINES: dict[str, dict[str, str]] = {
    "cu130": {"cuda": "13.0.2"},
    "cu126": {"cuda": "12.6.3", **CU126_TRIO},
}
CUDA_TARGETS = (
    "runtime-cuda",
    "core-env-cuda",
    "core-cuda",
    "sageattention-builder",
    "complete-cuda",
)


@pytest.fixture
def matrix(base_config: dict[str, Any]) -> dict[str, Any]:
    return with_overrides(
        base_config,
        targets=["core-cpu", "complete-cuda"],
        cudaLines=LINES,
        cache={"backends": ["gha", "registry"], "mode": "max"},
    )


def _settings(config: dict[str, Any]) -> StackSettings:
    """The validated settings of a stack-file style config (secret objects as secrets)."""
    secret_keys = set()
    values = {}
    for k, v in config.items():
        value = v
        if k == f"{NS}:githubSecrets":
            secret_keys.add(k)
            value = dict.fromkeys(v, "stand-in secret")
        values[k] = value if isinstance(value, str) else json.dumps(value)
    return parse_settings(decode_config(values, secret_keys))


def test_every_cuda_target_is_built_once_per_line(
    evaluate: Evaluate, matrix: dict[str, Any]
) -> None:
    images = evaluate(matrix).images()
    cpu = {"runtime-cpu", "core-env-cpu", "core-cpu"}
    expected = cpu | {f"{t}-{line}" for t in CUDA_TARGETS for line in LINES}
    assert set(images) == expected


def test_each_line_builds_from_its_own_parents(evaluate: Evaluate, matrix: dict[str, Any]) -> None:
    images = evaluate(matrix).images()
    for line in LINES:
        named = unwrap(images[f"complete-cuda-{line}"].inputs)["context"]["named"]
        assert f"/core-cuda:v0.44.0-cu{LINES[line]['cuda']}-" in named["core"]["location"]
        assert f"-cu{LINES[line]['cuda']}-" in named["sageattention"]["location"]
        assert (
            f"/core-env-cuda:v0.44.0-cu{LINES[line]['cuda']}-" in named["comfyui-env"]["location"]
        )
        env = unwrap(images[f"core-env-cuda-{line}"].inputs)["context"]["named"]
        assert f"/runtime-cuda:cuda{LINES[line]['cuda']}-" in env["runtime"]["location"]
        core = unwrap(images[f"core-cuda-{line}"].inputs)["context"]["named"]
        assert f"/core-env-cuda:v0.44.0-cu{LINES[line]['cuda']}-" in core["comfyui-env"]["location"]
        # comfy-cli and the ComfyUI tree: on the one runtime every core shares.
        assert "/runtime-cpu:" in core["common-runtime"]["location"]


def test_line_pins_reach_only_that_line(evaluate: Evaluate, matrix: dict[str, Any]) -> None:
    """The line's CUDA picks its base, index and expected torch CUDA; nothing crosses lines."""
    inputs = own_inputs(evaluate(matrix))
    for line, spec in LINES.items():
        args = inputs[f"core-env-cuda-{line}"]["args"]
        assert args["TORCH_INDEX_URL"] == f"https://download.pytorch.org/whl/{line}"
        assert args["TORCH_ACCELERATOR"] == f"cuda:{cuda.torch_cuda(spec['cuda'])}"
        base = inputs[f"runtime-cuda-{line}"]["args"]["BASE_IMAGE"]
        assert base == f"nvidia/cuda:{spec['cuda']}-base-ubuntu24.04"
        builder = inputs[f"sageattention-builder-{line}"]["args"]
        assert builder["TORCH_CUDA_ARCH_LIST"] == cuda.default_arch_list(spec["cuda"])
    assert "TORCH_ACCELERATOR" not in inputs["core-env-cpu"]["args"]


@pytest.mark.parametrize(
    ("override", "changed"),
    [
        ({"torch": "2.14.0"}, {"core-env-cuda-cu126", "sageattention-builder-cu126"}),
        ({"torchvision": "0.29.0"}, {"core-env-cuda-cu126"}),
        (
            {"cuda": "12.6.2"},
            # Same index and torch CUDA (12.6): core-env-cuda sees it through its parent's
            # digest.
            {"runtime-cuda-cu126", "sageattention-builder-cu126"},
        ),
        ({"cudaArchList": "8.0;8.6"}, {"sageattention-builder-cu126"}),
    ],
)
def test_a_line_override_reaches_exactly_that_lines_builds(
    evaluate: Evaluate, matrix: dict[str, Any], override: dict[str, str], changed: set[str]
) -> None:
    baseline = own_inputs(evaluate(matrix))
    lines = {**LINES, "cu126": {**LINES["cu126"], **override}}
    bumped = own_inputs(evaluate(with_overrides(matrix, cudaLines=lines)))
    assert {n for n in baseline if baseline[n] != bumped[n]} == changed


def _written(settings: StackSettings, stack: str) -> list[Written]:
    return written_by(plan(settings, stack).values(), push=settings.push)


def _places(entries: Any) -> list[tuple[str, str]]:
    """Cache entries as (backend, where), the same whether read from the plan or the Image."""
    return [
        (
            kind,
            str(
                fields.get("ref") or fields.get("scope") or fields.get("src") or fields.get("dest")
            ),
        )
        for entry in entries or []
        for kind, fields in unwrap(entry).items()
    ]


def test_every_image_is_declared_from_its_planned_build(
    stack_config: Any, evaluate: Evaluate, stack_name: str
) -> None:
    """One plan: the Images the program declares carry exactly the plan's tags (version
    first, moving second; none for one platform of an Index, pushed by digest), cache
    entries, build args, parents and platform, build by build."""
    config = stack_config(stack_name)
    planned = plan(_settings(config), stack_name)
    recording = evaluate(config, stack=stack_name)
    images = recording.images()
    assert set(images) == set(planned)
    for name, build in planned.items():
        inputs = unwrap(images[name].inputs)
        if build.tags is None:
            assert inputs["tags"] == [], name
            (export,) = inputs["exports"]
            assert export["registry"]["names"] == [build.repository], name
            assert export["registry"]["pushByDigest"] is True, name
        else:
            assert inputs["tags"] == [build.tags.version, build.tags.moving], name
        assert _places(inputs.get("cacheFrom")) == _places(build.cache.cache_from), name
        assert _places(inputs.get("cacheTo")) == _places(build.cache.cache_to), name
        args = {k: v for k, v in build.inputs.build_args.items() if v}
        assert args.items() <= inputs["buildArgs"].items(), name
        named = (inputs["context"].get("named") or {}).keys()
        assert set(build.parents) <= set(named), name
        assert inputs["platforms"] == [build.platform] == [build.settings.platform], name
        # The version label names the tag on images people run; an internal one (core's
        # environment) has none, so a pin only its tag names cannot change its digest.
        version = {"org.opencontainers.image.version": build.inputs.version_tag}
        assert inputs["labels"] == {
            "org.opencontainers.image.title": name,
            **({} if build.target.internal else version),
        }, name
        assert "secrets" not in inputs or inputs["secrets"] is None, "no caBundle, no secret"
    assert any(b.target.internal for b in planned.values()), "no internal image to check"
    # Each ImageTarget component hands on its Image's ref and digest, by those names.
    targets = [r for r in recording.resources if r.type == "comfyui:images:ImageTarget"]
    assert {r.name for r in targets} == set(planned)
    for target in targets:
        outputs = unwrap(recording.outputs[target.urn])
        assert set(outputs) == {"ref", "digest"}, target.name
        digest = fake_digest(f"{target.name}-image")  # what the mocks answer for a push
        assert outputs["digest"] == digest, target.name
        build = planned[target.name]
        pinned = build.tags.version if build.tags else build.repository
        assert outputs["ref"] == f"{pinned}@{digest}", target.name


def test_prod_stack_plans_the_matrix_with_every_ref_unique(
    stack_config: Any, evaluate: Evaluate
) -> None:
    config = stack_config("prod")
    settings = _settings(config)
    assert set(settings.lines) == {"cu130", "cu126"}
    written = _written(settings, "prod")
    assert collisions(written) == []
    refs = [w.ref for w in written]
    assert len(refs) == len(set(refs))
    assert set(settings.lines_of("rocm")) == {"rocm7.14"}
    assert set(settings.lines_of("xpu")) == {"xpu"}
    recording = evaluate(config, stack="prod")
    images = recording.images()
    # runtime-cpu, core-env-cpu and core-cpu, every CUDA target per line, one ROCm and one
    # XPU core, each with its environment image; linux/arm64 too for the CPU three and cu130.
    arm64 = 3 + len(CUDA_TARGETS)
    assert len(images) == 3 + 2 * len(CUDA_TARGETS) + 2 * 2 + arm64
    assert sum(name.endswith("-arm64") for name in images) == arm64
    tags = unwrap(images["core-cuda-cu126"].inputs)["tags"]
    assert tags[1] == "ghcr.io/acme/comfyui/core-cuda:latest-cu126"
    moving = unwrap(recording.indexes()["core-cuda-cu130-moving-index"].inputs)
    assert moving["tag"] == "ghcr.io/acme/comfyui/core-cuda:latest-cu130"
    for target, index in (("core-env-rocm", "rocm7.14"), ("core-env-xpu", "xpu")):
        inputs = unwrap(images[target].inputs)
        assert inputs["buildArgs"]["TORCH_INDEX_URL"] == f"https://download.pytorch.org/whl/{index}"
        assert inputs["context"]["named"]["runtime"]["location"].startswith(
            "docker-image://ghcr.io/acme/comfyui/runtime-cpu@sha256:"
        ), "ROCm and XPU wheels carry their user space: the plain Ubuntu runtime"


def test_a_single_line_stack_keeps_plain_names(
    evaluate: Evaluate, base_config: dict[str, Any]
) -> None:
    images = evaluate(with_overrides(base_config, targets=["core-cuda"])).images()
    assert set(images) == {"runtime-cuda", "runtime-cpu", "core-env-cuda", "core-cuda"}
    tags = unwrap(images["core-cuda"].inputs)["tags"]
    assert tags[1].endswith(":latest")


def test_moving_tags_never_collide_across_lines(matrix: dict[str, Any]) -> None:
    """Without the per-line moving tag, both lines would push latest: the collision check
    must see that (it is what keeps the suffix honest)."""
    settings = _settings(matrix)
    assert collisions(_written(settings, "test")) == []
    tags = [w.ref for w in _written(settings, "test") if w.kind == "tag"]
    # runtime-cpu, core-env-cpu and core-cpu only
    assert sum(t.endswith(":latest") for t in tags) == 3


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"cudaLines": {"cu129": {"cuda": "13.0.2"}}}, "name the line after its index: cu130"),
        ({"cudaLines": {"cu130": {"cuda": "13"}}}, "is not a CUDA release"),
        ({"cudaLines": {"cu130": {"cuda": "13.0.2", "cudaArchList": "10.0"}}}, "cannot dispatch"),
        (
            {"cudaLines": {"cu130": {"cuda": "13.0.2", "cudaArchList": "9.0;12.0+PTX"}}},
            "asks for PTX",
        ),
        (
            {"cudaLines": {"cu126": {"cuda": "12.6.3", "cudaArchList": "9.0;12.0"}}},
            "needs CUDA 12.8",
        ),
        ({"cudaLines": LINES, "versions": {"cuda": "13.0.2"}}, "remove versions.cuda"),
        ({"cudaLines": LINES, "cudaArchList": "9.0"}, "set cudaArchList per line"),
        (
            {"cudaLines": LINES, "sources": {"torchIndexCuda": "https://m.test/whl/cu130"}},
            "no {line} placeholder",
        ),
        ({"cudaLines": LINES, "cacheThresholds": {"core-cuda": 0.5}}, "core-cuda-cu130"),
        ({"cudaLines": None, "cudaArchList": "8.0;8.6;8.9;9.0;10.0;12.0"}, "cannot dispatch"),
        ({"sources": {"torchIndexCpu": ""}}, "torch installs only from its own index"),
    ],
)
def test_a_bad_matrix_is_refused_before_any_resource(
    evaluate: Evaluate, matrix: dict[str, Any], override: dict[str, Any], fragment: str
) -> None:
    message = refused(evaluate, with_overrides(matrix, **override))
    assert fragment in message
    assert f"{NS}:" in message


def test_default_arch_lists_follow_sageattention_and_cuda() -> None:
    assert cuda.default_arch_list("13.0.2") == "8.0;8.6;8.9;9.0;12.0;12.1"
    assert cuda.default_arch_list("12.6.3") == "8.0;8.6;8.9;9.0"
    for release in ("12.6.3", "12.8.1", "12.9.1", "13.0.2"):
        assert cuda.arch_list_problem(cuda.default_arch_list(release), release) is None


def test_every_documented_line_has_its_minimum_driver() -> None:
    """The README's lines table states each line's driver floor; it is this table's."""
    readme = (ROOT / "README.md").read_text()
    for line, release in (("cu130", "13.0.2"), ("cu126", "12.6.3")):
        driver = cuda.min_driver(release)
        assert driver is not None, release
        assert f"| `{line}` | {release} |" in readme
        assert any(
            row.startswith(f"| `{line}` | {release} |") and f"| {driver}" in row
            for row in readme.splitlines()
        ), f"README's {line} row does not state driver {driver}"
    assert cuda.min_driver("12.6.3") == "560.28.03"
    assert cuda.min_driver("11.8.0") is None, "a release with no known floor has none"
    assert cuda.min_driver("not a release") is None
    with pytest.raises(SettingsError):
        parse_settings(
            {
                "registry": {"address": "r.test", "namespace": "n"},
                "targets": ["core-cuda"],
                "cudaLines": {"cu126": {"cuda": "12.6.3", "cudaArchList": "12.0"}},
            }
        )


@pytest.mark.parametrize(
    ("name", "target"),
    [("core-cuda", "core-cuda"), ("core-cuda-cu126", "core-cuda"), ("runtime-cpu", "runtime-cpu")],
)
def test_target_of_a_build_name(name: str, target: str) -> None:
    assert target_of(name).name == target


@pytest.mark.parametrize(
    "name",
    ["runtime-cpu-cu130", "core-cuda-latest", "core-gpu-cu130", "cu130"],
)
def test_a_name_no_target_builds_is_refused_by_name(name: str) -> None:
    """A CPU target has no lines, and a line is named after its index (cu<digits>)."""
    with pytest.raises(KeyError, match=f"no target builds {name!r}"):
        target_of(name)


def test_written_lists_each_place_a_build_writes_under_its_own_name(
    base_config: dict[str, Any],
) -> None:
    """Every tag (pushed), registry cache ref (default repository ``buildcache``, or
    cache.registryRepository), gha scope (with the stack) and local directory, each under
    the build that writes it, and nothing for a backend the stack does not use."""
    config = with_overrides(
        base_config,
        targets=["core-cpu"],
        cache={"backends": ["gha", "registry", "local"], "localDir": "/cache"},
    )
    settings = _settings(config)
    planned = plan(settings, "dev")
    repo = "registry.example.test:5000/team/comfy"
    expected = set()
    for name, build in planned.items():
        expected |= {
            Written(name, "tag", build.tags.version),
            Written(name, "tag", build.tags.moving),
            Written(name, "registry-cache", f"{repo}/buildcache:{name}"),
            Written(name, "gha-scope", f"dev-{name}"),
            Written(name, "local-dir", f"/cache/{name}"),
        }
    assert set(_written(settings, "dev")) == expected
    assert {w.target for w in expected} == {"runtime-cpu", "core-env-cpu", "core-cpu"}
    # Another repository for the cache, no gha, no push: only what is left.
    config = with_overrides(
        config,
        push=False,
        targets=["runtime-cpu"],
        cache={"backends": ["registry"], "registryRepository": "cache.example.test/c"},
    )
    settings = _settings(config)
    assert _written(settings, "dev") == [
        Written("runtime-cpu", "registry-cache", "cache.example.test/c:runtime-cpu")
    ]


def test_the_rules_report_collisions_under_their_own_header_with_the_fix(
    base_config: dict[str, Any],
) -> None:
    """A moving tag equal to core-cpu's version tag: core-cpu (and its environment image,
    tagged alike in its own repository) would push one tag twice."""
    config = with_overrides(base_config, movingTag="v0.44.0-cpu-torch2.15.0")
    with pytest.raises(SettingsError) as err:
        rules.check(_settings(config), "dev")
    lines = str(err.value).split("\n  ")
    assert lines[0] == "invalid stack configuration: two targets would write the same place:"
    assert lines[-1] == "fix registry.namespace, movingTag, cache.registryRepository or the pins"
    assert "core-env-cpu's tag and core-env-cpu's tag are both " in lines[1]
    assert "core-cpu's tag and core-cpu's tag are both " in lines[2]


def _refusal(config: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as err:
        _settings(config)
    return str(err.value).removeprefix("invalid stack configuration:\n  ")


def test_line_rules_say_the_key_the_value_and_the_fix(matrix: dict[str, Any]) -> None:
    versions = {"cuda": "13.0.2"}
    assert _refusal(with_overrides(matrix, versions=versions)) == (
        f"{NS}:versions.cuda is '13.0.2' but {NS}:cudaLines is set: each line pins its own "
        "CUDA there; remove versions.cuda"
    )
    assert _refusal(with_overrides(matrix, cudaArchList="8.0")) == (
        f"{NS}:cudaArchList is '8.0' but {NS}:cudaLines is set: set cudaArchList per line "
        f"({NS}:cudaLines.<line>.cudaArchList) or leave it to the line's default"
    )
    index = "https://mirror.example.test/whl/cu130"
    assert _refusal(with_overrides(matrix, sources={"torchIndexCuda": index})) == (
        f"{NS}:sources.torchIndexCuda is {index!r} with no {{line}} placeholder, so every "
        f"line of {NS}:cudaLines would install the same torch; write e.g. "
        "https://mirror.example/whl/{line}"
    )
    one_line = with_overrides(matrix, cudaLines={"cu130": LINES["cu130"]})
    assert _settings(with_overrides(one_line, sources={"torchIndexCuda": index})).cudaLines


def test_an_arch_list_problem_names_where_the_list_came_from(
    base_config: dict[str, Any], matrix: dict[str, Any]
) -> None:
    """A single-line stack's own key, its default (when the default is what fails), or the
    line's own key."""
    single = with_overrides(base_config, targets=["sageattention-builder"])
    assert _refusal(with_overrides(single, cudaArchList="7.5")).startswith(
        f"{NS}:cudaArchList '7.5' has 7.5,"
    )
    lines = {**LINES, "cu126": {**LINES["cu126"], "cudaArchList": "12.0"}}
    assert _refusal(with_overrides(matrix, cudaLines=lines)).startswith(
        f"{NS}:cudaLines.cu126.cudaArchList '12.0' has 12.0, which needs CUDA 12.8 or later"
    )


def test_tags_and_cache_refs_share_one_namespace_and_other_kinds_their_own() -> None:
    assert collisions([Written("a", "tag", "r/x:1"), Written("b", "registry-cache", "r/x:1")])
    assert collisions([Written("a", "tag", "x"), Written("b", "gha-scope", "x")]) == []
    long = "r/" + "a" * 300
    assert collisions([Written("a", "tag", f"{long}:1")]) != []
    assert collisions([Written("a", "registry-cache", f"{long}:1")]) != []
    assert collisions([Written("a", "gha-scope", f"{long}:1")]) == [], "scopes have no limit"
