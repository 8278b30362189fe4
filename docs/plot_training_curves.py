"""Draw the training curves of an `l4p fit` run from its CSV log (docs/training_curves.png).

Left: every training loss (unweighted, smoothed over 5 logged points) over optimiser steps.
Middle: the held-out metrics logged at each validation (synthetic seeds [1e6, 1e6 + 16)).
Then (with --compare), one panel per --compare-key (default: the position-heatmap
cross-entropy, where log(1024) is a uniform heatmap) with this run and the other runs (e.g. with
the default tracker initialisation, or without the `track_match` loss).

Several CSVs before the options are the stages of one run (e.g. configs/synthetic_small.yaml,
then configs/synthetic_small_ft.yaml): each stage's steps continue after the previous one's, and
a dotted line marks where a stage starts.

Usage: python docs/plot_training_curves.py RUN/logs/version_0/csv/metrics.csv [STAGE2/metrics.csv]
       [--compare OTHER/metrics.csv "default init"]... [--compare-key val/epe]...
       [--label "this run"] [--out docs/training_curves.png]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LOSSES = ("depth", "flow", "motion", "camera", "track_position", "track_heatmap", "visibility", "track_depth",
          "track_match")  # fmt: skip
HEATMAP = "train/loss_track_heatmap"
KEY_TITLES = {HEATMAP: "position heatmap cross-entropy (smoothed)"}
METRICS = {"abs_rel": "depth AbsRel ↓", "delta1": "depth δ1 ↑", "epe": "flow EPE px ↓",
           "motion_iou": "motion IoU ↑", "aj": "2D AJ ↑", "delta_avg": "2D δ_avg ↑", "oa": "2D OA ↑"}  # fmt: skip


def read_series(path: Path | tuple[Path, ...], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one logged column, rows where it is set; a tuple of paths is stages."""
    steps, values = [], []
    offset = 0
    for stage in (path,) if isinstance(path, Path) else path:
        last = -1
        with open(stage) as f:
            for row in csv.DictReader(f):
                last = max(last, int(row["step"]))
                if row.get(key):
                    steps.append(offset + int(row["step"]))
                    values.append(float(row[key]))
        offset += last + 1
    return np.asarray(steps), np.asarray(values)


def stage_starts(paths: tuple[Path, ...]) -> list[int]:
    """The first step of every stage after the first."""
    starts, offset = [], 0
    for stage in paths[:-1]:
        with open(stage) as f:
            offset += max(int(row["step"]) for row in csv.DictReader(f)) + 1
        starts.append(offset)
    return starts


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
    csv_path: Path | tuple[Path, ...],
    out: Path,
    *,
    title: str = "",
    compare: list[tuple[Path, str]] | None = None,
    compare_keys: tuple[str, ...] = (HEATMAP,),
    label: str = "this run",
) -> Path:
    """Draw the panels and write `out` (PNG); `compare`: other runs' (metrics.csv, label).

    `csv_path`: one run's metrics.csv, or a tuple of them, the stages of one run in order.
    """
    panels = 2 + (len(compare_keys) if compare else 0)
    cols = min(panels, 3)
    rows = -(-panels // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(6 * cols, 4.2 * rows), squeeze=False)
    axes = list(grid.flat)
    for ax in axes[panels:]:
        ax.set_axis_off()
    axes = axes[:panels]
    ax_loss, ax_metric = axes[0], axes[1]
    for name in LOSSES:
        steps, values = read_series(csv_path, f"train/loss_{name}")
        if steps.size:
            scale = values[: max(1, min(5, values.size))].mean()
            ax_loss.plot(steps, smooth(values) / max(scale, 1e-9), label=name)
    ax_loss.set(xlabel="optimiser step", ylabel="loss / its value at the start", yscale="log",
                title="training losses (relative, smoothed)")  # fmt: skip
    ax_loss.legend(fontsize=7, ncol=2)
    for key, metric_label in METRICS.items():
        steps, values = read_series(csv_path, f"val/{key}")
        if steps.size:
            ax_metric.plot(steps, values, marker="o", label=metric_label)
    ax_metric.set(xlabel="optimiser step", ylabel="score", title="held-out metrics (16 synthetic clips)")
    ax_metric.legend(fontsize=7, ncol=2)
    for ax, key in zip(axes[2:], compare_keys if compare else ()):
        for path, name in [(csv_path, label), *(compare or [])]:
            steps, values = read_series(path, key)
            if steps.size:
                ax.plot(steps, smooth(values) if key.startswith("train/") else values,
                        marker=None if key.startswith("train/") else "o", label=name)  # fmt: skip
        if key == HEATMAP:
            ax.axhline(np.log(32 * 32), color="grey", ls=":", label="uniform heatmap (log 1024)")
        metric = key.split("/", 1)[-1]
        ax.set(xlabel="optimiser step", ylabel=METRICS.get(metric, metric),
               title=KEY_TITLES.get(key, f"held-out {METRICS.get(metric, metric)}"))  # fmt: skip
        ax.legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
        for start in stage_starts(csv_path if isinstance(csv_path, tuple) else (csv_path,)):
            ax.axvline(start, color="black", ls=":", lw=1)
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
    parser.add_argument("csv", type=Path, nargs="+", help="the run's metrics.csv, one per stage in order")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "training_curves.png")
    parser.add_argument("--compare", nargs=2, action="append", metavar=("CSV", "LABEL"),
                        help="another run's metrics.csv and its label (repeatable)")  # fmt: skip
    parser.add_argument(
        "--compare-key",
        action="append",
        metavar="KEY",
        help=f"a logged column drawn for every run in its own panel (repeatable; default {HEATMAP})",
    )
    parser.add_argument("--label", default="this run", help="legend label of this run in the compare panels")
    parser.add_argument(
        "--title", default="l4p_synthetic_s: l4p fit --config configs/synthetic_small.yaml (CPU)"
    )
    args = parser.parse_args()
    compare = [(Path(path), label) for path, label in args.compare or []]
    keys = tuple(args.compare_key or (HEATMAP,))
    plot(tuple(args.csv), args.out, title=args.title, compare=compare, compare_keys=keys, label=args.label)


if __name__ == "__main__":
    main()
