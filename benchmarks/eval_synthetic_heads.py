"""Does every head learn? Score random init, a trained model and the trivial baselines on held-out clips.

Held-out clips are synthetic scenes of seeds [2e6, 2e6 + N) (training used [0, 1e6), the
training curves [1e6, 1e6 + 16)), 16 frames of 64 x 64, at most 32 tracks queried at their
first visible frame. Each clip is predicted with `L4PPredictor.predict` (all five tasks) and
scored by `l4p.training.heldout.evaluate_clip` (3D-AJ a second time with the clip's intrinsics
given, as TAPVid-3D gives them); the trivial baseline is
`l4p.training.heldout.trivial_prediction` (constant depth, zero flow, nothing moves, identity
cameras, tracks that stay at their query point, always visible). Beside the means, each
score's per-clip difference between the trained model and the trivial baseline is summarised
as its mean with a paired bootstrap 95 % interval (`scipy.stats.bootstrap`, percentile, clips
resampled) and the number of clips on which the model is better / level / worse. A diagnostic
column scores tracks chained through the model's own flow (`flow_chained_tracks`): how much
motion the features carry, beside what the tracking head reads out of them. Writes
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
from scipy.stats import bootstrap

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
    flow_chained_tracks,
    heldout_clips,
    predict_clip,
    track_scores_2d,
    trivial_prediction,
)

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "l4p_synthetic_s"
CHAINED = "flow-chained tracks (diagnostic)"
LABELS = {
    "abs_rel": "depth AbsRel ↓", "delta1": "depth δ1 ↑", "epe": "flow EPE (px) ↓",
    "motion_iou": "motion IoU ↑", "aj": "2D tracks AJ ↑", "delta_avg": "2D tracks δ_avg ↑",
    "oa": "2D tracks OA ↑", "aj_moving": "2D AJ, clips with motion ↑",
    "delta_avg_moving": "2D δ_avg, clips with motion ↑", "aj_3d": "3D tracks 3D-AJ, K given ↑",
    "aj_3d_est_k": "3D tracks 3D-AJ, K estimated ↑",
    "ate": "camera ATE ↓", "rre": "camera RRE (deg) ↓",
}  # fmt: skip


def evaluate(predict, clips, moving: list[bool]) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Mean of every score over the clips (and AJ / δ_avg over the clips with motion), per-clip scores."""
    per_clip = [evaluate_clip(predict, clip) for clip in clips]
    return summarise(per_clip, moving, SCORES), per_clip


def summarise(per_clip: list[dict[str, float]], moving: list[bool], names) -> dict[str, float]:
    """Means of the named scores over the clips, and of AJ / δ_avg over the clips with motion."""
    out = {name: float(np.nanmean([s[name] for s in per_clip])) for name in names}
    for name in ("aj", "delta_avg"):
        out[f"{name}_moving"] = float(np.nanmean([s[name] for s, m in zip(per_clip, moving) if m]))
    return out


def evaluate_flow_chained(predictor, clips, moving: list[bool]) -> dict[str, float]:
    """2D AJ / δ_avg of tracks chained through the model's own flow (a diagnostic, not the tracking head).

    The positions come from `flow_chained_tracks` on the predicted backward flow; visibility
    stays the tracking head's. It measures how much motion the shared features carry, next to
    what the tracking head reads out of them.
    """
    per_clip = []
    for clip in clips:
        pred = predict_clip(predictor, clip)
        assert pred.flow is not None
        pred.tracks = flow_chained_tracks(pred.flow[0], clip["queries_n3"])[None]
        h, w = clip["rgb_tchw"].shape[-2:]
        per_clip.append(track_scores_2d(pred, clip, height=h, width=w))
    return summarise(per_clip, moving, ("aj", "delta_avg"))


def paired_gain(
    model: list[dict[str, float]], baseline: list[dict[str, float]], *, resamples: int = 9999, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Per score: the model's mean per-clip gain over the baseline (positive = better) and its spread.

    `gain` is the mean over clips of `model - baseline` (negated for lower-is-better scores),
    `ci95` a paired percentile-bootstrap interval of that mean (clips resampled, `scipy.stats.bootstrap`),
    `better` / `level` / `worse` the number of clips on which the model scores better, the same, worse.
    """
    out = {}
    for name in SCORES:
        sign = -1.0 if name in LOWER_IS_BETTER else 1.0
        diff = sign * (np.array([s[name] for s in model]) - np.array([s[name] for s in baseline]))
        diff = diff[np.isfinite(diff)]
        if diff.size == 0:
            continue
        if np.ptp(diff) == 0:  # every clip the same gain: the interval is that point
            low = high = float(diff[0])
        else:
            ci = bootstrap((diff,), np.mean, n_resamples=resamples, method="percentile",
                           rng=np.random.default_rng(seed)).confidence_interval  # fmt: skip
            low, high = float(ci.low), float(ci.high)
        out[name] = {
            "gain": float(diff.mean()), "ci95": [low, high], "better": int((diff > 0).sum()),
            "level": int((diff == 0).sum()), "worse": int((diff < 0).sum()),
        }  # fmt: skip
    return out


def table(results: dict[str, dict[str, float]], gains: dict[str, dict[str, float]] | None = None) -> str:
    """Markdown table: one row per score, one column per model (and the paired gain over trivial)."""
    cols = list(results)
    extra = [f"{MODEL} gain over trivial [95 % CI]", "clips better/level/worse"] if gains else []
    lines = ["| held-out score | " + " | ".join(cols + extra) + " |", "|---|" + "---|" * len(cols + extra)]
    for name, label in LABELS.items():
        cells = [f"{results[c][name]:.3f}" if name in results[c] else "–" for c in cols]
        if gains:
            g = gains.get(name)
            cells += [f"{g['gain']:+.3f} [{g['ci95'][0]:+.3f}, {g['ci95'][1]:+.3f}]",
                      f"{g['better']}/{g['level']}/{g['worse']}"] if g else ["", ""]  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
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
    scored = {
        "trivial baseline": evaluate(trivial_prediction, clips, moving),
        "random init": evaluate(partial(predict_clip, random_init), clips, moving),
        MODEL: evaluate(partial(predict_clip, trained), clips, moving),
    }
    results = {name: means for name, (means, _) in scored.items()}
    results[CHAINED] = evaluate_flow_chained(trained, clips, moving)
    gains = paired_gain(scored[MODEL][1], scored["trivial baseline"][1])
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
        "gain_over_trivial": gains,
        "per_clip": {name: per_clip for name, (_, per_clip) in scored.items()},
        "seconds": round(time.time() - tic, 1),
    }
    path = args.out or RESULTS / f"{report['date']}-synthetic-heads.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)
    print(f"{args.clips} held-out clips ({sum(moving)} with motion) in {report['seconds']} s; wrote {path}")
    print(table(results, gains))


if __name__ == "__main__":
    main()
