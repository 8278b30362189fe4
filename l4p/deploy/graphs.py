"""Export-only wrappers: the parts of one `L4P` window as modules with plain tensor inputs/outputs.

Each wrapper calls the model's own methods (`encode`, `decode_dense`, the tracking head's
forward), so the exported graphs compute exactly what `predict` computes in PyTorch. The
input/output names and layouts are the contract in `l4p.deploy.contract`.
"""

from __future__ import annotations

from dataclasses import fields

import torch
from torch import nn

from l4p.deploy.contract import DENSE_OUTPUT_NAMES, TRACKING_OUTPUTS
from l4p.heads.tracking.head import TrackingHead, TrackWindowOutput
from l4p.models.l4p import L4P, WindowFeatures

# TrackWindowOutput fields the tracking graph returns besides the core outputs (in order).
EXTRA_TRACKING_FIELDS = tuple(
    f.name
    for f in fields(TrackWindowOutput)
    if f.name not in ("traj", "vis", "depth", "track_feature", "decoded_tokens")
)


def model_grid(model: L4P) -> tuple[int, int, int]:
    """Token grid (t, h, w) of one window of `model`."""
    t, h, w = model.window
    return model.encoder.patch_embed.grid(t, h, w)


class EncoderGraph(nn.Module):
    """`video` -> (`feature_1` .. `feature_4` when `dense`, `tokens` when `tokens`)."""

    def __init__(self, model: L4P, *, dense: bool, tokens: bool) -> None:
        super().__init__()
        self.model = model
        self.tasks = (("depth",) if dense else ()) + (("tracks",) if tokens else ())

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encode one batch of windows (B, 3, T, H, W)."""
        feats = self.model.encode(video, tasks=self.tasks)
        return (*feats.dense, *(() if feats.final is None else (feats.final,)))


class DenseHeadGraph(nn.Module):
    """`feature_1` .. `feature_4` -> one dense task's output, in `DenseOutputs` layout."""

    def __init__(self, model: L4P, task: str) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.grid = model_grid(model)

    def forward(self, f1: torch.Tensor, f2: torch.Tensor, f3: torch.Tensor, f4: torch.Tensor) -> torch.Tensor:
        """Decode the four hook features of a batch of windows."""
        size = tuple(self.model.window)
        feats = WindowFeatures(dense=[f1, f2, f3, f4], final=None, grid=self.grid, size=size)  # type: ignore[arg-type]
        out = self.model.decode_dense(feats, tasks=(self.task,))
        return getattr(out, DENSE_OUTPUT_NAMES[self.task])  # the DenseOutputs field


class TrackingGraph(nn.Module):
    """One window of the tracking head with its memory as explicit inputs and outputs.

    The decoded tokens come out already projected (`history_next`), so carrying them to the
    next window is slicing and concatenation only.
    """

    def __init__(self, head: TrackingHead, grid: tuple[int, int, int]) -> None:
        super().__init__()
        self.head = head
        self.grid = grid

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the outputs, in order."""
        return (*TRACKING_OUTPUTS, *EXTRA_TRACKING_FIELDS)

    def forward(
        self,
        video_tokens: torch.Tensor,
        queries: torch.Tensor,
        point_labels: torch.Tensor,
        track_features: torch.Tensor,
        track_feature_labels: torch.Tensor,
        history: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """Track every query through one window (see `TrackingHead.forward`)."""
        out = self.head(
            video_tokens,
            grid_thw=self.grid,
            queries_bn3=queries,
            point_labels_bn=point_labels,
            track_features_bnc=track_features,
            track_feature_labels_bn=track_feature_labels,
            history_bnpc=history,
        )
        history_next = self.head.history_from_decoded(out.decoded_tokens)
        extra = tuple(getattr(out, name) for name in EXTRA_TRACKING_FIELDS)
        return (out.traj, out.vis, out.depth, out.track_feature, history_next, *extra)
