"""Export everything 3D of one prediction into a folder."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from l4p.export.cameras import write_cameras_ply, write_poses_json, write_tum_trajectory
from l4p.export.pointcloud import write_point_clouds
from l4p.export.tracks3d import save_tracks_npz
from l4p.outputs import Prediction

logger = logging.getLogger(__name__)


def export_3d(
    out_dir: str | Path,
    *,
    frames: np.ndarray,
    pred: Prediction,
    fps: float | None = None,
    stride: int = 2,
    every: int = 1,
    include_video: bool = True,
) -> dict[str, Path]:
    """Write point clouds, cameras and 3D tracks of one video (whatever the prediction has).

    Files (units of the depth, i.e. relative; world = first camera, OpenCV axes):
    `pointclouds/frame_00000.ply`, ... (needs depth and cameras, else camera-frame clouds
    when intrinsics are known), `cameras.ply` (frustum mesh), `cameras.json` (poses and K),
    `trajectory_tum.txt` (camera-to-world, TUM format), `tracks_3d.npz` (see
    `l4p.export.tracks3d`).

    Args:
        out_dir: Folder for the files.
        frames: (T, H, W, 3) uint8 input frames.
        pred: Prediction of this video (batch size 1).
        fps: Input frame rate (None when unknown).
        stride: Pixel subsampling of the point clouds.
        every: Write a point cloud for every `every`-th frame.
        include_video: Store the frames in `tracks_3d.npz`.

    Returns:
        What was written, by name ("pointclouds" is the folder).
    """
    out_dir = Path(out_dir)
    h, w = frames.shape[1:3]
    written: dict[str, Path] = {}
    ext = None if pred.extrinsics is None else pred.extrinsics[0].numpy()
    k = None if pred.intrinsics is None else pred.intrinsics[0].numpy()
    if pred.depth is not None and k is not None:
        write_point_clouds(
            out_dir / "pointclouds", frames=frames, depth=pred.depth[0].numpy(), intrinsics=k, extrinsics=ext,
            stride=stride, every=every,
        )  # fmt: skip
        written["pointclouds"] = out_dir / "pointclouds"
    elif pred.depth is not None:
        logger.info("no point clouds: they need the camera task for intrinsics")
    written.update(export_cameras_and_tracks(out_dir, pred, frames=frames if include_video else None,
                                             fps=fps, height=h, width=w))  # fmt: skip
    if not written:
        logger.warning("nothing 3D to export: point clouds, cameras and 3D tracks all need the 'camera' task")
    return written


def export_cameras_and_tracks(
    out_dir: str | Path,
    pred: Prediction,
    *,
    frames: np.ndarray | None,
    fps: float | None,
    height: int,
    width: int,
) -> dict[str, Path]:
    """Write `cameras.ply`, `cameras.json`, `trajectory_tum.txt` and `tracks_3d.npz` (what `pred` has).

    Args:
        out_dir: Folder for the files.
        pred: Prediction of one video (batch size 1); only cameras, tracks and (when given) depth are used.
        frames: (T, H, W, 3) uint8 frames to store in `tracks_3d.npz`, or None.
        fps: Input frame rate (None when unknown).
        height: Frame height in pixels.
        width: Frame width in pixels.
    """
    out_dir = Path(out_dir)
    written: dict[str, Path] = {}
    ext = None if pred.extrinsics is None else pred.extrinsics[0].numpy()
    k = None if pred.intrinsics is None else pred.intrinsics[0].numpy()
    if ext is not None and k is not None:
        size = {"width": width, "height": height}
        written["cameras_ply"] = write_cameras_ply(
            out_dir / "cameras.ply", extrinsics=ext, intrinsics=k, **size
        )
        written["cameras_json"] = write_poses_json(
            out_dir / "cameras.json", extrinsics=ext, intrinsics=k, fps=fps, **size
        )
        written["trajectory"] = write_tum_trajectory(out_dir / "trajectory_tum.txt", extrinsics=ext, fps=fps)
    if pred.tracks_3d is not None:
        written["tracks_3d"] = save_tracks_npz(
            out_dir / "tracks_3d.npz", pred, frames=frames, fps=fps, include_video=frames is not None
        )
    return written
