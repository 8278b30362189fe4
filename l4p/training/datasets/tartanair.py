"""TartanAir (Wang et al., IROS 2020) in its published layout (left camera).

Layout read (any nesting; every folder holding ``pose_left.txt`` is a sequence)::

    <root>/<environment>/<Easy|Hard>/<P000>/
      image_left/000000_left.png ...              RGB, 640 x 480
      depth_left/000000_left_depth.npy ...        float32 (H, W) z-depth, metres (sky ~ 1e4)
      pose_left.txt                               one line per frame: tx ty tz qx qy qz qw

Poses are camera-to-world in the NED convention (body x forward, y right, z down); the
OpenCV camera axes are body (y, z, x). Intrinsics are fixed: fx = fy = 320, principal point
at the image centre (319.5, 239.5 with integer = pixel centre), for 640 x 480.

Backward flow is derived from depth and poses (the dataset's ``flow/`` folder holds forward
flow only): a frame-t pixel is unprojected with its depth and projected into camera t - 1.
This is exact for static geometry (TartanAir's scenes are static up to rare moving objects).
Depths at or above 1000 m are invalid. No tracks or motion masks.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from l4p.training.datasets.base import (
    ClipDataset,
    SequenceInfo,
    quaternion_to_matrix,
    read_rgb,
    rigid,
    stack_rgb,
)
from l4p.training.sample import Sample, empty_sample

logger = logging.getLogger(__name__)

NED_TO_OPENCV = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # p_cv = P p_ned
MAX_DEPTH = 1000.0


def tartanair_intrinsics(height: int, width: int) -> np.ndarray:
    """The fixed TartanAir K (fx = fy = width / 2, principal point at the centre)."""
    f = width / 2.0
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def read_poses(path) -> np.ndarray:
    """(T, 4, 4) world-to-camera OpenCV extrinsics from a TartanAir pose file."""
    values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    if values.shape[1] != 7:
        raise ValueError(f"{path}: expected 7 columns (tx ty tz qx qy qz qw), got {values.shape[1]}")
    rot_ned = quaternion_to_matrix(values[:, [6, 3, 4, 5]])
    cam_to_world = rigid(rot_ned @ NED_TO_OPENCV.T, values[:, :3])
    return np.linalg.inv(cam_to_world)


def backward_flow(depth_thw: np.ndarray, valid_thw: np.ndarray, k: np.ndarray, ext_t44: np.ndarray):
    """Backward flow (T, 2, H, W) and validity (T, H, W) of a static scene from depth and cameras."""
    t, h, w = depth_thw.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    pix = np.stack([xs, ys, np.ones_like(xs)])
    rays = np.einsum("ij,jhw->ihw", np.linalg.inv(k), pix)
    flow = np.zeros((t, 2, h, w))
    valid = np.zeros((t, h, w), dtype=bool)
    for i in range(1, t):
        rel = ext_t44[i - 1] @ np.linalg.inv(ext_t44[i])  # camera i -> camera i - 1
        points = rays * depth_thw[i][None]
        moved = np.einsum("ij,jhw->ihw", rel[:3, :3], points) + rel[:3, 3, None, None]
        z = moved[2]
        ok = valid_thw[i] & (z > 1e-6)
        proj = np.einsum("ij,jhw->ihw", k, moved) / np.where(ok, z, 1.0)[None]
        flow[i] = np.where(ok[None], proj[:2] - pix[:2], 0.0)
        valid[i] = ok
    return flow, valid


class TartanAirDataset(ClipDataset):
    """Clips of TartanAir trajectories (see the module docstring for the layout).

    `split` is not a folder here: every trajectory under `root` is used (point `root` at the
    environments of the split).
    """

    def list_sequences(self) -> list[SequenceInfo]:
        """Every folder under the root holding `pose_left.txt` and `image_left/`."""
        out = []
        for pose in sorted(self.root.rglob("pose_left.txt")):
            folder = pose.parent
            try:
                count = sum(1 for p in (folder / "image_left").iterdir() if p.name.endswith("_left.png"))
                out.append(SequenceInfo(str(folder.relative_to(self.root)), folder, count))
            except OSError as err:
                logger.warning("TartanAir: cannot list %s (%s); skipped", folder, err)
        return out

    def read_clip(self, seq: SequenceInfo, frames: list[int]) -> Sample:
        """Read rgb, depth and cameras, and derive backward flow."""
        rgb = stack_rgb([read_rgb(seq.path / "image_left" / f"{i:06d}_left.png") for i in frames])
        t, _, h, w = rgb.shape
        depth = np.stack([np.load(seq.path / "depth_left" / f"{i:06d}_left_depth.npy") for i in frames])
        depth = depth.astype(np.float64)
        if depth.shape[1:] != (h, w):
            raise ValueError(f"{seq.name}: depth {depth.shape[1:]} does not match images {(h, w)}")
        valid = np.isfinite(depth) & (depth > 0) & (depth < MAX_DEPTH)
        ext = read_poses(seq.path / "pose_left.txt")[frames]
        k = tartanair_intrinsics(h, w)
        flow, flow_valid = backward_flow(np.where(valid, depth, 0.0), valid, k, ext)
        sample = empty_sample(t, h, w, 0)
        sample.update(
            rgb_tchw=rgb,
            depth_thw=torch.from_numpy(np.where(valid, depth, 0.0)).float(),
            depth_valid_thw=torch.from_numpy(valid),
            flow_bwd_t2hw=torch.from_numpy(flow).float(),
            flow_bwd_valid_thw=torch.from_numpy(flow_valid),
            intrinsics_t33=torch.from_numpy(k).float().expand(t, 3, 3).clone(),
            extrinsics_t44=torch.from_numpy(ext).float(),
            has_depth=torch.tensor(True),
            has_flow=torch.tensor(True),
            has_camera=torch.tensor(True),
        )
        return sample
