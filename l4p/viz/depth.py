"""Depth maps as colour images, with a range that is robust and shared by all frames."""

from __future__ import annotations

import numpy as np
import torch

from l4p.viz._common import apply_colormap, to_numpy


def depth_to_unit(
    depth: np.ndarray | torch.Tensor,
    *,
    inverse: bool = True,
    percentiles: tuple[float, float] = (2.0, 98.0),
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Normalise depth to [0, 1] so that near is 1 and far is 0.

    The range comes from percentiles over every valid pixel of the input (all frames of a
    video together), so colours mean the same depth in every frame and a few outliers do not
    wash the image out.

    Args:
        depth: (..., H, W) positive depth, any unit; 0, negative and non-finite values are
            invalid.
        inverse: Normalise inverse depth (disparity; more contrast near the camera) instead
            of depth.
        percentiles: Lower and upper percentiles of the valid values that map to 0 and 1.
        value_range: Fixed (near, far) depths instead of percentiles.

    Returns:
        float32 (..., H, W) in [0, 1], 1 = nearest, NaN where invalid.
    """
    depth = to_numpy(depth).astype(np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    values = np.where(valid, depth, np.nan)
    if inverse:
        values = 1.0 / values
    if value_range is not None:
        near, far = value_range
        lo, hi = (1.0 / far, 1.0 / near) if inverse else (near, far)
    elif valid.any():
        lo, hi = np.percentile(values[valid], percentiles)
    else:
        return np.full(depth.shape, np.nan, np.float32)
    scaled = (values - lo) / max(float(hi - lo), 1e-12)
    unit = scaled if inverse else 1.0 - scaled  # near = 1 either way
    return np.clip(unit, 0.0, 1.0).astype(np.float32)


def colorize_depth(
    depth: np.ndarray | torch.Tensor,
    *,
    cmap: str = "turbo",
    inverse: bool = True,
    percentiles: tuple[float, float] = (2.0, 98.0),
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Colour-code depth: near is the colormap's top end (red in 'turbo'), far its bottom.

    Args:
        depth: (..., H, W) positive depth; invalid pixels (<= 0, NaN) are drawn black.
        cmap: A matplotlib colormap name ('turbo', 'Spectral_r', 'magma', ...).
        inverse: Spread colours over inverse depth (see `depth_to_unit`).
        percentiles: Robust range over all frames.
        value_range: Fixed (near, far) depths instead.

    Returns:
        uint8 (..., H, W, 3) RGB.
    """
    unit = depth_to_unit(depth, inverse=inverse, percentiles=percentiles, value_range=value_range)
    return apply_colormap(unit, cmap=cmap)
