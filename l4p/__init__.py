"""l4p: unified low-level 4D perception from monocular video.

Importing this package is cheap: heavy submodules load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

_LAZY = {
    "build_model": "l4p.build",
    "load_model": "l4p.api",
    "list_models": "l4p.build",
    "L4PPredictor": "l4p.api",
    "Prediction": "l4p.outputs",
    "load_prediction": "l4p.inference.store",
    "stream_to_disk": "l4p.inference.to_disk",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'l4p' has no attribute {name!r}")
