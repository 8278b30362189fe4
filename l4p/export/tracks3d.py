"""3D point tracks in the npz layout of TAPIP3D / SpatialTrackerV2 result files.

Keys of the file written by `save_tracks_npz` (T frames, N tracks, H x W pixels):

| key            | shape        | dtype   | meaning                                               |
|----------------|--------------|---------|-------------------------------------------------------|
| `coords`       | (T, N, 3)    | float32 | track points in the world frame (first camera)        |
| `coords_cam`   | (T, N, 3)    | float32 | track points in each frame's camera frame             |
| `tracks_2d`    | (T, N, 2)    | float32 | (x, y) pixels, integer = pixel centre                 |
| `visibs`       | (T, N)       | bool    | visible                                               |
| `confs`        | (T, N)       | float32 | visibility probability in [0, 1]                      |
| `queries`      | (N, 3)       | float32 | (t, x, y) query of each track                         |
| `intrinsics`   | (T, 3, 3)    | float32 | K in pixels                                           |
| `extrinsics`   | (T, 4, 4)    | float32 | world-to-camera, OpenCV axes                          |
| `depths`       | (T, H, W)    | float32 | depth maps (when predicted)                           |
| `video`        | (T, 3, H, W) | float32 | input frames, RGB in [0, 1] (when `include_video`)    |
| `video_fps`    | (1,)         | float32 | input frame rate (0 when unknown)                     |

Units are the depth's: relative depth, one unknown scale per video. Fields the prediction
lacks (e.g. cameras were not requested) are left out; without cameras `coords` equals
`coords_cam` and `extrinsics` is the identity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l4p.export.atomic import save_npz_atomic
from l4p.outputs import Prediction


def tracks_npz_fields(
    pred: Prediction, *, frames: np.ndarray | None = None, fps: float | None = None
) -> dict[str, np.ndarray]:
    """The arrays of the table above for one video (`pred` with batch size 1).

    Raises:
        ValueError: The prediction has no 3D tracks.
    """
    arrays = pred.to_numpy()
    if "tracks_3d" not in arrays:
        raise ValueError("the prediction has no 3D tracks; run the 'tracks' task")
    t = arrays["tracks_3d"].shape[1]
    cam = arrays["tracks_3d"][0]
    out = {
        "coords": arrays.get("tracks_world", arrays["tracks_3d"])[0],
        "coords_cam": cam,
        "tracks_2d": arrays["tracks"][0],
        "visibs": arrays["visibility"][0].astype(bool),
        "confs": arrays["visibility_prob"][0],
        "queries": arrays["queries"][0],
        "video_fps": np.array([fps or 0.0], np.float32),
    }
    if "extrinsics" in arrays:
        out["extrinsics"] = arrays["extrinsics"][0]
    else:
        out["extrinsics"] = np.broadcast_to(np.eye(4, dtype=np.float32), (t, 4, 4)).copy()
    if "intrinsics" in arrays:
        out["intrinsics"] = arrays["intrinsics"][0]
    if "depth" in arrays:
        out["depths"] = arrays["depth"][0]
    if frames is not None:
        out["video"] = np.ascontiguousarray(frames.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
    return {k: np.asarray(v, np.float32) if v.dtype == np.float64 else v for k, v in out.items()}


def save_tracks_npz(
    path: str | Path,
    pred: Prediction,
    *,
    frames: np.ndarray | None = None,
    fps: float | None = None,
    include_video: bool = True,
) -> Path:
    """Write the 3D tracks of one video as a compressed npz (keys in the module docstring)."""
    fields = tracks_npz_fields(pred, frames=frames if include_video else None, fps=fps)
    return save_npz_atomic(path, fields)
