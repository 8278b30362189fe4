"""onnxruntime sessions (imported lazily: onnxruntime is an optional dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def require_onnxruntime():
    """Import onnxruntime, or raise an ImportError saying how to install it."""
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(
            "the ONNX backend needs onnxruntime; install it with `pip install onnxruntime` "
            "(or `pip install -e '.[onnx]'`)"
        ) from err
    return onnxruntime


def make_session(path: Path, *, providers: Sequence[str] | None = None, threads: int | None = None):
    """An `onnxruntime.InferenceSession` on one graph of an export folder.

    Args:
        path: The `.onnx` file (its external data, if any, must lie beside it).
        providers: Execution providers in order of preference (default: CPU).
        threads: Intra-op threads (default: onnxruntime's choice, one per physical core).
    """
    ort = require_onnxruntime()
    if not path.is_file():
        raise FileNotFoundError(
            f"missing {path.name} in {path.parent}; re-export the model with `l4p export onnx`"
        )
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(
        str(path), sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
    )
