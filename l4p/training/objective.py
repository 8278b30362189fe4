"""The training objective: every task's loss over every window of a clip, per sample.

Dense losses compare each window's outputs with the ground truth of its frames (a window's
first frame has no backward flow inside the window, so it is not supervised). Track losses
use every window's raw head outputs (`TrackingResult.windows`) at frames at or after each
query's frame: positions (L1, pixels) and the position heatmap (cross-entropy against the GT
cell, `losses.heatmap_ce_loss`) where the GT point is inside the image, visibility
(BCE) everywhere, depth (scale-invariant) where the point is inside the image and in front
of the camera. `track_match` (`losses.token_match_loss`, off by default) asks the encoder
tokens themselves to find each query's point in the frames where it is visible. Each loss is
averaged over windows and multiplied by its sample's `has_*` flag.
"""

from __future__ import annotations

import torch
from einops import rearrange

from l4p.training import losses as L
from l4p.training.sample import Sample, first_tracks, in_image
from l4p.training.windows import WindowedOutputs

DEFAULT_LOSS_WEIGHTS: dict[str, float] = {
    "depth": 20.0,
    "flow": 20.0,
    "track_position": 1.0,
    "track_heatmap": 0.0,  # auxiliary, off in the paper objective (logged all the same)
    "track_depth": 20.0,
    "visibility": 15.0,
    "motion": 1.0,
    "camera": 1.0,
    "track_match": 0.0,  # auxiliary correspondence loss on the encoder tokens (not in the paper)
}


def _flag(batch: Sample, name: str) -> torch.Tensor:
    return batch[f"has_{name}"].float()


def compute_losses(
    out: WindowedOutputs, batch: Sample, *, patch: int, variance_focus: float = 0.85
) -> dict[str, torch.Tensor]:
    """Per-sample losses (B,) of the tasks present in `out`, keyed like `DEFAULT_LOSS_WEIGHTS`.

    Args:
        out: Windowed network outputs.
        batch: The collated training batch (see `l4p.training.sample`).
        patch: Encoder patch size in pixels (for the camera-ray targets).
        variance_focus: SILog lambda.
    """
    acc: dict[str, list[torch.Tensor]] = {}

    def add(name: str, value: torch.Tensor) -> None:
        acc.setdefault(name, []).append(value)

    for start, dense in zip(out.starts, out.dense):
        frames = slice(start, start + out.window)
        if dense.depth is not None:
            valid = batch["depth_valid_thw"][:, frames]
            add(
                "depth",
                L.silog_loss(
                    dense.depth.float(), batch["depth_thw"][:, frames], valid, variance_focus=variance_focus
                ),
            )
        if dense.flow is not None:
            valid = batch["flow_bwd_valid_thw"][:, frames].clone()
            valid[:, 0] = False
            add("flow", L.flow_l1_loss(dense.flow.float(), batch["flow_bwd_t2hw"][:, frames], valid))
        if dense.motion is not None:
            add("motion", L.bce_loss(dense.motion, batch["motion_thw"][:, frames]))
        if dense.camera_rays is not None:
            target = L.camera_ray_targets(
                batch["intrinsics_t33"][:, frames],
                batch["extrinsics_t44"][:, frames],
                grid_hw=tuple(dense.camera_rays.shape[-2:]),  # type: ignore[arg-type]
                patch=patch,
            )
            add("camera", L.camera_ray_loss(dense.camera_rays, target))
    if out.tracks is not None:
        for name, value in _track_losses(out, batch).items():
            add(name, value)
    flags = {
        "depth": "depth",
        "flow": "flow",
        "motion": "motion",
        "camera": "camera",
        "track_position": "tracks",
        "track_heatmap": "tracks",
        "visibility": "tracks",
        "track_depth": "track_depth",
        "track_match": "tracks",
    }
    return {name: torch.stack(values).mean(0) * _flag(batch, flags[name]) for name, values in acc.items()}


def _track_losses(out: WindowedOutputs, batch: Sample) -> dict[str, torch.Tensor]:
    """Head losses on the tracks the head decoded (the batch's first ones), `track_match` on all."""
    assert out.tracks is not None
    height, width = batch["rgb_tchw"].shape[-2:]
    head = first_tracks(batch, out.tracks.windows[0].traj.shape[1])
    gt_xy = rearrange(head["tracks_tn2"], "b t n c -> b n t c")
    gt_vis = rearrange(head["visibility_tn"], "b t n -> b n t")
    gt_z = rearrange(head["tracks3d_tn3"][..., 2], "b t n -> b n t")
    inside = rearrange(in_image(head["tracks_tn2"], height, width), "b t n -> b n t")
    query_t = head["queries_n3"][..., 0]
    valid = head["track_valid_n"]
    result: dict[str, list[torch.Tensor]] = {
        "track_position": [],
        "track_heatmap": [],
        "visibility": [],
        "track_depth": [],
    }
    tokens = dict(zip(out.starts, out.tokens))
    for record in out.tracks.windows:
        frames = slice(record.start, record.start + record.traj.shape[2])
        absolute = torch.arange(frames.start, frames.stop, device=query_t.device, dtype=query_t.dtype)
        active = (absolute[None, None] >= query_t[..., None]) & valid[..., None]  # (B, N, T_win)
        in_win = inside[:, :, frames] & active
        result["track_position"].append(
            L.track_position_loss(record.traj.float() - 0.5, gt_xy[:, :, frames], in_win)
        )
        result["track_heatmap"].append(
            L.heatmap_ce_loss(record.xy_logits, gt_xy[:, :, frames], in_win, window_hw=(height, width))
        )
        result["visibility"].append(L.bce_loss(record.vis, gt_vis[:, :, frames], active))
        result["track_depth"].append(
            L.scale_invariant_depth_loss(
                record.depth.float(), gt_z[:, :, frames], in_win & (gt_z[:, :, frames] > 0)
            )
        )
        if record.start in tokens:
            result.setdefault("track_match", []).append(
                _match_loss(tokens[record.start], out.grid, batch, frames, window_hw=(height, width))
            )
    return {name: torch.stack(values).mean(0) for name, values in result.items()}


def _match_loss(
    tokens_bpc: torch.Tensor,
    grid_thw: tuple[int, int, int],
    batch: Sample,
    frames: slice,
    *,
    window_hw: tuple[int, int],
) -> torch.Tensor:
    """`token_match_loss` of one window over every track of the batch whose query is in it."""
    xy = rearrange(batch["tracks_tn2"][:, frames], "b t n c -> b n t c")
    visible = rearrange(batch["visibility_tn"][:, frames].bool(), "b t n -> b n t")
    inside = rearrange(in_image(batch["tracks_tn2"][:, frames], *window_hw), "b t n -> b n t")
    local_t = batch["queries_n3"][..., 0] - frames.start
    here = batch["track_valid_n"] & (local_t >= 0) & (local_t < frames.stop - frames.start)
    after = torch.arange(frames.stop - frames.start, device=local_t.device)[None, None] >= local_t[..., None]
    queries = torch.cat([local_t[..., None], batch["queries_n3"][..., 1:]], dim=-1)
    mask = inside & visible & after & here[..., None]
    return L.token_match_loss(tokens_bpc, grid_thw, queries, xy, mask, window_hw=window_hw)


def total_loss(losses: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """Weighted sum of the batch means of the per-sample losses."""
    if not losses:
        raise ValueError("no loss to sum: the model ran no trained task")
    return torch.stack([weights.get(name, 0.0) * value.mean() for name, value in losses.items()]).sum()
