"""Differentiable forward of the L4P network over consecutive windows of a training clip.

Stage 1 trains on single windows (a clip as long as one window); stage 2 unrolls windows
(e.g. S = 40 frames, windows of 16 frames with stride 8: starts 0, 8, 16, 24) so that the
tracking head learns to use its cross-window memory. The encoder and dense heads run per
window (`L4P.encode` / `L4P.decode_dense`); the tracking head runs through
`l4p.heads.tracking.driver.run_windows`, which keeps every window's raw outputs
(`TrackingResult.windows`) for the losses. Nothing is done in place, so gradients reach every
window.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import torch
from einops import rearrange

from l4p.api import IMAGENET_MEAN, IMAGENET_STD
from l4p.heads.tracking.driver import TrackingResult, run_windows
from l4p.inference.windows import window_starts
from l4p.models.l4p import DENSE_TASKS, L4P, DenseOutputs


@dataclass
class WindowedOutputs:
    """Raw network outputs of every window of a clip.

    Attributes:
        starts: First frame of every window.
        window: Frames per window.
        grid: Token grid (t, h, w) of one window.
        dense: Per window, its dense outputs at the clip's resolution.
        tracks: Tracking result over the whole clip (queries in the head's +0.5 convention;
            `tracks.windows[w].traj` etc. are the raw per-window outputs), or None.
        tokens: Per window, the final-normed encoder tokens the tracking head reads, (B, P, C),
            P = t*h*w in raster order (empty when no task needs them).
    """

    starts: list[int]
    window: int
    grid: tuple[int, int, int]
    dense: list[DenseOutputs]
    tracks: TrackingResult | None
    tokens: list[torch.Tensor] = field(default_factory=list)


def normalise_video(rgb_btchw: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) rgb in [0, 1] -> (B, 3, T, H, W) ImageNet-normalised, as `l4p.api` feeds the encoder."""
    mean = rgb_btchw.new_tensor(IMAGENET_MEAN)[:, None, None]
    std = rgb_btchw.new_tensor(IMAGENET_STD)[:, None, None]
    return rearrange((rgb_btchw - mean) / std, "b t c h w -> b c t h w")


def forward_windows(
    model: L4P,
    rgb_btchw: torch.Tensor,
    *,
    tasks: Collection[str],
    window: int,
    stride: int,
    queries_bn3: torch.Tensor | None = None,
    window_batch_size: int = 4,
) -> WindowedOutputs:
    """Run the network over every window of a clip, keeping the autograd graph.

    Args:
        model: The network.
        rgb_btchw: (B, T, 3, H, W) rgb in [0, 1]; H, W multiples of the patch size.
        tasks: Tasks to run (heads the model has).
        window: Frames per window (a multiple of the tubelet).
        stride: Frames between windows (a multiple of the tubelet, < window unless one window).
        queries_bn3: (B, N, 3) (t, x, y) query frame index and pixel (integer = centre),
            needed for "tracks".
        window_batch_size: Windows encoded together (stacked along the batch axis).
    """
    b, num_frames = rgb_btchw.shape[:2]
    starts = window_starts(num_frames, window=window, stride=stride)
    video = normalise_video(rgb_btchw)
    dense_tasks = [t for t in tasks if t in DENSE_TASKS]
    want_tracks = "tracks" in tasks
    dense: list[DenseOutputs] = []
    finals: list[torch.Tensor] = []
    grid = (0, 0, 0)
    for g0 in range(0, len(starts), window_batch_size):
        group = starts[g0 : g0 + window_batch_size]
        clips = torch.cat([video[:, :, s : s + window] for s in group])
        feats = model.encode(clips, tasks=tasks)
        grid = feats.grid
        out = model.decode_dense(feats, tasks=dense_tasks)
        for i in range(len(group)):
            part = slice(i * b, (i + 1) * b)
            dense.append(DenseOutputs(**{k: None if v is None else v[part] for k, v in vars(out).items()}))
            if feats.final is not None:
                finals.append(feats.final[part])
    tracks = None
    if want_tracks:
        if queries_bn3 is None or model.tracker is None:
            raise ValueError("tracking needs queries and a model with a tracking head")
        head_queries = queries_bn3.float() + 0.5  # frame/pixel centre = +0.5 in the head
        tracks = run_windows(
            model.tracker, finals, head_queries, window_starts=starts, num_frames=num_frames, grid_thw=grid
        )
    return WindowedOutputs(starts=starts, window=window, grid=grid, dense=dense, tracks=tracks, tokens=finals)
