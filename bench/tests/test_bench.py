"""The benchmark's outputs that need no engine: the table and the chart."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cache_scenarios import render, render_scaling, size
from bench.chart import draw, figure

ROWS = [
    {
        "path": "bake",
        "scenario": name,
        "title": title,
        "target": "(all)",
        "steps": 20,
        "cached": cached,
        "seconds": seconds,
        "ratio_to_cold": round(seconds / 100.0, 3),
        "bytes_pulled": pulled,
        "bytes_pushed": pushed,
    }
    for name, title, cached, seconds, pulled, pushed in (
        ("cold", "first build", 0, 100.0, 0, 2_600_000_000),
        ("app-change", "code change only", 19, 4.0, 12_000_000, 3_000),
    )
]


def test_table_shows_bytes_pulled_and_pushed() -> None:
    table = render(ROWS)
    assert "| pulled | pushed |" in table.splitlines()[0]
    assert "| 0 B | 2.6 GB |" in table
    assert "| 12.0 MB | 3.0 kB |" in table


def test_scaling_table() -> None:
    rows = [
        {
            "payload_gb": 2.5,
            "cold_seconds": 300.0,
            "app_change_seconds": 6.0,
            "app_change_context_seconds": 5.5,
            "ratio_to_cold": 0.02,
            "bytes_pulled": 5_000,
            "bytes_pushed": 4_000,
        }
    ]
    assert "| 2.5 GB | 300.0 | 6.0 | 5.5 | 0.020 | 5.0 kB | 4.0 kB |" in render_scaling(rows)
    assert size(999) == "999 B"


def test_chart_shows_each_scenarios_seconds_and_traffic(tmp_path: Path) -> None:
    document = {"payload": {"mode": "realistic"}, "rows": ROWS}
    fig = figure(document)
    [[seconds_ax, bytes_ax]] = [fig.axes[i : i + 2] for i in range(0, len(fig.axes), 2)]
    assert [b.get_height() for b in seconds_ax.patches] == [100.0, 4.0]
    assert [t.get_text() for t in seconds_ax.get_xticklabels()] == [
        "first build",
        "code change only",
    ]
    assert seconds_ax.get_title() == "bake: wall seconds (realistic payload)"
    # Pulled then pushed, in MB, one pair of bars per scenario.
    heights = {
        label: [b.get_height() for b in container]
        for container, label in zip(bytes_ax.containers, ["pulled", "pushed"], strict=True)
    }
    assert heights == {"pulled": [0.0, 12.0], "pushed": [2600.0, 0.003]}
    out = draw(document, tmp_path / "r.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compression_options_name_the_setting_for_image_and_cache() -> None:
    from bench.compression import compression_options  # noqa: PLC0415

    assert compression_options("gzip") == "compression=gzip,force-compression=true"
    zstd = compression_options("zstd-9")
    assert "compression=zstd" in zstd
    assert "compression-level=9" in zstd
    # zstd layers need OCI media types: Docker's schema has no zstd layer type.
    assert "oci-mediatypes=true" in zstd


def test_compression_payload_is_native_code_of_the_asked_size(tmp_path: Path) -> None:
    from bench.compression import MB, make_payload  # noqa: PLC0415

    written = make_payload(tmp_path / "payload", 3 * MB + 7)
    files = sorted((tmp_path / "payload").iterdir())
    assert written == sum(f.stat().st_size for f in files) == 3 * MB + 7
    assert all(f.read_bytes()[:4] == b"\x7fELF" for f in files)


def test_context_seconds_count_only_local_context_transfers(tmp_path: Path) -> None:
    from bench.cache_scenarios import context_seconds  # noqa: PLC0415

    def vertex(digest: str, name: str, start: str, end: str) -> str:
        v = {"digest": digest, "name": name, "started": start, "completed": end}
        return json.dumps({"vertexes": [v]})

    stream = "\n".join(
        [
            vertex(
                "sha256:a",
                "[context wheelhouse] load from client",
                "2026-11-30T05:00:00Z",
                "2026-11-30T05:00:11Z",
            ),
            vertex(
                "sha256:b",
                "[internal] load build context",
                "2026-11-30T05:00:11Z",
                "2026-11-30T05:00:12.5Z",
            ),
            vertex(
                "sha256:c",
                "[core 2/9] RUN pip install torch",
                "2026-11-30T05:00:12Z",
                "2026-11-30T05:01:12Z",
            ),
        ]
    )
    progress = tmp_path / "t.rawjson"
    progress.write_text(stream)
    assert context_seconds(progress) == 12.5
