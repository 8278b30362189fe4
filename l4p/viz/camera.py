"""The camera path seen from above, as frames of a video."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from l4p.viz._common import to_numpy


def draw_trajectory(
    extrinsics: np.ndarray | torch.Tensor,
    *,
    height: int,
    width: int,
    start: int = 0,
    end: int | None = None,
) -> np.ndarray:
    """Top view (world x to the right, world z up the image) of the camera centres.

    Each frame shows the whole path in grey, the path so far in colour, and the current camera
    as a dot with its viewing direction. The view fits the path (equal scale on both axes).

    Args:
        extrinsics: (T, 4, 4) world-to-camera, OpenCV axes.
        height: Image height in pixels.
        width: Image width in pixels.
        start: First frame to draw.
        end: One past the last frame to draw (default T).

    Returns:
        uint8 (end - start, height, width, 3).
    """
    cam_to_world = np.linalg.inv(to_numpy(extrinsics).astype(np.float64))
    centres = cam_to_world[:, [0, 2], 3]  # (x, z)
    forward = cam_to_world[:, [0, 2], 2]  # optical axis in (x, z)
    t = len(centres)
    end = t if end is None else end
    lo, hi = centres.min(0), centres.max(0)
    span = float(max((hi - lo).max(), 1e-6))
    margin = 0.15 * min(height, width)
    scale = (min(height, width) - 2 * margin) / span
    middle = (lo + hi) / 2

    def pixel(p: np.ndarray) -> np.ndarray:
        x = width / 2 + (p[..., 0] - middle[0]) * scale
        y = height / 2 - (p[..., 1] - middle[1]) * scale
        return np.round(np.stack([x, y], -1) * 16).astype(np.int32)

    path = pixel(centres)
    arrow = min(height, width) * 0.12 * 16
    out = np.full((end - start, height, width, 3), 24, np.uint8)
    for j, i in enumerate(range(start, end)):
        canvas = out[j]
        cv2.polylines(canvas, [path[:, None]], False, (90, 90, 90), 1, cv2.LINE_AA, 4)
        if i > 0:
            cv2.polylines(canvas, [path[: i + 1, None]], False, (80, 200, 255), 2, cv2.LINE_AA, 4)
        direction = forward[i] * np.array([1.0, -1.0])
        direction = direction / max(float(np.linalg.norm(direction)), 1e-9)
        tip = np.round(path[i] + direction * arrow).astype(np.int32)
        cv2.arrowedLine(canvas, tuple(path[i]), tuple(tip), (255, 200, 60), 1, cv2.LINE_AA, 4, 0.3)
        cv2.circle(canvas, tuple(path[i]), 3 * 16, (255, 80, 60), -1, cv2.LINE_AA, 4)
    return out
