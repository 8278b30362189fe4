"""Typed outputs of `L4PPredictor.predict`.

Shape legend: B batch, T frames, H W input pixels, N tracks. Every field is float32 (or
bool) on the CPU by default, at the input video's resolution and length; fields of tasks
that were not requested are None.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch


@dataclass
class Prediction:
    """Everything `predict` estimates for a batch of videos.

    Attributes:
        depth: (B, T, H, W) positive relative depth. Scale-ambiguous: one unknown scale per
            video (windows are chained onto the first one), see `depth_kind`.
        flow: (B, T, 2, H, W) backward optical flow in input pixels: pixel p of frame t
            moves to p + flow[t] in frame t-1; channel 0 is x. Frame 0 is NaN.
        motion: (B, T, H, W) probability in [0, 1] that the pixel moves in the world.
        extrinsics: (B, T, 4, 4) world-to-camera, OpenCV axes (x right, y down, z
            forward); in default mode the world is frame 0's camera (frame 0's
            extrinsics are the identity), up to the depth scale; released mode keeps the
            released model's world (frame 0 is not the identity there).
        intrinsics: (B, T, 3, 3) pinhole K in input pixels, integer = pixel centre.
        tracks: (B, T, N, 2) track positions (x, y) in input pixels, integer = pixel centre.
        visibility: (B, T, N) bool.
        visibility_prob: (B, T, N) in [0, 1].
        track_depth: (B, T, N) positive depth of each track point (same kind as `depth`).
        tracks_3d: (B, T, N, 3) track points in the camera frame of each frame.
        tracks_world: (B, T, N, 3) track points in the world frame (when cameras ran).
        queries: (B, N, 3) the queries as (t, x, y) in input pixels.
        depth_kind: What `depth` means.
    """

    depth: torch.Tensor | None = None
    flow: torch.Tensor | None = None
    motion: torch.Tensor | None = None
    extrinsics: torch.Tensor | None = None
    intrinsics: torch.Tensor | None = None
    tracks: torch.Tensor | None = None
    visibility: torch.Tensor | None = None
    visibility_prob: torch.Tensor | None = None
    track_depth: torch.Tensor | None = None
    tracks_3d: torch.Tensor | None = None
    tracks_world: torch.Tensor | None = None
    queries: torch.Tensor | None = None
    depth_kind: str = "relative depth (positive, one unknown scale per video)"

    def tensors(self) -> dict[str, torch.Tensor]:
        """The fields that hold tensors, by name."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Every tensor field as a numpy array."""
        return {k: v.detach().cpu().numpy() for k, v in self.tensors().items()}

    def save(self, path: str | Path) -> Path:
        """Write the prediction to a compressed `.npz` (fields as arrays, plus `depth_kind`).

        The file is written atomically (temp file + rename). `.npz` is appended when the
        name lacks it, and the returned path is the file written. `Prediction.load` (or
        `l4p.load_prediction`) reads it back exactly.
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict = {"depth_kind": np.array(self.depth_kind), **self.to_numpy()}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        try:
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Prediction:
        """Read a file written by `save` (`.npz` may be left out of the name)."""
        path = Path(path)
        if not path.exists() and path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        names = {f.name for f in fields(cls)}
        with np.load(path) as data:
            out = cls(depth_kind=str(data["depth_kind"])) if "depth_kind" in data else cls()
            for key in data.files:
                if key in names and key != "depth_kind":
                    setattr(out, key, torch.from_numpy(data[key]))
        return out

    def __getitem__(self, b: int) -> Prediction:
        """The prediction of one video, batch axis kept (size 1)."""
        out = Prediction(depth_kind=self.depth_kind)
        for name, value in self.tensors().items():
            setattr(out, name, value[b : b + 1])
        return out
