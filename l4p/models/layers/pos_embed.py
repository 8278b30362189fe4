"""Fixed sinusoid position table of VideoMAE and its resampling to other token grids."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    """The 1-D sinusoid table over flattened token indices, as VideoMAE computes it.

    angle(p, j) = p / 10000^(2*floor(j/2)/dim); even channels take sin, odd take cos
    (interleaved). Computed in float64 and cast to float32 so that it matches the
    released model to the last bit.

    Returns:
        (num_positions, dim) float32.
    """
    pos = np.arange(num_positions, dtype=np.float64)[:, None]
    j = np.arange(dim)
    angles = pos / np.power(10000.0, 2 * (j // 2) / dim)
    table = np.where(j % 2 == 0, np.sin(angles), np.cos(angles))
    return torch.from_numpy(table.astype(np.float32))


def resample_pos_table(
    table_pc: torch.Tensor, *, native_grid: tuple[int, int, int], grid: tuple[int, int, int]
) -> torch.Tensor:
    """Resample a position table from its native token grid to another grid.

    The table's rows are tokens in (t, h, w) row-major order. For the native grid it is
    returned unchanged; otherwise it is viewed as a (C, t, h, w) volume and resampled
    with trilinear interpolation (`align_corners=False`), which is how VideoMAE-style
    models are usually fine-tuned at other lengths and resolutions.

    Args:
        table_pc: (t0*h0*w0, C).
        native_grid: (t0, h0, w0).
        grid: Target (t, h, w).

    Returns:
        (t*h*w, C), same dtype and device as the input.
    """
    if tuple(grid) == tuple(native_grid):
        return table_pc
    t0, h0, w0 = native_grid
    vol = rearrange(table_pc, "(t h w) c -> 1 c t h w", t=t0, h=h0, w=w0)
    vol = F.interpolate(vol.float(), size=tuple(grid), mode="trilinear", align_corners=False)
    return rearrange(vol, "1 c t h w -> (t h w) c").to(table_pc.dtype)
