"""Motion segmentation: ground truth from cameras, depth and 3D motion; foreground IoU.

A pixel is *moving* (foreground) when the surface point it sees moves in the world between
frame t and t+1 by more than ``threshold`` metres: with its 3D position ``P_t`` in camera t and
``P_{t+1}`` in camera t+1 (from depth and scene flow), both mapped to the world with the
camera-to-world poses, ``‖c2w_{t+1}·P_{t+1} − c2w_t·P_t‖ > threshold``. Pixels without GT
(no depth, no flow, sky) are excluded from the score.

Foreground IoU = |pred ∧ gt| / |pred ∨ gt| over valid pixels; ``MaskCounts`` keeps the counts so
a dataset score can pool every pixel of every frame (``pooled``), next to the mean of per-frame
IoUs (``frame_mean``; frames where both masks are empty are skipped there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["MaskCounts", "foreground_iou", "unproject", "world_motion_mask"]


def unproject(*, depth: np.ndarray, k: np.ndarray, uv: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) camera-frame points of a depth map (z-depth) at pixel centres ``uv`` (default grid)."""
    h, w = depth.shape
    if uv is None:
        u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    else:
        u, v = uv[..., 0], uv[..., 1]
    x = (u - k[0, 2]) / k[0, 0] * depth
    y = (v - k[1, 2]) / k[1, 1] * depth
    return np.stack([x, y, depth], axis=-1)


def world_motion_mask(
    *, points_t: np.ndarray, points_t1: np.ndarray, c2w_t: np.ndarray, c2w_t1: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(moving (H, W) bool, valid (H, W) bool)`` from a point's positions in cameras t and t+1."""
    world_t = points_t @ c2w_t[:3, :3].T + c2w_t[:3, 3]
    world_t1 = points_t1 @ c2w_t1[:3, :3].T + c2w_t1[:3, 3]
    valid = np.isfinite(world_t).all(-1) & np.isfinite(world_t1).all(-1)
    dist = np.linalg.norm(np.where(valid[..., None], world_t1 - world_t, 0.0), axis=-1)
    return (dist > threshold) & valid, valid


@dataclass
class MaskCounts:
    """Intersection and union pixel counts, and per-frame IoUs."""

    intersection: int = 0
    union: int = 0
    frame_ious: tuple[float, ...] = ()

    def add(self, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Count one frame (bool masks of one shape)."""
        if valid is not None:
            pred, gt = pred[valid], gt[valid]
        inter, union = int(np.count_nonzero(pred & gt)), int(np.count_nonzero(pred | gt))
        self.intersection += inter
        self.union += union
        if union:
            self.frame_ious = (*self.frame_ious, inter / union)

    def merge(self, others: Iterable[MaskCounts]) -> MaskCounts:
        """This plus ``others``."""
        out = MaskCounts(self.intersection, self.union, self.frame_ious)
        for o in others:
            out = MaskCounts(
                out.intersection + o.intersection, out.union + o.union, out.frame_ious + o.frame_ious
            )
        return out

    def scores(self) -> dict[str, float]:
        """``iou`` (pooled), ``frame_mean_iou`` and the counts."""
        return {
            "iou": self.intersection / self.union if self.union else float("nan"),
            "frame_mean_iou": float(np.mean(self.frame_ious)) if self.frame_ious else float("nan"),
            "intersection": self.intersection,
            "union": self.union,
            "num_frames": len(self.frame_ious),
        }


def foreground_iou(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """IoU of two bool masks over the valid pixels (NaN when both are empty)."""
    counts = MaskCounts()
    counts.add(pred, gt, valid)
    return counts.scores()["iou"]
