"""The L4P network: one video encoder, dense heads on its intermediate blocks, a tracking head.

The module is stateless and works on one window of frames. Everything around it (input
conversion, windows, stitching, alignment, tracking memory) lives in `l4p.api`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from l4p.heads.tracking.head import TrackingHead
from l4p.models.videomae import VideoMAEEncoder

DENSE_TASKS = ("depth", "flow", "motion", "camera")
TASKS = (*DENSE_TASKS, "tracks")


@dataclass
class WindowFeatures:
    """Encoder features of one window, as the heads read them.

    Attributes:
        dense: Four token maps (B, C, t, h, w) of the dense-head hook blocks (empty when no
            dense task was asked for).
        final: (B, P, C) final-normed tokens for the tracking head, or None.
        grid: Token grid (t, h, w).
        size: Window (T, H, W) in frames and pixels.
    """

    dense: list[torch.Tensor]
    final: torch.Tensor | None
    grid: tuple[int, int, int]
    size: tuple[int, int, int]


@dataclass
class DenseOutputs:
    """Dense outputs of one window at the window's resolution (None when not requested).

    Attributes:
        depth: (B, T, H, W) positive, scale-ambiguous.
        flow: (B, T, 2, H, W) backward flow in window pixels.
        motion: (B, T, H, W) logits.
        camera_rays: (B, 6, T, h, w) Plücker rays on the patch grid.
    """

    depth: torch.Tensor | None = None
    flow: torch.Tensor | None = None
    motion: torch.Tensor | None = None
    camera_rays: torch.Tensor | None = None


class L4P(nn.Module):
    """Encoder + dense heads + tracking head.

    Args:
        encoder: The video encoder.
        dense_heads: Heads by task (`depth`, `flow`, `motion`, `camera`), each called as
            `head(features, output_size)`.
        tracker: The tracking head, or None.
        dense_hooks: Encoder feature indices the dense heads read (1-based block outputs).
        window: Frames and pixels (T, H, W) of one window.
        stride: Frames between consecutive windows.
    """

    def __init__(
        self,
        *,
        encoder: VideoMAEEncoder,
        dense_heads: Mapping[str, nn.Module],
        tracker: TrackingHead | None,
        dense_hooks: Sequence[int],
        window: tuple[int, int, int] = (16, 224, 224),
        stride: int = 8,
    ) -> None:
        super().__init__()
        unknown = set(dense_heads) - set(DENSE_TASKS)
        if unknown:
            raise ValueError(f"unknown dense heads {sorted(unknown)}; dense tasks are {DENSE_TASKS}")
        if len(dense_hooks) != 4:
            raise ValueError(f"dense heads read four encoder blocks, got hooks {list(dense_hooks)}")
        self.encoder = encoder
        self.heads = nn.ModuleDict(dict(dense_heads))
        self.tracker = tracker
        self.dense_hooks = tuple(dense_hooks)
        self.window = tuple(window)
        self.stride = stride

    @property
    def tasks(self) -> tuple[str, ...]:
        """Tasks this model has heads for."""
        return tuple(t for t in TASKS if t in self.heads or (t == "tracks" and self.tracker is not None))

    def encode(self, video_bcthw: torch.Tensor, *, tasks: Collection[str]) -> WindowFeatures:
        """Run the encoder once, keeping only the features the requested heads read.

        Args:
            video_bcthw: (B, 3, T, H, W) ImageNet-normalised frames of one window.
            tasks: Requested tasks.
        """
        need_dense = any(t in DENSE_TASKS for t in tasks)
        need_final = "tracks" in tasks
        feats = self.encoder.forward_intermediates(
            video_bcthw, self.dense_hooks if need_dense else (), return_final=need_final
        )
        final = None
        if feats.final is not None:
            final = feats.final.flatten(2).transpose(1, 2)  # (B, C, t, h, w) -> (B, P, C)
        size = tuple(int(s) for s in video_bcthw.shape[2:])
        return WindowFeatures(dense=feats.intermediates, final=final, grid=feats.grid, size=size)  # type: ignore[arg-type]

    def decode_dense(self, features: WindowFeatures, *, tasks: Collection[str]) -> DenseOutputs:
        """Run the requested dense heads on one window's features."""
        out = DenseOutputs()
        if "depth" in tasks:
            out.depth = self.heads["depth"](features.dense, features.size)[:, 0]
        if "flow" in tasks:
            out.flow = self.heads["flow"](features.dense, features.size).transpose(1, 2)
        if "motion" in tasks:
            out.motion = self.heads["motion"](features.dense, features.size)[:, 0]
        if "camera" in tasks:
            out.camera_rays = self.heads["camera"](features.dense, features.size)
        return out

    def forward(self, video_bcthw: torch.Tensor, tasks: Collection[str] = DENSE_TASKS) -> DenseOutputs:
        """Dense outputs of one window (tracking needs queries and memory: see `l4p.api`)."""
        return self.decode_dense(self.encode(video_bcthw, tasks=tasks), tasks=tasks)
