"""Training losses, each returning one value per sample, shape (B,).

Every loss is normalised within its own sample (by that sample's valid count), so that the
batch mean of a loss does not depend on how a global batch is split across devices.
A sample without valid entries contributes 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import einsum

from l4p.geometry.intrinsics import pixels_to_grid
from l4p.geometry.rays import cameras_to_rays


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample mean of `values` over `mask` (same shape, leading batch axis), (B,)."""
    mask = mask.to(values.dtype)
    dims = tuple(range(1, values.ndim))
    return (values * mask).sum(dims) / mask.sum(dims).clamp(min=1.0)


def silog_loss(
    pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, *, variance_focus: float = 0.85
) -> torch.Tensor:
    """Scale-invariant log loss `sqrt(mean(d^2) - lambda * mean(d)^2)`, `d = log pred - log target`.

    Args:
        pred: (B, ...) positive predicted depth.
        target: (B, ...) ground-truth depth (any value where invalid).
        valid: (B, ...) bool.
        variance_focus: lambda in [0, 1]; 1 makes the loss fully invariant to a per-sample scale.

    Returns:
        (B,) losses.
    """
    d = torch.log(pred.clamp(min=1e-6)) - torch.log(torch.where(valid, target, torch.ones_like(target)))
    d = torch.where(valid, d, torch.zeros_like(d))
    mean_d, mean_d2 = masked_mean(d, valid), masked_mean(d * d, valid)
    return torch.sqrt((mean_d2 - variance_focus * mean_d * mean_d).clamp(min=1e-8))


def flow_l1_loss(
    pred_bt2hw: torch.Tensor, target_bt2hw: torch.Tensor, valid_bthw: torch.Tensor
) -> torch.Tensor:
    """Mean over valid pixels of `|du| + |dv|` (pixels), (B,)."""
    err = (pred_bt2hw - target_bt2hw).abs().sum(dim=2)
    return masked_mean(err, valid_bthw)


def track_position_loss(
    pred_bnt2: torch.Tensor, target_bnt2: torch.Tensor, mask_bnt: torch.Tensor
) -> torch.Tensor:
    """Mean over masked entries of `|dx| + |dy|` (pixels), (B,)."""
    return masked_mean((pred_bnt2 - target_bnt2).abs().sum(-1), mask_bnt)


def scale_invariant_depth_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |d - mean(d)| with `d = log pred - log target`, per sample (invariant to its scale), (B,)."""
    mask = mask & (target > 0)
    d = torch.log(pred.clamp(min=1e-6)) - torch.log(torch.where(mask, target, torch.ones_like(target)))
    d = torch.where(mask, d, torch.zeros_like(d))
    centre = masked_mean(d, mask).view(-1, *([1] * (d.ndim - 1)))
    return masked_mean((d - centre).abs(), mask)


def bce_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy with logits, averaged per sample over `mask` (all if None), (B,)."""
    loss = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return masked_mean(loss, torch.ones_like(loss, dtype=torch.bool) if mask is None else mask)


def relative_poses(extrinsics_bt44: torch.Tensor, *, normalise_scale: bool = True) -> torch.Tensor:
    """Camera-to-world poses relative to each clip's first camera, (B, T, 4, 4).

    Pose t becomes `E_0 @ inverse(E_t)` (camera t -> camera 0). With `normalise_scale`, the
    translations are divided by the mean distance of the camera centres from the first one
    (left unchanged when the camera does not move).
    """
    e = extrinsics_bt44.double()
    rel = e[:, :1] @ torch.linalg.inv(e)
    if normalise_scale:
        centres = rel[:, :, :3, 3]
        scale = centres[:, 1:].norm(dim=-1).mean(dim=1) if centres.shape[1] > 1 else centres.new_zeros(1)
        scale = torch.where(scale > 1e-6, scale, torch.ones_like(scale))
        rel = rel.clone()
        rel[:, :, :3, 3] = centres / scale[:, None, None]
    return rel.float()


def camera_ray_targets(
    intrinsics_bt33: torch.Tensor,
    extrinsics_bt44: torch.Tensor,
    *,
    grid_hw: tuple[int, int],
    patch: int | tuple[int, int],
    normalise_scale: bool = True,
) -> torch.Tensor:
    """Plücker ray targets (B, 6, T, h, w) of a window's GT cameras, relative to its first camera.

    Args:
        intrinsics_bt33: (B, T, 3, 3) pixel intrinsics of the window.
        extrinsics_bt44: (B, T, 4, 4) world-to-camera.
        grid_hw: The ray head's patch grid (h, w).
        patch: Patch size in pixels (the encoder's).
        normalise_scale: Scale-normalise translations (see `relative_poses`).
    """
    k_grid = pixels_to_grid(intrinsics_bt33.float(), patch)
    return cameras_to_rays(k_grid, relative_poses(extrinsics_bt44, normalise_scale=normalise_scale), grid_hw)


def camera_ray_loss(pred_b6thw: torch.Tensor, target_b6thw: torch.Tensor) -> torch.Tensor:
    """Mean L1 between predicted and target Plücker rays, (B,)."""
    return (pred_b6thw.float() - target_b6thw).abs().flatten(1).mean(1)


def project_points(points_cam_tn3: torch.Tensor, intrinsics_t33: torch.Tensor) -> torch.Tensor:
    """Pixel positions (..., T, N, 2) of camera-frame points (..., T, N, 3) with K (..., T, 3, 3)."""
    uvw = einsum(intrinsics_t33, points_cam_tn3, "... t i j, ... t n j -> ... t n i")
    return uvw[..., :2] / uvw[..., 2:3]


def heatmap_ce_loss(
    logits_bnthw: torch.Tensor,
    target_bnt2: torch.Tensor,
    mask_bnt: torch.Tensor,
    *,
    window_hw: tuple[int, int],
) -> torch.Tensor:
    """Cross-entropy of per-frame position heatmaps against the GT point, per sample, (B,).

    The soft-argmax L1 alone gives a near-uniform heatmap only a weak, global "tilt" gradient
    (`d E[x] / d logit_i = p_i (x_i - E[x])`); this term puts probability mass on the right cell
    directly. The target is the GT position split bilinearly over the four nearest cells of
    the logit grid (cell centres as in an `align_corners=False` resize to the window).

    Args:
        logits_bnthw: (B, N, T, h, w) position logits on a coarse grid covering the window.
        target_bnt2: (B, N, T, 2) GT (x, y) in window pixels, integer = pixel centre.
        mask_bnt: (B, N, T) bool, entries to supervise.
        window_hw: (H, W) of the window in pixels.
    """
    h, w = logits_bnthw.shape[-2:]
    scale = target_bnt2.new_tensor([w / window_hw[1], h / window_hw[0]])
    grid = ((target_bnt2.float() + 0.5) * scale - 0.5).clamp(min=0.0)
    grid = torch.minimum(grid, grid.new_tensor([w - 1.0, h - 1.0]))
    low = grid.floor()
    frac = grid - low
    low = low.long()
    high = torch.minimum(low + 1, low.new_tensor([w - 1, h - 1]))
    logp = torch.log_softmax(logits_bnthw.float().flatten(-2), dim=-1)  # (B, N, T, h*w)
    loss = torch.zeros_like(logp[..., 0])
    for xs, wx in ((low[..., 0], 1 - frac[..., 0]), (high[..., 0], frac[..., 0])):
        for ys, wy in ((low[..., 1], 1 - frac[..., 1]), (high[..., 1], frac[..., 1])):
            index = (ys * w + xs)[..., None]
            loss = loss - wx * wy * logp.gather(-1, index)[..., 0]
    return masked_mean(loss, mask_bnt)


def token_match_loss(
    tokens_bpc: torch.Tensor,
    grid_thw: tuple[int, int, int],
    queries_bn3: torch.Tensor,
    target_bnt2: torch.Tensor,
    mask_bnt: torch.Tensor,
    *,
    window_hw: tuple[int, int],
    temperature: float = 0.1,
) -> torch.Tensor:
    """Correspondence loss on the encoder tokens: find each query's own point in every frame, (B,).

    The token at the query (bilinear on its frame's token slice) is compared by cosine
    similarity with every token of each frame's slice; the softmax over a slice's h*w tokens is
    scored by cross-entropy against the GT point of that frame (split bilinearly over the
    nearest tokens, as `heatmap_ce_loss`). It asks the encoder for tokens that stay similar
    along a track and differ across the image, which is what the tracking head's attention
    compares; the head itself is not involved.

    Args:
        tokens_bpc: (B, P, C) encoder tokens of one window, P = t*h*w in raster order.
        grid_thw: Token grid (t, h, w); a slice covers T // t frames.
        queries_bn3: (B, N, 3) (frame, x, y) in the window, integer = pixel centre; the frame
            must be inside the window where `mask_bnt` has entries.
        target_bnt2: (B, N, T, 2) GT (x, y) per frame, integer = pixel centre.
        mask_bnt: (B, N, T) bool, frames to supervise.
        window_hw: (H, W) of the window in pixels.
        temperature: Cosine similarities are divided by it.
    """
    t, h, w = grid_thw
    frames = mask_bnt.shape[-1]
    feats = F.normalize(tokens_bpc.float(), dim=-1).transpose(1, 2).reshape(tokens_bpc.shape[0], -1, t, h, w)
    b, n = queries_bn3.shape[:2]
    slice_index = (queries_bn3[..., 0].long().clamp(0, frames - 1) // (frames // t)).clamp(max=t - 1)
    maps = feats.permute(0, 2, 1, 3, 4)  # (B, t, C, h, w)
    query_maps = maps[torch.arange(b, device=maps.device)[:, None], slice_index]  # (B, N, C, h, w)
    size = queries_bn3.new_tensor([window_hw[1], window_hw[0]])
    where = ((queries_bn3[..., 1:].float() + 0.5) / size * 2 - 1).reshape(b * n, 1, 1, 2)
    anchor = F.grid_sample(query_maps.flatten(0, 1), where, mode="bilinear", align_corners=False)
    anchor = F.normalize(anchor.reshape(b, n, -1), dim=-1)
    logits = einsum(anchor, feats, "b n c, b c t h w -> b n t h w") / temperature
    logits = logits.repeat_interleave(frames // t, dim=2)
    return heatmap_ce_loss(logits, target_bnt2, mask_bnt, window_hw=window_hw)
