"""Shared counting for the TAP-Vid (2D) and TAPVid-3D scores.

Both benchmarks count, per threshold, the points that are close enough to the ground truth
and combine the counts into a Jaccard score and a "points within" fraction. Each point may
carry a weight (TAPVid-3D's ``local_neighborhood`` scaling uses fractional weights; every
other mode weighs all evaluated points 1 and excluded points 0). With 0/1 weights the sums
are exact integer counts, so the results equal the official integer-count code bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

THRESHOLDS_PX: tuple[int, ...] = (1, 2, 4, 8, 16)
"""Pixel thresholds δ of both benchmarks (at 256 px resolution)."""

METRIC_NAMES: tuple[str, ...] = (
    "occlusion_accuracy",
    *(f"pts_within_{d}" for d in THRESHOLDS_PX),
    *(f"jaccard_{d}" for d in THRESHOLDS_PX),
    "average_jaccard",
    "average_pts_within_thresh",
)
"""Keys of every TAP metric dict, the names the official code uses."""


def tap_scores(
    *,
    within: Sequence[np.ndarray],
    gt_occluded: np.ndarray,
    pred_occluded: np.ndarray,
    weights: np.ndarray,
    axis: tuple[int, ...],
) -> dict[str, np.ndarray]:
    """Occlusion accuracy, points-within fractions and Jaccard scores from per-point tests.

    Args:
        within: One bool array per threshold of ``THRESHOLDS_PX`` (same order), True where the
            predicted point is closer than the threshold. Same shape as ``gt_occluded``.
        gt_occluded: Bool, True = occluded in the ground truth.
        pred_occluded: Bool, True = predicted occluded.
        weights: Non-negative float (or bool) weight of each point; 0 excludes it.
        axis: Axes to sum over (the remaining axes index videos, or videos and tracks).

    Returns:
        Dict keyed by ``METRIC_NAMES``; each value is a float64 array over the kept axes.
        Scores are NaN (with numpy's divide warning silenced) where a denominator is 0.
    """
    if len(within) != len(THRESHOLDS_PX):
        raise ValueError(f"need {len(THRESHOLDS_PX)} threshold tests, got {len(within)}")
    weights = np.asarray(weights)
    visible = np.logical_not(gt_occluded)
    pred_visible = np.logical_not(pred_occluded)
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["occlusion_accuracy"] = np.sum(
            np.equal(pred_occluded, gt_occluded) * weights, axis=axis
        ) / np.sum(weights, axis=axis)
        fracs, jaccards = [], []
        # Visible-GT weight is the same for every threshold: it is both the "within" denominator
        # and, as true positives plus false negatives, part of the Jaccard denominator.
        gt_positives = np.sum(visible * weights, axis=axis)
        for delta, close in zip(THRESHOLDS_PX, within, strict=True):
            is_correct = np.logical_and(close, visible)
            frac = np.sum(is_correct * weights, axis=axis) / gt_positives
            true_pos = np.sum((is_correct & pred_visible) * weights, axis=axis)
            # False positive: predicted visible while the GT is occluded or the point is too far.
            false_pos_mask = (np.logical_not(visible) & pred_visible) | (np.logical_not(close) & pred_visible)
            false_pos = np.sum(false_pos_mask * weights, axis=axis)
            jac = true_pos / (gt_positives + false_pos)
            out[f"pts_within_{delta}"] = frac
            out[f"jaccard_{delta}"] = jac
            fracs.append(frac)
            jaccards.append(jac)
    # Stack on a new leading axis so that scalar (0-d) scores work as well as batched ones.
    out["average_jaccard"] = np.mean(np.stack(jaccards, axis=0), axis=0)
    out["average_pts_within_thresh"] = np.mean(np.stack(fracs, axis=0), axis=0)
    return {name: out[name] for name in METRIC_NAMES}


def mean_over(per_item: Sequence[Mapping[str, np.ndarray | float]]) -> dict[str, float]:
    """Average metric dicts with equal weight per item, as ``np.mean`` over a list.

    Used for "mean over videos" and "mean over subsets" alike; the official drivers take
    ``np.mean([item[name] for item in items])`` per metric name, which this reproduces.

    Args:
        per_item: Non-empty sequence of dicts keyed by metric name; values are scalars or
            one-element arrays.

    Returns:
        Dict name -> float.
    """
    if not per_item:
        raise ValueError("cannot average an empty list of metric dicts")
    return {name: float(np.mean([item[name] for item in per_item])) for name in per_item[0]}
