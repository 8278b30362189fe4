"""Atomic file writes: every file appears complete or not at all.

Writers produce a temporary file beside the target (same folder, same suffix, so libraries
that pick a format by the file name keep working) and rename it over the target once it is
complete (`os.replace`, atomic on POSIX and Windows within one file system). An interrupted
run therefore leaves either the previous file or no file, never a truncated one; stray
temporary files are recognised by `is_temp_name` and cleared on the next run.

::

    with atomic_path("out/tracks_3d.npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    write_text_atomic("out/cameras.json", text)
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

_TEMP_RE = re.compile(r"^\..+\.l4ptmp-\d+(\.[A-Za-z0-9]+)?$")


def _file_mode() -> int:
    """Permissions of a new file under the process umask (what a plain `open(path, "w")` gives)."""
    try:  # Linux: read it without changing it (os.umask would, for a moment, for every thread)
        with open("/proc/self/status", encoding="ascii") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def temp_name(path: str | Path) -> Path:
    """The temporary path used while writing `path` (hidden, same folder and suffix)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.l4ptmp-{os.getpid()}{path.suffix}")


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of our temporary names (left behind by an interrupted write)."""
    return bool(_TEMP_RE.match(name))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to `path`, on error removed.

    The folder of `path` is created. A finished file gets the permissions of the umask, as a
    plain `open` would give it: some writers (safetensors) create their file readable by its
    owner alone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a text file atomically (UTF-8); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write a binary file atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def save_npz_atomic(path: str | Path, arrays: Mapping[str, Any], *, compressed: bool = True) -> Path:
    """`np.savez_compressed` (or `np.savez`) of `arrays` atomically; `path` should end in `.npz`."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # an open file: numpy would append `.npz` to a name
            if compressed:
                np.savez_compressed(f, **arrays)
            else:
                np.savez(f, **arrays)
    return Path(path)
