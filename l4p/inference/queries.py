"""Track queries: validation and grids.

Convention: (t, x, y), t a frame index, x and y input pixels with integer = pixel centre (as
CoTracker).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def grid_queries(size: int, *, frame: int, height: int, width: int, num_frames: int) -> torch.Tensor:
    """A `size` x `size` grid of queries on `frame`, at the centres of equal cells.

    Returns:
        (size*size, 3) as (t, x, y), row-major (y outer).
    """
    if size < 1:
        raise ValueError(f"grid_size must be >= 1, got {size}")
    if not 0 <= frame < num_frames:
        raise ValueError(f"grid_frame {frame} is outside the video (frames 0..{num_frames - 1})")
    xs = (torch.arange(size) + 0.5) * width / size - 0.5
    ys = (torch.arange(size) + 0.5) * height / size - 0.5
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([torch.full_like(xx, float(frame)), xx, yy], dim=-1).reshape(-1, 3)


def validate_queries(
    queries: torch.Tensor | Sequence, *, batch: int, num_frames: int, height: int, width: int
) -> torch.Tensor:
    """Check queries and return them as float32 (B, N, 3).

    Raises:
        ValueError: Wrong shape, non-finite values, or a query outside the video.
    """
    q = torch.as_tensor(queries, dtype=torch.float32)
    if q.ndim == 2:
        q = q[None]
    if q.ndim != 3 or q.shape[-1] != 3 or q.shape[1] == 0:
        raise ValueError(
            f"queries must be (N, 3) or (B, N, 3) as (t, x, y) with N >= 1, got shape {tuple(q.shape)}"
        )
    if q.shape[0] not in (1, batch):
        raise ValueError(f"queries have batch {q.shape[0]} but the video has batch {batch}")
    q = q.expand(batch, -1, -1).clone()
    if not torch.isfinite(q).all():
        raise ValueError("queries contain NaN or infinite values")
    t, x, y = q.unbind(-1)
    outside = (
        (t < 0) | (t > num_frames - 1) | (x < -0.5) | (x > width - 0.5) | (y < -0.5) | (y > height - 0.5)
    )
    if outside.any():
        bi, ni = outside.nonzero()[0].tolist()
        raise ValueError(
            f"query {ni} (batch {bi}) at (t, x, y) = {tuple(round(v, 2) for v in q[bi, ni].tolist())} is outside "
            f"the video ({num_frames} frames of {width}x{height} pixels; t in [0, {num_frames - 1}], "
            f"x in [-0.5, {width - 0.5}], y in [-0.5, {height - 0.5}])"
        )
    return q
