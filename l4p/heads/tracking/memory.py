"""Cross-window memory of the tracking head (the driver over a video is in `driver.py`).

Windows of T_win frames start at s_0 = 0 < s_1 < ...; each overlaps the next by
T_win - (s_{w+1} - s_w) frames (8 of 16 in the released model). Tracking runs forward in time
only. Per query the memory carries:

* the current query (t, x, y) in absolute continuous time (frame k spans [k, k+1));
* a track feature from the last window where the query was active, with label 1 (0 = none);
* history tokens (P, C) added to the next window's video tokens: the projected decoded tokens
  of the frames shared with the previous window, the history mask token elsewhere (the mask
  token everywhere in the first window).

After each window a query is re-seeded at the overlap frame where its buffered visibility
logit is highest (first on ties): new query = (frame + 0.5, x, y) if that is strictly later.
All steps are vectorised over batch and queries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from einops import rearrange

from l4p.heads.tracking.head import TrackingHead, TrackWindowOutput


@dataclass
class TrackMemory:
    """Tracking state carried from one window to the next.

    Attributes:
        user_queries: (B, N, 3) the queries as given, absolute (t, x, y).
        user_labels: (B, N) the labels as given (the released demo passes ones).
        queries: (B, N, 3) current (possibly re-seeded) queries, absolute time.
        track_features: (B, N, C) carried track features, zeros where none.
        track_feature_labels: (B, N) long, 1 where a feature is carried.
        history: (B, N, P, C) history tokens for the next window.
    """

    user_queries: torch.Tensor
    user_labels: torch.Tensor
    queries: torch.Tensor
    track_features: torch.Tensor
    track_feature_labels: torch.Tensor
    history: torch.Tensor


@dataclass
class WindowInputs:
    """What the head receives for one window, plus which frames each query covers.

    Attributes:
        queries: (B, N, 3) queries with t counted from the window start.
        point_labels: (B, N) 0 inactive, 1 still the user's query, 2 re-seeded.
        track_features: (B, N, C).
        track_feature_labels: (B, N).
        history: (B, N, P, C).
        valid: (B, N, T_win) bool, frames at or after each query's frame.
    """

    queries: torch.Tensor
    point_labels: torch.Tensor
    track_features: torch.Tensor
    track_feature_labels: torch.Tensor
    history: torch.Tensor
    valid: torch.Tensor


def init_memory(
    queries_bn3: torch.Tensor, point_labels_bn: torch.Tensor, *, mask_token_c: torch.Tensor, num_tokens: int
) -> TrackMemory:
    """Memory before the first window: no features, history = mask token everywhere.

    Args:
        queries_bn3: (B, N, 3) user queries (t, x, y), continuous convention, absolute time.
        point_labels_bn: (B, N) user labels (ones for ordinary queries).
        mask_token_c: (C,) history mask token (`TrackingHead.history_mask()`).
        num_tokens: P, video tokens per window.
    """
    b, n = queries_bn3.shape[:2]
    dim = mask_token_c.shape[-1]
    return TrackMemory(
        user_queries=queries_bn3,
        user_labels=point_labels_bn,
        queries=queries_bn3,
        track_features=mask_token_c.new_zeros(b, n, dim),
        track_feature_labels=torch.zeros(b, n, dtype=torch.long, device=queries_bn3.device),
        history=mask_token_c.expand(b, n, num_tokens, dim),
    )


def frame_validity(queries_bn3: torch.Tensor, window_start: int, window_len: int) -> torch.Tensor:
    """(B, N, window_len) bool: frame s + k is estimated iff s + k + 0.5 >= t_query."""
    frames = torch.arange(window_len, device=queries_bn3.device, dtype=queries_bn3.dtype)
    return (window_start + frames + 0.5) >= queries_bn3[..., 0:1]


def window_inputs(memory: TrackMemory, window_start: int, window_len: int) -> WindowInputs:
    """The head's inputs for the window starting at frame `window_start`.

    Labels follow the released code: a query that still equals the user's query in *any*
    coordinate keeps the user's label (a quirk of the released comparison, kept for parity),
    an active re-seeded query gets 2 and an inactive one 0.
    """
    valid = frame_validity(memory.queries, window_start, window_len)
    active = valid.any(-1)
    matched = (memory.queries == memory.user_queries).any(-1)
    labels = torch.where(matched, memory.user_labels, torch.where(active, 2, 0).to(memory.user_labels))
    shift = memory.queries.new_tensor([window_start, 0.0, 0.0])
    return WindowInputs(
        queries=memory.queries - shift,
        point_labels=labels,
        track_features=memory.track_features,
        track_feature_labels=memory.track_feature_labels,
        history=memory.history,
        valid=valid,
    )


def next_history(
    head: TrackingHead, decoded_bnpc: torch.Tensor, *, grid_thw: tuple[int, int, int], shift_tokens: int
) -> torch.Tensor:
    """History tokens for the next window from this window's decoded tokens.

    The token frames [shift, t) of this window are frames [0, t - shift) of the next one: their
    projected decoded tokens are carried over, the remaining token frames get the mask token.
    """
    t, h, w = grid_thw
    decoded = rearrange(decoded_bnpc, "b n (t hw) c -> b n t hw c", t=t)
    carried = head.history_from_decoded(decoded[:, :, shift_tokens:])
    mask = head.history_mask().to(carried).expand(*carried.shape[:2], shift_tokens, h * w, -1)
    return rearrange(torch.cat([carried, mask], dim=2), "b n t hw c -> b n (t hw) c")


def reseed_queries(
    queries_bn3: torch.Tensor,
    traj_bnt2: torch.Tensor,
    vis_bnt: torch.Tensor,
    *,
    start: int,
    stop: int,
    buffer_start: int = 0,
) -> torch.Tensor:
    """Move each query to its most visible buffered frame in [start, stop) if that is later.

    Args:
        queries_bn3: (B, N, 3) current queries, absolute time.
        traj_bnt2: (B, N, T, 2) stitched positions over the whole video.
        vis_bnt: (B, N, T) stitched visibility logits (placeholders before each query).
        start: First overlap frame (the next window's start).
        stop: End of the overlap (this window's end), exclusive.
        buffer_start: Absolute frame of the buffers' first entry (a streaming caller keeps
            only the last window's frames).

    Returns:
        (B, N, 3) the new queries.
    """
    lo, hi = start - buffer_start, stop - buffer_start
    local = vis_bnt[:, :, lo:hi].argmax(-1) + lo  # first maximum on ties
    best = local + buffer_start
    xy = torch.gather(traj_bnt2, 2, local[:, :, None, None].expand(-1, -1, 1, 2))[:, :, 0]
    t_new = (best + 0.5).to(queries_bn3.dtype)
    candidate = torch.cat([t_new[..., None], xy.to(queries_bn3.dtype)], dim=-1)
    later = (t_new > queries_bn3[..., 0])[..., None]
    return torch.where(later, candidate, queries_bn3)


def update_memory(
    memory: TrackMemory,
    *,
    head: TrackingHead,
    inputs: WindowInputs,
    output: TrackWindowOutput,
    traj_bnt2: torch.Tensor,
    vis_bnt: torch.Tensor,
    window_start: int,
    next_start: int,
    grid_thw: tuple[int, int, int],
    buffer_start: int = 0,
) -> TrackMemory:
    """Memory for the window starting at `next_start`, after stitching this window's outputs.

    Args:
        memory: Memory this window was run with.
        head: The tracking head (for the history projection and mask token).
        inputs: This window's inputs (for `valid`).
        output: This window's outputs.
        traj_bnt2: (B, N, T, 2) stitched positions, this window included.
        vis_bnt: (B, N, T) stitched visibility logits, this window included.
        window_start: This window's first frame.
        next_start: Next window's first frame; the stride must be a positive multiple of the
            tubelet size smaller than the window.
        grid_thw: This window's token grid.
        buffer_start: Absolute frame of the first entry of `traj_bnt2` and `vis_bnt`.
    """
    window_len = inputs.valid.shape[-1]
    stride = next_start - window_start
    tubelet = window_len // grid_thw[0]
    if not 0 < stride < window_len or stride % tubelet:
        raise ValueError(f"stride {stride} must be a multiple of {tubelet} in (0, {window_len})")
    active = inputs.valid.any(-1)
    return replace(
        memory,
        queries=reseed_queries(
            memory.queries,
            traj_bnt2,
            vis_bnt,
            start=next_start,
            stop=window_start + window_len,
            buffer_start=buffer_start,
        ),
        track_features=torch.where(active[..., None], output.track_feature, memory.track_features),
        track_feature_labels=torch.where(active, 1, memory.track_feature_labels),
        history=next_history(head, output.decoded_tokens, grid_thw=grid_thw, shift_tokens=stride // tubelet),
    )
