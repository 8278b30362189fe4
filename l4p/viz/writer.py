"""Write the videos a person looks at for one prediction: depth, flow, motion, tracks, mosaic.

Frames are rendered in chunks so that long videos need little extra memory; colour ranges
(depth percentiles, flow normalisation) are computed once over the whole video so that
colours mean the same thing in every frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from l4p.data.video import VideoWriter
from l4p.outputs import Prediction
from l4p.viz._common import to_numpy
from l4p.viz.camera import draw_trajectory
from l4p.viz.depth import colorize_depth
from l4p.viz.flow import flow_to_rgb
from l4p.viz.mosaic import mosaic
from l4p.viz.overlay import motion_overlay
from l4p.viz.tracks import draw_tracks, track_colors

logger = logging.getLogger(__name__)

MOSAIC_MAX_WIDTH = 1920


def visualize_prediction(
    frames: np.ndarray,
    pred: Prediction,
    out_dir: str | Path,
    *,
    fps: float = 10.0,
    suffix: str = ".mp4",
    cmap: str = "turbo",
    tail: int = 8,
    chunk: int = 32,
    with_mosaic: bool = True,
) -> dict[str, Path]:
    """Render one video's prediction as videos.

    Writes `depth`, `flow` (Middlebury wheel; frame 0 has no flow and is black), `motion`
    (overlay on the input), `tracks` (overlay with tails; hollow = occluded) and `mosaic`
    (input, every map and the camera path from above, side by side, at most 1920 pixels wide),
    each only when its task is in the prediction.

    Args:
        frames: (T, H, W, 3) uint8 input frames.
        pred: Prediction of this video (batch size 1).
        out_dir: Folder for the files.
        fps: Frame rate of the written videos (use the input's).
        suffix: ".mp4" or ".gif".
        cmap: Depth colormap.
        tail: Track tail length, frames.
        chunk: Frames rendered at once.
        with_mosaic: Also write the side-by-side video.

    Returns:
        Paths of the written videos by name ("depth", "flow", "motion", "tracks", "mosaic").
    """
    t, h, w, _ = frames.shape
    panels = _panel_renderers(frames, pred, cmap=cmap, tail=tail)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {
        name: VideoWriter(out_dir / f"{name}{suffix}", fps=fps)
        for name in panels
        if name not in ("input", "camera")
    }
    if with_mosaic and len(panels) > 1:
        writers["mosaic"] = VideoWriter(out_dir / f"mosaic{suffix}", fps=fps)
    columns = min(len(panels), 3)
    scale = min(1.0, MOSAIC_MAX_WIDTH / (columns * w))
    size = (max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2))
    ok = False
    try:
        for s in range(0, t, chunk):
            e = min(t, s + chunk)
            rendered = {name: render(s, e) for name, render in panels.items()}
            for name, video in rendered.items():
                if name in writers:
                    writers[name].write(video)
            if "mosaic" in writers:
                tiles = [_resize(v, size) for v in rendered.values()]
                writers["mosaic"].write(mosaic(tiles, labels=list(rendered), columns=columns))
        ok = True
    finally:
        for writer in writers.values():  # never a half-written video under the final name
            if ok:
                writer.close()
            else:
                writer.abort()
    return {name: writer.path for name, writer in writers.items()}


def _panel_renderers(
    frames: np.ndarray, pred: Prediction, *, cmap: str, tail: int
) -> dict[str, Callable[[int, int], np.ndarray]]:
    """One function (start, end) -> (end - start, H, W, 3) uint8 per panel."""
    panels: dict[str, Callable[[int, int], np.ndarray]] = {"input": lambda s, e: frames[s:e]}
    if pred.depth is not None:
        depth = to_numpy(pred.depth[0])
        near, far = _depth_range(depth)
        panels["depth"] = lambda s, e: colorize_depth(depth[s:e], cmap=cmap, value_range=(near, far))
    if pred.flow is not None:
        flow = to_numpy(pred.flow[0])
        length = np.hypot(flow[:, 0], flow[:, 1])
        finite = length[np.isfinite(length)]
        max_flow = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        panels["flow"] = lambda s, e: flow_to_rgb(flow[s:e], max_flow=max(max_flow, 1e-3))
    if pred.motion is not None:
        motion = to_numpy(pred.motion[0])
        panels["motion"] = lambda s, e: motion_overlay(frames[s:e], motion[s:e])
    if pred.tracks is not None:
        tracks = to_numpy(pred.tracks[0])
        vis = to_numpy(pred.visibility[0]) if pred.visibility is not None else None
        colors = None
        if pred.queries is not None:
            colors = track_colors(to_numpy(pred.queries[0])[:, 1:], width=frames.shape[2])
        panels["tracks"] = lambda s, e: draw_tracks(
            frames[s:e], tracks, vis, colors=colors, tail=tail, start=s
        )
    if pred.extrinsics is not None:
        ext = to_numpy(pred.extrinsics[0])
        h, w = frames.shape[1:3]
        panels["camera"] = lambda s, e: draw_trajectory(ext, height=h, width=w, start=s, end=e)
    return panels


def _depth_range(depth: np.ndarray, percentiles: tuple[float, float] = (2.0, 98.0)) -> tuple[float, float]:
    """Robust (near, far) depth over a whole video, from a subsample of its valid pixels."""
    values = depth[np.isfinite(depth) & (depth > 0)]
    if values.size == 0:
        return 1.0, 2.0
    step = max(1, values.size // 2_000_000)
    inv = 1.0 / values[::step]
    lo, hi = np.percentile(inv, percentiles)
    hi = max(hi, lo * (1 + 1e-6) + 1e-12)
    return float(1.0 / hi), float(1.0 / max(lo, 1e-12))


def _resize(video: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if video.shape[2] == size[0] and video.shape[1] == size[1]:
        return video
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in video])
