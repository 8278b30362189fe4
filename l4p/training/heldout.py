"""Held-out synthetic clips, the trivial baseline of every task, and per-clip scores.

Used by `benchmarks/eval_synthetic_heads.py` (the table of the shipped model), `l4p demo` and
the regression test of the shipped weights. A clip is a training `Sample`
(`l4p.training.sample`) from `l4p.data.synthetic` with TAP-Vid "first" queries (each track's
first visible frame). Scores of one clip (`score_clip`):

- depth: AbsRel and δ1 after the per-clip scale and shift of inverse depth (`video_depth_metrics`);
- flow: EPE over valid pixels of frames 1..T-1;
- motion: IoU of `probability > 0.5` with the GT mask (1 when both are empty);
- tracks: TAP-Vid AJ, δ_avg, OA at 256 x 256 raster pixels, "first" mode;
- 3D tracks: TAPVid-3D 3D-AJ with median scaling (thresholds from the GT intrinsics). As in
  TAPVid-3D, whose files give the intrinsics (and as `l4p bench tapvid3d` runs), the 3D tracks
  are lifted with the clip's intrinsics given to the model (`known_intrinsics`); the same score
  with the model's own intrinsics is `aj_3d_est_k`. `evaluate_clip` runs both;
- cameras: ATE (Sim(3)-aligned, scene units) and RRE (degrees, consecutive frames).

`flow_chained_tracks` is a diagnostic beside the tracking head: queries carried frame to frame
by a (predicted) backward flow.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from l4p.metrics import (
    compute_tapvid2d_metrics,
    compute_tapvid3d_metrics,
    endpoint_error,
    pixels_to_raster,
    pose_metrics,
    video_depth_metrics,
)
from l4p.outputs import Prediction
from l4p.training.datasets import SyntheticSource, scene_config
from l4p.training.sample import Sample, choose_queries, subsample_tracks

HELDOUT_SEED = 2_000_000  # training uses [0, 1e6), the curves' validation [1e6, 1e6 + 16)
# Scene settings of configs/synthetic_small.yaml: more motion than the generator's defaults, and
# value-noise textures only (stripes and checkers are ambiguous to track).
SCENE = {
    "num_objects": (1, 3),
    "camera_motion": 0.8,
    "camera_rotation_deg": 25.0,
    "moving_object_prob": 0.9,
    "textures": ("noise",),
    "texture_scale": 2.0,
}
LOWER_IS_BETTER = ("abs_rel", "epe", "ate", "rre")
SCORES = (
    "abs_rel",
    "delta1",
    "epe",
    "motion_iou",
    "aj",
    "delta_avg",
    "oa",
    "aj_3d",
    "aj_3d_est_k",
    "ate",
    "rre",
)


def heldout_clips(
    num_clips: int,
    *,
    first_seed: int = HELDOUT_SEED,
    frames: int = 16,
    size: tuple[int, int] = (64, 64),
    num_tracks: int = 32,
    scene: dict | None = None,
) -> list[Sample]:
    """Synthetic clips of seeds `first_seed + i` with first-visible-frame queries (valid tracks only).

    `scene` overrides `SCENE` (the training distribution of `l4p_synthetic_s`).
    """
    config = scene_config(num_frames=frames, height=size[0], width=size[1], num_tracks=2 * num_tracks,
                          overrides={**SCENE, **(scene or {})})  # fmt: skip
    source = SyntheticSource(config, seeds=(first_seed, first_seed + num_clips))
    clips = []
    for i in range(num_clips):
        generator = torch.Generator().manual_seed(first_seed + i)
        sample = choose_queries(source[i], generator=generator, first=True)
        sample = subsample_tracks(sample, num_tracks, generator=generator)
        keep = sample["track_valid_n"]
        for key in ("tracks_tn2", "tracks3d_tn3", "visibility_tn"):
            sample[key] = sample[key][:, keep]
        sample["queries_n3"], sample["track_valid_n"] = sample["queries_n3"][keep], keep[keep]
        clips.append(sample)
    return clips


def default_intrinsics(height: int, width: int) -> torch.Tensor:
    """A pinhole K (3, 3) with focal max(H, W) and the principal point at the image centre."""
    f = float(max(height, width))
    return torch.tensor([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def trivial_prediction(clip: Sample, *, known_intrinsics: bool = False) -> Prediction:
    """Every task's trivial answer for a clip.

    Constant depth, zero flow, nothing moves, identity cameras, and every track staying at its
    query point, always visible (3D: depth 1 on the clip's intrinsics when `known_intrinsics`,
    else on `default_intrinsics`).
    """
    t, _, h, w = clip["rgb_tchw"].shape
    query_xy = clip["queries_n3"][:, 1:]
    n = query_xy.shape[0]
    k = clip["intrinsics_t33"][0].float() if known_intrinsics else default_intrinsics(h, w)
    tracks = query_xy[None].expand(t, n, 2)
    rays = torch.cat([(tracks - k[:2, 2]) / k.diagonal()[:2], torch.ones(t, n, 1)], dim=-1)
    flow = torch.zeros(t, 2, h, w)
    flow[0] = float("nan")
    return Prediction(
        depth=torch.ones(1, t, h, w), flow=flow[None], motion=torch.zeros(1, t, h, w),
        extrinsics=torch.eye(4).expand(1, t, 4, 4).clone(), intrinsics=k.expand(1, t, 3, 3).clone(),
        tracks=tracks[None].clone(), visibility=torch.ones(1, t, n, dtype=torch.bool),
        visibility_prob=torch.ones(1, t, n), track_depth=torch.ones(1, t, n), tracks_3d=rays[None],
        queries=clip["queries_n3"][None].clone(), depth_kind="constant (trivial baseline)",
    )  # fmt: skip


def predict_clip(predictor, clip: Sample, *, known_intrinsics: bool = False) -> Prediction:
    """Run a predictor (`l4p.load_model(...)`) on a clip: every task, the clip's queries, forward.

    With `known_intrinsics` the clip's K is given to the model (as TAPVid-3D gives it).
    """
    return predictor.predict(
        clip["rgb_tchw"], ("depth", "flow", "motion", "camera", "tracks"), queries=clip["queries_n3"],
        direction="forward", intrinsics=clip["intrinsics_t33"][None] if known_intrinsics else None,
    )  # fmt: skip


def evaluate_clip(predict: Callable[..., Prediction], clip: Sample) -> dict[str, float]:
    """Every score of a clip (`SCORES`) for `predict(clip, known_intrinsics=...)`.

    `predict` is `trivial_prediction` or, for a model, `functools.partial(predict_clip, model)`.
    3D-AJ comes from a second prediction with the clip's intrinsics given; every other score,
    `aj_3d_est_k` included, from the one without them.
    """
    return score_clip(predict(clip), clip, known_k=predict(clip, known_intrinsics=True))


def flow_chained_tracks(
    flow_bwd_t2hw: torch.Tensor, queries_n3: torch.Tensor, *, iterations: int = 10
) -> torch.Tensor:
    """Forward tracks (T, N, 2) chained frame to frame through a backward flow (T, 2, H, W).

    A diagnostic, not a tracker: it shows how far a model's dense flow alone carries its
    queries. Backward flow maps a pixel x of frame t to `x + flow_t(x)` in frame t - 1, so the
    position p_t that follows p_{t-1} solves `p_t + flow_t(p_t) = p_{t-1}`, found by the
    fixed-point iteration `p_t <- p_{t-1} - flow_t(p_t)` (the flow sampled bilinearly, border
    values outside the image). Positions before a query's frame stay at the query; pixels are
    integer = centre, as the queries (t, x, y).
    """
    t, _, h, w = flow_bwd_t2hw.shape
    flow = flow_bwd_t2hw.float()
    start = queries_n3[:, 0].long()
    p = queries_n3[:, 1:].float().clone()
    out = [p.clone()]
    for s in range(1, t):
        x = p.clone()
        for _ in range(iterations):
            grid = torch.stack([(x[:, 0] + 0.5) / w * 2 - 1, (x[:, 1] + 0.5) / h * 2 - 1], -1)
            sampled = F.grid_sample(
                flow[s][None], grid[None, None], align_corners=False, padding_mode="border"
            )
            x = p - sampled[0, :, 0].T
        p = torch.where((s > start)[:, None], x, p)
        out.append(p.clone())
    return torch.stack(out)


def clip_has_motion(clip: Sample) -> bool:
    """True when the camera moves or some pixel belongs to a moving object."""
    e = clip["extrinsics_t44"]
    return bool((e - e[:1]).abs().max() > 1e-6) or bool(clip["motion_thw"].any())


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


def score_clip(pred: Prediction, clip: Sample, *, known_k: Prediction | None = None) -> dict[str, float]:
    """Scores of one prediction (batch 1) against the clip's ground truth (see the module docstring).

    `known_k`: the prediction made with the clip's intrinsics given, for `aj_3d` (without it,
    `aj_3d` is NaN; `aj_3d_est_k` always comes from `pred`).
    """
    assert pred.depth is not None and pred.flow is not None and pred.motion is not None
    assert pred.tracks is not None and pred.visibility is not None and pred.tracks_3d is not None
    assert pred.extrinsics is not None
    t, _, h, w = clip["rgb_tchw"].shape
    out: dict[str, float] = {}
    gt_depth = torch.where(clip["depth_valid_thw"], clip["depth_thw"], 0.0)
    d = video_depth_metrics(pred_disparity=_np(1.0 / pred.depth[0].clamp(min=1e-6)), gt_depth=_np(gt_depth),
                            max_depth=float("inf"))  # fmt: skip
    out["abs_rel"], out["delta1"] = float(d.abs_rel), float(d.delta1)
    valid = _np(clip["flow_bwd_valid_thw"][1:]) > 0
    epe = endpoint_error(pred=_np(pred.flow[0, 1:]), gt=_np(clip["flow_bwd_t2hw"][1:]), channel_axis=1)
    out["epe"] = float(epe[valid].mean())
    moving, guess = _np(clip["motion_thw"]) > 0.5, _np(pred.motion[0]) > 0.5
    union = (moving | guess).sum()
    out["motion_iou"] = float((moving & guess).sum() / union) if union else 1.0
    out.update(track_scores_2d(pred, clip, height=h, width=w))
    out["aj_3d"] = float("nan") if known_k is None else _aj_3d(known_k, clip, height=h, width=w)
    out["aj_3d_est_k"] = _aj_3d(pred, clip, height=h, width=w)
    poses = pose_metrics(pred_poses=_np(pred.extrinsics[0]), gt_poses=_np(clip["extrinsics_t44"]))
    out["ate"], out["rre"] = float(poses.ate), float(poses.rre)
    return out


def _queries_and_occlusion(pred: Prediction, clip: Sample, *, height: int, width: int):
    """Queries (N, 3) as (t, y, x) raster, GT and predicted occlusion (N, T): the TAP-Vid inputs."""
    assert pred.visibility is not None
    q = _np(clip["queries_n3"])
    queries_tyx = np.concatenate(
        [q[:, :1], pixels_to_raster(points_xy=q[:, 1:], height=height, width=width)[:, ::-1]], -1
    )
    gt_occ = ~rearrange(_np(clip["visibility_tn"]) > 0, "t n -> n t")
    pred_occ = ~rearrange(_np(pred.visibility[0]) > 0, "t n -> n t")
    return queries_tyx, gt_occ, pred_occ


def track_scores_2d(pred: Prediction, clip: Sample, *, height: int, width: int) -> dict[str, float]:
    """TAP-Vid AJ, δ_avg and OA at 256 x 256 raster pixels, "first" mode."""
    assert pred.tracks is not None
    queries_tyx, gt_occ, pred_occ = _queries_and_occlusion(pred, clip, height=height, width=width)

    def raster(xy_tn2: np.ndarray) -> np.ndarray:
        xy = rearrange(np.nan_to_num(xy_tn2, nan=-1e4), "t n c -> n t c")
        return pixels_to_raster(points_xy=xy, height=height, width=width)

    two_d = compute_tapvid2d_metrics(
        query_points=queries_tyx[None], gt_occluded=gt_occ[None], gt_tracks=raster(_np(clip["tracks_tn2"]))[None],
        pred_occluded=pred_occ[None], pred_tracks=raster(_np(pred.tracks[0]))[None], query_mode="first",
    )  # fmt: skip
    return {
        "aj": float(two_d["average_jaccard"][0]),
        "delta_avg": float(two_d["average_pts_within_thresh"][0]),
        "oa": float(two_d["occlusion_accuracy"][0]),
    }


def _aj_3d(pred: Prediction, clip: Sample, *, height: int, width: int) -> float:
    """TAPVid-3D 3D-AJ of `pred.tracks_3d`, median scaling, thresholds from the GT intrinsics."""
    assert pred.tracks_3d is not None
    queries_tyx, gt_occ, pred_occ = _queries_and_occlusion(pred, clip, height=height, width=width)
    k = _np(clip["intrinsics_t33"][0])
    scale = 256.0 / min(height, width)
    pred_3d = np.nan_to_num(_np(pred.tracks_3d[0]), nan=0.0)
    three_d = compute_tapvid3d_metrics(
        gt_occluded=gt_occ, gt_tracks=rearrange(_np(clip["tracks3d_tn3"]), "t n c -> n t c"),
        pred_occluded=pred_occ, pred_tracks=rearrange(pred_3d, "t n c -> n t c"),
        intrinsics=np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]]) * scale, scaling="median",
        query_points=queries_tyx,
    )  # fmt: skip
    return float(three_d["average_jaccard"][0])
