"""`l4p demo`: a synthetic clip with ground truth, every task predicted, written and scored.

Renders a clip with exact ground truth, predicts every task, writes the visualisations
(`compare.mp4`: prediction above ground truth), and scores the prediction against the ground
truth. By default the model is `l4p_synthetic_s` with the weights shipped in the package
(trained on these synthetic scenes); `--random` gives it random weights (seeded, so the
scores repeat too). The same command always prints the same scores.

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
DEMO_MODEL = "l4p_synthetic_s"  # ships its weights (l4p/weights)
DEMO_SIZE = "64x64"  # the size l4p_synthetic_s was trained at
RANDOM_SEED = 0


def random_network(name: str) -> L4P:
    """`name` with random weights drawn from a fixed seed (the same weights every run)."""
    from l4p.build import build_model

    state = torch.random.get_rng_state()
    torch.manual_seed(RANDOM_SEED)
    try:
        return build_model(name)
    finally:
        torch.random.set_rng_state(state)


def render_clip(*, frames: int, height: int, width: int, seed: int, num_tracks: int):
    """A synthetic clip (`SyntheticClip`, batch 1), or None if the renderer is unusable."""
    try:
        from l4p.data.synthetic import SceneConfig, render_batch

        # Value-noise textures, as l4p_synthetic_s was trained on (stripes and checkers are
        # ambiguous to track along the stripes and by the checkers' period).
        config = SceneConfig(height=height, width=width, num_frames=frames, num_tracks=num_tracks,
                             query_frames="first", num_objects=(2, 3), moving_object_prob=1.0,
                             textures=("noise",), texture_scale=2.0)  # fmt: skip
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


def write_comparison(
    path: Path, video: np.ndarray, pred: Prediction, truth: Prediction, *, first_gt_track: int, fps: float
) -> Path:
    """Write a video with the prediction (top row) above the ground truth (bottom row).

    Columns: depth (each row coloured over its own 2-98 % inverse-depth range, as depth is
    relative), backward flow (one colour scale: the ground truth's), moving pixels, and the
    ground-truth tracks (the prediction's row shows the same queries). Small clips are
    enlarged (nearest pixel) to at least 192 pixels high.
    """
    import cv2

    from l4p.data.video import VideoWriter
    from l4p.viz.depth import colorize_depth
    from l4p.viz.flow import flow_to_rgb
    from l4p.viz.mosaic import mosaic
    from l4p.viz.overlay import motion_overlay
    from l4p.viz.tracks import draw_tracks, track_colors

    assert truth.flow is not None and truth.queries is not None
    gt_flow = truth.flow[0].numpy()
    length = np.hypot(gt_flow[:, 0], gt_flow[:, 1])
    max_flow = max(float(np.nanpercentile(length, 99.5)), 1e-3) if np.isfinite(length).any() else 1.0
    colors = track_colors(truth.queries[0, :, 1:].numpy(), width=video.shape[2])
    rows = []
    for p in (pred, truth):
        assert p.depth is not None and p.flow is not None and p.motion is not None and p.tracks is not None
        first = first_gt_track if p is pred else 0
        vis = None if p.visibility is None else p.visibility[0, :, first:].numpy()
        rows += [
            colorize_depth(p.depth[0].numpy()),
            flow_to_rgb(np.nan_to_num(p.flow[0].numpy()), max_flow=max_flow),
            motion_overlay(video, p.motion[0].numpy()),
            draw_tracks(video, p.tracks[0, :, first:].numpy(), vis, colors=colors),
        ]
    scale = max(1, int(np.ceil(192 / video.shape[1])))
    if scale > 1:
        rows = [
            np.stack([cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for f in r])
            for r in rows
        ]
    labels = [
        "prediction: depth",
        "flow",
        "motion",
        "tracks",
        "ground truth: depth",
        "flow",
        "motion",
        "tracks",
    ]
    writer = VideoWriter(path, fps=fps)
    try:
        writer.write(mosaic(rows, labels=labels, columns=4))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return path


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

    Returns:
        The summary lines (the same for the same arguments: rendering, weights and inference
        are deterministic).
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
        lines.append(
            f"  Trained weights: l4p demo (shipped {DEMO_MODEL}), or l4p demo --checkpoint {RELEASED_CKPT}"
        )
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
    extra = set()
    if clip is not None:
        truth = ground_truth_prediction(clip)
        visualize_prediction(video, truth, out_dir / "ground_truth", fps=fps)
        if set(tasks) >= {"depth", "flow", "motion", "tracks"}:
            write_comparison(out_dir / "compare.mp4", video, pred, truth, first_gt_track=n_grid, fps=fps)
            extra.add("compare.mp4")
    names = sorted(
        {p.name for p in written} | {"input.mp4"} | ({"ground_truth/"} if clip is not None else set()) | extra
    )
    lines.append(f"wrote {out_dir}/: {', '.join(names)} in {time.perf_counter() - tic:.1f} s")
    if clip is not None and set(tasks) == {"depth", "flow", "motion", "camera", "tracks"}:
        lines.append("scores against the ground truth:")
        lines += score(pred, clip, first_gt_track=n_grid)
    elif clip is None:
        lines.append("no scores: the fallback pattern has no ground truth")
    return lines
