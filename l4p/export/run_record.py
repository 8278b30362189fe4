"""The record of a finished output folder, and what makes a folder's result stale.

A finished folder holds `l4p_done.json`, written last and atomically. It records
everything the result depends on: the source (path, size, modification time), the run's
settings (model, checkpoint fingerprint, mode, tasks, queries hash, grid, max frames,
dtype, which files to write) and the files written. A re-run skips a folder only when the
source and every setting match (`stale_reason` returns None); otherwise the folder's
previous outputs are cleared (`clear_outputs`, only names l4p writes, never user files)
and the video is redone. A folder belongs to one source: `owner` tells whose it is, so
that two different videos never share a folder.

::

    settings = run_settings(model="l4p_test", checkpoint=None, mode="default", tasks=("depth",))
    reason = stale_reason(folder, source="clip.mp4", settings=settings)  # None: done, skip
    if reason is not None:
        clear_outputs(folder)
        ...  # predict and write
        write_done_marker(folder, source="clip.mp4", settings=settings, files=written)
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from l4p.export.atomic import is_temp_name, write_text_atomic

logger = logging.getLogger(__name__)

DONE_MARKER = "l4p_done.json"
FAILED_MARKER = "l4p_failed.txt"
VIDEO_NAMES = ("input", "depth", "flow", "motion", "tracks", "mosaic")
# Files l4p writes at the top of a folder, and the sub-folders with the file names inside them.
OUTPUT_FILES = (
    {DONE_MARKER, FAILED_MARKER, "prediction.npz", "cameras.ply", "cameras.json", "trajectory_tum.txt"}
    | {"tracks_3d.npz"}
    | {f"{name}{suffix}" for name in VIDEO_NAMES for suffix in (".mp4", ".gif")}
)
OUTPUT_DIRS = {
    "depth_png16": re.compile(r"^(frame_\d{5}\.png|scale\.json)$"),
    "pointclouds": re.compile(r"^frame_\d{5}\.ply$"),
    "ground_truth": re.compile(r"^({})\.(mp4|gif)$".format("|".join(VIDEO_NAMES))),
}


def fingerprint(path: str | Path | None) -> dict[str, Any] | None:
    """Identity of a file or folder of frames: absolute path, size and modification time.

    For a folder: the number of files, their total size and newest modification time.
    None for None; a path that does not exist gets only its path.
    """
    if path is None:
        return None
    path = Path(path).resolve()
    if path.is_file():
        stat = path.stat()
        return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if path.is_dir():
        stats = [p.stat() for p in sorted(path.iterdir()) if p.is_file()]
        return {
            "path": str(path),
            "files": len(stats),
            "size": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
        }
    return {"path": str(path)}


def array_hash(array: np.ndarray | None) -> str | None:
    """A short SHA-256 of an array's float32 values (None for None)."""
    if array is None:
        return None
    data = np.ascontiguousarray(np.asarray(array, np.float32))
    return hashlib.sha256(data.tobytes() + str(data.shape).encode()).hexdigest()[:16]


def run_settings(
    *,
    model: str,
    checkpoint: str | Path | None,
    mode: str,
    tasks: Sequence[str],
    queries: np.ndarray | None = None,
    grid: int | None = None,
    max_frames: int | None = None,
    dtype: str = "fp32",
    outputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything besides the source that a folder's result depends on (JSON-able)."""
    model_path = Path(model)
    return {
        "model": str(model_path.resolve()) if model_path.is_dir() else model,
        "model_weights": fingerprint(model_path / "model.safetensors") if model_path.is_dir() else None,
        "checkpoint": fingerprint(checkpoint),
        "mode": mode,
        "tasks": sorted(tasks),
        "queries": array_hash(queries),
        "grid": grid,
        "max_frames": max_frames,
        "dtype": dtype,
        "outputs": dict(outputs or {}),
    }


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The folder's done marker, or None when absent or unreadable."""
    try:
        marker = json.loads((Path(folder) / DONE_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def owner(folder: str | Path) -> str | None:
    """Absolute path of the source whose result (done or failed) the folder holds, if known."""
    marker = read_marker(folder)
    if marker is not None:
        legacy = marker.get("video")  # markers of older versions: the path as given
        return (marker.get("source") or {}).get("path") or (str(Path(legacy).resolve()) if legacy else None)
    try:
        first = (Path(folder) / FAILED_MARKER).read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return first[len("source: ") :] if first.startswith("source: ") else None


def stale_reason(folder: str | Path, *, source: str | Path, settings: dict[str, Any]) -> str | None:
    """None when the folder holds a finished result of exactly this source and settings.

    Otherwise a short reason to redo it, e.g. "not finished" or
    "changed since the last run: checkpoint (none -> /w/l4p.ckpt), tasks (depth -> depth,flow)".
    """
    marker = read_marker(folder)
    if marker is None:
        return "not finished"
    if "settings" not in marker:
        return "made by an older l4p that did not record its settings"
    old = {"source": marker.get("source"), **(marker.get("settings") or {})}
    new = {"source": fingerprint(source), **settings}
    changed = [
        f"{key} ({_show(old.get(key))} -> {_show(new[key])})" for key in new if old.get(key) != new[key]
    ]
    return None if not changed else "changed since the last run: " + ", ".join(changed)


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict) and "path" in value:
        return value["path"] + (
            f" [{value.get('size')} bytes, mtime {value.get('mtime_ns')}]" if "size" in value else ""
        )
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def write_done_marker(
    folder: str | Path,
    *,
    source: str | Path,
    settings: dict[str, Any],
    files: Iterable[str | Path],
    info: dict[str, Any] | None = None,
) -> Path:
    """Write `l4p_done.json` atomically (call it last): source, settings, files written, `info`."""
    folder = Path(folder)
    names = sorted({str(Path(f).relative_to(folder)) if Path(f).is_absolute() else str(f) for f in files})
    marker = {"source": fingerprint(source), "settings": settings, "files": names, **(info or {})}
    return write_text_atomic(folder / DONE_MARKER, json.dumps(marker, indent=1))


def write_failed_marker(folder: str | Path, *, source: str | Path, details: str) -> Path:
    """Write `l4p_failed.txt`: `source: <absolute path>`, then the details (a traceback)."""
    text = f"source: {Path(source).resolve()}\n{details.rstrip()}\n"
    return write_text_atomic(Path(folder) / FAILED_MARKER, text)


def clear_outputs(folder: str | Path) -> list[Path]:
    """Remove what an earlier run wrote in `folder`: only names l4p writes, never other files.

    Removes the done marker first, then the known output files, their sub-folders' known files (and the
    sub-folder once empty) and leftover temporary files of interrupted writes. Returns the
    removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed: list[Path] = []
    if (folder / DONE_MARKER).is_file():  # first: an interrupted clear must not look finished
        (folder / DONE_MARKER).unlink()
        removed.append(folder / DONE_MARKER)
    for name, pattern in OUTPUT_DIRS.items():
        sub = folder / name
        if sub.is_dir() and not sub.is_symlink():
            for p in sub.iterdir():
                if p.is_file() and (pattern.match(p.name) or is_temp_name(p.name)):
                    p.unlink()
                    removed.append(p)
            if not any(sub.iterdir()):
                sub.rmdir()
                removed.append(sub)
    for p in sorted(folder.iterdir(), key=lambda p: p.name == FAILED_MARKER):  # it names the owner: last
        if p.is_file() and (p.name in OUTPUT_FILES or is_temp_name(p.name)):
            p.unlink()
            removed.append(p)
    return removed
