"""The benchmark's outputs that need no engine: the table and the chart."""

from __future__ import annotations

from pathlib import Path

from bench.cache_scenarios import render, render_scaling, size
from bench.chart import draw

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
            "ratio_to_cold": 0.02,
            "bytes_pulled": 5_000,
            "bytes_pushed": 4_000,
        }
    ]
    assert "| 2.5 GB | 300.0 | 6.0 | 0.020 | 5.0 kB | 4.0 kB |" in render_scaling(rows)
    assert size(999) == "999 B"


def test_chart_is_drawn(tmp_path: Path) -> None:
    out = draw({"payload": {"mode": "realistic"}, "rows": ROWS}, tmp_path / "r.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
