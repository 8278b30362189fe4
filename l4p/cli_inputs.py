"""Reading the `l4p` command's input arguments: video paths, queries files, the output folder.

Every mistake is a `UsageError` (exit code 2) naming the problem and, for files, the row.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np


class UsageError(Exception):
    """A mistake in the command line or its input files (exit code 2)."""


def collect_videos(paths: list[str]) -> list[Path]:
    """Expand the VIDEO arguments: files, folders of videos (sorted), or folders of frames."""
    from l4p.data.video import FRAME_SUFFIXES, VIDEO_SUFFIXES

    videos: list[Path] = []
    for text in paths:
        path = Path(text)
        if not path.exists():
            raise UsageError(f"video {path} does not exist")
        if path.is_file():
            videos.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if inside:
            videos += inside
        elif any(p.suffix.lower() in FRAME_SUFFIXES for p in path.iterdir()):
            videos.append(path)  # a folder of frames is one video
        else:
            raise UsageError(f"folder {path} holds no videos ({', '.join(VIDEO_SUFFIXES)}) and no frames")
    return videos


def load_queries(path: Path) -> np.ndarray:
    """Read (N, 3) queries (t, x, y) from .npy, or from .txt/.csv.

    Text files: comma or space separated, '#' comments, an optional header row (the first
    row, all words). Any other row that is not three numbers, and any frame index t that is
    not a whole number, is a UsageError naming the row.
    """
    if not path.is_file():
        raise UsageError(f"queries file {path} does not exist")
    try:
        if path.suffix.lower() == ".npy":
            queries = np.asarray(np.load(path, allow_pickle=False), np.float64)
            rows = list(range(1, len(queries) + 1)) if queries.ndim == 2 else []
        else:
            queries, rows = _read_queries_text(path)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise UsageError(f"could not read queries from {path}: {str(err).splitlines()[0]}") from err
    if queries.ndim != 2 or queries.shape[1] != 3 or len(queries) == 0:
        raise UsageError(f"queries in {path} must be N >= 1 rows of (t, x, y); got shape {queries.shape}")
    for row, (t, x, y) in zip(rows, queries):
        problem = (
            "a value is not finite" if not np.isfinite([t, x, y]).all()
            else f"frame index t={t:g} is negative" if t < 0
            else f"frame index t={t:g} is not a whole number" if t != round(t)
            else None
        )  # fmt: skip
        if problem:
            raise UsageError(f"queries in {path} row {row}: {problem}")
    return queries.astype(np.float32)


def _read_queries_text(path: Path) -> tuple[np.ndarray, list[int]]:
    """Rows of numbers of a text queries file and their 1-based line numbers."""
    values: list[list[float]] = []
    rows: list[int] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = [f for f in re.split(r"[,\s]+", line.split("#", 1)[0].strip()) if f]
        if not fields:
            continue
        try:
            numbers = [float(f) for f in fields]
        except ValueError:
            if not values and not rows and not any(_is_number(f) for f in fields):
                rows.append(0)  # the header row
                continue
            raise UsageError(
                f"queries in {path} row {number}: {line.strip()!r} is not three numbers t, x, y"
            ) from None
        if len(numbers) != 3:
            raise UsageError(
                f"queries in {path} row {number}: {len(numbers)} values, expected three (t, x, y)"
            )
        values.append(numbers)
        rows.append(number)
    rows = [r for r in rows if r]
    return np.asarray(values, np.float64).reshape(-1, 3), rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_out_dir(out: Path) -> None:
    """--out must be a folder (or not exist yet)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder (it is created if missing)")
