"""Validation metrics of a batch, per clip, using the benchmark implementations of `l4p.metrics`.

- depth: AbsRel and δ1 after the per-clip affine fit in inverse depth (`video_depth_metrics`);
- flow: EPE over valid pixels (`endpoint_error`), a window's first frame excluded;
- tracks: TAP-Vid AJ, δ_avg and OA in "first" mode at 256 x 256 (`compute_tapvid2d_metrics`);
- motion: IoU of the thresholded mask (p > 0.5) with the GT mask.
Dense scores are taken per window; track scores over the whole clip (stitched windows).
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
import torch
from einops import rearrange

from l4p.metrics import compute_tapvid2d_metrics, endpoint_error, pixels_to_raster, video_depth_metrics
from l4p.training.sample import Sample
from l4p.training.windows import WindowedOutputs

logger = logging.getLogger(__name__)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def batch_metrics(out: WindowedOutputs, batch: Sample) -> dict[str, list[float]]:
    """Scores of every clip (and window) of a batch, keyed `abs_rel`, `delta1`, `epe`, `aj`, `delta_avg`, `oa`, `motion_iou`."""
    scores: dict[str, list[float]] = defaultdict(list)
    height, width = batch["rgb_tchw"].shape[-2:]
    for s, dense in zip(out.starts, out.dense):
        if not all(torch.isfinite(v).all() for v in vars(dense).values() if v is not None):
            logger.warning("non-finite dense prediction in the window at frame %d; not scored", s)
            continue
        frames = slice(s, s + out.window)
        for i in range(batch["rgb_tchw"].shape[0]):
            if dense.depth is not None and bool(batch["has_depth"][i]):
                gt = torch.where(batch["depth_valid_thw"][i, frames], batch["depth_thw"][i, frames], 0.0)
                if bool((gt > 1e-3).any()):
                    pred = 1.0 / dense.depth[i].float().clamp(min=1e-6)
                    depth = video_depth_metrics(
                        pred_disparity=_np(pred), gt_depth=_np(gt), max_depth=float("inf")
                    )
                    scores["abs_rel"].append(depth.abs_rel)
                    scores["delta1"].append(depth.delta1)
            if dense.flow is not None and bool(batch["has_flow"][i]):
                valid = batch["flow_bwd_valid_thw"][i, frames].clone()
                valid[0] = False
                if bool(valid.any()):
                    epe = endpoint_error(
                        pred=_np(dense.flow[i]), gt=_np(batch["flow_bwd_t2hw"][i, frames]), channel_axis=1
                    )
                    scores["epe"].append(float(epe[_np(valid) > 0].mean()))
            if dense.motion is not None and bool(batch["has_motion"][i]):
                pred_m = dense.motion[i] > 0
                gt_m = batch["motion_thw"][i, frames] > 0.5
                union = (pred_m | gt_m).sum()
                if int(union) > 0:
                    scores["motion_iou"].append(float((pred_m & gt_m).sum() / union))
    if out.tracks is not None:
        for name, values in track_metrics(out, batch, height=height, width=width).items():
            scores[name] += values
    return dict(scores)


def track_metrics(out: WindowedOutputs, batch: Sample, *, height: int, width: int) -> dict[str, list[float]]:
    """TAP-Vid AJ, δ_avg and OA per clip ("first" mode: frames after each query)."""
    assert out.tracks is not None
    scores: dict[str, list[float]] = defaultdict(list)
    pred_xy = torch.nan_to_num(out.tracks.traj.float() - 0.5, nan=-1e4)  # head convention -> pixel centres
    for i in range(pred_xy.shape[0]):
        valid = batch["track_valid_n"][i]
        if not bool(batch["has_tracks"][i]) or not bool(valid.any()):
            continue
        q = batch["queries_n3"][i][valid]
        gt_xy = rearrange(batch["tracks_tn2"][i][:, valid], "t n c -> n t c")
        gt_occ = ~rearrange(batch["visibility_tn"][i][:, valid], "t n -> n t")
        raster_xy = pixels_to_raster(points_xy=_np(q[:, 1:]), height=height, width=width)
        queries_tyx = np.concatenate([_np(q[:, :1]), raster_xy[:, ::-1]], axis=-1)
        result = compute_tapvid2d_metrics(
            query_points=queries_tyx[None],
            gt_occluded=_np(gt_occ)[None] > 0,
            gt_tracks=pixels_to_raster(points_xy=_np(gt_xy), height=height, width=width)[None],
            pred_occluded=_np(out.tracks.vis[i][valid] < 0)[None] > 0,
            pred_tracks=pixels_to_raster(points_xy=_np(pred_xy[i][valid]), height=height, width=width)[None],
            query_mode="first",
        )
        for name, key in (
            ("aj", "average_jaccard"),
            ("delta_avg", "average_pts_within_thresh"),
            ("oa", "occlusion_accuracy"),
        ):
            value = float(result[key][0])
            if np.isfinite(value):
                scores[name].append(value)
    return dict(scores)
