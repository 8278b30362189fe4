"""Means rounded the way the official torch-based evaluators round them.

RAFT (per-image flow EPE) and DepthCrafter (per-frame δ1 averaged over frames) reduce float32
values with torch's CPU ``mean``; numpy sums in another order and differs in the last float32
bit about half the time. torch is imported lazily so that importing the metrics stays cheap.
"""

from __future__ import annotations

import numpy as np


def torch_mean(x: np.ndarray) -> float:
    """``torch.from_numpy(x).mean().item()`` (numpy's mean when torch is missing)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of l4p
        return float(np.mean(x))
    return float(torch.from_numpy(np.ascontiguousarray(x)).mean().item())
