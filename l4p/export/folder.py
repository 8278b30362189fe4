"""Everything written for one in-memory prediction, in one folder (`l4p demo`).

`l4p predict` streams into a prediction store instead (see `l4p.export.stream_folder`); it
shares the writers below. Layout of the folder:

- `prediction.npz`: the fields of `l4p.Prediction` that were predicted, with their batch axis
  of size 1 (`depth` (1, T, H, W), `flow` (1, T, 2, H, W), `motion` (1, T, H, W),
  `extrinsics` (1, T, 4, 4), `intrinsics` (1, T, 3, 3), `tracks` (1, T, N, 2), `visibility`
  (1, T, N), `visibility_prob`, `track_depth` (1, T, N), `tracks_3d`, `tracks_world`
  (1, T, N, 3), `queries` (1, N, 3)), plus `depth_kind` (text), `fps` (0 when unknown) and
  `source` (the video's path).
- `depth.mp4`, `flow.mp4`, `motion.mp4`, `tracks.mp4`, `mosaic.mp4` (see
  `l4p.viz.visualize_prediction`), at the input frame rate.
- `depth_png16/frame_00000.png`, ... (with `png16`): 16-bit depth, `depth = value * scale`
  with `scale` in `depth_png16/scale.json`; 0 = invalid.
- 3D files (with `export_3d`): see `l4p.export.export_3d`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from l4p.export.atomic import atomic_path, save_npz_atomic, write_text_atomic
from l4p.export.scene import export_3d
from l4p.outputs import Prediction

logger = logging.getLogger(__name__)


def write_depth_png16(out_dir: str | Path, depth: Any, *, chunk: int = 64) -> Path:
    """Write (T, H, W) depth as 16-bit PNGs sharing one scale (in `scale.json`); returns the folder.

    `depth` is a numpy array or anything sliced as `depth[s:e]` with a `shape` (e.g. a lazy
    view of a stored prediction); it is read `chunk` frames at a time, twice (the scale is the
    largest valid depth of the video).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = depth.shape[0]
    top = 0.0
    for s in range(0, total, chunk):
        part = np.asarray(depth[s : s + chunk])
        valid = np.isfinite(part) & (part > 0)
        top = max(top, float(part[valid].max()) if valid.any() else 0.0)
    scale = (top or 1.0) / 65535.0
    for s in range(0, total, chunk):
        part = np.asarray(depth[s : s + chunk])
        valid = np.isfinite(part) & (part > 0)
        for i, frame in enumerate(part):
            value = np.where(valid[i], np.round(np.nan_to_num(frame) / scale), 0)
            with atomic_path(out_dir / f"frame_{s + i:05d}.png") as tmp:
                if not cv2.imwrite(str(tmp), np.clip(value, 0, 65535).astype(np.uint16)):
                    raise OSError(f"could not write {tmp}")
    write_text_atomic(
        out_dir / "scale.json",
        json.dumps({"scale": scale, "meaning": "depth = png_value * scale; 0 = invalid"}),
    )
    return out_dir


def write_prediction_folder(
    out_dir: str | Path,
    *,
    frames: np.ndarray,
    pred: Prediction,
    fps: float | None,
    source: str = "",
    visualize: bool = True,
    png16: bool = False,
    export: bool = False,
    suffix: str = ".mp4",
) -> list[Path]:
    """Write the prediction of one video (batch size 1) and its visualisations.

    Args:
        out_dir: The video's folder (created).
        frames: (T, H, W, 3) uint8 input frames.
        pred: Its prediction.
        fps: Input frame rate (None: unknown; videos are then written at 10 fps).
        source: Where the video came from (stored in the npz).
        visualize: Write the videos.
        png16: Write 16-bit PNG depth frames.
        export: Write point clouds, cameras and 3D tracks.
        suffix: Video container of the visualisations (".mp4" or ".gif").

    Returns:
        Paths written (folders for frame sequences).
    """
    from l4p.viz.writer import visualize_prediction

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "prediction.npz"]
    save_npz_atomic(
        written[0], {"depth_kind": np.array(pred.depth_kind), "fps": np.array(fps or 0.0, np.float32),
                     "source": np.array(source), **pred.to_numpy()},
    )  # fmt: skip
    if visualize:
        written += visualize_prediction(frames, pred, out_dir, fps=fps or 10.0, suffix=suffix).values()
    if png16 and pred.depth is not None:
        written.append(write_depth_png16(out_dir / "depth_png16", pred.depth[0].numpy()))
    if export:
        written += export_3d(out_dir, frames=frames, pred=pred, fps=fps).values()
    return written
