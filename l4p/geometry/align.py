"""Window-to-window alignment: public entry point.

Re-exports the inverse-depth affine fit (:mod:`l4p.geometry.align_depth`), the Sim(3)
primitives (:mod:`l4p.geometry.align_sim3`: result type, Umeyama, applying a Sim(3) to points,
poses and depth) and the robust Sim(3) fit (:mod:`l4p.geometry.align_sim3_robust`), and adds
what the predictor needs around them: overlap point maps, deterministic point subsampling and
the released RANSAC threshold.

Joint depth + camera alignment of window ``w > 0`` (released behaviour, spec §e): build point
maps of every 3rd overlap frame for the new window (``src``) and the stitched buffer (``dst``),
keep a 10 % subset, fit ``S = [sR | t]`` with threshold ``0.01 ×`` the 98th percentile of the
new window's overlap depth, then ``poses ← S · pose`` with the rotation block divided by ``s``
(:func:`apply_sim3_to_poses`), ``depth ← s · depth`` (:func:`apply_sim3_to_depth`), intrinsics
unchanged.
"""

from __future__ import annotations

from typing import Literal

import torch

from l4p.geometry.align_depth import apply_inverse_depth_affine, fit_inverse_depth_affine, safe_inverse
from l4p.geometry.align_sim3 import (
    Sim3Result,
    apply_sim3_to_depth,
    apply_sim3_to_points,
    apply_sim3_to_poses,
    masked_quantile,
    umeyama,
)
from l4p.geometry.align_sim3_robust import fit_sim3
from l4p.geometry.precision import full_precision

__all__ = [
    "Sim3Result",
    "apply_inverse_depth_affine",
    "apply_sim3_to_depth",
    "apply_sim3_to_points",
    "apply_sim3_to_poses",
    "fit_inverse_depth_affine",
    "fit_sim3",
    "overlap_point_maps",
    "safe_inverse",
    "sim3_threshold_from_depth",
    "subsample_indices",
    "umeyama",
]


@full_precision
def sim3_threshold_from_depth(
    depth: torch.Tensor, *, ratio: float = 0.01, quantile: float = 0.98
) -> torch.Tensor:
    """Released RANSAC inlier threshold: ``ratio ×`` the ``quantile`` of the valid depth values.

    Args:
        depth: (B, ...) depth of the new window's overlap frames; non-finite or non-positive
            values are ignored.
        ratio: Multiplier (released: 0.01).
        quantile: Quantile (released: 0.98).

    Returns:
        (B,) threshold in depth units (NaN where no depth is valid).
    """
    flat = depth.reshape(depth.shape[0], -1)
    return ratio * masked_quantile(flat, q=quantile, mask_bn=torch.isfinite(flat) & (flat > 0))


@full_precision
def overlap_point_maps(
    depth_bthw: torch.Tensor,
    K_bt33: torch.Tensor,  # noqa: N803
    cam_to_world_bt44: torch.Tensor,
    *,
    frame_step: int = 3,
    pixel_stride: int = 1,
) -> torch.Tensor:
    """World point maps ``X = cam_to_world · (depth · K⁻¹ (i, j, 1))`` of selected frames.

    Pixel (column i, row j) has integer coordinates ``(i, j)`` (integer = pixel centre, the
    released convention). Frames ``0, frame_step, 2·frame_step, …`` and pixels on a grid of
    stride ``pixel_stride`` (starting at 0) are used. Non-finite depth gives non-finite points,
    which :func:`fit_sim3` ignores.

    Args:
        depth_bthw: (B, T, H, W) depth of the overlap frames.
        K_bt33: (B, T, 3, 3) intrinsics in the same pixel units.
        cam_to_world_bt44: (B, T, 4, 4) camera-to-world poses.
        frame_step: Take every ``frame_step``-th frame (released: 3 → frames 0, 3, 6 of 8).
        pixel_stride: Spatial subsampling stride.

    Returns:
        (B, M, 3) points, M = ⌈T/frame_step⌉ · ⌈H/pixel_stride⌉ · ⌈W/pixel_stride⌉, ordered
        (frame, row, column); dtype of ``depth_bthw``.
    """
    depth = depth_bthw[:, ::frame_step, ::pixel_stride, ::pixel_stride]
    k_inv = torch.linalg.inv(K_bt33[:, ::frame_step].to(depth.dtype))
    pose = cam_to_world_bt44[:, ::frame_step].to(depth.dtype)
    _, _, height, width = depth_bthw.shape
    rows = torch.arange(0, height, pixel_stride, dtype=depth.dtype, device=depth.device)
    cols = torch.arange(0, width, pixel_stride, dtype=depth.dtype, device=depth.device)
    jj, ii = torch.meshgrid(rows, cols, indexing="ij")
    pix_hw3 = torch.stack([ii, jj, torch.ones_like(ii)], dim=-1)
    rays_bthw3 = torch.einsum("btij,hwj->bthwi", k_inv, pix_hw3)
    cam_bthw3 = depth[..., None] * rays_bthw3
    world_bthw3 = (
        torch.einsum("btij,bthwj->bthwi", pose[..., :3, :3], cam_bthw3) + pose[:, :, None, None, :3, 3]
    )
    return world_bthw3.flatten(1, 3)


def subsample_indices(
    num_points: int,
    *,
    fraction: float | None = None,
    num: int | None = None,
    mode: Literal["random", "stride"] = "random",
    seed: int = 0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Deterministic subset of point indices (shared by source and destination point maps).

    The released code keeps a random 10 % (numpy global RNG); here the subset comes from a
    CPU generator seeded with ``seed`` (``mode="random"``, same on every device) or from an
    even stride (``mode="stride"``). No global RNG is touched.

    Args:
        num_points: Number of points N to choose from.
        fraction: Fraction of N to keep (used when ``num`` is None; default 0.1).
        num: Number of points to keep (clamped to N).
        mode: ``"random"`` or ``"stride"``.
        seed: Generator seed for ``"random"``.
        device: Device of the returned indices.

    Returns:
        (K,) int64 indices, sorted ascending, unique.
    """
    if num is None:
        num = max(1, round((0.1 if fraction is None else fraction) * num_points))
    num = max(0, min(int(num), num_points))
    if mode == "random":
        gen = torch.Generator(device="cpu").manual_seed(seed)
        idx = torch.randperm(num_points, generator=gen)[:num].sort().values
    elif mode == "stride":
        idx = torch.div(torch.arange(num) * num_points, max(num, 1), rounding_mode="floor")
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return idx.to(device) if device is not None else idx
