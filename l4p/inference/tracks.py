"""Turn the tracking head's window-space results into the `Prediction` track fields."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange

from l4p.heads.tracking.driver import TrackingResult
from l4p.inference.resize import scale_points
from l4p.outputs import Prediction


def track_fields(
    forward: TrackingResult,
    backward: TrackingResult | None,
    *,
    t: int,
    size_in: tuple[int, int],
    size_win: tuple[int, int],
    queries: torch.Tensor,
    intrinsics: torch.Tensor | None = None,
    extrinsics: torch.Tensor | None = None,
    stride: int = 8,
    sample_depth: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Prediction:
    """The track fields of a `Prediction` from the window-space tracking results.

    Frames before a query's frame come from the time-reversed pass when there is one;
    otherwise they are NaN (positions, depth) and not visible. With `sample_depth` (default
    mode with a depth map), each window's track depth is rescaled onto the depth map (see
    `align_track_depth`).

    Args:
        forward: Forward tracks over at least `t` frames (window pixels, +0.5 convention).
        backward: Tracks of the time-reversed pass, or None.
        t: Frames of the video.
        size_in: Input (H, W).
        size_win: Window (h, w).
        queries: (B, N, 3) the user's queries, input pixels.
        intrinsics: (B, T, 3, 3) K in input pixels for `tracks_3d`, or None.
        extrinsics: (B, T, 4, 4) world-to-camera for `tracks_world`, or None.
        stride: Frames between windows.
        sample_depth: Maps tracks (B, T, N, 2) in input pixels to the depth map there (B, T, N).
    """
    pred = Prediction()
    traj, vis, depth = (x[:, :, :t].float().cpu() for x in (forward.traj, forward.vis, forward.depth))
    before = torch.arange(t)[None, None, :] < queries[..., 0:1]  # (B, N, T)
    valid = torch.ones_like(before)
    if backward is not None:
        traj_b, vis_b, depth_b = (
            x[:, :, :t].float().cpu().flip(2) for x in (backward.traj, backward.vis, backward.depth)
        )
        traj = torch.where(before[..., None], traj_b, traj)
        vis = torch.where(before, vis_b, vis)
        depth = torch.where(before, depth_b, depth)
    else:
        valid = ~before
    xy = scale_points(traj - 0.5, src=size_win, dst=size_in)
    nan = torch.tensor(float("nan"))
    pred.queries = queries
    pred.tracks = rearrange(torch.where(valid[..., None], xy, nan), "b n t c -> b t n c")
    prob = torch.where(valid, torch.sigmoid(vis), torch.zeros(()))
    pred.visibility_prob = rearrange(prob, "b n t -> b t n")
    pred.visibility = pred.visibility_prob > 0.5
    pred.track_depth = rearrange(torch.where(valid, depth, nan), "b n t -> b t n")
    if sample_depth is not None:
        segments = _window_segments(before, stride=stride, backward=backward is not None)
        pred.track_depth = align_sampled_track_depth(
            pred.track_depth,
            sample_depth(pred.tracks),
            pred.visibility,
            rearrange(segments, "b n t -> b t n"),
        )
    if intrinsics is None:
        return pred
    homog = torch.cat([pred.tracks, torch.ones_like(pred.tracks[..., :1])], dim=-1)  # (B, T, N, 3)
    rays = torch.einsum("btij,btnj->btni", torch.linalg.inv(intrinsics.float()), homog)
    pred.tracks_3d = rays * pred.track_depth[..., None]
    if extrinsics is not None:
        cam_to_world = torch.linalg.inv(extrinsics.double()).float()
        rot, trans = cam_to_world[..., :3, :3], cam_to_world[..., :3, 3]
        pred.tracks_world = torch.einsum("btij,btnj->btni", rot, pred.tracks_3d) + trans[:, :, None]
    return pred


def _window_segments(before: torch.Tensor, *, stride: int, backward: bool) -> torch.Tensor:
    """Which window (and pass) wrote each track entry, (B, N, T) long.

    A later window overwrites the overlap, so frame f of the forward pass comes from window
    min(f // stride, last); entries before the query come from the reversed pass, whose
    windows are numbered after the forward ones.
    """
    t = before.shape[-1]
    frames = torch.arange(t)
    last = max((t - 1) // stride, 0)
    fwd = torch.clamp(frames // stride, max=last)
    seg = fwd.expand_as(before).clone()
    if backward:
        bwd = last + 1 + torch.clamp((t - 1 - frames) // stride, max=last)
        seg = torch.where(before, bwd.expand_as(before), seg)
    return seg


def sample_depth_map(depth_bthw: torch.Tensor, tracks_btn2: torch.Tensor) -> torch.Tensor:
    """The depth map (B, T, H, W) bilinearly sampled at tracks (B, T, N, 2), input pixels -> (B, T, N)."""
    _, _, h, w = depth_bthw.shape
    grid = torch.stack([(tracks_btn2[..., 0] + 0.5) / w * 2 - 1, (tracks_btn2[..., 1] + 0.5) / h * 2 - 1], -1)
    maps = rearrange(depth_bthw, "b t h w -> (b t) 1 h w")
    sampled = F.grid_sample(
        maps, rearrange(grid, "b t n c -> (b t) 1 n c").nan_to_num(0), align_corners=False
    )
    return rearrange(sampled, "(b t) 1 1 n -> b t n", b=depth_bthw.shape[0])


def align_track_depth(
    track_depth_btn: torch.Tensor,
    tracks_btn2: torch.Tensor,
    visible_btn: torch.Tensor,
    depth_bthw: torch.Tensor,
    segment_btn: torch.Tensor,
) -> torch.Tensor:
    """Rescale track depth onto the (stitched, window-consistent) depth map.

    Args:
        track_depth_btn: (B, T, N) positive track depth (NaN where undefined).
        tracks_btn2: (B, T, N, 2) track positions in depth-map pixels (integer = centre).
        visible_btn: (B, T, N) bool.
        depth_bthw: (B, T, H, W) depth map.
        segment_btn: (B, T, N) segment ids.

    Returns:
        (B, T, N) rescaled track depth (see `align_sampled_track_depth`).
    """
    sampled = sample_depth_map(depth_bthw, tracks_btn2)
    return align_sampled_track_depth(track_depth_btn, sampled, visible_btn, segment_btn)


def align_sampled_track_depth(
    track_depth_btn: torch.Tensor,
    sampled_btn: torch.Tensor,
    visible_btn: torch.Tensor,
    segment_btn: torch.Tensor,
) -> torch.Tensor:
    """Rescale track depth onto the depth map sampled at the tracks.

    The tracking head's depth has its own unknown scale in every window (the released model
    leaves it so). Per video and per segment (window of the pass that wrote the entry), the
    scale is the median of depth_map(track) / track_depth over visible entries with valid
    values; a segment without such entries takes the video's median over all its entries.

    Args:
        track_depth_btn: (B, T, N) positive track depth (NaN where undefined).
        sampled_btn: (B, T, N) the depth map at the tracks (`sample_depth_map`).
        visible_btn: (B, T, N) bool.
        segment_btn: (B, T, N) segment ids.

    Returns:
        (B, T, N) rescaled track depth.
    """
    ratio = sampled_btn / track_depth_btn
    ok = torch.isfinite(ratio) & (ratio > 0)
    out = track_depth_btn.clone()
    for b in range(out.shape[0]):
        fallback = ratio[b][ok[b]].median() if ok[b].any() else torch.tensor(1.0)
        for seg in segment_btn[b].unique():
            in_seg = segment_btn[b] == seg
            use = in_seg & ok[b] & visible_btn[b]
            scale = ratio[b][use].median() if use.any() else fallback
            out[b][in_seg] = track_depth_btn[b][in_seg] * scale
    return out
