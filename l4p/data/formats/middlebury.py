"""Middlebury ``.flo`` optical-flow files (also used by MPI-Sintel), and the shared ``PIEH`` header.

Layout, all little-endian, no padding: the tag ``"PIEH"`` (the float32 202021.25), int32 width,
int32 height, then ``W·H·2`` float32 interleaved (u, v), row-major. u is the horizontal (x)
and v the vertical (y) displacement in pixels. Values with ``|u|`` or ``|v|`` above 1e9 mark
"unknown flow" in Middlebury ground truth.

These readers decode explicitly as little-endian, so they also work on big-endian machines
(the reference SDK readers would fail their tag check there).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["PIEH_TAG", "PIEH_TAG_BYTES", "UNKNOWN_FLOW_THRESH", "known_flow_mask", "read_flo", "write_flo"]

PIEH_TAG = 202021.25
"""The float32 value of the bytes ``b"PIEH"`` that open .flo, .dpt and .cam files."""
UNKNOWN_FLOW_THRESH = 1e9
"""Middlebury marks unknown flow with components whose magnitude exceeds this."""
PIEH_TAG_BYTES = np.array([PIEH_TAG], dtype="<f4").tobytes()
_MAX_PIXELS = 100_000_000


def check_tag(data: bytes, *, path: str | Path, kind: str) -> None:
    """Raise ``ValueError`` unless ``data`` starts with the ``PIEH`` tag.

    Args:
        data: The file's bytes.
        path: Shown in the error message.
        kind: File kind for the message (".flo", ".dpt", ".cam").
    """
    if len(data) < 4:
        raise ValueError(f"{path}: {len(data)} bytes, too short for a {kind} file (no PIEH tag)")
    if data[:4] != PIEH_TAG_BYTES:
        value = np.frombuffer(data[:4], dtype="<f4")[0]
        raise ValueError(
            f"{path}: wrong magic number for a {kind} file: {data[:4]!r} (float {value}), "
            f"expected b'PIEH' (float {PIEH_TAG}); wrong file type or byte order?"
        )


def read_sized_grid(path: str | Path, *, kind: str, channels: int) -> np.ndarray:
    """Read a tagged ``W, H`` float32 grid (.flo: 2 channels, .dpt: 1), checking sizes.

    Args:
        path: File path.
        kind: ".flo" or ".dpt", for messages.
        channels: Values per pixel.

    Returns:
        float32 array (H, W, channels), native byte order, writable.
    """
    data = Path(path).read_bytes()
    check_tag(data, path=path, kind=kind)
    if len(data) < 12:
        raise ValueError(f"{path}: truncated {kind} header ({len(data)} of 12 bytes)")
    width, height = (int(v) for v in np.frombuffer(data, dtype="<i4", count=2, offset=4))
    if not (width > 0 and height > 0 and 1 < width * height < _MAX_PIXELS):
        raise ValueError(f"{path}: implausible {kind} size width={width} height={height}")
    expected = 12 + 4 * channels * width * height
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: {kind} file {state}: {len(data)} bytes, expected {expected} for {width}x{height}"
        )
    grid = np.frombuffer(data, dtype="<f4", offset=12).reshape(height, width, channels)
    return grid.astype(np.float32)  # native order, own memory


def write_sized_grid(path: str | Path, grid: np.ndarray) -> None:
    """Write a (H, W, C) grid with the PIEH tag and its W, H header as little-endian float32."""
    height, width = grid.shape[:2]
    header = PIEH_TAG_BYTES + np.array([width, height], dtype="<i4").tobytes()
    Path(path).write_bytes(header + np.ascontiguousarray(grid, dtype="<f4").tobytes())


def read_flo(path: str | Path) -> np.ndarray:
    """Read a Middlebury/Sintel ``.flo`` file.

    Args:
        path: File path.

    Returns:
        (H, W, 2) float32 flow as (u, v) = (dx, dy) in pixels. Unknown-flow sentinels are kept
        as stored; see ``known_flow_mask``.

    Raises:
        ValueError: Wrong tag, implausible size, truncated or over-long file.
    """
    return read_sized_grid(path, kind=".flo", channels=2)


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write a ``.flo`` file; ``read_flo`` returns the same bits for float32 input.

    Args:
        path: Destination.
        flow: (H, W, 2) (u, v) in pixels; cast to float32.
    """
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    write_sized_grid(path, flow)


def known_flow_mask(flow: np.ndarray) -> np.ndarray:
    """True where the flow is known: finite with ``|u|, |v| ≤ 1e9`` (Middlebury convention).

    Args:
        flow: (..., 2) flow.

    Returns:
        Bool array (...).
    """
    with np.errstate(invalid="ignore"):
        return np.all(np.isfinite(flow) & (np.abs(flow) <= UNKNOWN_FLOW_THRESH), axis=-1)
