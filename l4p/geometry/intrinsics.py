"""Camera intrinsics from one frame of predicted rays, and grid <-> pixel conversions.

Grid units: the camera-ray head predicts one ray per encoder patch, so its intrinsics live
on the patch grid: column `i`, row `j` of the `(h, w)` ray map is the point `(i, j)`
(integer = patch centre). `grid_to_pixels` maps them to the input image's pixels (integer =
pixel centre) for a given patch size.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch
from einops import rearrange

from l4p.geometry.homography import fit_homography_dlt, rq3x3
from l4p.geometry.precision import full_precision

logger = logging.getLogger(__name__)

IntrinsicsMethod = Literal["released", "dlt"]

_Z_EPS = 1e-4  # released: rays with |z| <= this are left out of the homography
_RANSAC_THRESHOLD = 0.2  # released: reprojection threshold on the z = 1 plane


def pixel_grid(h: int, w: int, *, device: torch.device | None = None) -> torch.Tensor:
    """Homogeneous grid points `(i, j, 1)`, row-major (index `j * w + i`), `(h * w, 3)` float32."""
    rows, cols = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack([cols, rows, torch.ones_like(rows)], dim=-1).reshape(-1, 3)


def _released_one(directions_n3: np.ndarray, grid_n3: np.ndarray) -> np.ndarray:
    """Released recipe for one frame: RANSAC homography on the z = 1 plane, then RQ."""
    import cv2

    # The release tests |z| of the vectors exactly as it holds them: the unit reference rays
    # normalise((i, j, 1)) and the RAW predicted directions (before any normalisation), so a
    # short prediction with raw |z| <= 1e-4 is dropped even when its unit |z| is larger.
    ref = grid_n3 / np.linalg.norm(grid_n3, axis=-1, keepdims=True)
    keep = (np.abs(ref[:, 2]) > _Z_EPS) & (np.abs(directions_n3[:, 2]) > _Z_EPS)
    ref_xy = ref[keep, :2] / ref[keep, 2:]
    pred_xy = directions_n3[keep, :2] / directions_n3[keep, 2:]
    a, _ = cv2.findHomography(ref_xy, pred_xy, cv2.RANSAC, _RANSAC_THRESHOLD)
    if a is None:
        raise RuntimeError(f"cv2.findHomography found no homography ({int(keep.sum())} usable rays)")
    if np.linalg.det(a) < 0:
        a = -a
    _, k, *_ = cv2.RQDecomp3x3(np.linalg.inv(a))
    return k / k[2, 2]


@full_precision
def intrinsics_from_rays(
    directions_b3hw: torch.Tensor,
    *,
    method: IntrinsicsMethod = "dlt",
    weights_bhw: torch.Tensor | None = None,
    robust_iterations: int = 0,
) -> torch.Tensor:
    """Estimate `K` from the ray directions of one frame.

    With `H = K R` (world-to-camera rotation `R`), every ray satisfies
    `(i, j, 1) ~ H d_ij`; `H` is fitted and split by an RQ decomposition.

    * `"released"` reproduces the released model exactly (parity): rays whose *raw* predicted
      direction has `|z| <= 1e-4` are dropped (the test is on the unnormalised vector; the
      reference rays are unit `(i, j, 1)`), both sets projected to the z = 1 plane,
      `A = cv2.findHomography(grid, pred, cv2.RANSAC, 0.2)` (OpenCV seeds its RANSAC, so
      this is deterministic), `A <- -A` if `det(A) < 0`, `K, _ = cv2.RQDecomp3x3(A^-1)`,
      `K <- K / K[2, 2]`. CPU and numpy, one frame at a time; `weights_bhw` and
      `robust_iterations` are ignored.
    * `"dlt"`: batched torch on the input's device, homogeneous normalised DLT (no
      z = 1 projection, so rays pointing sideways are fine), optional per-ray weights and
      Cauchy IRLS, then a torch RQ. Not bitwise equal to `"released"` (no RANSAC).

    Args:
        directions_b3hw: `(B, 3, h, w)` predicted directions (any length, world frame).
        method: `"released"` or `"dlt"`.
        weights_bhw: `(B, h, w)` non-negative ray confidences (`"dlt"` only).
        robust_iterations: IRLS steps (`"dlt"` only); 0 = plain least squares.

    Returns:
        `K` `(B, 3, 3)` float32 in grid units, `K[2, 2] = 1`, on the input's device. A skew
        `K[0, 1]` is kept as estimated.
    """
    dirs = directions_b3hw.float()
    b, _, h, w = dirs.shape
    grid = pixel_grid(h, w, device=dirs.device)
    dirs_bn3 = rearrange(dirs, "b c h w -> b (h w) c")
    if method == "released":
        grid_np = grid.cpu().numpy()
        ks = [_released_one(d.detach().cpu().numpy(), grid_np) for d in dirs_bn3]
        return torch.from_numpy(np.stack(ks)).to(device=dirs.device, dtype=torch.float32)
    if method != "dlt":
        raise ValueError(f"unknown intrinsics method {method!r}; use 'released' or 'dlt'")
    weights = None if weights_bhw is None else rearrange(weights_bhw, "b h w -> b (h w)")
    hom = fit_homography_dlt(
        dirs_bn3, grid.expand(b, -1, -1), weights_bn=weights, robust_iterations=robust_iterations
    )
    # Make det(H) > 0 so that the positive-diagonal K comes with a proper rotation.
    hom = hom * torch.sign(torch.linalg.det(hom))[:, None, None]
    k, _ = rq3x3(hom)
    return k / k[:, 2:3, 2:3]


def _grid_to_pixel_matrix(patch: int | tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    return like.new_tensor([[pw, 0.0, (pw - 1) / 2], [0.0, ph, (ph - 1) / 2], [0.0, 0.0, 1.0]])


@full_precision
def grid_to_pixels(k_grid: torch.Tensor, patch: int | tuple[int, int] = 14) -> torch.Tensor:
    """Convert intrinsics from patch-grid units to image pixels.

    `f_px = f * p`, `c_px = (c + 0.5) * p - 0.5` per axis (skew scales with the width).
    With `patch = 14` and a 16-patch grid this is the released conversion to 224 pixels.

    Args:
        k_grid: `(..., 3, 3)` in grid units.
        patch: Patch size, or `(patch_h, patch_w)`.

    Returns:
        `(..., 3, 3)` in pixels (integer = pixel centre).
    """
    return _grid_to_pixel_matrix(patch, k_grid) @ k_grid


@full_precision
def pixels_to_grid(k_pixels: torch.Tensor, patch: int | tuple[int, int] = 14) -> torch.Tensor:
    """Inverse of `grid_to_pixels`: `f = f_px / p`, `c = (c_px + 0.5) / p - 0.5`.

    For a 224-pixel image and a 16-patch grid this equals the released
    `normalise(K, 224) -> denormalise(K, 16)` used to feed given intrinsics to the ray head.
    """
    return torch.linalg.inv(_grid_to_pixel_matrix(patch, k_pixels)) @ k_pixels
