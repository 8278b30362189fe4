"""Robust, deterministic Sim(3) fit of corresponding point sets (RANSAC + IRLS), never raising.

Used to chain a new window's cameras and depth onto the already-stitched result: point maps of
the overlap frames from the new window (``src``) and from the stitched buffer (``dst``) are
related by ``dst ≈ s · R · src + t``.

The released L4P code fits this with scikit-image's RANSAC (unseeded, on CPU, 10-point samples,
100 trials, threshold ``0.01 ×`` the 98th percentile of the new window's overlap depth) and raises
when no model is found. :func:`fit_sim3` replaces it: hypotheses come from a seeded generator and
are scored in parallel on the inputs' device, the winner is refitted on its inliers and polished
by a few IRLS steps, and degenerate input never raises (it falls back to plain Umeyama, then to
the identity, with ``success=False``). Results therefore differ from any single released run
(which is itself not reproducible) but are deterministic for a given device.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import torch

from l4p.geometry.align_sim3 import Sim3Result, masked_quantile, umeyama
from l4p.geometry.precision import full_precision

logger = logging.getLogger(__name__)


def _sq_residuals(
    scale_bh: torch.Tensor,
    rot_bh33: torch.Tensor,
    trans_bh3: torch.Tensor,
    src: torch.Tensor,
    dst: torch.Tensor,
) -> torch.Tensor:
    """Squared residuals (B, H, N) of H transforms per item applied to (B, N, 3) points."""
    pred_bhn3 = (
        scale_bh[..., None, None] * torch.einsum("bhij,bnj->bhni", rot_bh33, src) + trans_bh3[:, :, None]
    )
    return (pred_bhn3 - dst[:, None]).square().sum(dim=-1)


def _hypotheses(
    src: torch.Tensor, dst: torch.Tensor, valid_bn: torch.Tensor, *, num: int, size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fit ``num`` minimal-sample hypotheses per item; returns (B,H) scale, rotation, translation, ok.

    Samples are drawn from a CPU generator seeded with ``seed`` (the same uniform numbers for every
    batch item and every device, so a batch reproduces per-item calls), as positions among each
    item's valid points.
    """
    batch, n_pts, _ = src.shape
    gen = torch.Generator(device="cpu").manual_seed(seed)
    u_hk = torch.rand(num, size, generator=gen, dtype=torch.float64).to(src.device)
    order_bn = torch.argsort((~valid_bn).to(torch.uint8), dim=1, stable=True)  # valid first
    n_valid_b = valid_bn.sum(dim=1)
    pos_bhk = (u_hk[None] * n_valid_b[:, None, None]).floor().long()
    pos_bhk = torch.minimum(pos_bhk, (n_valid_b - 1).clamp_min(0)[:, None, None])
    idx_bm = order_bn.gather(1, pos_bhk.reshape(batch, num * size))
    take = lambda x: x.gather(1, idx_bm[..., None].expand(-1, -1, 3)).reshape(batch * num, size, 3)  # noqa: E731
    w_m = valid_bn.gather(1, idx_bm).reshape(batch * num, size).to(src.dtype)
    s, r, t, ok = umeyama(take(src), take(dst), w_m)
    return s.view(batch, num), r.view(batch, num, 3, 3), t.view(batch, num, 3), ok.view(batch, num)


def _identity(batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    eye = torch.eye(3, dtype=like.dtype, device=like.device).expand(batch, 3, 3)
    return like.new_ones(batch), eye, like.new_zeros(batch, 3)


@full_precision
def fit_sim3(
    src_bn3: torch.Tensor,
    dst_bn3: torch.Tensor,
    *,
    weights: torch.Tensor | None = None,
    method: Literal["umeyama", "robust"] = "robust",
    threshold: float | torch.Tensor | None = None,
    threshold_ratio: float = 0.01,
    num_hypotheses: int = 256,
    sample_size: int = 3,
    min_inlier_ratio: float = 0.1,
    refine_iters: int = 3,
    seed: int = 0,
    warn: bool = True,
) -> Sim3Result:
    """Fit ``dst ≈ s · R · src + t`` per batch item; never raises on degenerate input.

    ``"umeyama"``: weighted closed form on all finite points. ``"robust"``: RANSAC with
    ``num_hypotheses`` minimal samples (``sample_size`` points, drawn with a generator seeded by
    ``seed``), scored in parallel by the truncated squared residual (MSAC), the best one refitted
    on its inliers (residual < threshold), then ``refine_iters`` IRLS steps with Tukey biweights
    of cut-off ``threshold``. An item fails when its best hypothesis has fewer than
    ``max(3, min_inlier_ratio · n_valid)`` inliers or the refit is degenerate; it then gets plain
    Umeyama on all finite points, or the identity if that is degenerate too (a warning is
    logged, ``success=False``).

    Args:
        src_bn3: (B, N, 3) source points (e.g. the new window's overlap point map).
        dst_bn3: (B, N, 3) corresponding destination points (the stitched point map).
        weights: Optional (B, N) non-negative point weights. Points with a non-finite
            coordinate or weight, or zero weight, are ignored.
        method: ``"umeyama"`` or ``"robust"``.
        threshold: Inlier distance in destination units, a float or (B,) tensor. The released
            value is ``0.01 ×`` the 98th percentile of the new window's overlap depth (see
            ``sim3_threshold_from_depth``). None: ``threshold_ratio ×`` the 98th percentile of
            the valid destination points' distances to their centroid.
        threshold_ratio: Ratio used when ``threshold`` is None.
        num_hypotheses: RANSAC hypotheses (all evaluated; no early stop).
        sample_size: Points per hypothesis (3 is minimal; the release used 10).
        min_inlier_ratio: Minimum inlier fraction of the valid points for success.
        refine_iters: IRLS steps after the inlier refit.
        seed: Seed of the hypothesis sampler.
        warn: Log a warning when an item falls back (callers that fit many windows pass
            False and report the failures once, from ``success``).

    Returns:
        :class:`Sim3Result` in the promoted floating dtype of the inputs (at least float32).
        ``inliers`` is, for ``"robust"``, the points within ``threshold`` of the returned
        transform; for ``"umeyama"``, the points used.
    """
    dtype = torch.promote_types(src_bn3.dtype, torch.float32)
    src, dst = src_bn3.to(dtype), dst_bn3.to(dtype)
    batch = src.shape[0]
    w_bn = torch.ones(src.shape[:2], dtype=dtype, device=src.device) if weights is None else weights.to(dtype)
    valid_bn = torch.isfinite(src).all(-1) & torch.isfinite(dst).all(-1) & torch.isfinite(w_bn) & (w_bn > 0)
    src, dst = torch.where(valid_bn[..., None], src, 0.0), torch.where(valid_bn[..., None], dst, 0.0)
    w_bn = torch.where(valid_bn, w_bn, torch.zeros_like(w_bn))

    s_all, r_all, t_all, ok_all = umeyama(src, dst, w_bn)
    s_id, r_id, t_id = _identity(batch, src)
    s_fb = torch.where(ok_all, s_all, s_id)
    r_fb = torch.where(ok_all[:, None, None], r_all, r_id)
    t_fb = torch.where(ok_all[:, None], t_all, t_id)
    if method == "umeyama":
        if not bool(ok_all.all()):
            logger.warning("Umeyama fit degenerate for %d item(s); using identity", int((~ok_all).sum()))
        return Sim3Result(s_fb, r_fb, t_fb, valid_bn, ok_all)
    if method != "robust":
        raise ValueError(f"unknown method {method!r}")

    if threshold is None:
        dist_bn = (
            dst - torch.einsum("bn,bnc->bc", w_bn, dst)[:, None] / w_bn.sum(1).clamp_min(1e-30)[:, None, None]
        )
        thr_b = threshold_ratio * masked_quantile(dist_bn.norm(dim=-1), q=0.98, mask_bn=valid_bn)
    else:
        thr_b = torch.as_tensor(threshold, dtype=dtype, device=src.device).expand(batch)
    thr_b = torch.nan_to_num(thr_b, nan=0.0, posinf=0.0).clamp_min(0.0)
    thr2_b1 = thr_b.square()[:, None]

    s_h, r_h, t_h, ok_h = _hypotheses(src, dst, valid_bn, num=num_hypotheses, size=sample_size, seed=seed)
    chunk = max(1, (1 << 22) // max(1, batch * src.shape[1]))
    costs = []
    for h0 in range(0, num_hypotheses, chunk):
        sl = slice(h0, h0 + chunk)
        res2_bhn = _sq_residuals(s_h[:, sl], r_h[:, sl], t_h[:, sl], src, dst)
        costs.append((w_bn[:, None] * torch.minimum(res2_bhn, thr2_b1[..., None])).sum(-1))
    cost_bh = torch.where(ok_h, torch.cat(costs, dim=1), torch.full_like(ok_h, math.inf, dtype=dtype))
    best_b = cost_bh.argmin(dim=1)  # first minimum on ties: deterministic
    pick = lambda x: x[torch.arange(batch, device=src.device), best_b]  # noqa: E731
    s, r, t, ok = pick(s_h), pick(r_h), pick(t_h), pick(ok_h)

    def residual2(s_: torch.Tensor, r_: torch.Tensor, t_: torch.Tensor) -> torch.Tensor:
        return _sq_residuals(s_[:, None], r_[:, None], t_[:, None], src, dst)[:, 0]

    inl_bn = valid_bn & (residual2(s, r, t) < thr2_b1)
    need_b = torch.ceil(min_inlier_ratio * valid_bn.sum(1).to(dtype)).clamp_min(3)
    ok &= inl_bn.sum(1) >= need_b
    for it in range(refine_iters + 1):
        res2 = residual2(s, r, t)
        in_bn = valid_bn & (res2 < thr2_b1)
        tukey = (1.0 - res2 / thr2_b1.clamp_min(1e-30)).clamp_min(0.0).square()
        s_n, r_n, t_n, ok_n = umeyama(src, dst, w_bn * (in_bn if it == 0 else in_bn * tukey))
        ok_n &= ok
        s, r, t = (
            torch.where(ok_n, s_n, s),
            torch.where(ok_n[:, None, None], r_n, r),
            torch.where(ok_n[:, None], t_n, t),
        )
        ok = ok & (ok_n | (it > 0))  # the hard inlier refit must succeed; IRLS steps may be skipped
    inl_bn = valid_bn & (residual2(s, r, t) < thr2_b1)
    success = ok & (inl_bn.sum(1) >= need_b)

    if not bool(success.all()):
        if warn:
            logger.warning(
                "robust Sim(3) fit failed for %d item(s); falling back to Umeyama/identity",
                int((~success).sum()),
            )
        s = torch.where(success, s, s_fb)
        r = torch.where(success[:, None, None], r, r_fb)
        t = torch.where(success[:, None], t, t_fb)
        inl_bn = valid_bn & (residual2(s, r, t) < thr2_b1)
    return Sim3Result(s, r, t, inl_bn, success)
