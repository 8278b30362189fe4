"""Small helpers shared by the visualisations: array conversion and colour lookup tables."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch


def to_numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    """A numpy view of a tensor (detached, on the CPU) or the array itself."""
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


@lru_cache(maxsize=16)
def colormap_lut(name: str) -> np.ndarray:
    """A matplotlib colormap sampled at 256 levels, (256, 3) uint8.

    Raises:
        ValueError: `name` is not a matplotlib colormap.
    """
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError as err:
        raise ValueError(f"unknown colormap {name!r}; use a matplotlib name such as 'turbo'") from err
    rgba = cmap(np.linspace(0.0, 1.0, 256))
    return np.round(rgba[:, :3] * 255).astype(np.uint8)


def apply_colormap(values: np.ndarray, *, cmap: str = "turbo", invalid_rgb=(0, 0, 0)) -> np.ndarray:
    """Map values in [0, 1] (NaN = invalid) to colours, (..., 3) uint8."""
    lut = colormap_lut(cmap)
    finite = np.isfinite(values)
    index = np.round(np.clip(np.where(finite, values, 0.0), 0.0, 1.0) * 255).astype(np.int64)
    out = lut[index]
    out[~finite] = np.asarray(invalid_rgb, np.uint8)
    return out
