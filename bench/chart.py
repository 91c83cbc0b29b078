"""The benchmark's result as a chart: seconds and registry bytes per scenario, for every
path measured (bake, pulumi up), cold next to each rebuild. People compare bars faster
than rows.

    venv/bin/python -m bench.chart bench/results/<stamp>.json   # writes <stamp>.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def totals(document: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The "(all)" row of each scenario of one path, in run order."""
    return [r for r in document["rows"] if r["target"] == "(all)" and r.get("path") == path]


def draw(document: dict[str, Any], out: Path) -> Path:
    fig = figure(document)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def figure(document: dict[str, Any]) -> Figure:
    """One row of axes per path measured (seconds, then registry MB), then the scaling."""
    paths = [p for p in ("bake", "pulumi up") if totals(document, p)]
    scaling = document.get("scaling") or []
    rows_of_axes = len(paths) + (1 if scaling else 0)
    fig, axes = plt.subplots(rows_of_axes, 2, figsize=(12, 3.6 * rows_of_axes), squeeze=False)
    if scaling:
        draw_scaling(axes[-1], scaling)
    payload = document.get("payload", {}).get("mode", "small")
    for row_axes, path in zip(axes[: len(paths)], paths, strict=True):
        rows = totals(document, path)
        labels = [r["title"] for r in rows]
        x = range(len(rows))
        seconds_ax, bytes_ax = row_axes
        seconds_ax.bar(x, [r["seconds"] for r in rows], color="#4c72b0")
        seconds_ax.set_title(f"{path}: wall seconds ({payload} payload)")
        seconds_ax.set_ylabel("seconds")
        width = 0.4
        pulled = [(r.get("bytes_pulled") or 0) / 1e6 for r in rows]
        pushed = [(r.get("bytes_pushed") or 0) / 1e6 for r in rows]
        bytes_ax.bar([i - width / 2 for i in x], pulled, width, label="pulled", color="#55a868")
        bytes_ax.bar([i + width / 2 for i in x], pushed, width, label="pushed", color="#c44e52")
        bytes_ax.set_title(f"{path}: registry traffic")
        bytes_ax.set_ylabel("MB")
        bytes_ax.legend()
        for ax in row_axes:
            ax.set_xticks(list(x))
            ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    fig.tight_layout()
    return fig


def draw_scaling(row_axes: Any, scaling: list[dict[str, Any]]) -> None:
    """How an app change's cost grows with the payload under it: seconds (and the part spent
    sending local contexts) and bytes pulled, per CUDA payload size."""
    seconds_ax, bytes_ax = row_axes
    sizes = [r["payload_gb"] for r in scaling]
    seconds_ax.plot(sizes, [r["app_change_seconds"] for r in scaling], "o-", label="app change")
    if all("app_change_context_seconds" in r for r in scaling):
        own = [r["app_change_seconds"] - r["app_change_context_seconds"] for r in scaling]
        seconds_ax.plot(sizes, own, "s--", label="without local context transfer")
    seconds_ax.set_title("app change vs CUDA payload: seconds")
    seconds_ax.set_xlabel("payload GB")
    seconds_ax.set_ylabel("seconds")
    seconds_ax.legend()
    bytes_ax.plot(sizes, [r["bytes_pulled"] / 1e6 for r in scaling], "o-", label="pulled")
    bytes_ax.plot(sizes, [r["bytes_pushed"] / 1e6 for r in scaling], "s--", label="pushed")
    bytes_ax.set_title("app change vs CUDA payload: registry traffic")
    bytes_ax.set_xlabel("payload GB")
    bytes_ax.set_ylabel("MB")
    bytes_ax.legend()


def main(argv: list[str]) -> int:
    source = Path(argv[0])
    print(draw(json.loads(source.read_text()), source.with_suffix(".png")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
