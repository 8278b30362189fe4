"""Dynamic Replica (Karaev et al., CVPR 2023) in its published layout (left camera).

Layout read::

    <root>/<split>/                              split: train, valid, test
      frame_annotations_<split>.jgz              gzip'd JSON list, one entry per frame and camera
      <sequence folders with images/, depths/, trajectories/ ...>   paths given by the entries

Fields of an entry used here (paths relative to ``<root>/<split>``):

- ``sequence_name``, ``frame_number``, ``camera_name`` (``"left"`` / ``"right"``);
- ``image.path`` (RGB png), ``image.size`` [H, W];
- ``depth.path``: 16-bit PNG whose bits are float16 depth (decoded by reinterpreting the
  uint16 buffer as float16), times ``depth.scale_adjustment`` (default 1);
- ``viewpoint``: PyTorch3D camera: ``R`` (3 x 3), ``T`` (3) with ``X_view = X_world R + T``
  (row vectors; view axes +X left, +Y up, +Z forward), ``focal_length`` (2),
  ``principal_point`` (2) in NDC, ``intrinsics_format`` ``"ndc_isotropic"`` (scale =
  min(H, W) / 2) or ``"ndc_norm_image_bounds"`` (scale = (W / 2, H / 2));
- ``trajectories.path``: ``torch.save`` of a dict with ``traj_2d`` (N, >= 2) screen pixels
  (PyTorch3D screen space, 0 = image edge; we subtract 0.5), ``traj_3d_world`` (N, 3) and
  ``verts_inds_vis`` (N,) bool visibility; the N tracked vertices are the same in every frame.

Conversion to OpenCV: ``R_cv = diag(-1, -1, 1) R^T``, ``t_cv = diag(-1, -1, 1) T``; principal
point in pixels ``W / 2 - p_x * s - 0.5`` (likewise y), focal ``f * s``. Flow and motion
masks are not read (``has_flow`` / ``has_motion`` off).
"""

from __future__ import annotations

import gzip
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from l4p.training.datasets.base import ClipDataset, SequenceInfo, read_png16, read_rgb, rigid, stack_rgb
from l4p.training.sample import Sample, empty_sample

logger = logging.getLogger(__name__)

_FLIP_XY = np.diag([-1.0, -1.0, 1.0])


def decode_depth(raw_uint16: np.ndarray) -> np.ndarray:
    """Depth from a Dynamic Replica depth PNG: the uint16 bits are a float16."""
    return np.ascontiguousarray(raw_uint16).view(np.float16).astype(np.float32)


def viewpoint_to_opencv(viewpoint: dict[str, Any], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(K (3, 3) pixels, world-to-camera (4, 4)) of a PyTorch3D viewpoint entry."""
    fmt = str(viewpoint.get("intrinsics_format", "ndc_isotropic")).lower()
    if fmt == "ndc_isotropic":
        scale = np.array([min(height, width) / 2.0] * 2)
    elif fmt == "ndc_norm_image_bounds":
        scale = np.array([width / 2.0, height / 2.0])
    else:
        raise ValueError(f"unknown intrinsics format {fmt!r}")
    focal = np.asarray(viewpoint["focal_length"], dtype=np.float64) * scale
    centre = (
        np.array([width / 2.0, height / 2.0])
        - np.asarray(viewpoint["principal_point"], dtype=np.float64) * scale
    )
    k = np.array([[focal[0], 0.0, centre[0] - 0.5], [0.0, focal[1], centre[1] - 0.5], [0.0, 0.0, 1.0]])
    rot = _FLIP_XY @ np.asarray(viewpoint["R"], dtype=np.float64).T
    trans = _FLIP_XY @ np.asarray(viewpoint["T"], dtype=np.float64)
    return k, rigid(rot, trans)


class DynamicReplicaDataset(ClipDataset):
    """Clips of Dynamic Replica's left-camera sequences (see the module docstring for the layout)."""

    def list_sequences(self) -> list[SequenceInfo]:
        """Sequences of the split's annotation file, frames sorted by number."""
        path = self.root / self.split / f"frame_annotations_{self.split}.jgz"
        try:
            with gzip.open(path, "rt", encoding="utf8") as f:
                entries = json.load(f)
        except (OSError, ValueError) as err:
            logger.warning("DynamicReplica: cannot read %s (%s)", path, err)
            return []
        by_seq: dict[str, list[dict]] = defaultdict(list)
        for entry in entries:
            if entry.get("camera_name", "left") == "left":
                by_seq[entry["sequence_name"]].append(entry)
        self._frames = {name: sorted(v, key=lambda e: e["frame_number"]) for name, v in by_seq.items()}
        return [
            SequenceInfo(name, self.root / self.split, len(v)) for name, v in sorted(self._frames.items())
        ]

    def read_clip(self, seq: SequenceInfo, frames: list[int]) -> Sample:
        """Read rgb, depth, cameras and tracks of the frames."""
        entries = [self._frames[seq.name][i] for i in frames]
        base: Path = seq.path
        rgb = stack_rgb([read_rgb(base / e["image"]["path"]) for e in entries])
        t, _, h, w = rgb.shape
        depth = np.stack(
            [
                decode_depth(read_png16(base / e["depth"]["path"]))
                * float(e["depth"].get("scale_adjustment") or 1.0)
                for e in entries
            ]
        )
        cams = [viewpoint_to_opencv(e["viewpoint"], h, w) for e in entries]
        k = np.stack([c[0] for c in cams])
        ext = np.stack([c[1] for c in cams])
        trajs = [
            torch.load(base / e["trajectories"]["path"], map_location="cpu", weights_only=True)
            for e in entries
        ]
        xy = np.stack([np.asarray(tr["traj_2d"], dtype=np.float64)[:, :2] for tr in trajs]) - 0.5  # (T, N, 2)
        world = np.stack([np.asarray(tr["traj_3d_world"], dtype=np.float64) for tr in trajs])
        vis = np.stack([np.asarray(tr["verts_inds_vis"], dtype=bool) for tr in trajs])
        points = np.einsum("tij,tnj->tni", ext[:, :3, :3], world) + ext[:, None, :3, 3]
        finite = np.isfinite(xy).all(-1) & np.isfinite(points).all(-1)
        sample = empty_sample(t, h, w, xy.shape[1])
        sample.update(
            rgb_tchw=rgb,
            depth_thw=torch.from_numpy(np.nan_to_num(depth)).float(),
            depth_valid_thw=torch.from_numpy(np.isfinite(depth) & (depth > 0)),
            tracks_tn2=torch.from_numpy(np.nan_to_num(xy)).float(),
            tracks3d_tn3=torch.from_numpy(np.nan_to_num(points)).float(),
            visibility_tn=torch.from_numpy(vis & finite),
            track_valid_n=torch.from_numpy(finite.all(0)),
            intrinsics_t33=torch.from_numpy(k).float(),
            extrinsics_t44=torch.from_numpy(ext).float(),
            has_depth=torch.tensor(True),
            has_tracks=torch.tensor(True),
            has_track_depth=torch.tensor(True),
            has_camera=torch.tensor(True),
        )
        return sample
