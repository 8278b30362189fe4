"""Video depth metrics as DepthCrafter's benchmark computes them (``benchmark/eval/eval.py``).

Per sequence, given metric GT depth ``D`` (T, H, W) and a relative **disparity** prediction
``P`` (T', h, w) (affine-invariant inverse depth):

1. ``L = min(seq_len, T')`` frames are kept (Sintel 50, KITTI 110, ScanNet 90, Bonn 110, NYUv2 1).
2. Each prediction frame is resized to (H, W) with ``cv2.resize`` (bilinear) in its own dtype,
   result in float64.
3. ``valid = (D > 1e-3) & (D < d_max)`` (d_max: Sintel 70, KITTI 80, ScanNet/Bonn/NYUv2 10).
4. ``P ← max(P, 1e-3)``; one least-squares scale and shift over **all valid pixels of all
   frames**: ``s·P + t ≈ 1 / (D + 1e-8)`` (``domain="depth"``, the default; ``"disp"`` fits D).
5. ``D̂ = 1 / max(s·P + t, 1e-3)``, clipped to [1e-3, d_max].
6. Per frame over its valid pixels: AbsRel = mean(|D̂ − D| / D), δ1 = fraction with
   ``max(D̂/D, D/D̂) < 1.25`` (DepthCrafter accumulates this one in float32), RMSE =
   sqrt(mean((D̂ − D)²)). Frames with no valid pixel are dropped; sequence = mean over frames;
   dataset = mean over sequences (``mean_over_sequences``).

The official code does the last step in torch; here numpy does it with the same dtypes.
AbsRel and RMSE agree to float64 summation-order rounding (~1e-16); δ1 uses the same float32
per-frame fractions and torch's CPU float32 mean over frames, so it matches bit for bit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from l4p.metrics._torch_mean import torch_mean

logger = logging.getLogger(__name__)

__all__ = ["DEPTHCRAFTER_PROTOCOLS", "VideoDepthScores", "mean_over_sequences", "video_depth_metrics"]

DEPTHCRAFTER_PROTOCOLS: dict[str, tuple[int, float]] = {
    "sintel": (50, 70.0),
    "kitti": (110, 80.0),
    "scannet": (90, 10.0),
    "bonn": (110, 10.0),
    "nyu": (1, 10.0),
}
"""Dataset -> (seq_len, d_max) of DepthCrafter's ``eval.sh``."""


@dataclass(frozen=True)
class VideoDepthScores:
    """Scores of one video (means over its frames with valid pixels).

    Attributes:
        abs_rel: Mean absolute relative error (lower is better).
        delta1: Fraction with ``max(D̂/D, D/D̂) < 1.25`` (higher is better), in [0, 1].
        rmse: Root mean squared error, GT units (metres for Sintel).
        scale: Fitted scale s of the disparity prediction.
        shift: Fitted shift t.
        num_frames: Frames scored.
    """

    abs_rel: float
    delta1: float
    rmse: float
    scale: float
    shift: float
    num_frames: int


def _resize_frames(pred: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear ``cv2.resize`` of each (h, w) frame to (height, width), into float64."""
    out = np.empty((pred.shape[0], height, width))
    for i, frame in enumerate(pred):
        out[i] = (
            frame
            if frame.shape == (height, width)
            else cv2.resize(np.ascontiguousarray(frame), (width, height))
        )
    return out


def video_depth_metrics(
    *,
    pred_disparity: np.ndarray,
    gt_depth: np.ndarray,
    max_depth: float,
    seq_len: int | None = None,
    domain: Literal["depth", "disp"] = "depth",
) -> VideoDepthScores:
    """Align a relative disparity video to metric GT depth and score it.

    Args:
        pred_disparity: (T', h, w) relative disparity (larger = nearer); any resolution, any
            positive affine scale. Pass it in the dtype it would be stored in (float32).
        gt_depth: (T, H, W) metric depth (Sintel: from ``.dpt``, float32); 0 or values at or
            beyond ``max_depth`` are ignored.
        max_depth: d_max of the dataset (see ``DEPTHCRAFTER_PROTOCOLS``).
        seq_len: Frames to use at most (None: all of the prediction).
        domain: ``"depth"`` (fit to 1/D, score depth; the default) or ``"disp"`` (fit to D).

    Returns:
        ``VideoDepthScores``.
    """
    if pred_disparity.ndim != 3 or gt_depth.ndim != 3:
        raise ValueError(f"need (T, h, w) and (T, H, W), got {pred_disparity.shape} and {gt_depth.shape}")
    n_frames = pred_disparity.shape[0] if seq_len is None else min(seq_len, pred_disparity.shape[0])
    if gt_depth.shape[0] < n_frames:
        raise ValueError(f"GT has {gt_depth.shape[0]} frames, {n_frames} needed")
    gt = gt_depth[:n_frames]
    pred = _resize_frames(pred_disparity[:n_frames], gt.shape[1], gt.shape[2])
    valid = np.logical_and(gt > 1e-3, gt < max_depth)
    if not valid.any():
        raise ValueError("no valid GT pixel in the video")
    pred = np.clip(pred, a_min=1e-3, a_max=None)
    x = pred[valid].reshape(-1, 1)
    target = gt[valid].reshape(-1, 1).astype(np.float64)
    if domain == "depth":
        target = 1.0 / (target + 1e-8)
    design = np.concatenate([x, np.ones_like(x)], axis=-1)
    (scale,), (shift,) = np.linalg.lstsq(design, target, rcond=None)[0]
    aligned = np.clip(scale * pred + shift, a_min=1e-3, a_max=None)
    pred_depth = 1.0 / aligned if domain == "depth" else aligned
    pred_depth = np.clip(pred_depth, a_min=1e-3, a_max=max_depth)

    keep = valid.sum(axis=(-1, -2)) > 0
    pred_depth, gt, valid = pred_depth[keep], gt[keep], valid[keep]
    n = valid.sum(axis=(-1, -2))
    with np.errstate(divide="ignore", invalid="ignore"):
        # Invalid pixels may divide by ~0; they are zeroed before the sums, as in the official code.
        rel = np.where(valid, np.abs(pred_depth - gt) / gt, 0.0)
        sq = np.where(valid, np.square(pred_depth - gt), 0.0)
        ratio = np.maximum(pred_depth / gt, gt / pred_depth)
    hits = np.where(valid & (ratio < 1.25), np.float32(1), np.float32(0))
    delta1_frames = np.sum(hits, axis=(-1, -2), dtype=np.float32) / n.astype(np.float32)
    return VideoDepthScores(
        abs_rel=float(np.mean(np.sum(rel, axis=(-1, -2)) / n)),
        delta1=torch_mean(delta1_frames),
        rmse=float(np.mean(np.sqrt(np.sum(sq, axis=(-1, -2)) / n))),
        scale=float(scale),
        shift=float(shift),
        num_frames=int(keep.sum()),
    )


def mean_over_sequences(
    scores: Sequence[VideoDepthScores] | Mapping[str, VideoDepthScores],
) -> dict[str, float]:
    """Dataset score: plain mean over sequences (each sequence weighs the same).

    Returns:
        ``abs_rel``, ``delta1``, ``rmse`` means and ``num_sequences``.
    """
    items = list(scores.values()) if isinstance(scores, Mapping) else list(scores)
    if not items:
        raise ValueError("no sequence to average")
    return {
        "abs_rel": float(np.mean([s.abs_rel for s in items])),
        "delta1": float(np.mean([s.delta1 for s in items])),
        "rmse": float(np.mean([s.rmse for s in items])),
        "num_sequences": float(len(items)),
    }
