"""`load_onnx`: an `L4PPredictor` whose network runs in onnxruntime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from l4p.deploy.backend import OnnxL4P

if TYPE_CHECKING:
    from l4p.api import L4PPredictor
    from l4p.inference.engine import Mode


def load_onnx(
    directory: str | Path,
    *,
    mode: Mode = "default",
    window_batch_size: int = 1,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    low_memory: bool = False,
) -> L4PPredictor:
    """Load an export folder (`l4p export onnx`) as a predictor: `predict` works unchanged.

    Args:
        directory: Export folder holding `l4p_onnx.json` and the graphs.
        mode: "default" or "released" (see `L4PPredictor`).
        window_batch_size: Windows encoded together (the graphs have a dynamic batch axis).
        providers: onnxruntime execution providers (default: CPU).
        threads: Intra-op threads per session (default: onnxruntime's choice).
        low_memory: Trade speed for memory (one copy of the weights, no activation arena).

    Returns:
        An `L4PPredictor` around an `OnnxL4P` backend (results on the CPU, float32).
    """
    from l4p.api import L4PPredictor
    from l4p.models.l4p import L4P

    backend = OnnxL4P(directory, providers=providers, threads=threads, low_memory=low_memory)
    # OnnxL4P provides the part of L4P's interface the predictor and the engine use.
    return L4PPredictor(cast(L4P, backend), device="cpu", mode=mode, window_batch_size=window_batch_size)
