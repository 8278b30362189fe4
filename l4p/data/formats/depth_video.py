"""Video-depth benchmark sequences as DepthCrafter's benchmark selects them (numpy only).

Two layouts are read; both give ``DepthVideo`` (RGB frames and metric GT depth, 0 or negative
= no GT).

1. **DepthCrafter's extracted layout** (what ``benchmark/dataset_extract/*.py`` writes and
   ``benchmark/eval`` reads): a CSV with columns ``filepath_left,filepath_disparity``, paths
   relative to the folder of the data root; ``<name>_rgb_left.mp4`` holds the (already cut and
   cropped) frames, ``<name>_disparity.npz`` the GT under the key ``disparity``, shape
   (T, 1, H, W) — despite the name, metric **depth** (-1 where the source has none).
2. **The raw datasets**, with DepthCrafter's selection done in memory (facts read from its
   ``dataset_extract_*.py``):

   - ScanNet (``scans_test`` exported with the SensReader): ``<scene>/color/<i>.jpg``,
     ``<scene>/depth/<i>.png`` (uint16 millimetres); the first 100 scenes in sorted order,
     frames sorted by number, the first 270 taken with stride 3 (90 frames), then 8 rows and
     11 columns cropped from every border of both images and depth.
   - Bonn RGB-D Dynamic: ``<seq>/rgb/*.png``, ``<seq>/depth/*.png`` (uint16, depth × 5000),
     each list sorted by the last 4 digits of the file stem, frames 30..139 (110), images and
     depth cut to even height and width.
   - KITTI (depth-completion ``val`` annotations + raw drives):
     ``<depth_root>/<drive>/proj_depth/groundtruth/image_02/<frame>.png`` (uint16, depth × 256,
     0 = none) and ``<raw_root>/<drive[:10]>/<drive>/image_02/data/<frame>.png``; the first 110
     annotated frames; even height and width.
   - NYUv2 (test list): a text file whose lines are ``<image> <depth> <filled depth>`` relative to
     the root; the image and the *filled* depth (uint16 millimetres) of each line, both cropped to
     rows 45:471 and columns 41:601; one frame per "video".

   Assumption: the ScanNet scene order, Bonn sequence set and KITTI drive set are those present
   under the given root (DepthCrafter takes ``os.listdir`` order, sorted only for ScanNet; the
   order does not change the dataset mean).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "DepthVideo",
    "LazyVideo",
    "list_bonn",
    "list_depthcrafter_csv",
    "list_kitti_depth",
    "list_nyu",
    "list_scannet",
    "read_png_uint16",
    "read_rgb",
]

LazyVideo = tuple[str, Callable[..., "DepthVideo"]]
"""A sequence name and a function reading it (listing a dataset reads no pixel)."""


@dataclass
class DepthVideo:
    """One benchmark video.

    Attributes:
        name: Sequence name (the record key).
        frames: (T, H, W, 3) uint8 RGB.
        depth: (T, h, w) float32 metric GT depth (values <= 1e-3 are not scored); (h, w) may
            differ from (H, W) (ScanNet: depth is 640x480 under larger colour frames).
    """

    name: str
    frames: np.ndarray
    depth: np.ndarray


def read_png_uint16(path: str | Path) -> np.ndarray:
    """A 16-bit single-channel PNG as uint16 (a clear error for 8-bit or missing files)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read {path}")
    if img.dtype != np.uint16 or img.ndim != 2:
        raise ValueError(f"{path}: expected a 16-bit single-channel PNG, got {img.dtype} {img.shape}")
    return img


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read {path}")
    return np.ascontiguousarray(img[..., ::-1])


def _even(x: np.ndarray, axes: tuple[int, int]) -> np.ndarray:
    h, w = x.shape[axes[0]], x.shape[axes[1]]
    index = [slice(None)] * x.ndim
    index[axes[0]], index[axes[1]] = slice(0, h - h % 2), slice(0, w - w % 2)
    return x[tuple(index)]


def _depth_from_png(path: Path, divisor: float) -> np.ndarray:
    raw = read_png_uint16(path)
    depth = raw.astype(np.float32) / divisor
    depth[raw == 0] = -1.0
    return depth


def _load_extracted(name: str, video: Path, gt: Path) -> DepthVideo:
    from l4p.data.video import read_video

    with np.load(gt) as npz:
        if "disparity" not in npz:
            raise KeyError(f"{gt}: no 'disparity' array (DepthCrafter stores GT depth under that key)")
        depth = np.asarray(npz["disparity"], dtype=np.float32)
    depth = depth[:, 0] if depth.ndim == 4 else depth
    return DepthVideo(name=name, frames=read_video(video).frames, depth=depth)


def list_depthcrafter_csv(csv_path: str | Path, root: str | Path | None = None) -> list[LazyVideo]:
    """Videos listed in a DepthCrafter benchmark CSV (layout 1 of the module docstring)."""
    csv_path = Path(csv_path)
    base = Path(root) if root is not None else csv_path.parent
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"filepath_left", "filepath_disparity"} <= set(rows[0]):
        raise ValueError(f"{csv_path}: need the columns filepath_left,filepath_disparity")
    out: list[LazyVideo] = []
    for row in rows:
        name = Path(row["filepath_left"]).name.removesuffix("_rgb_left.mp4")
        out.append(
            (
                name,
                partial(_load_extracted, name, base / row["filepath_left"], base / row["filepath_disparity"]),
            )
        )
    return out


def scannet_scenes(root: str | Path, num_scenes: int = 100) -> list[Path]:
    """The first ``num_scenes`` scene folders (holding ``color/``) in sorted order."""
    return sorted(p for p in Path(root).iterdir() if (p / "color").is_dir())[:num_scenes]


def _load_scannet(scene: Path, num_frames: int, stride: int) -> DepthVideo:
    names = sorted((p.stem for p in (scene / "color").glob("*.jpg")), key=int)[: num_frames * stride : stride]
    frames = np.stack([read_rgb(scene / "color" / f"{n}.jpg") for n in names])[:, 8:-8, 11:-11]
    depth = np.stack([_depth_from_png(scene / "depth" / f"{n}.png", 1000.0) for n in names])
    return DepthVideo(scene.name, frames, depth[:, 8:-8, 11:-11])


def list_scannet(root: str | Path, *, num_frames: int = 90, stride: int = 3) -> list[LazyVideo]:
    """ScanNet scenes, DepthCrafter's selection (see the module docstring)."""
    return [(s.name, partial(_load_scannet, s, num_frames, stride)) for s in scannet_scenes(root)]


def _by_last4(paths: list[Path]) -> list[Path]:
    return sorted(sorted(paths), key=lambda p: int(p.stem[-4:]))


def _load_bonn(seq: Path, start: int, stop: int) -> DepthVideo:
    images = _by_last4(list((seq / "rgb").glob("*.png")))[start:stop]
    depths = _by_last4(list((seq / "depth").glob("*.png")))[start:stop]
    frames = _even(np.stack([read_rgb(p) for p in images]), (1, 2))
    depth = _even(np.stack([_depth_from_png(p, 5000.0) for p in depths]), (1, 2))
    return DepthVideo(seq.name, frames, depth)


def list_bonn(root: str | Path, *, start: int = 30, stop: int = 140) -> list[LazyVideo]:
    """Bonn RGB-D Dynamic sequences, DepthCrafter's selection (see the module docstring)."""
    seqs = sorted(p for p in Path(root).iterdir() if (p / "rgb").is_dir())
    return [(s.name, partial(_load_bonn, s, start, stop)) for s in seqs]


def _load_kitti(drive: Path, raw_root: Path, num_frames: int) -> DepthVideo:
    gt_dir = drive / "proj_depth" / "groundtruth" / "image_02"
    names = _by_last4(list(gt_dir.glob("*.png")))[:num_frames]
    img_dir = raw_root / drive.name[:10] / drive.name / "image_02" / "data"
    frames = _even(np.stack([read_rgb(img_dir / p.name) for p in names]), (1, 2))
    depth = _even(np.stack([_depth_from_png(p, 256.0) for p in names]), (1, 2))
    return DepthVideo(drive.name, frames, depth)


def list_kitti_depth(
    depth_root: str | Path, raw_root: str | Path, *, num_frames: int = 110
) -> list[LazyVideo]:
    """KITTI val drives with annotated depth, DepthCrafter's selection (module docstring)."""
    drives = sorted(p for p in Path(depth_root).iterdir() if (p / "proj_depth").is_dir())
    return [(d.name, partial(_load_kitti, d, Path(raw_root), num_frames)) for d in drives]


def _load_nyu(name: str, image: Path, depth_png: Path) -> DepthVideo:
    frame = read_rgb(image)[45:471, 41:601]
    depth = read_png_uint16(depth_png).astype(np.float32)[45:471, 41:601] / 1000.0
    return DepthVideo(name, frame[None], depth[None])


def list_nyu(root: str | Path, list_file: str | Path) -> list[LazyVideo]:
    """NYUv2 test images, one-frame videos (see the module docstring)."""
    base = Path(root)
    out: list[LazyVideo] = []
    for line in Path(list_file).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            name = str(Path(parts[0]).with_suffix("")).replace("/", "_")
            out.append((name, partial(_load_nyu, name, base / parts[0], base / parts[2])))
    return out
