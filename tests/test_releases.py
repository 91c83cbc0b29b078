"""Release tracking (tools/releases.py), offline on recorded API answers.

The fetcher is the tool's only way out, so each test answers from tests/fixtures/releases
(the GitHub releases list by hand, the package index as recorded, see its README) and bends
one answer to show the rule it names: drafts and prereleases skipped, a trio that waits for
torchvision, a failing source named, the stack file untouched or rewritten with its comments.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from components.cuda import TORCH_TRIO
from components.indexes import RECORDS
from components.project import ROOT
from tools import pip_config, releases, upstream
from tools.lock import LockError

FIXTURES = Path(__file__).parent / "fixtures" / "releases"
PYTORCH = "https://download.pytorch.org/whl/"
INDEX = "https://index.test/simple"
GITHUB_RELEASES = f"{upstream.GITHUB_API}/repos/{upstream.COMFYUI_REPOSITORY}/releases"
NEWEST = {
    "comfyui": "v0.44.0",
    "comfyCli": "1.23.0",
    "torch": "2.15.0",
    "torchvision": "0.29.2",
    "torchaudio": "2.11.1",
}


class Answers:
    """A fetcher answering from the fixtures; ``fail`` maps a URL part to the error raised."""

    def __init__(self) -> None:
        self.github: list[dict[str, Any]] = json.loads(
            (FIXTURES / "github" / "comfyui-releases.json").read_text()
        )
        self.simple = {
            p.stem: json.loads(p.read_text()) for p in (FIXTURES / "simple").glob("*.json")
        }
        self.files = {p.name: p.read_bytes() for p in (FIXTURES / "metadata").glob("*.metadata")}
        self.fail: dict[str, Exception] = {}
        self.raw: dict[str, bytes] = {}
        self.calls: list[str] = []

    def __call__(self, url: str, headers: Mapping[str, str]) -> bytes:
        self.calls.append(url)
        for part, error in self.fail.items():
            if part in url:
                raise error
        if url in self.raw:
            return self.raw[url]
        if url.startswith(GITHUB_RELEASES):
            assert headers["Accept"] == "application/vnd.github+json"
            return json.dumps(self.github).encode()
        if url.startswith(INDEX + "/"):
            assert headers["Accept"].startswith(upstream.SIMPLE_JSON)
            name = url.removeprefix(INDEX + "/").strip("/")
            if name in self.simple:
                return json.dumps(self.simple[name]).encode()
        if url.startswith(PYTORCH):
            # A line's own index, as recorded (PEP 503 HTML, what PyTorch's index serves).
            page = RECORDS.joinpath(*url.removeprefix("https://").strip("/").split("/"))
            if (page / "index.html").is_file():
                return (page / "index.html").read_bytes()
        filename = url.rsplit("/", 1)[-1]
        if url.startswith("https://index.test/packages/") and filename in self.files:
            return self.files[filename]
        raise upstream.FetchError(f"HTTP 404 from {url}")

    def add_wheel(self, project: str, version: str, requires: str | None, **extra: Any) -> None:
        """A release of one wheel whose PEP 658 metadata requires ``requires``."""
        filename = f"{project.replace('-', '_')}-{version}-py3-none-any.whl"
        text = f"Metadata-Version: 2.4\nName: {project}\nVersion: {version}\n"
        text += f"Requires-Dist: {requires}\n" if requires else ""
        self.files[filename + ".metadata"] = text.encode()
        digest = {"sha256": hashlib.sha256(text.encode()).hexdigest()}
        self.simple[project]["files"].append(
            {
                "filename": filename,
                "url": f"/packages/xx/{filename}",
                "hashes": {"sha256": "0" * 64},
                "size": 1000,
                "yanked": False,
                "core-metadata": digest,
                **extra,
            }
        )

    def drop(self, project: str, *versions: str) -> None:
        self.simple[project]["files"] = [
            f
            for f in self.simple[project]["files"]
            if not any(f"-{v}-" in f["filename"] for v in versions)
        ]


@pytest.fixture
def answers() -> Answers:
    return Answers()


# The prod stack as it was before the pins caught up: the tests need a stack behind the
# recorded answers. Text replacement, so the file keeps the real one's comments and layout.
BEHIND = {
    "comfyui: v0.44.0": "comfyui: v0.8.1",
    "torch: 2.15.0": "torch: 2.8.0",
    "torchvision: 0.29.2": "torchvision: 0.23.0",
    "torchaudio: 2.11.1": "torchaudio: 2.8.0",
}


@pytest.fixture
def prod(tmp_path: Path) -> Path:
    path = tmp_path / "Pulumi.prod.yaml"
    text = (ROOT / "stacks" / "Pulumi.prod.yaml").read_text()
    for current, behind in BEHIND.items():
        assert f"    {current}\n" in text, f"the prod stack no longer pins {current}"
        text = text.replace(f"    {current}\n", f"    {behind}\n")
    path.write_text(text)
    return path


def run(
    path: Path, fetch: Answers, *args: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = releases.main(["--file", str(path), "--index-url", INDEX, *args], fetch=fetch, env={})
    out, err = capsys.readouterr()
    return code, out, err


def pins(path: Path) -> dict[str, str]:
    return dict(yaml.safe_load(path.read_text())["config"]["comfyui-images:versions"])


def set_pins(path: Path, **values: str) -> None:
    document = yaml.safe_load(path.read_text())
    document["config"]["comfyui-images:versions"].update(values)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


# --- the sources --------------------------------------------------------------------------


def test_comfyui_skips_drafts_prereleases_and_non_version_tags(answers: Answers) -> None:
    assert upstream.newest_comfyui(answers) == "v0.44.0"
    answers.github[1]["prerelease"] = False  # v0.45.0 becomes a final release
    assert upstream.newest_comfyui(answers) == "v0.45.0"
    answers.github[0]["draft"] = False  # and the v0.46.0 draft is published
    assert upstream.newest_comfyui(answers) == "v0.46.0"


def test_comfyui_is_the_highest_version_not_the_newest_entry(answers: Answers) -> None:
    """A maintenance release of an old line, published last, must not win."""
    answers.github.insert(0, {"tag_name": "v0.8.3", "draft": False, "prerelease": False})
    assert upstream.newest_comfyui(answers) == "v0.44.0"


def test_index_prereleases_and_yanked_releases_are_never_proposed(answers: Answers) -> None:
    index = upstream.Index(INDEX, answers)
    answers.add_wheel("torch", "2.16.0rc1", None)
    answers.add_wheel("torchvision", "0.30.0rc1", "torch==2.16.0rc1")
    answers.add_wheel("torchaudio", "2.12.0.dev20261120", "torch==2.16.0rc1")
    answers.add_wheel("comfy-cli", "1.24.0", None, yanked="broken upload")
    answers.add_wheel("comfy-cli", "1.25.0b1", None)
    assert Version("1.24.0") not in index.releases("comfy-cli"), "yanked"
    assert max(index.releases("comfy-cli")) == Version("1.23.0")
    answers.add_wheel("comfy-cli", "1.24.1", None)
    assert max(upstream.Index(INDEX, answers).releases("comfy-cli")) == Version("1.24.1")
    assert choose(index) == upstream.Trio(Version("2.15.0"), Version("0.29.2"), Version("2.11.1"))


def choose(index: upstream.Index, pinned: tuple[str, str, str] = ("2.8.0", "0.23.0", "2.8.0")):  # type: ignore[no-untyped-def]
    trio = upstream.Trio(*map(Version, pinned))
    available = {name: list(index.releases(name)) for name in TORCH_TRIO}
    return upstream.choose_trio(
        trio,
        available,
        lambda pkg, v, torch: upstream.accepts(index.requires(pkg, v), torch, "3.12"),
    )


def test_trio_waits_for_a_torchvision_that_accepts_the_torch(answers: Answers) -> None:
    """torch 2.15.0 and 2.14.1 are out, but the newest torchvision pins torch==2.14.0."""
    answers.drop("torchvision", "0.29.1", "0.29.2")
    index = upstream.Index(INDEX, answers)
    assert choose(index) == upstream.Trio(Version("2.14.0"), Version("0.29.0"), Version("2.11.1"))


def test_a_release_without_a_torch_requirement_accepts_no_torch(answers: Answers) -> None:
    """torchaudio 2.11.0 was published without Requires-Dist torch; it is not a match."""
    answers.drop("torchaudio", "2.11.1")
    index = upstream.Index(INDEX, answers)
    assert choose(index) == upstream.Trio(Version("2.10.0"), Version("0.25.0"), Version("2.10.0"))


def test_requirement_markers_are_read_for_linux_and_the_stack_python() -> None:
    reqs = [
        upstream.Requirement('torch==2.9.0; sys_platform == "darwin"'),
        upstream.Requirement('torch==2.10.0; sys_platform == "linux" and python_version >= "3.12"'),
        upstream.Requirement('torch==1.0; extra == "old"'),
    ]
    assert upstream.accepts(reqs, Version("2.10.0"), "3.12")
    assert not upstream.accepts(reqs, Version("2.9.0"), "3.12")
    assert not upstream.accepts(reqs, Version("2.10.0"), "3.11"), "no requirement applies"
    arm = [upstream.Requirement('torch==2.11.0; platform_machine == "aarch64"')]
    assert upstream.accepts(arm, Version("2.11.0"), "3.12", "aarch64")
    assert not upstream.accepts(arm, Version("2.11.0"), "3.12", "x86_64")


def test_metadata_is_read_from_the_wheel_when_the_index_serves_none(answers: Answers) -> None:
    """Indexes without PEP 658 (like the one the fixtures came from) still work."""
    meta = answers.files.pop("torchvision-0.29.2-py3-none-win_amd64.whl.metadata")
    (entry,) = [f for f in answers.simple["torchvision"]["files"] if "-0.29.2-" in f["filename"]]
    del entry["core-metadata"], entry["data-dist-info-metadata"]
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("torchvision/__init__.py", "")
        archive.writestr("torchvision-0.29.2.dist-info/METADATA", meta)
    answers.raw["https://index.test" + entry["url"]] = wheel.getvalue()
    index = upstream.Index(INDEX, answers)
    assert choose(index).torchvision == Version("0.29.2")
    assert "https://index.test" + entry["url"] in answers.calls


def test_metadata_that_does_not_match_the_index_hash_is_refused(answers: Answers) -> None:
    name = "torchvision-0.29.2-py3-none-win_amd64.whl.metadata"
    answers.files[name] = answers.files[name].replace(b">=2.14.0", b">=2.0")
    with pytest.raises(upstream.SourceError, match=r"package index \(torchvision\): .*sha256"):
        choose(upstream.Index(INDEX, answers))


def test_pip_configuration_decides_the_index_and_the_environment_wins() -> None:
    class Listed:
        stdout = (
            "global.index-url='https://mirror.test/pypi/simple'\ninstall.cert='/etc/corp-ca.pem'\n"
        )

    def run(*_args: Any, **_kwargs: Any) -> Listed:
        return Listed()

    assert pip_config.pip_settings({}, run=run) == {
        "index-url": "https://mirror.test/pypi/simple",
        "cert": "/etc/corp-ca.pem",
    }
    found = pip_config.pip_settings({"PIP_INDEX_URL": "https://other.test/simple"}, run=run)
    assert found["index-url"] == "https://other.test/simple"


# --- the command ---------------------------------------------------------------------------


def test_prod_reports_each_bump_and_the_targets_it_rebuilds(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    before = prod.read_bytes()
    code, out, _ = run(prod, answers, capsys=capsys)
    assert code == releases.EXIT_BUMPS
    assert prod.read_bytes() == before, "without --write the file is only read"
    for line in (
        "| `comfyui` | v0.8.1 | **v0.44.0** |",
        "| `comfyCli` | 1.23.0 | 1.23.0 (current) |",
        "| `torch` | 2.8.0 | **2.15.0** |",
        "| `torchvision` | 0.23.0 | **0.29.2** |",
        "| `torchaudio` | 2.8.0 | **2.11.1** |",
    ):
        assert line in out
    # comfyui reaches every core and its environment (its source and lock); the trio only
    # the lines without their own (cu126 keeps its own pins, as its index stopped at 2.14.1),
    # but cu126's complete follows its core. Each build is named once, in build order.
    assert (
        "Rebuilds: `core-env-cuda-cu130`, `core-env-cuda-cu126`, `core-cuda-cu130`, "
        "`core-cuda-cu126`, `core-env-cpu`, `core-cpu`, `core-env-rocm`, `core-rocm`, "
        "`core-env-xpu`, `core-xpu`, `sageattention-builder-cu130` (their build args or "
        "sources change), then `complete-cuda-cu130`, `complete-cuda-cu126` (a parent's "
        "digest changes)."
    ) in out
    assert "runtime-" not in out, "no pin tracked here reaches the runtimes"


@pytest.mark.parametrize(
    ("bumps", "direct", "descendants"),
    [
        # comfy-cli is core's own stage: no environment image is rebuilt.
        (
            {"comfyCli": "1.24.0"},
            ["core-cpu", "core-cuda-cu130", "core-cuda-cu126", "core-rocm", "core-xpu"],
            ["complete-cuda-cu130", "complete-cuda-cu126"],
        ),
        # The trio is installed in core's environment image; each core and complete follow
        # it. The cu126 line pins its own trio: a stack-wide trio bump passes it by.
        (
            {"torchvision": "0.29.2"},
            ["core-env-cpu", "core-env-cuda-cu130", "core-env-rocm", "core-env-xpu"],
            ["core-cpu", "core-cuda-cu130", "core-rocm", "core-xpu", "complete-cuda-cu130"],
        ),
        (
            {"torch": "2.15.0"},
            [
                "sageattention-builder-cu130",
                "core-env-cpu",
                "core-env-cuda-cu130",
                "core-env-rocm",
                "core-env-xpu",
            ],
            ["core-cpu", "core-cuda-cu130", "core-rocm", "core-xpu", "complete-cuda-cu130"],
        ),
        ({}, [], []),
    ],
)
def test_rebuilt_targets_follow_the_catalog_and_the_graph(
    prod: Path, bumps: dict[str, str], direct: list[str], descendants: list[str]
) -> None:
    settings = releases.StackFile.read(prod).settings()
    found = releases.rebuilt_targets(settings, bumps)
    assert sorted(found["direct"]) == sorted(direct)
    assert sorted(found["descendants"]) == sorted(descendants)


def test_write_changes_only_the_pin_values(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    before = prod.read_text()
    code, out, _ = run(prod, answers, "--write", capsys=capsys)
    assert code == releases.EXIT_BUMPS
    assert "Written to" in out
    after = prod.read_text()
    assert len(after.splitlines()) == len(before.splitlines()), "no line added or removed"
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert changed == [
        ("    torch: 2.8.0", "    torch: 2.15.0"),
        ("    torchvision: 0.23.0", "    torchvision: 0.29.2"),
        ("    torchaudio: 2.8.0", "    torchaudio: 2.11.1"),
        ("    comfyui: v0.8.1", "    comfyui: v0.44.0"),
    ]
    assert "# Environment secrets, one per name" in after, "comments survive"
    assert pins(prod) == {**pins(ROOT / "stacks" / "Pulumi.prod.yaml"), **NEWEST}
    code, _, _ = run(prod, answers, "--write", capsys=capsys)
    assert code == releases.EXIT_CURRENT, "a second run finds nothing new"


def test_write_keeps_quotes_and_quotes_what_yaml_would_not_read_as_text(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    text = prod.read_text().replace("torch: 2.8.0", 'torch: "2.8.0"')
    prod.write_text(text.replace("comfyCli: 1.23.0", "comfyCli: '1.22.0'"))
    answers.add_wheel("comfy-cli", "1.24", None)
    run(prod, answers, "--write", capsys=capsys)
    after = prod.read_text()
    assert '    torch: "2.15.0"\n' in after
    assert "    comfyCli: '1.24'\n" in after
    prod.write_text(after.replace("comfyCli: '1.24'", "comfyCli: 1.22.0"))
    run(prod, answers, "--write", capsys=capsys)
    assert '    comfyCli: "1.24"\n' in prod.read_text(), "a plain 1.24 would be read as a number"
    assert pins(prod)["comfyCli"] == "1.24"


def test_a_comfyui_commit_pin_is_shown_but_never_replaced_by_a_tag(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    set_pins(prod, **{**NEWEST, "comfyui": commit})
    code, out, _ = run(prod, answers, "--write", capsys=capsys)
    assert code == releases.EXIT_CURRENT
    assert f"| `comfyui` | {commit} | v0.44.0 (not compared) |" in out
    assert pins(prod)["comfyui"] == commit


def test_nothing_new_exits_0_and_leaves_the_file_alone(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    set_pins(prod, **NEWEST)
    before = prod.read_bytes()
    code, out, err = run(prod, answers, "--write", capsys=capsys)
    assert (code, err) == (releases.EXIT_CURRENT, "")
    assert prod.read_bytes() == before
    assert "Every tracked pin is current." in out
    assert "**" not in out


def test_a_stack_on_default_pins_is_reported_but_not_written(
    tmp_path: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = tmp_path / "Pulumi.dev.yaml"
    shutil.copy(ROOT / "stacks" / "Pulumi.dev.yaml", dev)
    before = dev.read_bytes()
    answers.github[1]["prerelease"] = False  # v0.45.0 is out: dev's default is behind
    code, out, _ = run(dev, answers, "--write", capsys=capsys)
    assert code == releases.EXIT_BUMPS
    assert dev.read_bytes() == before
    assert "Not written: `comfyui`" in out
    assert "Rebuilds: `core-env-cpu`, `core-cpu` (their build args or sources change)." in out
    for cuda_build in ("core-env-cuda", "core-cuda"):
        assert cuda_build not in out, "dev builds only core-cpu and its environment"


@pytest.mark.parametrize(
    "case",
    [
        ("api.github.com", upstream.FetchError("HTTP 503 from x"), "GitHub releases of Comfy-Org"),
        (
            "/simple/torchvision/",
            upstream.FetchError("HTTP 503 from x"),
            "package index (torchvision)",
        ),
        ("/simple/comfy-cli/", upstream.FetchError("timed out"), "package index (comfy-cli)"),
        (".metadata", upstream.FetchError("HTTP 404 from x"), "package index (torchvision)"),
    ],
)
def test_a_failing_source_is_named_and_nothing_is_written(
    prod: Path,
    answers: Answers,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, Exception, str],
) -> None:
    part, error, source = case
    answers.fail[part] = error
    before = prod.read_bytes()
    code, out, err = run(prod, answers, "--write", capsys=capsys)
    assert code == releases.EXIT_ERROR
    assert out == ""
    assert err.startswith(f"track-releases: {source}"), err
    assert str(error) in err
    assert prod.read_bytes() == before


def test_an_index_without_pep_691_json_is_named(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    answers.raw[f"{INDEX}/torch/"] = b"<!DOCTYPE html><html><body>torch</body></html>"
    code, _, err = run(prod, answers, capsys=capsys)
    assert code == releases.EXIT_ERROR
    assert "package index (torch)" in err
    assert "PEP 691" in err


def test_github_error_answer_is_named(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    answers.raw[f"{GITHUB_RELEASES}?per_page=100"] = json.dumps(
        {"message": "API rate limit exceeded"}
    ).encode()
    code, _, err = run(prod, answers, capsys=capsys)
    assert code == releases.EXIT_ERROR
    assert "GitHub releases of Comfy-Org/ComfyUI" in err
    assert "API rate limit exceeded" in err


def lines_of(path: Path) -> dict[str, dict[str, str]]:
    return dict(yaml.safe_load(path.read_text())["config"]["comfyui-images:cudaLines"])


def test_a_line_with_its_own_trio_is_proposed_the_newest_its_own_index_carries(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    """cu126 pins 2.9.1: its recorded index carries up to 2.14.1, but the newest torch that a
    torchvision and a torchaudio on it accept is 2.10.0 (torchaudio 2.11.0 declares no torch
    requirement, which accepts none). Its other keys stay; cu130 follows the stack."""
    document = yaml.safe_load(prod.read_text())
    document["config"]["comfyui-images:cudaLines"] = {
        "cu130": {"cuda": "13.0.2"},
        "cu126": {
            "cuda": "12.6.3",
            "torch": "2.9.1",
            "torchvision": "0.24.1",
            "torchaudio": "2.9.1",
            "cudaArchList": "8.0;8.6",
        },
    }
    prod.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, _ = run(prod, answers, "--write", capsys=capsys)
    assert code == releases.EXIT_BUMPS
    assert (
        "| `cudaLines.cu126` | https://download.pytorch.org/whl/cu126 | "
        "2.9.1 / 0.24.1 / 2.9.1 (its own) | "
        "2.10.0 / 0.25.0 / 2.10.0 | **2.10.0 / 0.25.0 / 2.10.0** under the line |"
    ) in out
    assert "| `cudaLines.cu130` | https://download.pytorch.org/whl/cu130 |" in out
    assert "follows `versions` (bumped with it) |" in out
    assert "`cudaLines.cu126` → torch 2.10.0" in out
    assert lines_of(prod)["cu126"] == {
        "cuda": "12.6.3",
        "torch": "2.10.0",
        "torchvision": "0.25.0",
        "torchaudio": "2.10.0",
        "cudaArchList": "8.0;8.6",
    }
    assert lines_of(prod)["cu130"] == {"cuda": "13.0.2"}
    assert pins(prod)["torch"] == "2.15.0"


def test_a_line_whose_index_dropped_it_stays_on_its_last_pins_and_says_why(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    """The recorded cu126 index has no torch 2.15.0 (PyTorch dropped the line at 2.15). A
    cu126 line that follows versions must not move to it: it gets its own trio, the newest
    its index carries, and the body says why."""
    document = yaml.safe_load(prod.read_text())
    document["config"]["comfyui-images:cudaLines"]["cu126"] = {"cuda": "12.6.3"}
    prod.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, _ = run(prod, answers, "--write", capsys=capsys)
    assert code == releases.EXIT_BUMPS
    assert pins(prod)["torch"] == "2.15.0", "the stack still moves: its other builds carry it"
    assert lines_of(prod)["cu126"] == {
        "cuda": "12.6.3",
        "torch": "2.10.0",
        "torchvision": "0.25.0",
        "torchaudio": "2.10.0",
    }
    assert (
        "- `cudaLines.cu126`: https://download.pytorch.org/whl/cu126 publishes no torch 2.15.0 "
        "trio for "
        "Python 3.12 on x86_64: the line stays on the newest trio it carries, torch 2.10.0, "
        "now pinned under the line."
    ) in out
    assert "follows `versions` (bumped with it)" in out
    assert "`cudaLines.cu130` → torch" not in out, "the line whose index carries it follows"


def test_a_line_already_on_its_last_pins_stays_and_the_body_says_so(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prod as committed: cu126 pins 2.14.1, and its index carries nothing newer that fits."""
    before = lines_of(prod)
    code, out, _ = run(prod, answers, "--write", capsys=capsys)
    assert code == releases.EXIT_BUMPS  # the stack's own pins are behind (BEHIND)
    assert (
        "- `cudaLines.cu126`: its index carries nothing newer than torch 2.14.1 (the stack's "
        "torch is "
        "2.15.0); the line stays on its pins."
    ) in out
    assert lines_of(prod) == before


def test_the_builds_that_cannot_pin_their_own_hold_the_stack_to_what_their_index_carries(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    """core-cpu installs from /whl/cpu and has no line to pin on: with 2.15.0 missing there,
    the stack's trio stops at 2.14.1 although pip's index has 2.15.0."""
    page = RECORDS / "download.pytorch.org" / "whl" / "cpu" / "torch" / "index.html"
    kept = [
        line for line in page.read_text().splitlines(keepends=True) if "torch-2.15.0" not in line
    ]
    answers.raw[f"{PYTORCH}cpu/torch/"] = "".join(kept).encode()
    code, out, _ = run(prod, answers, capsys=capsys)
    assert code == releases.EXIT_BUMPS
    assert "| `torch` | 2.8.0 | **2.14.1** |" in out
    assert "| `torchvision` | 0.23.0 | **0.29.2** |" in out


def test_a_line_index_that_fails_is_named(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    answers.fail["/whl/cu130/torchvision/"] = upstream.FetchError("HTTP 503 from there")
    code, _, err = run(prod, answers, capsys=capsys)
    assert code == releases.EXIT_ERROR
    assert "torch index of line cu130 (https://download.pytorch.org/whl/cu130) (torchvision)" in err
    assert "HTTP 503" in err


def test_an_unknown_stack_is_an_error_naming_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    code = releases.main(["--stack", "nope", "--index-url", INDEX], fetch=Answers(), env={})
    assert code == releases.EXIT_ERROR
    assert "stack file" in capsys.readouterr().err


# --- a property ------------------------------------------------------------------------------

versions = st.builds(
    lambda a, b, c: Version(f"{a}.{b}.{c}"),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 2),
)


@given(
    pinned=st.tuples(versions, versions, versions),
    available=st.fixed_dictionaries({name: st.lists(versions, max_size=6) for name in TORCH_TRIO}),
    salt=st.integers(0, 2**16),
)
def test_the_chosen_trio_is_never_older_than_the_pins_and_is_compatible(
    pinned: tuple[Version, Version, Version],
    available: dict[str, list[Version]],
    salt: int,
) -> None:
    """Whatever the index holds and whatever each release accepts, the proposal is never
    older than a pin, every proposed pair is accepted, and no newer torch would have fit."""
    pins_ = upstream.Trio(*pinned)

    def fits(package: str, release: Version, torch: Version) -> bool:
        key = f"{salt}:{package}:{release}:{torch}".encode()
        return hashlib.sha256(key).digest()[0] % 3 != 0

    trio = upstream.choose_trio(pins_, available, fits)
    for name in TORCH_TRIO:
        assert getattr(trio, name) >= getattr(pins_, name)

    def both_fit(torch: Version) -> bool:
        return any(
            fits("torchvision", v, torch)
            for v in available["torchvision"]
            if v >= pins_.torchvision
        ) and any(
            fits("torchaudio", a, torch) for a in available["torchaudio"] if a >= pins_.torchaudio
        )

    assert not any(both_fit(t) for t in available["torch"] if t > trio.torch), "a newer one fits"
    if trio != pins_:
        assert fits("torchvision", trio.torchvision, trio.torch)
        assert fits("torchaudio", trio.torchaudio, trio.torch)


# --- the lock -------------------------------------------------------------------------------


class Relocks:
    """Records what release tracking asks to lock (a real lock needs GitHub and the index)."""

    def __init__(self, fail: str = "") -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.fail = fail

    def __call__(self, settings: Any, stack: str) -> Path:
        if self.fail:
            raise LockError(self.fail)
        self.calls.append((stack, settings.versions.comfyui, settings.versions.comfyCli))
        return ROOT / "locks" / "comfyui" / settings.versions.comfyui / "constraints.txt"


def test_write_with_lock_relocks_the_new_pins_once(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bump of a pin the lock is resolved for comes with the lock of the new pins, read
    from the file as written (not the old pins)."""
    relocks = Relocks()
    args = ["--file", str(prod), "--index-url", INDEX, "--write", "--lock"]
    code = releases.main(args, fetch=answers, env={}, relock=relocks)
    out = capsys.readouterr().out
    assert code == releases.EXIT_BUMPS
    assert relocks.calls == [("prod", NEWEST["comfyui"], pins(prod)["comfyCli"])]
    assert "regenerated the lock `locks/comfyui/v0.44.0/constraints.txt`" in out
    code = releases.main(args, fetch=answers, env={}, relock=relocks)
    assert code == releases.EXIT_CURRENT
    assert len(relocks.calls) == 1, "nothing written, nothing relocked"


def test_lock_without_write_is_refused(prod: Path, answers: Answers) -> None:
    with pytest.raises(SystemExit):
        releases.main(["--file", str(prod), "--lock"], fetch=answers, env={})


def test_a_failing_lock_fails_the_run_naming_it(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    """No release PR with pins whose lock could not be made: the workflow stops on exit 1."""
    relocks = Relocks(fail="ComfyUI source https://example.invalid: git fetch failed")
    args = ["--file", str(prod), "--index-url", INDEX, "--write", "--lock"]
    code = releases.main(args, fetch=answers, env={}, relock=relocks)
    err = capsys.readouterr().err
    assert code == releases.EXIT_ERROR
    assert "their lock could not be made" in err
    assert "git fetch failed" in err


def test_a_rocm_line_with_its_own_trio_is_proposed_what_its_own_index_carries(
    prod: Path, answers: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every map of lines is tracked the same way: a ROCm line pinned at 2.14.0 moves to the
    newest trio its recorded rocm7.14 page carries, written under rocmLines.<line>."""
    document = yaml.safe_load(prod.read_text())
    config = document["config"]
    del config["comfyui-images:versions"]["rocm"]  # the line pins its own ROCm now
    config["comfyui-images:rocmLines"] = {
        "rocm7.14": {
            "rocm": "7.14",
            "torch": "2.14.0",
            "torchvision": "0.29.0",
            "torchaudio": "2.11.1",
        }
    }
    prod.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, _ = run(prod, answers, "--write", capsys=capsys)
    assert code == releases.EXIT_BUMPS
    assert "| `rocmLines.rocm7.14` | https://download.pytorch.org/whl/rocm7.14 | " in out
    assert "`rocmLines.rocm7.14` → torch 2.15.0" in out
    written = yaml.safe_load(prod.read_text())["config"]["comfyui-images:rocmLines"]
    assert written == {
        "rocm7.14": {
            "rocm": "7.14",
            "torch": "2.15.0",
            "torchvision": "0.29.2",
            "torchaudio": "2.11.1",
        }
    }
    assert "core-rocm-rocm7.14" in out, "the rebuild list names the line's build"
