"""Masks and probabilities blended over video frames."""

from __future__ import annotations

import numpy as np
import torch

from l4p.viz._common import to_numpy


def motion_overlay(
    frames: np.ndarray | torch.Tensor,
    prob: np.ndarray | torch.Tensor,
    *,
    color: tuple[int, int, int] = (255, 40, 40),
    alpha: float = 0.6,
    threshold: float | None = None,
    dim: float = 0.6,
) -> np.ndarray:
    """Tint the moving parts of a video.

    Each pixel becomes `frame * dim` blended towards `color` by `alpha * p`, with p the
    motion probability (or 0/1 when `threshold` is given); dimming the background makes the
    tint stand out on bright scenes. Where p = 0 the output is the dimmed frame.

    Args:
        frames: (..., H, W, 3) uint8 RGB.
        prob: (..., H, W) probability in [0, 1] (NaN counts as 0).
        color: Tint, RGB.
        alpha: Opacity of the tint at p = 1.
        threshold: Binarise p at this value first (None: blend by the probability).
        dim: Brightness of the frame under the overlay, in [0, 1].

    Returns:
        uint8 (..., H, W, 3).
    """
    frames = to_numpy(frames)
    p = np.nan_to_num(to_numpy(prob).astype(np.float32), nan=0.0)
    if frames.shape[:-1] != p.shape:
        raise ValueError(f"frames {frames.shape} and probabilities {p.shape} do not match")
    if threshold is not None:
        p = (p >= threshold).astype(np.float32)
    weight = (alpha * np.clip(p, 0.0, 1.0))[..., None]
    base = frames.astype(np.float32) * dim
    out = base * (1.0 - weight) + np.asarray(color, np.float32) * weight
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
