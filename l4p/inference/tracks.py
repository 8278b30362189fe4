"""Turn the tracking head's window-space results into the `Prediction` track fields."""

from __future__ import annotations

import torch
from einops import rearrange

from l4p.heads.tracking.driver import TrackingResult
from l4p.inference.resize import scale_points
from l4p.outputs import Prediction


def fill_tracks(
    pred: Prediction,
    forward: TrackingResult,
    backward: TrackingResult | None,
    *,
    t: int,
    size_in: tuple[int, int],
    size_win: tuple[int, int],
    k_in: torch.Tensor | None,
    queries: torch.Tensor,
) -> None:
    """Fill tracks, visibility, track depth and 3D tracks of `pred` (in place).

    Frames before a query's frame come from the time-reversed pass when there is one;
    otherwise they are NaN (positions, depth) and not visible.
    """
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
    k = k_in if k_in is not None else pred.intrinsics
    if k is None:
        return
    homog = torch.cat([pred.tracks, torch.ones_like(pred.tracks[..., :1])], dim=-1)  # (B, T, N, 3)
    rays = torch.einsum("btij,btnj->btni", torch.linalg.inv(k.float()), homog)
    pred.tracks_3d = rays * pred.track_depth[..., None]
    if pred.extrinsics is not None:
        cam_to_world = torch.linalg.inv(pred.extrinsics.double()).float()
        rot, trans = cam_to_world[..., :3, :3], cam_to_world[..., :3, 3]
        pred.tracks_world = torch.einsum("btij,btnj->btni", rot, pred.tracks_3d) + trans[:, :, None]
