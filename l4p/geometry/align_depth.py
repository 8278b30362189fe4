"""Affine alignment of depth maps in inverse-depth space (window-to-window stitching).

A new window's depth is brought onto the already-stitched depth by fitting
``target_inv ≈ scale · pred_inv + shift`` on the overlap frames, where ``x_inv`` is the safe
inverse of a depth map (``1/x`` where ``x > 0``, else ``0``), and then applying
``depth ← safe_inv(scale · safe_inv(depth) + shift)`` to the whole window.

The released L4P model uses the plain (non-robust, unmasked) least-squares fit over all overlap
pixels, solved in float32 with ``torch.linalg.lstsq`` on the design matrix ``[pred_inv, 1]``;
``fit_inverse_depth_affine(pred, target)`` with the default arguments computes the same fit
(same inverse depths in float32, same design matrix and flattening order) but solves it in
float64 before rounding to float32. Reason: on CPU (MKL ``gelsy``) the float32 solve of a
(8·224·224, 2) system is not reproducible from call to call and is off by up to ~1e-5 (seen
up to 1e-4 on some inputs), whereas the float64 solve is deterministic and differs from the
released float32 solve only by that solve's own rounding error (the parity fixture measured
official float32 vs float64 at 7.2e-7). ``solve_dtype=torch.float32`` mirrors the released
arithmetic exactly, variability included.

``robust=True`` is our addition: iteratively reweighted least squares (IRLS) with a Huber or
Cauchy weight, deterministic, which resists pixels that disagree between windows (moving
objects, sky, depth edges).
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
from einops import rearrange

from l4p.geometry.precision import full_precision

logger = logging.getLogger(__name__)

_MAD_TO_SIGMA = 1.4826  # MAD of a unit Gaussian, inverted
_HUBER_K = 1.345  # 95 % efficiency tuning constants (residuals in units of sigma)
_CAUCHY_K = 2.385


def safe_inverse(x: torch.Tensor) -> torch.Tensor:
    """Return ``1/x`` where ``x > 0`` and ``0`` elsewhere (NaN and non-positive values map to 0).

    Args:
        x: Any shape, floating point (depth or inverse depth).

    Returns:
        Tensor of the same shape and dtype.
    """
    positive = x > 0
    return torch.where(positive, 1.0 / torch.where(positive, x, torch.ones_like(x)), torch.zeros_like(x))


def _weighted_lstsq(
    x_bm: torch.Tensor, y_bm: torch.Tensor, w_bm: torch.Tensor | None, solve_dtype: torch.dtype
) -> torch.Tensor:
    """Solve ``y ≈ a·x + b`` per batch item with ``torch.linalg.lstsq`` on ``[x, 1]``.

    Args:
        x_bm: (B, M) regressor.
        y_bm: (B, M) target.
        w_bm: (B, M) non-negative row weights, or None for the plain (released) solve.
        solve_dtype: Dtype of the solve.

    Returns:
        (B, 2) solutions ``(a, b)`` in float32.
    """
    x_bm, y_bm = x_bm.to(solve_dtype), y_bm.to(solve_dtype)
    a_bm2 = torch.stack([x_bm, torch.ones_like(x_bm)], dim=-1)
    y_bm1 = y_bm.unsqueeze(-1)
    if w_bm is not None:
        sqrt_w = w_bm.to(solve_dtype).sqrt().unsqueeze(-1)
        a_bm2, y_bm1 = a_bm2 * sqrt_w, y_bm1 * sqrt_w
    # Batched lstsq equals a per-item loop (checked in the tests).
    return torch.linalg.lstsq(a_bm2, y_bm1).solution[..., 0].float()


def _robust_weights(
    residual_bm: torch.Tensor, valid_bm: torch.Tensor, loss: Literal["huber", "cauchy"]
) -> torch.Tensor:
    """IRLS weights from residuals, scaled by a per-item MAD estimate of the noise.

    Args:
        residual_bm: (B, M) residuals.
        valid_bm: (B, M) bool, rows that take part in the fit.
        loss: ``"huber"`` or ``"cauchy"``.

    Returns:
        (B, M) weights in [0, 1]; 0 for invalid rows.
    """
    abs_r = residual_bm.abs()
    mad_b = torch.nanmedian(torch.where(valid_bm, abs_r, torch.full_like(abs_r, float("nan"))), dim=1).values
    sigma_b1 = (_MAD_TO_SIGMA * torch.nan_to_num(mad_b, nan=0.0)).clamp_min(1e-12).unsqueeze(1)
    u_bm = abs_r / sigma_b1
    if loss == "huber":
        w_bm = torch.where(u_bm <= _HUBER_K, torch.ones_like(u_bm), _HUBER_K / u_bm.clamp_min(1e-12))
    elif loss == "cauchy":
        w_bm = 1.0 / (1.0 + (u_bm / _CAUCHY_K) ** 2)
    else:
        raise ValueError(f"unknown robust loss {loss!r}")
    return torch.where(valid_bm, w_bm, torch.zeros_like(w_bm))


@full_precision
def fit_inverse_depth_affine(
    pred_depth: torch.Tensor,
    target_depth: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    robust: bool = False,
    robust_loss: Literal["huber", "cauchy"] = "huber",
    num_iters: int = 5,
    solve_dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ``safe_inv(target) ≈ scale · safe_inv(pred) + shift`` per batch item.

    With the defaults (``mask=None``, ``robust=False``) this is the released L4P behaviour:
    an ordinary least-squares fit over every overlap pixel (pixels with non-positive depth
    enter as inverse depth 0), ``torch.linalg.lstsq`` of ``[x, 1]`` against ``y`` with ``x``,
    ``y`` the float32 inverse depths flattened in (frames, rows, columns) order, as in the
    release; only the solve runs in ``solve_dtype`` (see the module docstring).

    Args:
        pred_depth: (B, ...) depth of the new window on the overlap (e.g. (B, T, H, W)).
        target_depth: (B, ...) stitched depth on the same pixels, same shape.
        mask: Optional (B, ...) bool (or 0/1) mask of pixels to use. Masked-out pixels get
            zero weight (the solution equals the fit on the kept pixels).
        robust: Use IRLS with ``robust_loss`` weights (our addition; not the release).
        robust_loss: ``"huber"`` (default) or ``"cauchy"``; the noise scale is re-estimated
            every iteration by the median absolute residual.
        num_iters: IRLS iterations after the initial plain fit (only with ``robust``).
        solve_dtype: ``torch.float64`` (default; deterministic, accurate) or ``torch.float32``
            (the released arithmetic). Use float32 on devices without float64.

    Returns:
        ``(scale, shift)``, each (B,) float32, in inverse-depth units. An item whose solve is
        not finite, or with fewer than two usable pixels (valid prediction, inside the mask),
        gets ``(1, 0)`` and a logged warning.
    """
    if pred_depth.shape != target_depth.shape:
        raise ValueError(
            f"shape mismatch: pred {tuple(pred_depth.shape)} vs target {tuple(target_depth.shape)}"
        )
    x_bm = rearrange(safe_inverse(pred_depth.float()), "b ... -> b (...)")
    y_bm = rearrange(safe_inverse(target_depth.float()), "b ... -> b (...)")
    valid_bm = None if mask is None else rearrange(mask.to(torch.bool), "b ... -> b (...)")
    w_bm = None if valid_bm is None else valid_bm.float()

    sol_b2 = _weighted_lstsq(x_bm, y_bm, w_bm, solve_dtype)
    if robust:
        valid = valid_bm if valid_bm is not None else torch.ones_like(x_bm, dtype=torch.bool)
        for _ in range(num_iters):
            residual_bm = y_bm - (sol_b2[:, :1] * x_bm + sol_b2[:, 1:])
            sol_b2 = _weighted_lstsq(
                x_bm, y_bm, _robust_weights(residual_bm, valid, robust_loss), solve_dtype
            )

    usable_bm = x_bm > 0 if valid_bm is None else (x_bm > 0) & valid_bm
    finite_b = torch.isfinite(sol_b2).all(dim=-1) & (usable_bm.sum(dim=1) >= 2)
    if not bool(finite_b.all()):
        logger.warning(
            "inverse-depth affine fit failed for %d item(s); using identity", int((~finite_b).sum())
        )
        identity_2 = torch.tensor([1.0, 0.0], dtype=sol_b2.dtype, device=sol_b2.device)
        sol_b2 = torch.where(finite_b.unsqueeze(-1), sol_b2, identity_2)
    return sol_b2[:, 0], sol_b2[:, 1]


@full_precision
def apply_inverse_depth_affine(depth: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Apply a fitted inverse-depth affine map: ``safe_inv(scale · safe_inv(depth) + shift)``.

    Pixels whose mapped inverse depth is non-positive come out as depth 0 (invalid).

    Args:
        depth: (B, ...) depth maps of the whole window.
        scale: (B,) or scalar, from :func:`fit_inverse_depth_affine`.
        shift: (B,) or scalar.

    Returns:
        (B, ...) aligned depth, dtype of ``depth``.
    """
    scale = torch.as_tensor(scale, dtype=depth.dtype, device=depth.device)
    shift = torch.as_tensor(shift, dtype=depth.dtype, device=depth.device)
    view = (-1,) + (1,) * (depth.dim() - 1)
    if scale.dim() > 0:
        scale = scale.reshape(view)
    if shift.dim() > 0:
        shift = shift.reshape(view)
    return safe_inverse(scale * safe_inverse(depth) + shift)
