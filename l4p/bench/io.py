"""Result files of benchmark runs: atomic JSON, per-item records, run metadata, markdown tables.

- ``ResultStore``: one JSON file per evaluated item (video, sequence) under a folder, written
  atomically, so that an interrupted run resumes where it stopped.
- ``check_run_config``: refuse to resume a folder made with other settings.
- ``run_metadata``: date, machine, library versions and the command line of a run.
- ``write_summary`` / ``markdown_table``: ``summary.json`` and ``summary.md`` beside it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays (and nested containers of them) to plain JSON values.

    Non-finite floats become ``None`` so that the file is strict JSON.
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.item() if obj.size == 1 else obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, json.dumps(to_jsonable(obj), indent=1, allow_nan=False) + "\n")


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


class ResultStore:
    """One JSON record per item (``<root>/<key>.json``); the basis of resumable runs.

    Args:
        root: Folder of the records. Keys may contain ``/`` (sub-folders).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """File of the record ``key``."""
        return self.root / f"{key}.json"

    def load(self, key: str) -> dict | None:
        """The record, or None when it is absent or unreadable (then it is redone)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return read_json(path)
        except (OSError, json.JSONDecodeError):
            logger.warning("unreadable record %s: it will be redone", path)
            return None

    def save(self, key: str, record: Mapping) -> Path:
        """Write the record (atomically)."""
        return write_json(self.path(key), record)


def check_run_config(out_dir: str | Path, config: Mapping, *, overwrite: bool = False) -> None:
    """Refuse to resume into ``out_dir`` with settings other than those it was made with.

    The first run writes ``run_config.json``; a later run with different settings (another
    checkpoint, pixel convention, ...) raises unless ``overwrite`` (which redoes every item).
    """
    path = Path(out_dir) / "run_config.json"
    config = to_jsonable(config)
    if path.is_file() and not overwrite:
        previous = read_json(path)
        if previous != config:
            changed = sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
            raise ValueError(
                f"{out_dir} holds results made with other settings ({', '.join(changed)}); "
                "use another --out, or --overwrite to redo everything"
            )
    write_json(path, config)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=_SOURCE_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _cpu_model() -> str | None:
    """The CPU model from ``/proc/cpuinfo`` (Linux), trimmed of trademarks and clock speed."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("model name"):
            name = line.split(":", 1)[1].split("@")[0]
            for junk in ("(R)", "(TM)", "CPU", "Processor"):
                name = name.replace(junk, "")
            return "-".join(name.split()) or None
    return None


def machine_name() -> str:
    """A short machine description for file names: the GPU if one is visible, else the CPU arch + cores."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name().replace("NVIDIA", "").strip()
    else:
        name = f"{_cpu_model() or platform.machine()}-{os.cpu_count()}cpu"
    return "".join(c if c.isalnum() or c in "-." else "-" for c in name).strip("-").lower()


def run_metadata(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Date, machine, versions and the command line of this run."""
    import torch

    import l4p

    meta: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_name(),
        "platform": platform.platform(),
        "processor": _cpu_model() or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "l4p": getattr(l4p, "__version__", None),
        "git_commit": _git_commit(),
        "command": " ".join([Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)]),
    }
    if torch.cuda.is_available():
        meta["gpu"] = torch.cuda.get_device_name()
        meta["cuda"] = torch.version.cuda
    return meta


def fmt(value: Any, scale: float = 1.0, digits: int = 2) -> str:
    """Format a number for a table (``-`` for missing or non-finite values)."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    return f"{value * scale:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_summary(out_dir: str | Path, summary: Mapping, table_md: str, *, title: str) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` (title, run metadata, table) into ``out_dir``."""
    out_dir = Path(out_dir)
    json_path = write_json(out_dir / "summary.json", summary)
    meta = summary.get("meta", {})
    header = f"# {title}\n\n" + "".join(
        f"- {k}: `{meta[k]}`\n" for k in ("date", "machine", "command") if k in meta
    )
    md_path = write_text(out_dir / "summary.md", header + "\n" + table_md)
    logger.info("summary written to %s and %s", json_path, md_path)
    return json_path, md_path
