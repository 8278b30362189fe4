"""An append-only, disk-backed cache of equally shaped float32 frames (not RAM).

Bidirectional tracking needs the frames before each query again at the end (the
time-reversed pass), and default-mode track depth needs the stitched depth of every frame:
both are kept here at window resolution, one raw file each, read back with `numpy.memmap`.
Raw files are the simplest format that appends in place and can be truncated back to a
committed length when a killed run resumes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch


class FrameCache:
    """Frames (B, *shape) appended along time to `<path>`; reading maps the file.

    Args:
        path: The file (created, or truncated to `keep` frames when it exists).
        keep: Frames to keep from an earlier run (resume), 0 to start empty.
    """

    def __init__(self, path: str | Path, *, keep: int = 0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frame_shape: tuple[int, ...] | None = None
        self.length = 0
        if keep and self.path.exists():
            meta = np.load(self.path.with_suffix(".shape.npy"))
            self.frame_shape = tuple(int(x) for x in meta)
            with open(self.path, "r+b") as f:
                f.truncate(keep * self._frame_bytes())
            self.length = keep
        else:
            self.path.write_bytes(b"")

    def _frame_bytes(self) -> int:
        assert self.frame_shape is not None
        return int(np.prod(self.frame_shape)) * 4

    def append(self, frames_btx: torch.Tensor) -> None:
        """Append (B, n, ...) frames."""
        arr = frames_btx.detach().float().cpu().numpy()
        arr = np.ascontiguousarray(np.moveaxis(arr, 1, 0))  # (n, B, ...)
        if self.frame_shape is None:
            self.frame_shape = tuple(arr.shape[1:])
            tmp = self.path.with_suffix(".shape.tmp.npy")
            np.save(tmp, np.array(self.frame_shape))
            os.replace(tmp, self.path.with_suffix(".shape.npy"))
        with open(self.path, "ab") as f:
            f.write(arr.tobytes())
            f.flush()
            os.fsync(f.fileno())
        self.length += arr.shape[0]

    def read(self, lo: int, hi: int) -> torch.Tensor:
        """Frames [lo, hi) as (B, n, ...)."""
        if self.frame_shape is None or hi <= lo:
            raise ValueError("the frame cache is empty")
        mm = np.memmap(self.path, dtype=np.float32, mode="r", shape=(self.length, *self.frame_shape))
        out = torch.from_numpy(np.array(mm[lo:hi]))
        return out.movedim(0, 1)

    def remove(self) -> None:
        """Delete the cache files."""
        for p in (self.path, self.path.with_suffix(".shape.npy")):
            p.unlink(missing_ok=True)
