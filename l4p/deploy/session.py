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


def make_session(
    path: Path,
    *,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    low_memory: bool = False,
):
    """An `onnxruntime.InferenceSession` on one graph of an export folder.

    Args:
        path: The `.onnx` file (its external data, if any, must lie beside it).
        providers: Execution providers in order of preference (default: CPU).
        threads: Intra-op threads (default: onnxruntime's choice, one per physical core).
        low_memory: Keep one copy of the weights (no pre-packing for the matrix kernels) and
            release activation memory after each run (no CPU arena); slower, for models near
            the machine's memory (the `l4p_vitg14` encoder is 3.7 GB).
    """
    ort = require_onnxruntime()
    if not path.is_file():
        raise FileNotFoundError(
            f"missing {path.name} in {path.parent}; re-export the model with `l4p export onnx`"
        )
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    if low_memory:
        options.enable_cpu_mem_arena = False
        options.add_session_config_entry("session.disable_prepacking", "1")
    return ort.InferenceSession(
        str(path), sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
    )
