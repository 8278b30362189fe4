"""The record of a finished output folder, and what makes a folder's result stale.

A finished folder holds `l4p_done.json`, written last and atomically. It records
everything the result depends on: the source (path, size, modification time), the run's
settings (model, checkpoint fingerprint, mode, tasks, queries hash, grid, max frames,
dtype, which files to write) and the files written. A re-run skips a folder only when the
source and every setting match (`stale_reason` returns None); otherwise the folder's
previous outputs are cleared (`clear_outputs`, only names l4p writes, never user files)
and the video is redone. A folder belongs to one source: `owner` tells whose it is, so
that two different videos never share a folder.

While a run is under way the folder holds `l4p_run.json` (`RUN_RECORD`: the same source and
settings, written before the first frame): a run that was killed and started again with the
same command finds it, and `resume_reason` says whether the unfinished `prediction.zarr`
may be continued (None) or must be cleared and redone (the reason).

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
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from l4p.export.atomic import is_temp_name, write_text_atomic

logger = logging.getLogger(__name__)

DONE_MARKER = "l4p_done.json"
FAILED_MARKER = "l4p_failed.txt"
RUN_RECORD = "l4p_run.json"
STORE_NAME = "prediction.zarr"
VIDEO_NAMES = ("input", "depth", "flow", "motion", "tracks", "mosaic")
# Files l4p writes at the top of a folder, and the sub-folders with the file names inside them.
OUTPUT_FILES = (
    {
        DONE_MARKER,
        FAILED_MARKER,
        RUN_RECORD,
        "prediction.npz",
        "cameras.ply",
        "cameras.json",
        "trajectory_tum.txt",
    }
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
    """Everything besides the source that a folder's result depends on (JSON-able).

    The weights are fingerprinted (path, size, mtime): a save_pretrained folder's
    `model.safetensors`, the `--checkpoint` file, or, with neither, the weights shipped inside
    the package for the variant (`l4p.weights`), so that new shipped weights redo old results.
    """
    model_path = Path(model)
    if model_path.is_dir():
        weights = fingerprint(model_path / "model.safetensors")
    elif checkpoint is None:
        weights = _shipped_weights(model)
    else:
        weights = None
    return {
        "model": str(model_path.resolve()) if model_path.is_dir() else model,
        "model_weights": weights,
        "checkpoint": fingerprint(checkpoint),
        "mode": mode,
        "tasks": sorted(tasks),
        "queries": array_hash(queries),
        "grid": grid,
        "max_frames": max_frames,
        "dtype": dtype,
        "outputs": dict(outputs or {}),
    }


def _shipped_weights(model: str) -> dict[str, Any] | None:
    """Fingerprint of the weights the package ships for `model` (None when it ships none)."""
    try:
        from l4p.weights import EMBEDDED, embedded_weights
    except ImportError:  # an l4p without shipped weights
        return None
    if model not in EMBEDDED:
        return None
    try:
        return fingerprint(embedded_weights(model))
    except FileNotFoundError:
        return {"path": EMBEDDED[model], "missing": True}


def read_marker(folder: str | Path, name: str = DONE_MARKER) -> dict[str, Any] | None:
    """The folder's done marker (or another record, by `name`), or None when absent or unreadable."""
    try:
        marker = json.loads((Path(folder) / name).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def owner(folder: str | Path) -> str | None:
    """Absolute path of the source whose result (done or failed) the folder holds, if known."""
    marker = read_marker(folder) or read_marker(folder, RUN_RECORD)  # finished, else under way
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
    return _differences(marker, source, settings, "the last run")


def write_run_record(folder: str | Path, *, source: str | Path, settings: dict[str, Any]) -> Path:
    """Write `l4p_run.json` (source and settings of the run under way) atomically."""
    record = {"source": fingerprint(source), "settings": settings}
    return write_text_atomic(Path(folder) / RUN_RECORD, json.dumps(record, indent=1))


def resume_reason(folder: str | Path, *, source: str | Path, settings: dict[str, Any]) -> str | None:
    """None when `folder` holds an unfinished run of exactly this source and settings to continue.

    Otherwise why not: "nothing to resume", or "changed since the interrupted run: ...".
    """
    record = read_marker(folder, RUN_RECORD)
    if record is None or not (Path(folder) / STORE_NAME).is_dir():
        return "nothing to resume"
    return _differences(record, source, settings, "the interrupted run")


def _differences(
    old_record: dict[str, Any], source: str | Path, settings: dict[str, Any], what: str
) -> str | None:
    old = {"source": old_record.get("source"), **(old_record.get("settings") or {})}
    new = {"source": fingerprint(source), **settings}
    changed = [
        f"{key} ({_show(old.get(key))} -> {_show(new[key])})" for key in new if old.get(key) != new[key]
    ]
    return None if not changed else f"changed since {what}: " + ", ".join(changed)


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


def clear_outputs(folder: str | Path, *, keep_store: bool = False) -> list[Path]:
    """Remove what an earlier run wrote in `folder`: only names l4p writes, never other files.

    Removes the done marker first, then the known output files, their sub-folders' known files (and the
    sub-folder once empty), the prediction store (`prediction.zarr`, only when it is an l4p
    store; kept with `keep_store`, to continue it) and leftover temporary files of interrupted
    writes. Returns the removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed: list[Path] = []
    if (folder / DONE_MARKER).is_file():  # first: an interrupted clear must not look finished
        (folder / DONE_MARKER).unlink()
        removed.append(folder / DONE_MARKER)
    store = folder / STORE_NAME
    if not keep_store and store.is_dir() and not store.is_symlink() and _is_l4p_store(store):
        shutil.rmtree(store)
        removed.append(store)
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


def _is_l4p_store(path: Path) -> bool:
    """Whether `path` is a prediction store l4p wrote (its zarr.json says so), even an unfinished one."""
    try:
        attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return not any(path.iterdir())  # a store killed before its first write is empty
    return attrs.get("format") == "l4p-prediction"
