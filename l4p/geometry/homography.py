"""Batched, deterministic torch homography fitting (normalised DLT) and 3x3 RQ decomposition.

Everything runs on the inputs' device in their floating dtype (float32 is enough: the
points are conditioned before the SVD). No RANSAC: robustness, when asked for, comes from
iteratively reweighted least squares with a fixed number of steps, so results are
reproducible and differentiable almost everywhere.
"""

from __future__ import annotations

import torch
from einops import einsum, rearrange

from l4p.geometry.precision import full_precision

_MAD_TO_SIGMA = 1.4826
_CAUCHY_K = 2.385  # Cauchy tuning constant (residuals in units of sigma)


def skew(v_n3: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices: `skew(v) @ x == cross(v, x)`.

    Args:
        v_n3: `(..., 3)`.

    Returns:
        `(..., 3, 3)`.
    """
    zero = torch.zeros_like(v_n3[..., 0])
    x, y, z = v_n3.unbind(-1)
    rows = (
        torch.stack([zero, -z, y], dim=-1),
        torch.stack([z, zero, -x], dim=-1),
        torch.stack([-y, x, zero], dim=-1),
    )
    return torch.stack(rows, dim=-2)


def _conditioner(points_bn3: torch.Tensor, weights_bn: torch.Tensor) -> torch.Tensor:
    """Projective whitening `T` (B, 3, 3) so that the unit-normalised `T x` are spread isotropically.

    `T = M^(-1/2)` with `M` the weighted second moment of the unit-normalised points: the
    homogeneous analogue of Hartley's centring and scaling, valid for points at infinity too.
    """
    unit = points_bn3 / points_bn3.norm(dim=-1, keepdim=True)
    w = weights_bn / weights_bn.sum(dim=-1, keepdim=True)
    moment = einsum(w, unit, unit, "b n, b n i, b n j -> b i j")
    evals, evecs = torch.linalg.eigh(moment)
    inv_sqrt = evals.clamp_min(torch.finfo(evals.dtype).eps * evals[..., -1:]).rsqrt()
    return evecs @ torch.diag_embed(inv_sqrt) @ evecs.transpose(-1, -2)


def _weighted_dlt(src_bn3: torch.Tensor, dst_bn3: torch.Tensor, weights_bn: torch.Tensor) -> torch.Tensor:
    """One weighted DLT solve in conditioned coordinates; returns `H` (B, 3, 3), unit Frobenius norm."""
    t_src = _conditioner(src_bn3, weights_bn)
    t_dst = _conditioner(dst_bn3, weights_bn)
    x = einsum(t_src, src_bn3, "b i j, b n j -> b n i")
    y = einsum(t_dst, dst_bn3, "b i j, b n j -> b n i")
    x = x / x.norm(dim=-1, keepdim=True)
    y = y / y.norm(dim=-1, keepdim=True)
    # cross(y, H x) = 0 is linear in vec(H) (row-major): rows skew(y) (x) x^T, 3 per point.
    rows = einsum(skew(y), x, "b n r i, b n j -> b n r i j") * weights_bn[..., None, None, None]
    design = rearrange(rows, "b n r i j -> b (n r) (i j)")
    _, _, vh = torch.linalg.svd(design, full_matrices=False)
    h_cond = rearrange(vh[:, -1], "b (i j) -> b i j", i=3)
    h = torch.linalg.solve(t_dst, h_cond @ t_src)
    return h / h.flatten(1).norm(dim=-1)[:, None, None]


@full_precision
def transfer_error(h_b33: torch.Tensor, src_bn3: torch.Tensor, dst_bn3: torch.Tensor) -> torch.Tensor:
    """Sine of the angle between `dst` and `H src`, per correspondence `(B, N)` (sign-agnostic)."""
    mapped = einsum(h_b33, src_bn3, "b i j, b n j -> b n i")
    mapped = mapped / mapped.norm(dim=-1, keepdim=True)
    target = dst_bn3 / dst_bn3.norm(dim=-1, keepdim=True)
    return torch.linalg.cross(target, mapped, dim=-1).norm(dim=-1)


@full_precision
def fit_homography_dlt(
    src_bn3: torch.Tensor,
    dst_bn3: torch.Tensor,
    *,
    weights_bn: torch.Tensor | None = None,
    robust_iterations: int = 0,
) -> torch.Tensor:
    """Fit `H` with `dst ~ H src` (equality up to a non-zero scale) by the normalised DLT.

    Points are homogeneous 3-vectors of any scale (pixel coordinates `(x, y, 1)`, or ray
    directions), so points at infinity are fine. Both sets are conditioned by a projective
    whitening, the algebraic error `|dst x H src|` is minimised with one SVD per batch item,
    and the conditioning is undone.

    Args:
        src_bn3: `(B, N, 3)` source points, N >= 4.
        dst_bn3: `(B, N, 3)` destination points.
        weights_bn: `(B, N)` non-negative confidences (default all ones).
        robust_iterations: Extra iteratively-reweighted solves with Cauchy weights on the
            angular transfer error (scale from the median absolute residual). 0 = plain DLT.

    Returns:
        `H` `(B, 3, 3)` with unit Frobenius norm (its sign is arbitrary).
    """
    if src_bn3.shape != dst_bn3.shape or src_bn3.shape[-1] != 3 or src_bn3.shape[-2] < 4:
        raise ValueError(f"need (B, N>=4, 3) point sets, got {tuple(src_bn3.shape)}, {tuple(dst_bn3.shape)}")
    base = torch.ones_like(src_bn3[..., 0]) if weights_bn is None else weights_bn.to(src_bn3)
    h = _weighted_dlt(src_bn3, dst_bn3, base)
    for _ in range(robust_iterations):
        residual = transfer_error(h, src_bn3, dst_bn3)
        sigma = _MAD_TO_SIGMA * residual.median(dim=-1, keepdim=True).values
        sigma = sigma.clamp_min(torch.finfo(residual.dtype).eps ** 0.5)
        h = _weighted_dlt(src_bn3, dst_bn3, base / (1 + (residual / (_CAUCHY_K * sigma)) ** 2))
    return h


@full_precision
def rq3x3(m_b33: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RQ decomposition `M = K Q` with `K` upper-triangular with non-negative diagonal, `Q` orthogonal.

    Args:
        m_b33: `(..., 3, 3)`.

    Returns:
        `(K, Q)`, each `(..., 3, 3)`. `det(Q)` has the sign of `det(M)`.
    """
    flip = torch.flip(torch.eye(3, dtype=m_b33.dtype, device=m_b33.device), dims=(0,))
    # M^T P = Q' R'  =>  M = (P R'^T P) (P Q'^T): upper-triangular times orthogonal.
    q_t, r_t = torch.linalg.qr(m_b33.transpose(-1, -2) @ flip)
    upper = flip @ r_t.transpose(-1, -2) @ flip
    ortho = flip @ q_t.transpose(-1, -2)
    signs = torch.where(torch.diagonal(upper, dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(m_b33)
    return upper * signs[..., None, :], ortho * signs[..., :, None]
