"""Per-frame point clouds from depth, intrinsics and poses."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l4p.export.ply import write_ply


def depth_to_points(
    *,
    depth: np.ndarray,
    intrinsics: np.ndarray,
    world_to_camera: np.ndarray | None = None,
    stride: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Unproject a depth map through pixel centres.

    Args:
        depth: (H, W) positive depth (z along the optical axis); invalid: <= 0 or non-finite.
        intrinsics: (3, 3) K in pixels, integer = pixel centre.
        world_to_camera: (4, 4) pose; None keeps the points in the camera frame.
        stride: Keep every `stride`-th pixel in x and y.

    Returns:
        points (M, 3) float32 (world frame if a pose is given) and the (M, 2) integer pixel
        (row, column) of each point.
    """
    depth = np.asarray(depth, np.float64)
    rows, cols = np.mgrid[0 : depth.shape[0] : stride, 0 : depth.shape[1] : stride]
    z = depth[rows, cols]
    keep = np.isfinite(z) & (z > 0)
    rows, cols, z = rows[keep], cols[keep], z[keep]
    k = np.asarray(intrinsics, np.float64)
    x = (cols - k[0, 2] - k[0, 1] * (rows - k[1, 2]) / k[1, 1]) / k[0, 0] * z
    y = (rows - k[1, 2]) / k[1, 1] * z
    points = np.stack([x, y, z], -1)
    if world_to_camera is not None:
        cam_to_world = np.linalg.inv(np.asarray(world_to_camera, np.float64))
        points = points @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]
    return points.astype(np.float32), np.stack([rows, cols], -1)


def write_point_clouds(
    out_dir: str | Path,
    *,
    frames: np.ndarray,
    depth: np.ndarray,
    intrinsics: np.ndarray,
    extrinsics: np.ndarray | None = None,
    stride: int = 2,
    every: int = 1,
    binary: bool = True,
    start: int = 0,
) -> list[Path]:
    """Write `frame_00000.ply`, ... : each frame's coloured points in the world frame.

    Args:
        out_dir: Folder for the files.
        frames: (T, H, W, 3) uint8 colours.
        depth: (T, H, W) depth.
        intrinsics: (T, 3, 3) K in pixels.
        extrinsics: (T, 4, 4) world-to-camera; None writes each frame in its own camera frame.
        stride: Pixel subsampling in x and y.
        every: Write every `every`-th frame.
        binary: Binary little-endian PLY (else ASCII).
        start: Index in the video of the first frame given (a chunk of a long video): files
            are named by video frame and `every` counts from frame 0.

    Returns:
        The written paths.
    """
    paths = []
    for t in range((-start) % every, len(depth), every):
        pose = None if extrinsics is None else extrinsics[t]
        points, pix = depth_to_points(
            depth=depth[t], intrinsics=intrinsics[t], world_to_camera=pose, stride=stride
        )
        colors = frames[t][pix[:, 0], pix[:, 1]]
        frame_name = "world (first camera)" if pose is not None else "camera"
        paths.append(
            write_ply(
                Path(out_dir) / f"frame_{start + t:05d}.ply",
                vertices=points,
                colors=colors,
                binary=binary,
                comments=[
                    f"l4p frame {start + t}; {frame_name} coordinates, OpenCV axes, units of the depth"
                ],
            )
        )
    return paths
