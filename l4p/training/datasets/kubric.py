"""Kubric MOVi-E / MOVi-F point-tracking exports (the per-sequence `.npy` layout).

Layout read (one folder per sequence, any folder name)::

    <root>/<split>/            (or <root>/ directly when <root>/<split> does not exist)
      0000/
        frames/000.png ... 023.png      RGB frames, sorted by file name (png or jpg)
        0000.npy                        np.save of a dict (np.load(..., allow_pickle=True).item())

Keys of the dict (N tracks, T frames, H x W pixels):

- ``coords`` (N, T, 2) float: track positions (x, y) in Kubric's *raster* pixels, (0, 0) =
  top-left corner of the top-left pixel (the point-tracking challenge multiplies its [0, 1]
  image coordinates by the image size). We subtract 0.5 (integer = pixel centre).
- ``visibility`` (N, T) bool: despite the name, the challenge's *occluded* flag (True =
  occluded or outside the image), as exported; visible = not this.
- optional ``depth`` (T, H, W, 1) float: Kubric depth = distance to the camera centre (range),
  converted here to z with the intrinsics.
- optional ``coords_depth`` (N, T) float: range distance of each track point (gives 3D tracks).
- optional ``camera`` dict: ``focal_length`` and ``sensor_width`` (same unit),
  ``positions`` (T, 3) and ``quaternions`` (T, 4) (w, x, y, z) of the camera-to-world pose
  with Blender camera axes (x right, y up, looking down -z). Intrinsics: fx = fy =
  focal_length / sensor_width * W, principal point at the image centre.

Without ``camera``, depth and 3D tracks are not used (intrinsics are needed to convert range
to z). Flow and motion masks are not part of this export (``has_flow`` / ``has_motion`` off).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from l4p.training.datasets.base import (
    ClipDataset,
    SequenceInfo,
    quaternion_to_matrix,
    ray_norms,
    read_rgb,
    rigid,
    stack_rgb,
    subfolders,
)
from l4p.training.sample import Sample, empty_sample

logger = logging.getLogger(__name__)

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def _frame_files(folder):
    return sorted(p for p in (folder / "frames").iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)


class KubricDataset(ClipDataset):
    """Clips of a Kubric MOVi-E/F point-tracking export (see the module docstring for the layout)."""

    def list_sequences(self) -> list[SequenceInfo]:
        """Folders holding `frames/` and `<name>.npy`."""
        base = self.root / self.split if (self.root / self.split).is_dir() else self.root
        out = []
        for folder in subfolders(base):
            try:
                if (folder / f"{folder.name}.npy").is_file():
                    out.append(SequenceInfo(folder.name, folder, len(_frame_files(folder))))
            except OSError as err:
                logger.warning("Kubric: cannot list %s (%s); skipped", folder, err)
        return out

    def read_clip(self, seq: SequenceInfo, frames: list[int]) -> Sample:
        """Read frames, tracks and (when exported) depth and cameras."""
        ann = np.load(seq.path / f"{seq.name}.npy", allow_pickle=True).item()
        files = _frame_files(seq.path)
        rgb = stack_rgb([read_rgb(files[i]) for i in frames])
        t, _, h, w = rgb.shape
        coords = np.asarray(ann["coords"], dtype=np.float64)[:, frames] - 0.5  # (N, T, 2)
        occluded = np.asarray(ann["visibility"], dtype=bool)[:, frames]
        n = coords.shape[0]
        sample = empty_sample(t, h, w, n)
        sample.update(
            rgb_tchw=rgb,
            tracks_tn2=torch.from_numpy(coords.transpose(1, 0, 2)).float(),
            visibility_tn=torch.from_numpy(~occluded.T),
            track_valid_n=torch.from_numpy(np.isfinite(coords).all(axis=(1, 2))),
            has_tracks=torch.tensor(True),
        )
        sample["tracks_tn2"] = torch.nan_to_num(sample["tracks_tn2"])
        camera = ann.get("camera")
        if camera is None:
            return sample
        fx = float(camera["focal_length"]) / float(camera["sensor_width"]) * w
        k = np.array([[fx, 0.0, (w - 1) / 2], [0.0, fx, (h - 1) / 2], [0.0, 0.0, 1.0]])
        rot = quaternion_to_matrix(np.asarray(camera["quaternions"], dtype=np.float64)[frames])
        cam_to_world = (
            rigid(rot, np.asarray(camera["positions"], dtype=np.float64)[frames]) @ _BLENDER_TO_OPENCV
        )
        sample.update(
            intrinsics_t33=torch.from_numpy(k).float().expand(t, 3, 3).clone(),
            extrinsics_t44=torch.from_numpy(np.linalg.inv(cam_to_world)).float(),
            has_camera=torch.tensor(True),
        )
        if "depth" in ann:
            depth = np.asarray(ann["depth"], dtype=np.float64)[frames, ..., 0] / ray_norms(k, h, w)[None]
            sample.update(
                depth_thw=torch.from_numpy(depth).float(),
                depth_valid_thw=torch.from_numpy(np.isfinite(depth) & (depth > 0)),
                has_depth=torch.tensor(True),
            )
        if "coords_depth" in ann:
            dist = np.asarray(ann["coords_depth"], dtype=np.float64)[:, frames].T  # (T, N)
            pix = np.concatenate([coords.transpose(1, 0, 2), np.ones((t, n, 1))], axis=-1)
            rays = pix @ np.linalg.inv(k).T
            points = rays / np.linalg.norm(rays, axis=-1, keepdims=True) * dist[..., None]
            sample.update(
                tracks3d_tn3=torch.from_numpy(np.nan_to_num(points)).float(),
                has_track_depth=torch.tensor(True),
            )
        return sample
