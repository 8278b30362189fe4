"""Shared machinery of the real-dataset loaders: clip indexing, file readers, camera helpers.

A loader lists its sequences once (cheap directory listings, no annotation is read), then
item i is the clip of `num_frames` frames, `frame_stride` apart, starting at the i-th start
frame (every `clip_step` frames) of its sequence. Reading returns a training sample at the
dataset's native resolution (see `l4p.training.sample`); cropping, resizing and query
selection happen afterwards (`l4p.training.datamodule`). A sequence that cannot be listed
is logged and skipped; an item that cannot be read raises, and the data module logs it and
moves on to another item.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from l4p.training.sample import Sample

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SequenceInfo:
    """One sequence: its name, folder and frame count."""

    name: str
    path: Path
    num_frames: int


class ClipDataset(Dataset, ABC):
    """Fixed-length clips from the sequences of a dataset on disk.

    Args:
        root: Dataset root (layout: see each subclass).
        split: Split folder or name, where the dataset has splits.
        num_frames: Frames per clip.
        frame_stride: Take every k-th frame.
        clip_step: Frames between the starts of consecutive clips (default: one clip length).
        max_tracks: At most this many tracks are kept per clip (a deterministic random subset
            of those visible at least once), to bound memory before augmentation.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        split: str = "train",
        num_frames: int = 16,
        frame_stride: int = 1,
        clip_step: int | None = None,
        max_tracks: int = 1024,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.num_frames = num_frames
        self.frame_stride = frame_stride
        self.max_tracks = max_tracks
        span = (num_frames - 1) * frame_stride + 1
        step = clip_step or num_frames * frame_stride
        self.sequences: list[SequenceInfo] = []
        for seq in self.list_sequences():
            if seq.num_frames >= span:
                self.sequences.append(seq)
            else:
                logger.info(
                    "%s: sequence %s has %d frames, %d needed; skipped",
                    self.name,
                    seq.name,
                    seq.num_frames,
                    span,
                )
        self.index = [
            (s, start)
            for s, seq in enumerate(self.sequences)
            for start in range(0, seq.num_frames - span + 1, step)
        ]
        if not self.index:
            logger.warning("%s: no clip found under %s (split %s)", self.name, self.root, split)

    @property
    def name(self) -> str:
        """Dataset name for messages."""
        return type(self).__name__

    @abstractmethod
    def list_sequences(self) -> list[SequenceInfo]:
        """Every sequence of the split (skip and log the ones that cannot be listed)."""

    @abstractmethod
    def read_clip(self, seq: SequenceInfo, frames: list[int]) -> Sample:
        """Read the given frames of a sequence as a training sample at native resolution."""

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> Sample:
        s, start = self.index[index]
        seq = self.sequences[s]
        frames = list(range(start, start + self.num_frames * self.frame_stride, self.frame_stride))
        sample = self.read_clip(seq, frames)
        return limit_tracks(sample, self.max_tracks, seed=index)


def limit_tracks(sample: Sample, max_tracks: int, *, seed: int) -> Sample:
    """Drop never-visible tracks and keep at most `max_tracks` of the rest (deterministic subset)."""
    keep = (sample["visibility_tn"].any(0) & sample["track_valid_n"]).nonzero()[:, 0]
    if keep.numel() > max_tracks:
        order = torch.randperm(keep.numel(), generator=torch.Generator().manual_seed(seed))
        keep = keep[order[:max_tracks]].sort().values
    out = dict(sample)
    for key in ("tracks_tn2", "tracks3d_tn3", "visibility_tn"):
        out[key] = sample[key][:, keep]
    for key in ("queries_n3", "track_valid_n"):
        out[key] = sample[key][keep]
    return out


def subfolders(path: Path) -> list[Path]:
    """Sorted sub-directories of `path` (empty if it does not exist)."""
    return sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) float32 rgb in [0, 1] from an image file."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def read_png16(path: Path) -> np.ndarray:
    """(H, W) uint16 of a 16-bit single-channel PNG."""
    image = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH)
    if image is None or image.dtype != np.uint16:
        raise FileNotFoundError(f"cannot read a 16-bit PNG from {path}")
    return image


def stack_rgb(images: list[np.ndarray]) -> torch.Tensor:
    """(T, 3, H, W) float tensor from a list of (H, W, 3) arrays."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def quaternion_to_matrix(q_wxyz: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices of (..., 4) quaternions (w, x, y, z), normalised first."""
    q = q_wxyz / np.linalg.norm(q_wxyz, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def rigid(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(..., 4, 4) transforms from (..., 3, 3) rotations and (..., 3) translations."""
    out = np.zeros((*rotation.shape[:-2], 4, 4))
    out[..., :3, :3] = rotation
    out[..., :3, 3] = translation
    out[..., 3, 3] = 1.0
    return out


def world_to_camera_points(extrinsics_t44: np.ndarray, points_tn3: np.ndarray) -> np.ndarray:
    """Camera-frame points (T, N, 3) of world points with world-to-camera extrinsics (T, 4, 4)."""
    return np.einsum("tij,tnj->tni", extrinsics_t44[:, :3, :3], points_tn3) + extrinsics_t44[:, None, :3, 3]


def ray_norms(intrinsics_33: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) length of `K^-1 (x, y, 1)` per pixel: converts range (distance to the centre) to z."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    rays = np.einsum("ij,jhw->ihw", np.linalg.inv(intrinsics_33), np.stack([xs, ys, np.ones_like(xs)]))
    return np.linalg.norm(rays, axis=0)
