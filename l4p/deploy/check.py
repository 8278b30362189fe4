"""Compare an export with its PyTorch model on one window: largest difference per output."""

from __future__ import annotations

from pathlib import Path

import torch

from l4p.deploy.backend import OnnxL4P
from l4p.deploy.graphs import EXTRA_TRACKING_FIELDS
from l4p.models.l4p import DENSE_TASKS, L4P


def window_differences(
    model: L4P, backend: OnnxL4P, *, batch: int = 1, queries: int = 4, seed: int = 0
) -> dict[str, float]:
    """Largest absolute difference of every exported output on one random window.

    Args:
        model: The PyTorch model the export came from.
        backend: The loaded export.
        batch: Windows in the batch (the graphs' dynamic batch axis).
        queries: Track queries per window (mixed labels, carried features and history).
        seed: Seed of the random inputs.

    Returns:
        Output name -> max |onnxruntime - PyTorch|.
    """
    gen = torch.Generator().manual_seed(seed)
    video = torch.randn(batch, 3, *backend.window, generator=gen)
    tasks = backend.tasks
    dense = [t for t in tasks if t in DENSE_TASKS]
    diffs: dict[str, float] = {}

    def record(name: str, ours: torch.Tensor, ref: torch.Tensor) -> None:
        diffs[name] = float((ours.float() - ref.float()).abs().max()) if ref.numel() else 0.0

    with torch.inference_mode():
        ref_feats = model.encode(video, tasks=tasks)
        feats = backend.encode(video, tasks=tasks)
        for i, (a, b) in enumerate(zip(feats.dense, ref_feats.dense), start=1):
            record(f"feature_{i}", a, b)
        ref_out, out = model.decode_dense(ref_feats, tasks=dense), backend.decode_dense(feats, tasks=dense)
        for name in ("depth", "flow", "motion", "camera_rays"):
            if getattr(ref_out, name) is not None:
                record(name, getattr(out, name), getattr(ref_out, name))
        if "tracks" in tasks and model.tracker is not None and backend.tracker is not None:
            assert ref_feats.final is not None and feats.final is not None
            record("tokens", feats.final, ref_feats.final)
            args = _memory_inputs(ref_feats.final, backend, queries, gen)
            grid = tuple(backend.manifest.grid)
            ref = model.tracker(ref_feats.final, grid_thw=grid, **args)  # type: ignore[arg-type]
            got = backend.tracker(ref_feats.final, grid_thw=grid, **args)
            for name in ("traj", "vis", "depth", "feature"):
                attr = "track_feature" if name == "feature" else name
                record(f"track_{name}", getattr(got, attr), getattr(ref, attr))
            for name in EXTRA_TRACKING_FIELDS:
                record(f"track_{name}", getattr(got, name), getattr(ref, name))
            record("history_next", got.decoded_tokens, model.tracker.history_from_decoded(ref.decoded_tokens))
    return diffs


def _memory_inputs(tokens: torch.Tensor, backend: OnnxL4P, n: int, gen: torch.Generator) -> dict:
    """Tracking inputs of a later window: mixed labels, carried features, non-trivial history."""
    b, p, c = tokens.shape
    t, h, w = backend.window
    scale = torch.tensor([t, w, h], dtype=torch.float32)
    return dict(
        queries_bn3=torch.rand(b, n, 3, generator=gen) * scale,
        point_labels_bn=torch.randint(0, 3, (b, n), generator=gen).float(),
        track_features_bnc=torch.randn(b, n, c, generator=gen),
        track_feature_labels_bn=torch.randint(0, 2, (b, n), generator=gen),
        history_bnpc=torch.randn(b, n, p, c, generator=gen) * 0.1,
    )


def check_export(model: L4P, directory: str | Path) -> float:
    """Load an export with onnxruntime and return its largest difference on one window.

    The sessions run in low-memory mode: the PyTorch model is in memory at the same time.
    """
    diffs = window_differences(model, OnnxL4P(directory, low_memory=True))
    return max(diffs.values())
