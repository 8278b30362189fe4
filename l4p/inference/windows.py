"""Temporal padding, window placement and dense stitching for long videos."""

from __future__ import annotations

import torch


def mirror_indices(num_frames: int, target: int) -> torch.Tensor:
    """Frame indices that extend a video of `num_frames` to `target` by mirroring its end.

    The sequence bounces back and forth (0..T-1, T-2..0, 1..) so that any length works,
    also T = 1 (the frame repeats). Returns a LongTensor of length `target`.
    """
    if num_frames == 1:
        return torch.zeros(target, dtype=torch.long)
    period = 2 * (num_frames - 1)
    i = torch.arange(target) % period
    return torch.where(i < num_frames, i, period - i)


def padded_length(num_frames: int, *, window: int, stride: int) -> int:
    """Smallest length >= num_frames that is >= window and tiles into windows of `stride`."""
    if num_frames <= window:
        return window
    return window + -(-(num_frames - window) // stride) * stride


def window_starts(num_frames: int, *, window: int, stride: int) -> list[int]:
    """Start frames of the windows covering a (padded) video: 0, stride, ..., T - window."""
    if num_frames < window or (num_frames - window) % stride:
        raise ValueError(
            f"{num_frames} frames do not tile into windows of {window} with stride {stride}; pad first"
        )
    return list(range(0, num_frames - window + 1, stride))


def stitch_dense(
    buffer: torch.Tensor, window_out: torch.Tensor, *, start: int, keep_first: bool = False
) -> None:
    """Write a window's dense output into the full-video buffer, overwriting the overlap.

    Args:
        buffer: (B, T, ...) full-video buffer, written in place.
        window_out: (B, t, ...) this window's output.
        start: First frame of the window.
        keep_first: Leave the buffer's value at `start` (used for backward flow, whose
            first frame in a window has no previous frame to look at).
    """
    offset = 1 if keep_first and start > 0 else 0
    buffer[:, start + offset : start + window_out.shape[1]] = window_out[:, offset:]
