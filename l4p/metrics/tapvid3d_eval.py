"""TAPVid-3D evaluation over files: metric resolution, per-video scores, subset and overall means.

Mirrors the official driver (tapnet ``tapvid3d/evaluation/evaluate_model.py``):
1. Metric resolution: ``s = 256 / min(H, W)`` with (H, W) from the first JPEG; the four
   intrinsics are multiplied by ``s``; the 3D tracks are not changed (only the pixel-to-metre
   conversion of the thresholds depends on it).
2. Each video is scored with ``compute_tapvid3d_metrics(order="t n")``, the queries given as
   ``queries_xyt[..., ::-1]`` (t, y, x).
3. A prediction file that is missing or unreadable scores 0 on every metric and still counts.
4. Subset score = mean over its videos; overall = mean over subsets (each subset weighs the
   same, not each video). Papers report ×100.

Differences: the official driver also records 0 whenever the metric function raises, which it
always does for ``per_trajectory`` and ``local_neighborhood`` (see ``l4p.metrics.tapvid3d``).
Our metric computes those modes as intended; ``reproduce_official_failures=True`` records the
official zeros for them instead. A prediction whose shapes do not match the GT raises here
(the official driver would score it 0).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from l4p.data.formats.tapvid3d import TapVid3DSample, load_tapvid3d_npz, load_tapvid3d_prediction
from l4p.metrics._tap_common import METRIC_NAMES, mean_over
from l4p.metrics.tapvid3d import compute_tapvid3d_metrics

logger = logging.getLogger(__name__)

__all__ = [
    "METRIC_EVAL_RESOLUTION",
    "average_over_subsets",
    "evaluate_tapvid3d_subset",
    "evaluate_tapvid3d_video",
    "metric_eval_intrinsics",
    "zero_metrics",
]

METRIC_EVAL_RESOLUTION = 256
"""Short image side at which the TAPVid-3D pixel thresholds are defined."""
_OFFICIAL_FAILING = ("per_trajectory", "local_neighborhood")


def zero_metrics() -> dict[str, np.ndarray]:
    """The all-zero score the official driver records for a failed video (values of shape (1,))."""
    return {name: np.array([0.0]) for name in METRIC_NAMES}


def metric_eval_intrinsics(
    *, fx_fy_cx_cy: np.ndarray, height: int, width: int, resolution: int = METRIC_EVAL_RESOLUTION
) -> np.ndarray:
    """Intrinsics rescaled so that the short image side is ``resolution`` pixels.

    Args:
        fx_fy_cx_cy: (4,) intrinsics at the original resolution (pixels).
        height: Original image height H.
        width: Original image width W.
        resolution: Target short side (256 for every published number).

    Returns:
        (4,) float64, ``fx_fy_cx_cy · resolution / min(H, W)``.
    """
    scale = resolution / np.min(np.array([height, width]))
    return np.asarray(fx_fy_cx_cy) * scale


def evaluate_tapvid3d_video(
    *,
    gt: TapVid3DSample,
    pred_tracks_xyz: np.ndarray,
    pred_visibility: np.ndarray,
    scalings: Sequence[str] = ("median",),
    metric_eval_resolution: int = METRIC_EVAL_RESOLUTION,
    use_fixed_metric_threshold: bool = False,
    reproduce_official_failures: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """Score one video under one or more scalings.

    Args:
        gt: Ground truth (``load_tapvid3d_npz``).
        pred_tracks_xyz: (T, N, 3) predicted points, metres, camera frame of each frame.
        pred_visibility: (T, N), truthy = predicted visible.
        scalings: Scaling modes of ``compute_tapvid3d_metrics``.
        metric_eval_resolution: Short side for the thresholds.
        use_fixed_metric_threshold: Fixed metric radii instead of depth-adaptive ones.
        reproduce_official_failures: Score 0 for the modes the official driver cannot run.

    Returns:
        ``{scaling: {metric: (1,) array}}``.
    """
    height, width = gt.image_size()
    intrinsics = metric_eval_intrinsics(
        fx_fy_cx_cy=gt.fx_fy_cx_cy, height=height, width=width, resolution=metric_eval_resolution
    )
    out: dict[str, dict[str, np.ndarray]] = {}
    for scaling in scalings:
        if reproduce_official_failures and scaling in _OFFICIAL_FAILING:
            logger.warning("scaling %r scores 0, as through the official driver", scaling)
            out[scaling] = zero_metrics()
            continue
        out[scaling] = compute_tapvid3d_metrics(
            gt_occluded=np.logical_not(gt.visibility),
            gt_tracks=gt.tracks_xyz,
            pred_occluded=np.logical_not(pred_visibility),
            pred_tracks=pred_tracks_xyz,
            intrinsics=intrinsics,
            scaling=scaling,  # type: ignore[arg-type]
            query_points=gt.query_points_tyx,
            use_fixed_metric_threshold=use_fixed_metric_threshold,
            order="t n",
        )
    return out


def evaluate_tapvid3d_subset(
    *,
    gt_dir: str | Path,
    pred_dir: str | Path,
    file_names: Iterable[str],
    scalings: Sequence[str] = ("median",),
    missing: Literal["zero", "raise"] = "zero",
    metric_eval_resolution: int = METRIC_EVAL_RESOLUTION,
    reproduce_official_failures: bool = False,
) -> dict[str, dict[str, float]]:
    """Mean score over the videos of one subset (``adt``, ``pstudio`` or ``drivetrack``).

    Args:
        gt_dir: Folder of ground-truth ``.npz`` files of the subset.
        pred_dir: Folder of prediction ``.npz`` files with the same names.
        file_names: Videos to score (e.g. the official minival or full_eval list).
        scalings: Scaling modes.
        missing: ``"zero"`` (official): a missing or unreadable prediction scores 0 and counts;
            ``"raise"``: raise instead.
        metric_eval_resolution: Short side for the thresholds.
        reproduce_official_failures: See ``evaluate_tapvid3d_video``.

    Returns:
        ``{scaling: {metric: float}}``, means over videos.
    """
    per_video: list[dict[str, dict[str, np.ndarray]]] = []
    for name in file_names:
        gt = load_tapvid3d_npz(Path(gt_dir) / name)
        try:
            tracks, vis = load_tapvid3d_prediction(Path(pred_dir) / name)
        except (OSError, KeyError, ValueError):
            if missing == "raise":
                raise
            logger.exception("cannot read the prediction for %s: it scores 0", name)
            per_video.append({s: zero_metrics() for s in scalings})
            continue
        per_video.append(
            evaluate_tapvid3d_video(
                gt=gt,
                pred_tracks_xyz=tracks,
                pred_visibility=vis,
                scalings=scalings,
                metric_eval_resolution=metric_eval_resolution,
                reproduce_official_failures=reproduce_official_failures,
            )
        )
    if not per_video:
        raise ValueError("no video to evaluate")
    return {s: mean_over([video[s] for video in per_video]) for s in scalings}


def average_over_subsets(
    per_subset: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> dict[str, dict[str, float]]:
    """Overall TAPVid-3D score: the unweighted mean of the subset scores.

    Args:
        per_subset: ``{subset: {scaling: {metric: value}}}``.

    Returns:
        ``{scaling: {metric: mean over subsets}}``.
    """
    subsets = list(per_subset.values())
    if not subsets:
        raise ValueError("no subset to average")
    return {s: mean_over([sub[s] for sub in subsets]) for s in subsets[0]}
