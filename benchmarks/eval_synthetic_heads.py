"""Does every head learn? Score random init, a trained model and the trivial baselines on held-out clips.

Held-out clips are synthetic scenes of seeds [2e6, 2e6 + N) (training used [0, 1e6), the
training curves [1e6, 1e6 + 16)), 16 frames of 64 x 64, at most 32 tracks queried at their
first visible frame. Each clip is predicted with `L4PPredictor.predict` (all five tasks) and
scored by `l4p.training.heldout.evaluate_clip` (3D-AJ a second time with the clip's intrinsics
given, as TAPVid-3D gives them); the trivial baseline is
`l4p.training.heldout.trivial_prediction` (constant depth, zero flow, nothing moves, identity
cameras, tracks that stay at their query point, always visible). Writes
benchmarks/results/<date>-synthetic-heads.json and prints a markdown table.

Usage: python benchmarks/eval_synthetic_heads.py [--clips 48] [--checkpoint PATH] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

import l4p
from l4p.api import L4PPredictor
from l4p.build import build_model
from l4p.training.heldout import (
    HELDOUT_SEED,
    LOWER_IS_BETTER,
    SCENE,
    SCORES,
    clip_has_motion,
    evaluate_clip,
    heldout_clips,
    predict_clip,
    trivial_prediction,
)

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "l4p_synthetic_s"
LABELS = {
    "abs_rel": "depth AbsRel ↓", "delta1": "depth δ1 ↑", "epe": "flow EPE (px) ↓",
    "motion_iou": "motion IoU ↑", "aj": "2D tracks AJ ↑", "delta_avg": "2D tracks δ_avg ↑",
    "oa": "2D tracks OA ↑", "aj_moving": "2D AJ, clips with motion ↑",
    "delta_avg_moving": "2D δ_avg, clips with motion ↑", "aj_3d": "3D tracks 3D-AJ, K given ↑",
    "aj_3d_est_k": "3D tracks 3D-AJ, K estimated ↑",
    "ate": "camera ATE ↓", "rre": "camera RRE (deg) ↓",
}  # fmt: skip


def evaluate(predict, clips, moving: list[bool]) -> dict[str, float]:
    """Mean of every score over the clips (and AJ / δ_avg over the clips with motion)."""
    per_clip = [evaluate_clip(predict, clip) for clip in clips]
    out = {name: float(np.nanmean([s[name] for s in per_clip])) for name in SCORES}
    for name in ("aj", "delta_avg"):
        out[f"{name}_moving"] = float(np.nanmean([s[name] for s, m in zip(per_clip, moving) if m]))
    return out


def table(results: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per score, one column per model."""
    cols = list(results)
    lines = ["| held-out score | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, label in LABELS.items():
        lines.append(f"| {label} | " + " | ".join(f"{results[c][name]:.3f}" for c in cols) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument(
        "--checkpoint", help="trained weights, .safetensors (default: the shipped l4p_synthetic_s weights)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path (default: results/<date>-synthetic-heads.json)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(args.threads)

    tic = time.time()
    clips = heldout_clips(args.clips)
    moving = [clip_has_motion(c) for c in clips]
    torch.manual_seed(0)
    random_init = L4PPredictor(build_model(MODEL), device="cpu")
    trained = l4p.load_model(MODEL, checkpoint=args.checkpoint, device="cpu")
    results = {
        "trivial baseline": evaluate(trivial_prediction, clips, moving),
        "random init": evaluate(partial(predict_clip, random_init), clips, moving),
        MODEL: evaluate(partial(predict_clip, trained), clips, moving),
    }
    report = {
        "benchmark": "eval_synthetic_heads",
        "date": datetime.date.today().isoformat(),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": args.threads,
            "torch": torch.__version__,
            "loadavg": os.getloadavg()[0],
        },  # fmt: skip
        "model": MODEL,
        "checkpoint": args.checkpoint or "shipped (l4p/weights)",
        "clips": {
            "count": args.clips,
            "seeds": [HELDOUT_SEED, HELDOUT_SEED + args.clips],
            "with_motion": sum(moving),
            "frames": 16,
            "size": [64, 64],
            "max_tracks": 32,
            "queries": "first visible frame",
            "aj_3d": "3D tracks lifted with the clip's intrinsics given (TAPVid-3D); aj_3d_est_k: with the model's own",
            "scene": {k: list(v) if isinstance(v, tuple) else v for k, v in SCENE.items()},
        },  # fmt: skip
        "lower_is_better": list(LOWER_IS_BETTER),
        "results": results,
        "seconds": round(time.time() - tic, 1),
    }
    path = args.out or RESULTS / f"{report['date']}-synthetic-heads.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)
    print(f"{args.clips} held-out clips ({sum(moving)} with motion) in {report['seconds']} s; wrote {path}")
    print(table(results))


if __name__ == "__main__":
    main()
