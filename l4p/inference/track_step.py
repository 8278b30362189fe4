"""One window of the tracking head with the carried memory, for a stream of windows.

Unlike `l4p.heads.tracking.driver.run_windows` (which keeps full-video buffers, for
training), this keeps only the current window's stitched tracks: frames before the next
window's start are final once the window ran. The arithmetic is the driver's: estimates are
written at frames at or after each query's frame, placeholders (0 / -10 / 0) elsewhere, and a
later window overwrites the overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from l4p.heads.tracking.driver import (
    DEPTH_PLACEHOLDER,
    TRAJ_PLACEHOLDER,
    VIS_PLACEHOLDER,
    WindowRecord,
    track_window,
    window_record,
)
from l4p.heads.tracking.memory import TrackMemory, update_memory

TRACK_FIELDS = ("track_traj", "track_vis", "track_depth")


@dataclass
class TrackStep:
    """The stitched tracks of one window and the memory for the next.

    Attributes:
        values: "track_traj" (B, N, t, 2), "track_vis" (B, N, t), "track_depth" (B, N, t).
        memory: Memory for the window starting `stride` frames later.
        record: What `run_windows` would record of this window (when asked for).
    """

    values: dict[str, torch.Tensor]
    memory: TrackMemory
    record: WindowRecord | None


def track_step(
    head,
    tokens: torch.Tensor,
    memory: TrackMemory,
    *,
    start: int,
    window_len: int,
    stride: int,
    grid_thw: tuple[int, int, int],
    tail: dict[str, torch.Tensor],
    keep_record: bool = False,
) -> TrackStep:
    """Run the head on one window and stitch it onto the overlap `tail`.

    Args:
        head: The tracking head (`L4P.tracker`).
        tokens: (B, P, C) final encoder tokens of the window.
        memory: Memory carried from the previous window.
        start: First frame of the window.
        window_len: Frames per window.
        stride: Frames to the next window.
        grid_thw: Token grid of the window.
        tail: Stitched track values of the overlap (the window's first frames), or empty.
        keep_record: Return the window's `WindowRecord` (for `run_model`).
    """
    inputs, out = track_window(head, tokens, memory, start=start, window_len=window_len, grid_thw=grid_thw)
    q = memory.queries
    b, n = q.shape[:2]
    buffers = {
        "track_traj": q.new_full((b, n, window_len, 2), TRAJ_PLACEHOLDER),
        "track_vis": q.new_full((b, n, window_len), VIS_PLACEHOLDER),
        "track_depth": q.new_full((b, n, window_len), DEPTH_PLACEHOLDER),
    }
    for name, old in tail.items():
        buffers[name][:, :, : old.shape[2]] = old
    valid = inputs.valid
    values = {
        "track_traj": torch.where(
            valid[..., None], out.traj.to(buffers["track_traj"]), buffers["track_traj"]
        ),
        "track_vis": torch.where(valid, out.vis.to(buffers["track_vis"]), buffers["track_vis"]),
        "track_depth": torch.where(valid, out.depth.to(buffers["track_depth"]), buffers["track_depth"]),
    }
    memory = update_memory(
        memory, head=head, inputs=inputs, output=out, traj_bnt2=values["track_traj"], vis_bnt=values["track_vis"],
        window_start=start, next_start=start + stride, grid_thw=grid_thw, buffer_start=start,
    )  # fmt: skip
    record = window_record(start, inputs, out) if keep_record else None
    return TrackStep(values=values, memory=memory, record=record)
