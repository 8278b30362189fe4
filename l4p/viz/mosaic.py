"""Several videos side by side, each with a label."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np


def label_frames(frames: np.ndarray, text: str) -> np.ndarray:
    """Write `text` in the top-left corner of every frame (white on a dark box), a new array."""
    out = np.ascontiguousarray(frames, dtype=np.uint8).copy()
    if not text:
        return out
    h = out.shape[-3]
    scale = max(0.35, h / 400)
    thick = max(1, int(round(scale * 1.5)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, th // 3)
    for frame in out.reshape(-1, *out.shape[-3:]):
        frame[: th + base + 2 * pad, : tw + 2 * pad] //= 3
        cv2.putText(
            frame, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA
        )
    return out


def mosaic(
    panels: Sequence[np.ndarray],
    *,
    labels: Sequence[str] | None = None,
    columns: int | None = None,
    gap: int = 2,
) -> np.ndarray:
    """Tile equally long videos into a grid (row-major), with an optional label on each.

    Args:
        panels: Videos (T, H, W, 3) uint8, all of the same T, H and W.
        labels: One label per panel (or None).
        columns: Panels per row (default: up to 3, in as few rows as possible).
        gap: Black pixels between panels.

    Returns:
        uint8 (T, rows * (H + gap) - gap, columns * (W + gap) - gap, 3).
    """
    if not panels:
        raise ValueError("mosaic needs at least one panel")
    shape = panels[0].shape
    if any(p.shape != shape for p in panels):
        raise ValueError(f"panels differ in shape: {[p.shape for p in panels]}")
    t, h, w, _ = shape
    columns = columns or min(len(panels), 3)
    rows = math.ceil(len(panels) / columns)
    out = np.zeros((t, rows * (h + gap) - gap, columns * (w + gap) - gap, 3), np.uint8)
    for i, panel in enumerate(panels):
        r, c = divmod(i, columns)
        if labels is not None:
            panel = label_frames(panel, labels[i])
        out[:, r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = panel
    return out
