"""Similarity (Sim(3)) primitives: the result type, weighted Umeyama, and applying a Sim(3).

A similarity ``S = [s·R | t]`` maps a new window's frame onto the stitched frame:
``x ↦ s · R · x + t``. Points and camera centres move with ``S``; camera orientations are
rotated by ``R`` (the released rule divides the 3×3 block of ``S · pose`` by ``s``); depth is
multiplied by ``s``. The robust fit lives in :mod:`l4p.geometry.align_sim3_robust`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from l4p.geometry.precision import full_precision


@dataclass(frozen=True)
class Sim3Result:
    """A batch of similarity transforms ``x ↦ scale · rotation · x + translation``.

    Attributes:
        scale: (B,) positive scale.
        rotation: (B, 3, 3) rotation matrices (det +1).
        translation: (B, 3) translation, in destination units.
        inliers: (B, N) bool, the points supporting the transform (see :func:`fit_sim3`).
        success: (B,) bool, False where a fallback (plain Umeyama or identity) was returned.
    """

    scale: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor
    inliers: torch.Tensor
    success: torch.Tensor

    def matrix(self) -> torch.Tensor:
        """Return the (B, 4, 4) homogeneous matrices ``[[s·R, t], [0, 1]]``."""
        batch = self.scale.shape[0]
        out = torch.zeros(batch, 4, 4, dtype=self.rotation.dtype, device=self.rotation.device)
        out[:, :3, :3] = self.scale[:, None, None] * self.rotation
        out[:, :3, 3] = self.translation
        out[:, 3, 3] = 1.0
        return out


def masked_quantile(values_bn: torch.Tensor, *, q: float, mask_bn: torch.Tensor) -> torch.Tensor:
    """Per-row quantile (linear interpolation) of the entries where ``mask_bn`` is True.

    Works for any N (no ``torch.quantile`` size limit). Rows without entries give NaN.

    Args:
        values_bn: (B, N) values.
        q: Quantile in [0, 1].
        mask_bn: (B, N) bool, entries to use.

    Returns:
        (B,) quantiles, dtype of ``values_bn``.
    """
    inf = torch.full_like(values_bn, float("inf"))
    sorted_bn = torch.sort(torch.where(mask_bn, values_bn, inf), dim=1).values
    count_b = mask_bn.sum(dim=1)
    pos_b = q * (count_b - 1).clamp_min(0).to(values_bn.dtype)
    lo_b = pos_b.floor().long()
    hi_b = torch.minimum(lo_b + 1, (count_b - 1).clamp_min(0))
    lo_v = sorted_bn.gather(1, lo_b[:, None])[:, 0]
    hi_v = sorted_bn.gather(1, hi_b[:, None])[:, 0]
    frac_b = pos_b - lo_b.to(values_bn.dtype)
    out = lo_v + frac_b * torch.where(hi_b > lo_b, hi_v - lo_v, torch.zeros_like(lo_v))
    return torch.where(count_b > 0, out, torch.full_like(out, float("nan")))


@full_precision
def umeyama(
    src_bn3: torch.Tensor, dst_bn3: torch.Tensor, weights_bn: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted closed-form least-squares similarity (Umeyama 1991), batched.

    Minimises ``Σ w_i ‖dst_i − (s R src_i + t)‖²`` with a det-corrected SVD so that ``R`` is a
    proper rotation. Inputs must be finite wherever ``weights_bn > 0``; zero-weight entries may
    hold anything finite.

    Args:
        src_bn3: (B, N, 3) source points.
        dst_bn3: (B, N, 3) destination points.
        weights_bn: (B, N) non-negative weights.

    Returns:
        ``(scale (B,), rotation (B,3,3), translation (B,3), ok (B,) bool)``. ``ok`` is False
        for degenerate input (fewer than 3 weighted points, coincident or collinear points,
        non-finite statistics); those items hold finite but meaningless values.
    """
    eps = torch.finfo(src_bn3.dtype).eps
    w_sum_b = weights_bn.sum(dim=1)
    w_bn = weights_bn / w_sum_b.clamp_min(1e-30)[:, None]
    mu_s_b3 = torch.einsum("bn,bnc->bc", w_bn, src_bn3)
    mu_d_b3 = torch.einsum("bn,bnc->bc", w_bn, dst_bn3)
    xs_bn3 = src_bn3 - mu_s_b3[:, None]
    yd_bn3 = dst_bn3 - mu_d_b3[:, None]
    cov_b33 = torch.einsum("bn,bni,bnj->bij", w_bn, yd_bn3, xs_bn3)
    var_s_b = torch.einsum("bn,bnc->b", w_bn, xs_bn3.square())
    second_moment_b = torch.einsum("bn,bnc->b", w_bn, src_bn3.square())

    finite_b = torch.isfinite(cov_b33).flatten(1).all(dim=1) & torch.isfinite(var_s_b)
    finite_b &= torch.isfinite(mu_s_b3).all(dim=1) & torch.isfinite(mu_d_b3).all(dim=1)
    eye_33 = torch.eye(3, dtype=src_bn3.dtype, device=src_bn3.device)
    cov_b33 = torch.where(finite_b[:, None, None], cov_b33, eye_33)
    u_b33, d_b3, vh_b33 = torch.linalg.svd(cov_b33)
    sign_b = torch.sign(torch.linalg.det(u_b33) * torch.linalg.det(vh_b33))
    sign_b = torch.where(sign_b == 0, torch.ones_like(sign_b), sign_b)
    corr_b3 = torch.stack([torch.ones_like(sign_b), torch.ones_like(sign_b), sign_b], dim=-1)
    rot_b33 = u_b33 @ (corr_b3[:, :, None] * vh_b33)
    var_safe_b = torch.where(finite_b, var_s_b, torch.ones_like(var_s_b)).clamp_min(1e-30)
    scale_b = (d_b3 * corr_b3).sum(dim=-1) / var_safe_b
    trans_b3 = mu_d_b3 - scale_b[:, None] * torch.einsum("bij,bj->bi", rot_b33, mu_s_b3)

    ok_b = finite_b & ((weights_bn > 0).sum(dim=1) >= 3)
    ok_b &= var_s_b > 100 * eps * second_moment_b.clamp_min(1e-30)
    ok_b &= d_b3[:, 1] > 1000 * eps * d_b3[:, 0]
    ok_b &= (scale_b > 0) & torch.isfinite(scale_b) & torch.isfinite(trans_b3).all(dim=1)
    ok_b &= torch.isfinite(rot_b33).flatten(1).all(dim=1)
    return scale_b, rot_b33, trans_b3, ok_b


@full_precision
def apply_sim3_to_points(points: torch.Tensor, sim3: Sim3Result) -> torch.Tensor:
    """Map points by ``x ↦ s · R · x + t``.

    Args:
        points: (B, ..., 3) points.
        sim3: Batch of B transforms.

    Returns:
        (B, ..., 3) transformed points, dtype of ``points``.
    """
    rot = sim3.rotation.to(points.dtype)
    view = (-1,) + (1,) * (points.dim() - 1)
    rotated = torch.einsum("bij,b...j->b...i", rot, points)
    return sim3.scale.to(points.dtype).reshape(view) * rotated + sim3.translation.to(points.dtype).reshape(
        (-1,) + (1,) * (points.dim() - 2) + (3,)
    )


@full_precision
def apply_sim3_to_poses(cam_to_world_bt44: torch.Tensor, sim3: Sim3Result) -> torch.Tensor:
    """Move camera-to-world poses into the frame of ``sim3``'s destination.

    Released rule: ``pose ← S · pose`` and then the 3×3 block divided by ``s``. Hence the camera
    orientation becomes ``R · R_cam`` (still a rotation) and the camera centre ``c`` moves with
    ``S``: ``c ← s · R · c + t``. The bottom row is kept.

    Args:
        cam_to_world_bt44: (B, T, 4, 4) camera-to-world poses.
        sim3: Batch of B transforms.

    Returns:
        (B, T, 4, 4) aligned poses, dtype of the input.
    """
    rot = sim3.rotation.to(cam_to_world_bt44.dtype)
    out = cam_to_world_bt44.clone()
    out[..., :3, :3] = torch.einsum("bij,btjk->btik", rot, cam_to_world_bt44[..., :3, :3])
    out[..., :3, 3] = apply_sim3_to_points(cam_to_world_bt44[..., :3, 3], sim3)
    return out


@full_precision
def apply_sim3_to_depth(depth: torch.Tensor, sim3: Sim3Result) -> torch.Tensor:
    """Scale depth maps with the similarity: ``depth ← s · depth`` (rotation/translation do not act).

    Args:
        depth: (B, ...) depth.
        sim3: Batch of B transforms.

    Returns:
        (B, ...) scaled depth.
    """
    return sim3.scale.to(depth.dtype).reshape((-1,) + (1,) * (depth.dim() - 1)) * depth
