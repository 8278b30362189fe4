"""TAPVid-3D per-video ``.npz`` files (ground truth) and prediction files.

Ground-truth keys (as in the released files; the README's ``tracks_xyz``/``intrinsics`` are
out of date):

| key | dtype, shape | meaning |
|---|---|---|
| ``images_jpeg_bytes`` | bytes (T,) | one JPEG per frame, RGB |
| ``queries_xyt`` | float64 (N, 3) | query per track as **(x, y, t)**, pixels of the original video |
| ``tracks_XYZ`` | float64 (T, N, 3) | metres, camera frame of each frame (OpenCV axes) |
| ``visibility`` | bool (T, N) | True = visible |
| ``fx_fy_cx_cy`` | float64 (4,) | pinhole intrinsics at the original resolution |
| ``extrinsics_w2c`` | float64 (T, 4, 4) | world → camera, ``adt`` and ``drivetrack`` only |

Prediction files (same file name under ``<pred_dir>/<subset>/``) hold ``tracks_XYZ`` (T, N, 3)
and ``visibility`` (T, N) bool, same track order and camera-frame convention.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "TapVid3DSample",
    "load_tapvid3d_npz",
    "load_tapvid3d_prediction",
    "save_tapvid3d_npz",
    "save_tapvid3d_prediction",
]

_REQUIRED = ("images_jpeg_bytes", "queries_xyt", "tracks_XYZ", "visibility", "fx_fy_cx_cy")


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decode one JPEG to (H, W, 3) uint8 RGB with PIL (the decoder the official evaluator uses)."""
    with Image.open(io.BytesIO(bytes(data))) as img:
        return np.asarray(img.convert("RGB"))


@dataclass
class TapVid3DSample:
    """One TAPVid-3D video with its ground truth.

    Attributes:
        images_jpeg_bytes: T JPEG-encoded RGB frames.
        queries_xyt: (N, 3) float64 queries as (x, y, t).
        tracks_xyz: (T, N, 3) float64 metres, camera frame of each frame.
        visibility: (T, N) bool, True = visible.
        fx_fy_cx_cy: (4,) float64 intrinsics at the original resolution.
        extrinsics_w2c: (T, 4, 4) float64 world-to-camera, or None (``pstudio``).
    """

    images_jpeg_bytes: list[bytes]
    queries_xyt: np.ndarray
    tracks_xyz: np.ndarray
    visibility: np.ndarray
    fx_fy_cx_cy: np.ndarray
    extrinsics_w2c: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        """T."""
        return len(self.images_jpeg_bytes)

    @property
    def query_points_tyx(self) -> np.ndarray:
        """(N, 3) queries as (t, y, x), the order the metrics take (``queries_xyt[..., ::-1]``)."""
        return self.queries_xyt[..., ::-1]

    @property
    def queries_txy(self) -> np.ndarray:
        """(N, 3) queries as (t, x, y), the order ``L4PPredictor.predict`` takes.

        x, y are returned as stored. tapnet code generally uses raster coordinates with (0, 0)
        at the corner of the top-left pixel (the library puts integers at pixel centres, a
        0.5 px shift); whether the TAPVid-3D projections follow it is not confirmed here. The
        metrics use only t of the queries.
        """
        return self.queries_xyt[:, [2, 0, 1]]

    def image_size(self) -> tuple[int, int]:
        """(H, W) of the video, read from the first JPEG."""
        with Image.open(io.BytesIO(bytes(self.images_jpeg_bytes[0]))) as img:
            width, height = img.size
        return height, width

    def decode_frames(self) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB frames."""
        return np.stack([decode_jpeg(b) for b in self.images_jpeg_bytes])

    def intrinsics_matrix(self) -> np.ndarray:
        """(3, 3) K at the original resolution."""
        fx, fy, cx, cy = (float(v) for v in self.fx_fy_cx_cy)
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _open_npz(path: str | Path, allow_pickle: bool) -> np.lib.npyio.NpzFile:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        npz = np.load(path, allow_pickle=allow_pickle)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise ValueError(f"{path}: not a readable .npz file ({err})") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: holds a single array, not an .npz archive")
    return npz


def _get(npz: np.lib.npyio.NpzFile, key: str, path: str | Path) -> np.ndarray:
    if key not in npz.files:
        raise KeyError(f"{path}: missing key {key!r}; present: {sorted(npz.files)}")
    try:
        return npz[key]
    except ValueError as err:  # object arrays refused without allow_pickle
        raise ValueError(f"{path}: key {key!r} needs allow_pickle=True to load ({err})") from err


def load_tapvid3d_npz(path: str | Path, *, allow_pickle: bool = False) -> TapVid3DSample:
    """Read a TAPVid-3D ground-truth ``.npz`` and check its shapes.

    Args:
        path: File path.
        allow_pickle: Permit object arrays (pickles run code when loaded: only for trusted
            files). The released files store ``images_jpeg_bytes`` as a fixed-width bytes
            array and load without it.

    Raises:
        KeyError: A required key is missing.
        ValueError: Unreadable file or inconsistent shapes.
    """
    with _open_npz(path, allow_pickle) as npz:
        arrays = {key: _get(npz, key, path) for key in _REQUIRED}
        extr = _get(npz, "extrinsics_w2c", path) if "extrinsics_w2c" in npz.files else None
    images = [bytes(b) for b in arrays["images_jpeg_bytes"]]
    tracks = np.asarray(arrays["tracks_XYZ"])
    vis = np.asarray(arrays["visibility"]).astype(bool)
    queries = np.asarray(arrays["queries_xyt"])
    t, n = len(images), queries.shape[0]
    if tracks.shape != (t, n, 3) or vis.shape != (t, n) or queries.shape != (n, 3):
        raise ValueError(
            f"{path}: inconsistent shapes: {t} frames, queries_xyt {queries.shape}, "
            f"tracks_XYZ {tracks.shape}, visibility {vis.shape}"
        )
    if extr is not None and extr.shape != (t, 4, 4):
        raise ValueError(f"{path}: extrinsics_w2c {extr.shape}, expected {(t, 4, 4)}")
    return TapVid3DSample(
        images_jpeg_bytes=images,
        queries_xyt=queries,
        tracks_xyz=tracks,
        visibility=vis,
        fx_fy_cx_cy=np.asarray(arrays["fx_fy_cx_cy"]),
        extrinsics_w2c=extr,
    )


def save_tapvid3d_npz(path: str | Path, sample: TapVid3DSample) -> None:
    """Write a sample in the released layout (JPEGs as a fixed-width bytes array).

    A fixed-width bytes array drops trailing NUL bytes; JPEG streams end with ``FF D9`` and
    are unaffected.
    """
    arrays: dict[str, Any] = {
        "images_jpeg_bytes": np.array(sample.images_jpeg_bytes, dtype=np.bytes_),
        "queries_xyt": sample.queries_xyt,
        "tracks_XYZ": sample.tracks_xyz,
        "visibility": sample.visibility,
        "fx_fy_cx_cy": sample.fx_fy_cx_cy,
    }
    if sample.extrinsics_w2c is not None:
        arrays["extrinsics_w2c"] = sample.extrinsics_w2c
    np.savez(path, **arrays)


def save_tapvid3d_prediction(path: str | Path, *, tracks_xyz: np.ndarray, visibility: np.ndarray) -> None:
    """Write a prediction file: ``tracks_XYZ`` (T, N, 3) metres (camera frame), ``visibility`` (T, N)."""
    tracks_xyz, visibility = np.asarray(tracks_xyz), np.asarray(visibility, dtype=bool)
    if tracks_xyz.ndim != 3 or tracks_xyz.shape[-1] != 3 or visibility.shape != tracks_xyz.shape[:2]:
        raise ValueError(
            f"need tracks (T, N, 3) and visibility (T, N), got {tracks_xyz.shape}, {visibility.shape}"
        )
    np.savez(path, tracks_XYZ=tracks_xyz, visibility=visibility)


def load_tapvid3d_prediction(
    path: str | Path, *, allow_pickle: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Read a prediction file; returns ``(tracks_xyz (T, N, 3), visibility (T, N) bool)``."""
    with _open_npz(path, allow_pickle) as npz:
        return np.asarray(_get(npz, "tracks_XYZ", path)), np.asarray(_get(npz, "visibility", path)).astype(
            bool
        )
