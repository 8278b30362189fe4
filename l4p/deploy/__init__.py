"""Deployment: export the single-window network to ONNX and run `predict` on onnxruntime.

```python
from l4p.deploy import export_onnx, load_onnx
export_onnx(model, "l4p_onnx/")           # or: l4p export onnx --model NAME --out l4p_onnx/
predictor = load_onnx("l4p_onnx/")        # an L4PPredictor on onnxruntime sessions
pred = predictor.predict(video, tasks=("depth", "camera"))
```
The graphs' input/output contract is in `l4p.deploy.contract`. onnx, onnxscript and
onnxruntime are imported only when used (`pip install -e '.[onnx]'`).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "export_onnx": "l4p.deploy.export",
    "load_onnx": "l4p.deploy.load",
    "OnnxL4P": "l4p.deploy.backend",
    "Manifest": "l4p.deploy.contract",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'l4p.deploy' has no attribute {name!r}")
