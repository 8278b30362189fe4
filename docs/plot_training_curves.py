"""Draw the training curves of an `l4p fit` run from its CSV log (docs/training_curves.png).

Left: every training loss (unweighted, smoothed over 5 logged points) over optimiser steps.
Middle: the held-out metrics logged at each validation (synthetic seeds [1e6, 1e6 + 16)).
Right (with --compare): the position-heatmap cross-entropy of this run and of other runs (e.g.
with the default tracker initialisation); log(1024) is a uniform heatmap.

Usage: python docs/plot_training_curves.py RUN/logs/version_0/csv/metrics.csv
       [--compare OTHER/metrics.csv "default init"]... [--out docs/training_curves.png]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LOSSES = ("depth", "flow", "motion", "camera", "track_position", "track_heatmap", "visibility", "track_depth")
METRICS = {"abs_rel": "depth AbsRel ↓", "delta1": "depth δ1 ↑", "epe": "flow EPE px ↓",
           "motion_iou": "motion IoU ↑", "aj": "2D AJ ↑", "delta_avg": "2D δ_avg ↑", "oa": "2D OA ↑"}  # fmt: skip


def read_series(path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one logged column, rows where it is set."""
    steps, values = [], []
    with open(path) as f:
        for row in csv.DictReader(f):
            if row.get(key):
                steps.append(int(row["step"]))
                values.append(float(row[key]))
    return np.asarray(steps), np.asarray(values)


def smooth(values: np.ndarray, width: int = 5) -> np.ndarray:
    """Trailing moving average (same length)."""
    if values.size < 2:
        return values
    kernel = np.ones(min(width, values.size))
    return (
        np.convolve(values, kernel, mode="full")[: values.size]
        / np.convolve(np.ones_like(values), kernel, mode="full")[: values.size]
    )


def plot(
    csv_path: Path, out: Path, *, title: str = "", compare: list[tuple[Path, str]] | None = None
) -> Path:
    """Draw the panels and write `out` (PNG); `compare`: other runs' (metrics.csv, label)."""
    panels = 3 if compare else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.2))
    ax_loss, ax_metric = axes[0], axes[1]
    for name in LOSSES:
        steps, values = read_series(csv_path, f"train/loss_{name}")
        if steps.size:
            scale = values[: max(1, min(5, values.size))].mean()
            ax_loss.plot(steps, smooth(values) / max(scale, 1e-9), label=name)
    ax_loss.set(xlabel="optimiser step", ylabel="loss / its value at the start", yscale="log",
                title="training losses (relative, smoothed)")  # fmt: skip
    ax_loss.legend(fontsize=7, ncol=2)
    for key, label in METRICS.items():
        steps, values = read_series(csv_path, f"val/{key}")
        if steps.size:
            ax_metric.plot(steps, values, marker="o", label=label)
    ax_metric.set(xlabel="optimiser step", ylabel="score", title="held-out metrics (16 synthetic clips)")
    ax_metric.legend(fontsize=7, ncol=2)
    if compare:
        ax = axes[2]
        for path, label in [(csv_path, "this run (localising tracker init)"), *compare]:
            steps, values = read_series(path, "train/loss_track_heatmap")
            ax.plot(steps, smooth(values), label=label)
        ax.axhline(np.log(32 * 32), color="grey", ls=":", label="uniform heatmap (log 1024)")
        ax.set(xlabel="optimiser step", ylabel="position heatmap cross-entropy",
               title="tracking leaves the plateau (smoothed)")  # fmt: skip
        ax.legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out


def main() -> None:
    """Parse arguments and draw."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("csv", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "training_curves.png")
    parser.add_argument("--compare", nargs=2, action="append", metavar=("CSV", "LABEL"),
                        help="another run's metrics.csv and its label (repeatable)")  # fmt: skip
    parser.add_argument(
        "--title", default="l4p_synthetic_s: l4p fit --config configs/synthetic_small.yaml (CPU)"
    )
    args = parser.parse_args()
    compare = [(Path(path), label) for path, label in args.compare or []]
    plot(args.csv, args.out, title=args.title, compare=compare)


if __name__ == "__main__":
    main()
