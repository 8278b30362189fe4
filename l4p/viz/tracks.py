"""Point tracks drawn over video frames: tails, and hollow circles where a point is hidden."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from l4p.viz._common import apply_colormap, to_numpy

_SHIFT = 4  # cv2 sub-pixel bits: coordinates are drawn with 1/16 pixel precision
_SCALE = 1 << _SHIFT


def track_colors(queries_xy: np.ndarray | torch.Tensor, *, width: int, cmap: str = "hsv") -> np.ndarray:
    """One colour per track from its query's x position (neighbours look alike), (N, 3) uint8."""
    x = to_numpy(queries_xy)[:, 0].astype(np.float32)
    return apply_colormap(np.clip(x / max(width - 1, 1), 0, 1) * 0.85, cmap=cmap)


def draw_tracks(
    frames: np.ndarray | torch.Tensor,
    tracks: np.ndarray | torch.Tensor,
    visibility: np.ndarray | torch.Tensor | None = None,
    *,
    colors: np.ndarray | None = None,
    tail: int = 8,
    radius: float | None = None,
    thickness: int = 1,
    start: int = 0,
) -> np.ndarray:
    """Draw point tracks on every frame.

    Visible points are filled discs, occluded points hollow circles (same colour); each track
    has a tail through its positions of the previous `tail` frames, fading with age. Points
    with NaN positions (e.g. before a forward-only track starts) are skipped.

    Args:
        frames: (F, H, W, 3) uint8 RGB: frames `start` .. `start + F - 1` of the video
            (a chunk of a long video, or all of it).
        tracks: (T, N, 2) positions (x, y) in pixels, integer = pixel centre, over the whole
            video (tails reach back before `start`).
        visibility: (T, N) bool (None: all visible).
        colors: (N, 3) uint8 per track (default: by the first valid x position).
        tail: Frames of history drawn behind each point (0: none).
        radius: Point radius in pixels (default: from the image size).
        thickness: Line width of tails and hollow circles, pixels.
        start: Index of the first frame of `frames` in `tracks`.

    Returns:
        uint8 (F, H, W, 3), a new array.
    """
    out = np.ascontiguousarray(to_numpy(frames), dtype=np.uint8).copy()
    xy = to_numpy(tracks).astype(np.float64)
    f, h, w = out.shape[:3]
    if xy.ndim != 3 or xy.shape[-1] != 2 or not 0 <= start <= xy.shape[0] - f:
        raise ValueError(f"tracks must be (T, N, 2) covering frames {start}..{start + f - 1}, got {xy.shape}")
    vis = np.ones(xy.shape[:2], bool) if visibility is None else to_numpy(visibility).astype(bool)
    if colors is None:
        first = np.nan_to_num(xy[np.argmax(np.isfinite(xy[..., 0]), axis=0), np.arange(xy.shape[1])])
        colors = track_colors(first, width=w)
    radius = radius if radius is not None else max(1.5, min(h, w) / 120)
    fixed = np.round(np.nan_to_num(xy, nan=-1e6).clip(-1e6, 1e6) * _SCALE).astype(np.int64)
    finite = np.isfinite(xy).all(-1)
    r = int(round(radius * _SCALE))
    for j in range(f):
        i, canvas = start + j, out[j]
        for age in range(min(tail, i), 0, -1):
            a, b = i - age, i - age + 1
            fade = 0.35 + 0.65 * (1.0 - age / (tail + 1))  # older segments darker
            for n in np.nonzero(finite[a] & finite[b])[0]:
                color = tuple(int(c * fade) for c in colors[n])
                cv2.line(
                    canvas, tuple(fixed[a, n]), tuple(fixed[b, n]), color, thickness, cv2.LINE_AA, _SHIFT
                )
        for n in np.nonzero(finite[i])[0]:
            color = tuple(int(c) for c in colors[n])
            cv2.circle(
                canvas, tuple(fixed[i, n]), r, color, -1 if vis[i, n] else thickness, cv2.LINE_AA, _SHIFT
            )
    return out
