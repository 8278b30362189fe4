"""`l4p demo`: a synthetic clip with ground truth, every task predicted, written and scored.

Renders a clip with exact ground truth, predicts every task, writes the visualisations, and
scores the prediction against the ground truth.

Needs no download: the clip comes from `l4p.data.synthetic` (a textured room with moving
objects and a moving camera). If that renderer fails, a procedural pattern made with numpy
stands in (no ground truth, so no scores).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from l4p.api import L4PPredictor
from l4p.inference.queries import grid_queries
from l4p.models.l4p import L4P
from l4p.outputs import Prediction

logger = logging.getLogger(__name__)

RELEASED_CKPT = "l4p_depth_flow_2d3dtrack_camray_dynseg_v1.ckpt"


def render_clip(*, frames: int, height: int, width: int, seed: int, num_tracks: int):
    """A synthetic clip (`SyntheticClip`, batch 1), or None if the renderer is unusable."""
    try:
        from l4p.data.synthetic import SceneConfig, render_batch

        config = SceneConfig(height=height, width=width, num_frames=frames, num_tracks=num_tracks,
                             query_frames="first", num_objects=(2, 3), moving_object_prob=1.0)  # fmt: skip
        return render_batch(config, [seed])
    except Exception as err:  # the fallback keeps the demo usable on any machine
        logger.warning(
            "synthetic renderer unavailable (%s: %s); using a procedural pattern", type(err).__name__, err
        )
        return None


def pattern_clip(*, frames: int, height: int, width: int) -> np.ndarray:
    """Fallback video (T, H, W, 3) uint8: a drifting colour grating with a moving disc."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for t in range(frames):
        phase = 2 * np.pi * t / max(frames, 1)
        base = 0.5 + 0.25 * np.sin((xx + 2 * t) / 7.0)[..., None] * np.array([1.0, 0.6, 0.2])
        cx, cy = width * (0.3 + 0.4 * t / max(frames - 1, 1)), height * (0.5 + 0.2 * np.sin(phase))
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < (min(height, width) / 6) ** 2)[..., None]
        out.append(np.where(disc, np.array([0.9, 0.2, 0.2]), base))
    return np.clip(np.stack(out) * 255, 0, 255).astype(np.uint8)


def ground_truth_prediction(clip) -> Prediction:
    """The clip's ground truth as a `Prediction` (to visualise it the same way)."""
    flow = clip.flow_bwd_bt2hw.clone()
    flow[:, 0] = float("nan")
    return Prediction(
        depth=clip.depth_bthw, flow=flow, motion=clip.motion_bthw.float(), extrinsics=clip.extrinsics_bt44,
        intrinsics=clip.intrinsics_bt33, tracks=clip.tracks_btn2, visibility=clip.visibility_btn,
        queries=clip.queries_bn3, depth_kind="metric depth (ground truth)",
    )  # fmt: skip


def score(pred: Prediction, clip, *, first_gt_track: int) -> list[str]:
    """Lines of scores of `pred` against the clip's ground truth."""
    from l4p.metrics import endpoint_error, pose_metrics, video_depth_metrics

    lines = []
    gt_depth = clip.depth_bthw[0].numpy()
    d = video_depth_metrics(
        pred_disparity=1.0 / pred.depth[0].numpy(), gt_depth=gt_depth, max_depth=float(gt_depth.max()) + 1
    )
    lines.append(
        f"  depth   AbsRel {d.abs_rel:.3f}   delta1 {d.delta1:.3f}   (inverse depth fitted by scale and shift)"
    )
    valid = clip.flow_bwd_valid_bthw[0, 1:].numpy()
    epe = endpoint_error(pred=pred.flow[0, 1:].numpy(), gt=clip.flow_bwd_bt2hw[0, 1:].numpy(), channel_axis=1)
    lines.append(f"  flow    EPE {epe[valid].mean():.2f} px   (backward flow, frames 1..{len(valid)})")
    moving, guess = clip.motion_bthw[0].numpy(), pred.motion[0].numpy() > 0.5
    iou = (moving & guess).sum() / max((moving | guess).sum(), 1)
    lines.append(f"  motion  IoU {iou:.3f}   (probability > 0.5; {moving.mean():.1%} of pixels move)")
    try:
        p = pose_metrics(pred_poses=pred.extrinsics[0].numpy(), gt_poses=clip.extrinsics_bt44[0].numpy())
        lines.append(f"  camera  ATE {p.ate:.3f} m   RRE {p.rre:.2f} deg   (Sim(3)-aligned)")
    except (ValueError, np.linalg.LinAlgError) as err:
        lines.append(f"  camera  not scored ({err})")
    vis = clip.visibility_btn[0].numpy()
    err = np.linalg.norm(pred.tracks[0, :, first_gt_track:].numpy() - clip.tracks_btn2[0].numpy(), axis=-1)
    close = (err[vis] < 4).mean() if vis.any() else float("nan")
    lines.append(
        f"  tracks  median error {np.median(err[vis]):.1f} px, {close:.1%} within 4 px   (visible points)"
    )
    return lines


def run_demo(
    network: L4P,
    *,
    out_dir: str | Path,
    frames: int = 16,
    height: int = 96,
    width: int = 128,
    seed: int = 0,
    grid: int = 6,
    device: str = "cpu",
    dtype: torch.dtype | None = None,
    progress: bool = True,
    random_weights: bool = True,
    model_name: str = "",
) -> list[str]:
    """Render, predict, write and score; returns the summary lines.

    Args:
        network: The model (all five heads).
        out_dir: Output folder (`input.mp4`, the prediction's files, `ground_truth/`).
        frames: Clip length.
        height: Clip height, pixels.
        width: Clip width, pixels.
        seed: Scene seed.
        grid: Tracks on a `grid` x `grid` grid of the first frame (plus the ground-truth queries).
        device: Where to run.
        dtype: Autocast dtype (None: float32).
        progress: Progress bar over windows.
        random_weights: Say plainly that the scores mean nothing.
        model_name: Shown in the summary.
    """
    from l4p.data.video import write_video
    from l4p.export.folder import write_prediction_folder
    from l4p.export.run_record import clear_outputs
    from l4p.viz.writer import visualize_prediction

    out_dir = Path(out_dir)
    clear_outputs(out_dir)  # a re-run must not leave an earlier run's files (e.g. PLYs of a longer clip)
    lines = []
    tic = time.perf_counter()
    clip = render_clip(frames=frames, height=height, width=width, seed=seed, num_tracks=16)
    if clip is not None:
        video = (clip.rgb_btchw[0].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        source = f"synthetic scene (seed {seed})"
    else:
        video = pattern_clip(frames=frames, height=height, width=width)
        source = "procedural pattern (the synthetic renderer was unavailable; no ground truth)"
    lines.append(
        f"clip: {source}, {frames} frames of {width}x{height}, made in {time.perf_counter() - tic:.1f} s"
    )
    if random_weights:
        lines.append(
            f"model: {model_name} with RANDOM WEIGHTS: the outputs and scores below are meaningless."
        )
        lines.append(f"  For real results: l4p demo --checkpoint {RELEASED_CKPT}")
    else:
        lines.append(f"model: {model_name}")

    queries = grid_queries(grid, frame=0, height=height, width=width, num_frames=frames)
    n_grid = len(queries)
    if clip is not None:
        queries = torch.cat([queries, clip.queries_bn3[0]])
    predictor = L4PPredictor(network, device=device, dtype=dtype)
    tasks = tuple(t for t in ("depth", "flow", "motion", "camera", "tracks") if t in predictor.tasks)
    tic = time.perf_counter()
    pred = predictor.predict(video, tasks, queries=queries if "tracks" in tasks else None, progress=progress)
    lines.append(f"predict: {', '.join(tasks)} ({n_grid} grid + {len(queries) - n_grid} ground-truth queries) "
                 f"in {time.perf_counter() - tic:.1f} s on {device}")  # fmt: skip

    tic = time.perf_counter()
    fps = 10.0
    write_video(out_dir / "input.mp4", video, fps=fps)
    written = write_prediction_folder(out_dir, frames=video, pred=pred, fps=fps, source=source, export=True)
    if clip is not None:
        visualize_prediction(video, ground_truth_prediction(clip), out_dir / "ground_truth", fps=fps)
    names = sorted(
        {p.name for p in written} | {"input.mp4"} | ({"ground_truth/"} if clip is not None else set())
    )
    lines.append(f"wrote {out_dir}/: {', '.join(names)} in {time.perf_counter() - tic:.1f} s")
    if clip is not None and set(tasks) == {"depth", "flow", "motion", "camera", "tracks"}:
        lines.append("scores against the ground truth:")
        lines += score(pred, clip, first_gt_track=n_grid)
    elif clip is None:
        lines.append("no scores: the fallback pattern has no ground truth")
    return lines
