"""KITTI optical-flow 16-bit PNGs (2012 and 2015 share the format).

A 3-channel uint16 PNG; with R, G, B the stored channels:
``u = (R − 2¹⁵) / 64``, ``v = (G − 2¹⁵) / 64`` pixels, valid where ``B > 0``. Ground truth is
sparse: only valid pixels carry flow.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["read_kitti_flow", "write_kitti_flow"]


def read_kitti_flow(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a KITTI flow PNG.

    Returns:
        ``(flow, valid)``: (H, W, 2) float32 (u, v) pixels (computed in float32, as RAFT's
        reader does; exact since the values are multiples of 1/64), and (H, W) bool.

    Raises:
        FileNotFoundError: Unreadable file.
        ValueError: Not a 3-channel 16-bit image.
    """
    img = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read {path}")
    if img.dtype != np.uint16 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{path}: expected a 3-channel uint16 PNG, got {img.dtype} {img.shape}")
    rgb = img[..., ::-1].astype(np.float32)  # OpenCV returns BGR
    flow = (rgb[..., :2] - 2**15) / 64.0
    return flow, rgb[..., 2] > 0


def write_kitti_flow(path: str | Path, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Write a KITTI flow PNG.

    Components are stored as ``round(64·u + 2¹⁵)`` clipped to [0, 65535] (a range of ±512 px
    at 1/64 px steps). Invalid pixels store zero flow (2¹⁵) and B = 0.

    Args:
        path: Destination ``.png``.
        flow: (H, W, 2) (u, v) pixels.
        valid: (H, W) bool; default: every finite pixel.
    """
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    valid = np.all(np.isfinite(flow), axis=-1) if valid is None else np.asarray(valid, dtype=bool)
    flow = np.where(valid[..., None], flow, 0.0)
    rg = np.clip(np.round(flow * 64.0 + 2**15), 0, 65535).astype(np.uint16)
    bgr = np.stack([valid.astype(np.uint16), rg[..., 1], rg[..., 0]], axis=-1)
    if not cv2.imwrite(str(path), bgr):
        raise OSError(f"cannot write {path}")
