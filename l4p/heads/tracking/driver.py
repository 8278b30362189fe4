"""Track queries through a whole video window by window, stitching full-length outputs.

The buffers start as placeholders (traj 0, vis -10, depth 0, as the released code); a window
writes its estimates only at frames at or after each query's frame, so frames before a query
keep the placeholders and a later window overwrites the overlap. Everything is out of place,
so the whole driver is differentiable (except the discrete re-seeding choice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from l4p.heads.tracking.head import TrackingHead, TrackWindowOutput
from l4p.heads.tracking.memory import TrackMemory, WindowInputs, init_memory, update_memory, window_inputs

TRAJ_PLACEHOLDER = 0.0
VIS_PLACEHOLDER = -10.0
DEPTH_PLACEHOLDER = 0.0


@dataclass
class WindowRecord:
    """One window's head inputs and raw outputs, kept by `run_windows` for inspection.

    Attributes:
        start: First frame of the window.
        queries: (B, N, 3) the head's queries, t counted from the window start.
        point_labels: (B, N) the head's point labels.
        track_feature_labels: (B, N) the head's track-feature labels.
        traj: (B, N, T_win, 2) raw window positions, every frame (valid or not).
        vis: (B, N, T_win) raw visibility logits.
        depth: (B, N, T_win) raw depth.
        xy_logits: (B, N, T_win, H', W') position logits before the resize to the window.
    """

    start: int
    queries: torch.Tensor
    point_labels: torch.Tensor
    track_feature_labels: torch.Tensor
    traj: torch.Tensor
    vis: torch.Tensor
    depth: torch.Tensor
    xy_logits: torch.Tensor


@dataclass
class TrackingResult:
    """Tracks over a whole video (placeholders 0 / -10 / 0 before each query's frame).

    Attributes:
        traj: (B, N, T, 2) positions (x, y), +0.5 = pixel centre.
        vis: (B, N, T) visibility logits.
        depth: (B, N, T) depth (not aligned across windows).
        windows: Per-window records.
    """

    traj: torch.Tensor
    vis: torch.Tensor
    depth: torch.Tensor
    windows: list[WindowRecord] = field(default_factory=list)


def stitch_window(
    result: TrackingResult, output: TrackWindowOutput, valid_bnt: torch.Tensor, window_start: int
) -> TrackingResult:
    """Write one window's estimates into the full-video buffers at its valid frames.

    Out of place (so gradients flow through the stitched buffers, e.g. for training).

    Args:
        result: Full-video buffers so far.
        output: The window's outputs.
        valid_bnt: (B, N, T_win) frames at or after each query's frame.
        window_start: First frame of the window.

    Returns:
        New buffers (the records list is shared with `result`).
    """
    num_frames, window_len = result.vis.shape[-1], valid_bnt.shape[-1]
    before, after = window_start, num_frames - window_start - window_len
    write = valid_bnt.new_zeros(result.vis.shape)
    write[..., window_start : window_start + window_len] = valid_bnt
    traj = F.pad(output.traj.to(result.traj), (0, 0, before, after))
    return TrackingResult(
        traj=torch.where(write[..., None], traj, result.traj),
        vis=torch.where(write, F.pad(output.vis.to(result.vis), (before, after)), result.vis),
        depth=torch.where(write, F.pad(output.depth.to(result.depth), (before, after)), result.depth),
        windows=result.windows,
    )


def track_window(
    head: TrackingHead,
    tokens: torch.Tensor,
    memory: TrackMemory,
    *,
    start: int,
    window_len: int,
    grid_thw: tuple[int, int, int],
) -> tuple[WindowInputs, TrackWindowOutput]:
    """Run the head on one window with the carried memory (the step `run_windows` repeats).

    Args:
        head: The tracking head.
        tokens: (B, P, C) final-normed encoder tokens of the window.
        memory: Memory carried from the previous window (`init_memory` for the first).
        start: First frame of the window.
        window_len: Frames per window.
        grid_thw: Token grid of the window.

    Returns:
        The head's inputs (with `valid`) and its outputs.
    """
    inputs = window_inputs(memory, start, window_len)
    out = head(
        tokens,
        grid_thw=grid_thw,
        queries_bn3=inputs.queries,
        point_labels_bn=inputs.point_labels,
        track_features_bnc=inputs.track_features,
        track_feature_labels_bn=inputs.track_feature_labels,
        history_bnpc=inputs.history,
    )
    return inputs, out


def window_record(start: int, inputs: WindowInputs, out: TrackWindowOutput) -> WindowRecord:
    """What `run_windows` keeps of one window."""
    return WindowRecord(
        start=start,
        queries=inputs.queries,
        point_labels=inputs.point_labels,
        track_feature_labels=inputs.track_feature_labels,
        traj=out.traj,
        vis=out.vis,
        depth=out.depth,
        xy_logits=out.xy_logits,
    )


def run_windows(
    head: TrackingHead,
    tokens_per_window: Sequence[torch.Tensor],
    queries_bn3: torch.Tensor,
    point_labels_bn: torch.Tensor | None = None,
    *,
    window_starts: Sequence[int],
    num_frames: int,
    grid_thw: tuple[int, int, int] | None = None,
) -> TrackingResult:
    """Track queries through consecutive windows and stitch the results.

    Args:
        head: The tracking head.
        tokens_per_window: Per window, (B, P, C) final-normed encoder tokens.
        queries_bn3: (B, N, 3) (t, x, y) continuous convention (frame k spans [k, k+1), pixel
            column i spans [i, i+1)), absolute time. The buffers take its dtype.
        point_labels_bn: (B, N) user labels; ones if omitted.
        window_starts: First frame of every window, increasing, the first 0; consecutive
            windows must overlap by a multiple of the tubelet size.
        num_frames: T, the video length; every window must fit in it.
        grid_thw: Token grid of every window; the head's default if omitted.

    Returns:
        Full-length tracks and a record of every window.
    """
    grid = head.default_grid if grid_thw is None else grid_thw
    window_len = head.window_size_for(grid)[0]
    if len(tokens_per_window) != len(window_starts) or window_starts[-1] + window_len > num_frames:
        raise ValueError("need one token tensor per window, and every window inside the video")
    if point_labels_bn is None:
        point_labels_bn = queries_bn3.new_ones(queries_bn3.shape[:2])
    b, n = queries_bn3.shape[:2]
    result = TrackingResult(
        traj=queries_bn3.new_full((b, n, num_frames, 2), TRAJ_PLACEHOLDER),
        vis=queries_bn3.new_full((b, n, num_frames), VIS_PLACEHOLDER),
        depth=queries_bn3.new_full((b, n, num_frames), DEPTH_PLACEHOLDER),
    )
    num_tokens = grid[0] * grid[1] * grid[2]
    memory = init_memory(
        queries_bn3, point_labels_bn, mask_token_c=head.history_mask(), num_tokens=num_tokens
    )
    for w, (start, tokens) in enumerate(zip(window_starts, tokens_per_window)):
        inputs, out = track_window(head, tokens, memory, start=start, window_len=window_len, grid_thw=grid)
        result = stitch_window(result, out, inputs.valid, start)
        result.windows.append(window_record(start, inputs, out))
        if w + 1 < len(window_starts):
            memory = update_memory(
                memory,
                head=head,
                inputs=inputs,
                output=out,
                traj_bnt2=result.traj,
                vis_bnt=result.vis,
                window_start=start,
                next_start=window_starts[w + 1],
                grid_thw=grid,
            )
    return result
