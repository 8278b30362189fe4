"""Predictions on disk: a chunked, appendable, lazily readable zarr store.

Why zarr (v3, `zarr-python`): every chunk is its own file, written atomically (temp file +
rename) by zarr's local store, so a run that is killed mid-write leaves every earlier chunk
intact and a resumed run simply rewrites from its last committed frame; arrays grow along
time with `resize`; and reading a slice opens only the chunks it touches. HDF5 keeps
everything in one file whose internal structures a killed writer can corrupt.

Layout of `<path>/` (a zarr group):
* arrays named like the `Prediction` fields, batch first, time second: `depth` (B, T, H, W),
  `flow` (B, T, 2, H, W), `motion`, `extrinsics` (B, T, 4, 4), `intrinsics` (B, T, 3, 3),
  `tracks` (B, T, N, 2), `visibility`, `visibility_prob`, `track_depth`, `tracks_3d`,
  `tracks_world`, and `queries` (B, N, 3); one chunk holds one video and 8 frames (dense)
  or 256 frames (cameras, tracks);
* group attributes: `format` ("l4p-prediction"), `version`, `frames` (frames written and
  valid: arrays may be longer after a killed run), `complete`, `fps`, `depth_kind`,
  `units` and `conventions` per field, and any extra attributes the writer was given.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from l4p.inference.emit import StreamChunk
from l4p.outputs import Prediction

logger = logging.getLogger(__name__)
FORMAT = "l4p-prediction"
VERSION = 1
DENSE_CHUNK = 8
SMALL_CHUNK = 256
UNITS = {
    "depth": "relative depth (positive, one unknown scale per video)",
    "flow": "input pixels; backward flow: pixel p of frame t moves to p + flow[t] in frame t-1; frame 0 is NaN",
    "motion": "probability in [0, 1] that the pixel moves in the world",
    "extrinsics": "world-to-camera 4x4, OpenCV axes (x right, y down, z forward), depth's scale",
    "intrinsics": "pinhole K in input pixels, integer = pixel centre",
    "tracks": "(x, y) input pixels, integer = pixel centre; NaN where undefined",
    "visibility": "bool",
    "visibility_prob": "probability in [0, 1]",
    "track_depth": "same kind and scale as depth",
    "tracks_3d": "camera frame of each frame, depth's scale",
    "tracks_world": "world frame (see extrinsics), depth's scale",
    "queries": "(t, x, y): frame index and input pixels, integer = pixel centre",
}
CONVENTIONS = {
    "axes": "batch first, then time (frames), as Prediction",
    "world": "default mode: frame 0's camera (its extrinsics are the identity); released mode: the released model's",
}


class StoreError(OSError):
    """The prediction store cannot be written (unwritable folder, full disk)."""


def _writing(path: Path, what: str, err: OSError) -> StoreError:
    return StoreError(
        f"cannot write {what} to {path}: {err.strerror or err}; pick a writable folder with free space "
        "(frames written so far are kept and a rerun of the same command continues from them)"
    )


class PredictionWriter:
    """Appends `StreamChunk`s to a zarr store.

    Args:
        path: The store's folder (created).
        frames: Frames already written by an interrupted run to keep (0: start a new store,
            replacing what is there).
        attrs: Extra group attributes (fps, source, request ...).
    """

    def __init__(self, path: str | Path, *, frames: int = 0, attrs: dict[str, Any] | None = None) -> None:
        import zarr

        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if frames:
                self.group: Any = zarr.open_group(str(self.path), mode="r+")
                with warnings.catch_warnings():
                    # The resume folder lives inside the group; zarr notes it is not one of its own.
                    warnings.filterwarnings("ignore", message=r".*\.l4p_resume is not recognized")
                    members = list(self.group.arrays())
                for name, arr in members:
                    if name != "queries" and arr.ndim > 1 and arr.shape[1] > frames:
                        arr.resize((arr.shape[0], frames, *arr.shape[2:]))
            else:
                self.group = zarr.open_group(str(self.path), mode="w")
            self.frames = frames
            self.group.attrs.update(
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "frames": frames,
                    "complete": False,
                    "units": UNITS,
                    "conventions": CONVENTIONS,
                    **(attrs or {}),
                }  # fmt: skip
            )
        except OSError as err:
            raise _writing(self.path, "the prediction store", err) from err

    def write(self, chunk: StreamChunk) -> None:
        """Write a chunk: frames are appended at `chunk.start`; track fields are written whole."""
        try:
            for name, value in chunk.prediction.tensors().items():
                self._put(name, value.numpy(), chunk)
            if chunk.kind == "frames":
                self.frames = chunk.stop
                self.group.attrs["frames"] = self.frames
            self.group.attrs["depth_kind"] = chunk.prediction.depth_kind
        except OSError as err:
            raise _writing(self.path, f"frames {chunk.start}..{chunk.stop - 1}", err) from err

    def _put(self, name: str, arr: np.ndarray, chunk: StreamChunk) -> None:
        if name == "queries" or chunk.kind == "tracks":
            frames = SMALL_CHUNK if name != "queries" else arr.shape[1]
            whole = self.group.create_array(
                name,
                shape=arr.shape,
                dtype=arr.dtype,
                chunks=(1, max(frames, 1), *arr.shape[2:]),
                overwrite=True,
            )
            whole[...] = arr
            return
        if name not in self.group:
            per = DENSE_CHUNK if arr.ndim >= 4 and name not in ("extrinsics", "intrinsics") else SMALL_CHUNK
            self.group.create_array(name, shape=(arr.shape[0], 0, *arr.shape[2:]), dtype=arr.dtype,
                                    chunks=(1, per, *arr.shape[2:]))  # fmt: skip
        out = self.group[name]
        if out.shape[1] < chunk.stop:
            out.resize((out.shape[0], chunk.stop, *out.shape[2:]))
        out[:, chunk.start : chunk.stop] = arr

    def finish(self) -> None:
        """Mark the store complete."""
        try:
            self.group.attrs["complete"] = True
        except OSError as err:
            raise _writing(self.path, "the completion mark", err) from err


class StoredPrediction:
    """A prediction store opened lazily: fields are zarr arrays (slicing reads only that part).

    `pred.depth[0, 100:108]` reads 8 frames; `np.asarray(pred.depth)` reads everything.
    Fields of tasks that were not run are None.

    Attributes:
        path: The store. attrs: Its attributes (fps, frames, complete, units, conventions).
    """

    FIELDS = ("depth", "flow", "motion", "extrinsics", "intrinsics", "tracks", "visibility",
              "visibility_prob", "track_depth", "tracks_3d", "tracks_world", "queries")  # fmt: skip

    def __init__(self, path: str | Path) -> None:
        import zarr

        self.path = Path(path)
        self.group: Any = zarr.open_group(str(self.path), mode="r")
        self.attrs: dict[str, Any] = dict(self.group.attrs)
        if self.attrs.get("format") != FORMAT:
            raise ValueError(f"{path} is not an l4p prediction store (no format={FORMAT!r} attribute)")
        if not self.attrs.get("complete"):
            logger.warning("%s is incomplete: %d frames were written", path, self.attrs.get("frames", 0))

    def __getattr__(self, name: str):
        if name in StoredPrediction.FIELDS:
            if name not in self.group:
                return None
            arr = self.group[name]
            frames = self.attrs.get("frames", 0)
            if (
                name != "queries"
                and arr.shape[1] > frames
                and name in ("depth", "flow", "motion", "extrinsics", "intrinsics")
            ):
                raise RuntimeError(
                    f"{self.path}: {name} is longer than the {frames} frames written; rerun to finish it"
                )
            return arr
        raise AttributeError(name)

    @property
    def fps(self) -> float | None:
        """Frame rate of the source video (None when unknown)."""
        return self.attrs.get("fps")

    @property
    def num_frames(self) -> int:
        """Frames written."""
        return int(self.attrs.get("frames", 0))

    @property
    def depth_kind(self) -> str:
        """What `depth` means."""
        return str(self.attrs.get("depth_kind", UNITS["depth"]))

    def fields(self) -> list[str]:
        """Names of the stored fields."""
        return [f for f in StoredPrediction.FIELDS if f in self.group]

    def to_prediction(self) -> Prediction:
        """Read everything into a `Prediction` (tensors)."""
        pred = Prediction(depth_kind=self.depth_kind)
        for name in self.fields():
            setattr(pred, name, torch.from_numpy(np.asarray(self.group[name][...])))
        return pred


def load_prediction(path: str | Path) -> StoredPrediction | Prediction:
    """Open a saved prediction: a zarr store lazily (`StoredPrediction`), an `.npz` eagerly.

    Args:
        path: A folder written by `stream_to_disk` / `PredictionWriter`, or a file written by
            `Prediction.save`.
    """
    path = Path(path)
    if path.suffix == ".npz" or (not path.exists() and path.with_name(path.name + ".npz").exists()):
        return Prediction.load(path)
    if not path.exists():
        raise FileNotFoundError(f"no prediction at {path}")
    return StoredPrediction(path)
