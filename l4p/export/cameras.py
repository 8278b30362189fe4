"""Camera poses as a frustum mesh (PLY), a JSON file and a TUM trajectory.

Conventions: extrinsics are world-to-camera (OpenCV axes: x right, y down, z forward); the
world is the first frame's camera. Units are those of the depth (relative depth: one unknown
scale per video).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from l4p.export.atomic import write_text_atomic
from l4p.export.ply import write_ply

# Triangles of a frustum with the apex at vertex 0 and image corners 1..4 (clockwise on screen).
_FRUSTUM_FACES = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1], [1, 2, 3], [1, 3, 4]], np.int32)


def camera_frustum(
    *, world_to_camera: np.ndarray, intrinsics: np.ndarray, width: int, height: int, size: float
) -> np.ndarray:
    """Vertices (5, 3) of a camera's frustum in the world: centre, then the image corners at depth `size`."""
    k_inv = np.linalg.inv(np.asarray(intrinsics, np.float64))
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5], [-0.5, height - 0.5]])
    rays = (k_inv @ np.concatenate([corners, np.ones((4, 1))], 1).T).T
    cam = np.concatenate([np.zeros((1, 3)), rays / rays[:, 2:3] * size], 0)
    cam_to_world = np.linalg.inv(np.asarray(world_to_camera, np.float64))
    return (cam @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]).astype(np.float32)


def write_cameras_ply(
    path: str | Path,
    *,
    extrinsics: np.ndarray,
    intrinsics: np.ndarray,
    width: int,
    height: int,
    size: float | None = None,
) -> Path:
    """Write every camera as a small frustum, coloured from blue (first) to red (last).

    Args:
        path: Output PLY.
        extrinsics: (T, 4, 4) world-to-camera.
        intrinsics: (T, 3, 3) in pixels.
        width: Image width in pixels.
        height: Image height in pixels.
        size: Frustum depth in world units (default: a tenth of the camera path's extent, or
            0.1 for a still camera).
    """
    t = len(extrinsics)
    centres = np.stack([np.linalg.inv(e)[:3, 3] for e in extrinsics])
    if size is None:
        extent = float(np.linalg.norm(centres.max(0) - centres.min(0))) if t > 1 else 0.0
        size = 0.1 * extent if extent > 1e-6 else 0.1
    verts = [
        camera_frustum(world_to_camera=e, intrinsics=k, width=width, height=height, size=size)
        for e, k in zip(extrinsics, intrinsics)
    ]
    ramp = np.linspace(0.0, 1.0, t)[:, None]
    colors = np.round((1 - ramp) * [40, 90, 255] + ramp * [255, 50, 40]).astype(np.uint8)
    faces = np.concatenate([_FRUSTUM_FACES + 5 * i for i in range(t)])
    return write_ply(
        path,
        vertices=np.concatenate(verts),
        colors=np.repeat(colors, 5, axis=0),
        faces=faces,
        comments=["l4p cameras: one frustum (5 vertices, 6 triangles) per frame"],
    )


def write_poses_json(
    path: str | Path,
    *,
    extrinsics: np.ndarray,
    intrinsics: np.ndarray,
    width: int,
    height: int,
    fps: float | None = None,
) -> Path:
    """Write per-frame poses and intrinsics as JSON (see the keys in the file's `convention`)."""
    frames = [
        {
            "frame": i,
            "world_to_camera": np.asarray(e, float).round(8).tolist(),
            "camera_to_world": np.linalg.inv(np.asarray(e, np.float64)).round(8).tolist(),
            "K": np.asarray(k, float).round(6).tolist(),
        }
        for i, (e, k) in enumerate(zip(extrinsics, intrinsics))
    ]
    doc = {
        "convention": "OpenCV camera axes (x right, y down, z forward); world = first frame's camera; "
        "units = the depth's (relative: one unknown scale); K in pixels, integer = pixel centre",
        "width": width,
        "height": height,
        "fps": fps,
        "frames": frames,
    }
    return write_text_atomic(path, json.dumps(doc, indent=1))


def write_tum_trajectory(path: str | Path, *, extrinsics: np.ndarray, fps: float | None = None) -> Path:
    """Write camera-to-world poses as a TUM trajectory: `time tx ty tz qx qy qz qw` per line.

    Time is the frame index divided by `fps` (frame index when the rate is unknown).
    """
    lines = ["# time tx ty tz qx qy qz qw (camera-to-world, OpenCV axes, l4p)"]
    for i, e in enumerate(extrinsics):
        c2w = np.linalg.inv(np.asarray(e, np.float64))
        q = rotation_to_quaternion(c2w[:3, :3])
        stamp = i / fps if fps else float(i)
        lines.append(" ".join(f"{v:.9g}" for v in (stamp, *c2w[:3, 3], *q)))
    return write_text_atomic(path, "\n".join(lines) + "\n")


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w), w >= 0, of a 3x3 rotation matrix (largest-pivot method)."""
    r = np.asarray(rotation, np.float64)
    trace = np.trace(r)
    diag = np.diag(r)
    if trace > diag.max():
        w = 0.5 * np.sqrt(1.0 + trace)
        q = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1], 4 * w * w]) / (4 * w)
    else:
        i = int(np.argmax(diag))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(max(1.0 + r[i, i] - r[j, j] - r[k, k], 1e-12))
        q = np.empty(4)
        q[i] = 0.25 * s
        q[j] = (r[j, i] + r[i, j]) / s
        q[k] = (r[k, i] + r[i, k]) / s
        q[3] = (r[k, j] - r[j, k]) / s
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q
