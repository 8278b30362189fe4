"""MPI-Sintel files: ``.dpt`` depth, ``.cam`` cameras, occlusion/invalid masks, and a sequence reader.

On-disk facts (MPI-Sintel SDK ``sintel_io.py`` v1.0; little-endian, no padding):
- ``.dpt``: tag ``PIEH`` (float32 202021.25), int32 width, int32 height, ``W·H`` float32
  depth (distance along the optical axis, scene units), row-major.
- ``.cam``: the same tag, then 9 float64 intrinsics ``K`` (3x3 row-major) and 12 float64
  extrinsics ``[R|t]`` (3x4 row-major, world → camera); a world point projects as
  ``x = K·[R|t]·X``. 172 bytes.
- ``occlusions/`` and ``invalid/`` PNGs: 8-bit grey, 0 or 255 (the README says "1");
  a pixel is occluded / invalid where the value is > 0.

Training-tree layout (``MPI-Sintel-complete/training``): ``{clean,final}/<seq>/frame_%04d.png``
numbered from 1; ``flow/<seq>/frame_K.flo`` is the forward flow frame K → K+1 and the
``occlusions``/``invalid`` masks of ``frame_K.png`` belong to the same pair. Depth and cameras
ship separately (``MPI-Sintel-depth-training-*/training/{depth,camdata_left}/<seq>/frame_K.*``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from l4p.data.formats.middlebury import PIEH_TAG_BYTES, check_tag, read_flo, read_sized_grid, write_sized_grid

logger = logging.getLogger(__name__)

__all__ = ["SintelSequence", "read_cam", "read_dpt", "read_mask_png", "write_cam", "write_dpt"]

_CAM_BYTES = 4 + 8 * (9 + 12)


def read_dpt(path: str | Path) -> np.ndarray:
    """Read a Sintel ``.dpt`` depth map.

    Returns:
        (H, W) float32 depth along the optical axis.

    Raises:
        ValueError: Wrong tag, implausible size, truncated or over-long file.
    """
    return read_sized_grid(path, kind=".dpt", channels=1)[..., 0]


def write_dpt(path: str | Path, depth: np.ndarray) -> None:
    """Write a ``.dpt`` file from an (H, W) depth map (cast to float32)."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got {depth.shape}")
    write_sized_grid(path, depth[..., None])


def read_cam(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Sintel ``.cam`` camera file.

    Returns:
        ``(K, Rt)``: (3, 3) float64 intrinsics in pixels and (3, 4) float64 world-to-camera
        ``[R|t]``.

    Raises:
        ValueError: Wrong tag or a size other than 172 bytes.
    """
    data = Path(path).read_bytes()
    check_tag(data, path=path, kind=".cam")
    if len(data) != _CAM_BYTES:
        raise ValueError(f"{path}: .cam file has {len(data)} bytes, expected {_CAM_BYTES}")
    values = np.frombuffer(data, dtype="<f8", offset=4).astype(np.float64)
    return values[:9].reshape(3, 3), values[9:].reshape(3, 4)


def write_cam(path: str | Path, intrinsics: np.ndarray, extrinsics: np.ndarray) -> None:
    """Write a ``.cam`` file.

    Args:
        path: Destination.
        intrinsics: (3, 3) K.
        extrinsics: (3, 4) world-to-camera ``[R|t]`` (a (4, 4) matrix is cut to its top rows).
    """
    k = np.asarray(intrinsics, dtype="<f8")
    rt = np.asarray(extrinsics, dtype="<f8")
    if rt.shape == (4, 4):
        rt = rt[:3]
    if k.shape != (3, 3) or rt.shape != (3, 4):
        raise ValueError(f"need K (3, 3) and [R|t] (3, 4), got {k.shape} and {rt.shape}")
    Path(path).write_bytes(PIEH_TAG_BYTES + k.tobytes() + rt.tobytes())


def read_mask_png(path: str | Path) -> np.ndarray:
    """Read a Sintel occlusion/invalid mask PNG as bool (True where the stored value > 0)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read mask image {path}")
    if img.ndim == 3:
        img = img[..., 0]
    return img > 0


@dataclass
class SintelSequence:
    """One sequence of an MPI-Sintel training tree.

    Indices are 0-based positions in the sorted list of frame files; ``frame_numbers[i]`` is
    the number in the file name (Sintel numbers from 1). Pair data (flow, occlusions,
    invalid) of index i describe frame i → frame i + 1.

    Args:
        root: The ``training`` folder (holding ``clean/``, ``final/``, ``flow/``, ...).
        name: Sequence name, e.g. ``"alley_1"``.
        render_pass: ``"clean"`` or ``"final"``, the images ``frame`` returns.
        depth_root: The ``training`` folder of the depth package (``depth/``,
            ``camdata_left/``); defaults to ``root``.
    """

    root: Path
    name: str
    render_pass: Literal["clean", "final"] = "clean"
    depth_root: Path | None = None
    frame_numbers: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.depth_root = Path(self.depth_root) if self.depth_root is not None else self.root
        folder = self.root / self.render_pass / self.name
        files = sorted(folder.glob("frame_*.png"))
        if not files:
            raise FileNotFoundError(f"no frame_*.png in {folder}")
        self.frame_numbers = sorted(int(f.stem.split("_")[-1]) for f in files)

    def __len__(self) -> int:
        return len(self.frame_numbers)

    def _path(self, base: Path, kind: str, index: int, suffix: str) -> Path:
        if not 0 <= index < len(self):
            raise IndexError(f"frame index {index} outside 0..{len(self) - 1}")
        return base / kind / self.name / f"frame_{self.frame_numbers[index]:04d}{suffix}"

    def frame(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB image of the chosen pass."""
        path = self._path(self.root, self.render_pass, index, ".png")
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"cannot read {path}")
        return np.ascontiguousarray(img[..., ::-1])

    def frames(self) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB video of the chosen pass."""
        return np.stack([self.frame(i) for i in range(len(self))])

    def flow(self, index: int) -> np.ndarray:
        """(H, W, 2) float32 forward flow frame ``index`` → ``index + 1`` in pixels."""
        return read_flo(self._path(self.root, "flow", index, ".flo"))

    def occlusions(self, index: int) -> np.ndarray:
        """(H, W) bool, True where a pixel of frame ``index`` is occluded in frame ``index + 1``."""
        return read_mask_png(self._path(self.root, "occlusions", index, ".png"))

    def invalid(self, index: int) -> np.ndarray:
        """(H, W) bool, True where the flow of pair ``index`` is marked invalid."""
        return read_mask_png(self._path(self.root, "invalid", index, ".png"))

    def depth(self, index: int) -> np.ndarray:
        """(H, W) float32 depth of frame ``index`` (from the depth package)."""
        assert self.depth_root is not None
        return read_dpt(self._path(self.depth_root, "depth", index, ".dpt"))

    def camera(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(K (3, 3), [R|t] (3, 4))`` world-to-camera of frame ``index`` (depth package)."""
        assert self.depth_root is not None
        return read_cam(self._path(self.depth_root, "camdata_left", index, ".cam"))

    def has(
        self, kind: Literal["flow", "occlusions", "invalid", "depth", "camdata_left"], index: int
    ) -> bool:
        """Whether the file of ``kind`` exists for ``index`` (pairs: the last frame has none)."""
        base = self.depth_root if kind in ("depth", "camdata_left") else self.root
        suffix = {"flow": ".flo", "depth": ".dpt", "camdata_left": ".cam"}.get(kind, ".png")
        assert base is not None
        return self._path(base, kind, index, suffix).exists()
