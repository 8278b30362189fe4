"""Write the videos a person looks at for one prediction: depth, flow, motion, tracks, mosaic.

Frames are rendered in chunks so that long videos need little extra memory; colour ranges
(depth percentiles, flow normalisation) are computed once per video (over every frame, or
64 frames spread over a longer video) so that colours mean the same thing in every frame.
`visualize_fields` renders from fields sliced lazily (a stored prediction's zarr arrays).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from l4p.data.video import VideoWriter
from l4p.outputs import Prediction
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
    parts = (frames[s : s + chunk] for s in range(0, len(frames), chunk))
    return visualize_fields(parts, pred.to_numpy(), out_dir, fps=fps, suffix=suffix, cmap=cmap, tail=tail,
                            with_mosaic=with_mosaic)  # fmt: skip


def visualize_fields(
    frame_chunks: Iterable[np.ndarray],
    fields: Mapping[str, Any],
    out_dir: str | Path,
    *,
    fps: float = 10.0,
    suffix: str = ".mp4",
    cmap: str = "turbo",
    tail: int = 8,
    with_mosaic: bool = True,
) -> dict[str, Path]:
    """Render videos chunk by chunk from batch-first fields that are sliced as they are needed.

    `fields` maps `Prediction` field names to batch-first arrays: numpy arrays, or the zarr
    arrays of a stored prediction (`l4p.load_prediction`), of which only the frames of the
    chunk being rendered are read (plus a sample of up to 64 frames for the colour ranges
    of depth and flow, and the small track and camera arrays). Memory stays bounded in the
    video's length. The videos are those of `visualize_prediction`.

    Args:
        frame_chunks: The input frames, (t, H, W, 3) uint8 chunks in order.
        fields: Batch-first arrays by field name (video 0 is drawn).
        out_dir: Folder for the files.
        fps: Frame rate of the written videos.
        suffix: ".mp4" or ".gif".
        cmap: Depth colormap.
        tail: Track tail length, frames.
        with_mosaic: Also write the side-by-side video.

    Returns:
        Paths of the written videos by name.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writers: dict[str, VideoWriter] = {}
    ok, start = False, 0
    try:
        for frames in frame_chunks:
            if not writers:
                h, w = frames.shape[1:3]
                panels = _panel_renderers(fields, height=h, width=w, cmap=cmap, tail=tail)
                writers = {name: VideoWriter(out_dir / f"{name}{suffix}", fps=fps)
                           for name in panels if name not in ("input", "camera")}  # fmt: skip
                if with_mosaic and len(panels) > 1:
                    writers["mosaic"] = VideoWriter(out_dir / f"mosaic{suffix}", fps=fps)
                columns = min(len(panels), 3)
                scale = min(1.0, MOSAIC_MAX_WIDTH / (columns * w))
                size = (max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2))
            stop = start + len(frames)
            rendered = {name: render(start, stop, frames) for name, render in panels.items()}
            for name, video in rendered.items():
                if name in writers:
                    writers[name].write(video)
            if "mosaic" in writers:
                tiles = [_resize(v, size) for v in rendered.values()]
                writers["mosaic"].write(mosaic(tiles, labels=list(rendered), columns=columns))
            start = stop
        ok = True
    finally:
        for writer in writers.values():  # never a half-written video under the final name
            if ok:
                writer.close()
            else:
                writer.abort()
    return {name: writer.path for name, writer in writers.items()}


Renderer = Callable[[int, int, np.ndarray], np.ndarray]


def _panel_renderers(
    fields: Mapping[str, Any], *, height: int, width: int, cmap: str, tail: int
) -> dict[str, Renderer]:
    """One function (start, end, frames) -> (end - start, H, W, 3) uint8 per panel."""
    panels: dict[str, Renderer] = {"input": lambda s, e, f: f}
    if fields.get("depth") is not None:
        depth = fields["depth"]
        near, far = _depth_range(_sample_frames(depth))
        panels["depth"] = lambda s, e, f: colorize_depth(
            np.asarray(depth[0, s:e]), cmap=cmap, value_range=(near, far)
        )
    if fields.get("flow") is not None:
        flow = fields["flow"]
        sample = _sample_frames(flow)
        length = np.hypot(sample[:, 0], sample[:, 1])
        finite = length[np.isfinite(length)]
        max_flow = max(float(np.percentile(finite, 99.5)) if finite.size else 1.0, 1e-3)
        panels["flow"] = lambda s, e, f: flow_to_rgb(np.asarray(flow[0, s:e]), max_flow=max_flow)
    if fields.get("motion") is not None:
        motion = fields["motion"]
        panels["motion"] = lambda s, e, f: motion_overlay(f, np.asarray(motion[0, s:e]))
    if fields.get("tracks") is not None:
        tracks = np.asarray(fields["tracks"][0])
        vis = np.asarray(fields["visibility"][0]) if fields.get("visibility") is not None else None
        colors = None
        if fields.get("queries") is not None:
            colors = track_colors(np.asarray(fields["queries"][0])[:, 1:], width=width)
        panels["tracks"] = lambda s, e, f: draw_tracks(f, tracks, vis, colors=colors, tail=tail, start=s)
    if fields.get("extrinsics") is not None:
        ext = np.asarray(fields["extrinsics"][0])
        panels["camera"] = lambda s, e, f: draw_trajectory(ext, height=height, width=width, start=s, end=e)
    return panels


def _sample_frames(array: Any, count: int = 64) -> np.ndarray:
    """Video 0 of a batch-first array: every frame when it has at most `count`, else `count` spread out."""
    t = array.shape[1]
    if t <= count:
        return np.asarray(array[0])
    return np.stack([np.asarray(array[0, int(i)]) for i in np.linspace(0, t - 1, count).round()])


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
