"""PointOdyssey (Zheng et al., ICCV 2023) in its published layout.

Layout read::

    <root>/<split>/<sequence>/            split: train, val, test, sample
      rgbs/rgb_00000.jpg ...              RGB frames
      depths/depth_00000.png ...          16-bit PNG, depth = value / 65535 * 1000 (metres)
      anno.npz                            annotations (below)

``anno.npz`` arrays (T frames, N tracks):

- ``trajs_2d`` (T, N, 2) float: track positions (x, y) in pixels, used as given;
- ``trajs_3d`` (T, N, 3) float: track points in world coordinates;
- ``valids`` (T, N) bool: the track is defined at that frame;
- ``visibs`` (T, N) bool: the track is visible (not occluded);
- ``intrinsics`` (T, 3, 3) pixels; ``extrinsics`` (T, 4, 4) world-to-camera (OpenCV axes,
  points in front of the camera have positive z).

A track is kept when it is valid in every frame of the clip. Depth values at or above
1000 m (sky / no hit) are invalid. Flow and motion masks are not provided.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from l4p.training.datasets.base import (
    ClipDataset,
    SequenceInfo,
    read_png16,
    read_rgb,
    stack_rgb,
    subfolders,
    world_to_camera_points,
)
from l4p.training.sample import Sample, empty_sample

logger = logging.getLogger(__name__)

DEPTH_SCALE = 1000.0 / 65535.0


class PointOdysseyDataset(ClipDataset):
    """Clips of PointOdyssey sequences (see the module docstring for the layout)."""

    def list_sequences(self) -> list[SequenceInfo]:
        """Sequence folders of the split holding `anno.npz` and `rgbs/`."""
        out = []
        for folder in subfolders(self.root / self.split):
            try:
                if (folder / "anno.npz").is_file() and (folder / "rgbs").is_dir():
                    count = sum(1 for p in (folder / "rgbs").iterdir() if p.name.startswith("rgb_"))
                    out.append(SequenceInfo(folder.name, folder, count))
            except OSError as err:
                logger.warning("PointOdyssey: cannot list %s (%s); skipped", folder, err)
        return out

    def read_clip(self, seq: SequenceInfo, frames: list[int]) -> Sample:
        """Read rgb, depth, tracks and cameras of the frames."""
        rgb = stack_rgb([read_rgb(seq.path / "rgbs" / f"rgb_{i:05d}.jpg") for i in frames])
        depth = np.stack([read_png16(seq.path / "depths" / f"depth_{i:05d}.png") for i in frames])
        depth = depth.astype(np.float64) * DEPTH_SCALE
        with np.load(seq.path / "anno.npz") as anno:
            trajs_2d = np.asarray(anno["trajs_2d"][frames], dtype=np.float64)
            trajs_3d = np.asarray(anno["trajs_3d"][frames], dtype=np.float64)
            valids = np.asarray(anno["valids"][frames], dtype=bool)
            visibs = np.asarray(anno["visibs"][frames], dtype=bool)
            intrinsics = np.asarray(anno["intrinsics"][frames], dtype=np.float64)
            extrinsics = np.asarray(anno["extrinsics"][frames], dtype=np.float64)
        t, _, h, w = rgb.shape
        n = trajs_2d.shape[1]
        points = world_to_camera_points(extrinsics, trajs_3d)
        finite = np.isfinite(trajs_2d).all(-1) & np.isfinite(points).all(-1)
        sample = empty_sample(t, h, w, n)
        sample.update(
            rgb_tchw=rgb,
            depth_thw=torch.from_numpy(depth).float(),
            depth_valid_thw=torch.from_numpy((depth > 0) & (depth < 999.0)),
            tracks_tn2=torch.from_numpy(np.nan_to_num(trajs_2d)).float(),
            tracks3d_tn3=torch.from_numpy(np.nan_to_num(points)).float(),
            visibility_tn=torch.from_numpy(visibs & valids & finite),
            track_valid_n=torch.from_numpy((valids & finite).all(0)),
            intrinsics_t33=torch.from_numpy(intrinsics).float(),
            extrinsics_t44=torch.from_numpy(extrinsics).float(),
            has_depth=torch.tensor(True),
            has_tracks=torch.tensor(True),
            has_track_depth=torch.tensor(True),
            has_camera=torch.tensor(True),
        )
        return sample
