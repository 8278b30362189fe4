"""Helpers of the ``l4p bench`` tests: a predictor stub replaying given outputs, tiny images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from l4p.bench.runner import BenchContext
from l4p.outputs import Prediction


class ReplayPredictor:
    """Stands in for ``L4PPredictor`` in tests: ``predict`` returns ``respond(video, **kwargs)``.

    Only the model is replaced; every protocol code path (reading, resizing, scoring) is real.
    ``calls`` records the inputs.
    """

    def __init__(self, respond: Callable[..., Prediction]) -> None:
        self.respond = respond
        self.calls: list[dict[str, Any]] = []

    def predict(self, video, tasks=("depth",), **kwargs) -> Prediction:
        video = np.asarray(video)
        self.calls.append({"video": video, "tasks": tuple(tasks), **kwargs})
        return self.respond(video, tasks=tuple(tasks), **kwargs)


def refuse() -> None:
    """A predictor factory that fails: proves that a resumed run predicts nothing."""
    raise AssertionError("the model was needed although every item was done")


def context(data: Path, out: Path, predictor: Any, **kwargs: Any) -> BenchContext:
    """A ``BenchContext`` whose predictor is ``predictor`` (or whose factory is ``refuse``)."""
    make = refuse if predictor is None else (lambda: predictor)
    return BenchContext(data=Path(data), out=Path(out), make_predictor=make, model="stub", **kwargs)


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random RGB image (H, W, 3) uint8."""
    small = rng.integers(0, 256, (h // 4 + 2, w // 4 + 2, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def write_rgb(path: Path, img: np.ndarray) -> None:
    """Write an RGB image (PNG or JPEG by suffix), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(img[..., ::-1]))


def write_png16(path: Path, values: np.ndarray) -> None:
    """Write a uint16 single-channel PNG, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), values.astype(np.uint16))


def t(x: np.ndarray) -> torch.Tensor:
    """float32 tensor with a batch axis."""
    return torch.from_numpy(np.asarray(x, dtype=np.float32))[None]
