"""Optical flow as colour: the Middlebury colour wheel (Baker et al., IJCV 2011).

Hue gives the direction and saturation the length: zero flow is white, flow of the
normalising length (or longer) is the fully saturated wheel colour. Flow to +x (right) is
red, to +y (down, image axes) orange-yellow, to -x cyan-blue and to -y violet. Vectors longer
than the normalising length are drawn darker. Unlike the original code, which spreads the
angles over 54 steps so that +x flow with a tiny +y or -y component lands on opposite ends of
the wheel, the angles here cover all 55 hues and wrap, so the wheel is continuous.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from l4p.viz._common import to_numpy

# (number of hues, colour at the start of the segment) going round the wheel; each segment
# blends linearly to the start of the next one.
_SEGMENTS = (
    (15, (255, 0, 0)),  # red -> yellow
    (6, (255, 255, 0)),  # yellow -> green
    (4, (0, 255, 0)),  # green -> cyan
    (11, (0, 255, 255)),  # cyan -> blue
    (13, (0, 0, 255)),  # blue -> magenta
    (6, (255, 0, 255)),  # magenta -> red
)


@lru_cache(maxsize=1)
def color_wheel() -> np.ndarray:
    """The 55-hue Middlebury wheel, (55, 3) float in [0, 1], starting at red."""
    hues = []
    for i, (count, start) in enumerate(_SEGMENTS):
        end = np.asarray(_SEGMENTS[(i + 1) % len(_SEGMENTS)][1], np.float64)
        start = np.asarray(start, np.float64)
        for k in range(count):
            hues.append(start + (end - start) * k / count)
    return np.stack(hues) / 255.0


def flow_to_rgb(
    flow: np.ndarray | torch.Tensor,
    *,
    max_flow: float | None = None,
    channel_axis: int = -3,
) -> np.ndarray:
    """Colour-code optical flow with the Middlebury wheel.

    Args:
        flow: (..., 2, H, W) flow (dx, dy) in pixels (`channel_axis=-1` for (..., H, W, 2)).
            Non-finite vectors (e.g. frame 0 of a backward flow) are drawn black.
        max_flow: Length that reaches full saturation; None uses the largest finite length in
            the input (all frames together, so colours are comparable over time).
        channel_axis: Axis of (dx, dy).

    Returns:
        uint8 (..., H, W, 3) RGB.
    """
    flow = np.moveaxis(to_numpy(flow).astype(np.float64), channel_axis, -1)
    u, v = flow[..., 0], flow[..., 1]
    finite = np.isfinite(u) & np.isfinite(v)
    u, v = np.where(finite, u, 0.0), np.where(finite, v, 0.0)
    radius = np.hypot(u, v)
    if max_flow is None:
        max_flow = float(radius.max()) if radius.size else 0.0
    radius = radius / max(max_flow, 1e-9)

    wheel = color_wheel()
    n = len(wheel)
    # Flow along +x lands on the wheel's first hue (red); the wheel turns with the angle.
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]; +x gives +-1
    position = np.mod((angle + 1.0) / 2.0 * n, n)
    k0 = np.floor(position).astype(np.int64) % n
    k1 = (k0 + 1) % n
    frac = (position - np.floor(position))[..., None]
    hue = (1.0 - frac) * wheel[k0] + frac * wheel[k1]

    r = radius[..., None]
    inside = r <= 1.0
    color = np.where(inside, 1.0 - r * (1.0 - hue), hue * 0.75)
    color[~finite] = 0.0
    return np.round(color * 255).astype(np.uint8)
