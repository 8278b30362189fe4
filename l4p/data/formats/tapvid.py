"""TAP-Vid DAVIS and Kinetics pickles (facts from tapnet's README and ``evaluation_datasets.py``).

- DAVIS: ``tapvid_davis/tapvid_davis.pkl``, a dict ``video name -> {"video": (T, H, W, 3) uint8,
  "points": (N, T, 2) float32 (x, y) in [0, 1], "occluded": (N, T) bool}``.
- Kinetics: ``tapvid_kinetics/NNNN_of_MMMM.pkl`` shards, each a **list** of such dicts (no name);
  ``"video"`` may be a list of JPEG-encoded frames (bytes), decoded here. Items are named
  ``<shard stem>/<index in the shard>``; the optional ``"video_id"`` key is recorded if present.

The benchmark resizes every video to 256x256 and scales the [0, 1] points by 256 (raster
coordinates, (0, 0) = top-left corner). Listing the videos unpickles each file once; videos are
then read one pickle at a time.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["TapVidVideo", "TapVidPickles", "resize_video"]


@dataclass
class TapVidVideo:
    """One TAP-Vid video: frames (T, H, W, 3) uint8, points (N, T, 2) in [0, 1], occluded (N, T)."""

    name: str
    frames: np.ndarray
    points: np.ndarray
    occluded: np.ndarray


def _decode(frames) -> np.ndarray:
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4:
        return frames
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(f)).convert("RGB")) for f in frames])


def resize_video(frames: np.ndarray, size: int = 256) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) with PIL's Lanczos filter.

    tapnet resizes with ``mediapy.resize_video``; that it filters uint8 frames with PIL's Lanczos
    is our reading of mediapy (an assumption; frames the model sees may differ by rounding).
    """
    from PIL import Image

    lanczos = Image.Resampling.LANCZOS
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), lanczos)) for f in frames])


def _load(path: Path):
    # These pickles are the benchmark's own files, named by the user; nothing else is unpickled.
    with path.open("rb") as f:
        return pickle.load(f)  # noqa: S301


class TapVidPickles:
    """The videos of a DAVIS pickle or of Kinetics shards, read lazily (one pickle in memory).

    Args:
        root: A ``.pkl`` file, or a folder holding ``tapvid_davis.pkl`` or ``*_of_*.pkl`` shards.
    """

    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        if root.is_file():
            self.files = [root]
        else:
            self.files = sorted(root.glob("*.pkl")) or sorted(root.glob("*/*.pkl"))
        if not self.files:
            raise FileNotFoundError(f"no TAP-Vid .pkl under {root}")
        self._cache: tuple[Path, object] | None = None
        self.names: list[str] = []
        self._where: dict[str, tuple[Path, object]] = {}
        for path in self.files:
            data = self._data(path)
            keys = list(data) if isinstance(data, dict) else range(len(data))  # type: ignore[arg-type]
            for key in keys:
                name = str(key) if isinstance(data, dict) else f"{path.stem}/{key}"
                self.names.append(name)
                self._where[name] = (path, key)

    def _data(self, path: Path):
        if self._cache is None or self._cache[0] != path:
            self._cache = (path, _load(path))
        return self._cache[1]

    def video(self, name: str) -> TapVidVideo:
        """The video called ``name`` (see the module docstring for names)."""
        path, key = self._where[name]
        entry = self._data(path)[key]  # type: ignore[index]
        return TapVidVideo(
            name=name,
            frames=_decode(entry["video"]),
            points=np.asarray(entry["points"], dtype=np.float64),
            occluded=np.asarray(entry["occluded"], dtype=bool),
        )
