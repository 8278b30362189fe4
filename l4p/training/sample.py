"""The training sample: one dict layout shared by every data source, and query selection.

Every source (synthetic scenes, Kubric, PointOdyssey, Dynamic Replica, TartanAir) yields the
same unbatched dict, so that any mixture collates with `torch.utils.data.default_collate`.
Ground truth a source lacks is zero-filled and flagged off by its `has_*` entry.

Keys (T frames, N tracks, H x W pixels; float32 unless noted):

- `rgb_tchw` (T, 3, H, W) in [0, 1].
- `depth_thw` camera-frame z (any consistent unit, 0 where invalid); `depth_valid_thw` bool.
- `flow_bwd_t2hw` (T, 2, H, W) backward flow t -> t-1 in pixels; `flow_bwd_valid_thw` bool
  (frame 0 is never valid).
- `motion_thw` (T, H, W) 1 where the surface point moves in the world, else 0.
- `tracks_tn2` (T, N, 2) positions (x, y) in pixels, integer = pixel centre.
- `tracks3d_tn3` (T, N, 3) track points in camera-t coordinates (z = track depth).
- `visibility_tn` (T, N) bool; `track_valid_n` (N,) bool (False = padding).
- `queries_n3` (N, 3) (t, x, y): query frame index and pixel position (see `choose_queries`).
- `intrinsics_t33` (T, 3, 3) pixels; `extrinsics_t44` (T, 4, 4) world-to-camera, OpenCV axes.
- `has_depth`, `has_flow`, `has_motion`, `has_tracks`, `has_track_depth`, `has_camera`:
  bool scalars.
"""

from __future__ import annotations

from typing import Any

import torch

Sample = dict[str, torch.Tensor]

HAS_KEYS = ("has_depth", "has_flow", "has_motion", "has_tracks", "has_track_depth", "has_camera")


def empty_sample(num_frames: int, height: int, width: int, num_tracks: int) -> Sample:
    """A sample with every field zero-filled and every `has_*` flag False (rgb included)."""
    t, h, w, n = num_frames, height, width, num_tracks
    eye4 = torch.eye(4).expand(t, 4, 4).clone()
    k = torch.tensor([[float(max(h, w)), 0.0, (w - 1) / 2], [0.0, float(max(h, w)), (h - 1) / 2], [0, 0, 1]])
    out: Sample = {
        "rgb_tchw": torch.zeros(t, 3, h, w),
        "depth_thw": torch.zeros(t, h, w),
        "depth_valid_thw": torch.zeros(t, h, w, dtype=torch.bool),
        "flow_bwd_t2hw": torch.zeros(t, 2, h, w),
        "flow_bwd_valid_thw": torch.zeros(t, h, w, dtype=torch.bool),
        "motion_thw": torch.zeros(t, h, w),
        "tracks_tn2": torch.zeros(t, n, 2),
        "tracks3d_tn3": torch.zeros(t, n, 3),
        "visibility_tn": torch.zeros(t, n, dtype=torch.bool),
        "track_valid_n": torch.zeros(n, dtype=torch.bool),
        "queries_n3": torch.zeros(n, 3),
        "intrinsics_t33": k.expand(t, 3, 3).clone(),
        "extrinsics_t44": eye4,
    }
    out.update({key: torch.tensor(False) for key in HAS_KEYS})
    return out


def from_synthetic(item: dict[str, Any]) -> Sample:
    """Convert one `l4p.data.synthetic.SyntheticDataset` item into a training sample."""
    rgb = item["rgb_tchw"].float()
    t, _, h, w = rgb.shape
    n = item["tracks_tn2"].shape[1]
    out = empty_sample(t, h, w, n)
    depth = item["depth_thw"].float()
    out.update(
        rgb_tchw=rgb,
        depth_thw=depth,
        depth_valid_thw=depth > 0,
        flow_bwd_t2hw=item["flow_bwd_t2hw"].float(),
        flow_bwd_valid_thw=item["flow_bwd_valid_thw"].bool(),
        motion_thw=item["motion_thw"].float(),
        tracks_tn2=item["tracks_tn2"].float(),
        tracks3d_tn3=item["tracks3d_cam_tn3"].float(),
        visibility_tn=item["visibility_tn"].bool(),
        track_valid_n=torch.ones(n, dtype=torch.bool),
        queries_n3=item["queries_n3"].float(),
        intrinsics_t33=item["intrinsics_t33"].float(),
        extrinsics_t44=item["extrinsics_t44"].float(),
    )
    out.update({key: torch.tensor(True) for key in HAS_KEYS})
    return out


def in_image(points_tn2: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(T, N) bool: inside [-0.5, W - 0.5] x [-0.5, H - 0.5] (pixel-centre convention)."""
    x, y = points_tn2[..., 0], points_tn2[..., 1]
    return (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)


def choose_queries(
    sample: Sample,
    *,
    generator: torch.Generator,
    max_query_frame: int | None = None,
    first: bool = False,
    first_prob: float = 0.0,
) -> Sample:
    """Pick each track's query frame among its visible frames and set `queries_n3`.

    A track with no visible frame before `max_query_frame` (or that was padding) becomes
    invalid. With `first=True` the earliest visible frame is taken, otherwise a uniformly
    random one (from `generator`).

    Args:
        sample: A training sample (not modified).
        generator: Random source (CPU).
        max_query_frame: Query frames are < this (None: the clip length).
        first: Take the first visible frame instead of a random one.
        first_prob: Otherwise, the share of tracks (each drawn independently) that take their
            first visible frame, as TAP-Vid's "first" evaluation mode queries; at 0 no extra
            random number is drawn, so the sample is the same as before this option existed.

    Returns:
        A new sample with `queries_n3` and `track_valid_n` replaced.
    """
    vis = sample["visibility_tn"].clone()
    t = vis.shape[0]
    limit = t if max_query_frame is None else min(t, max_query_frame)
    vis[limit:] = False
    vis &= sample["track_valid_n"][None]
    valid = vis.any(0)
    if first:
        frame = vis.float().argmax(0)
    else:
        score = torch.rand(vis.shape, generator=generator) + vis.float()  # visible frames score > 1
        frame = score.argmax(0)
        if first_prob > 0:
            take_first = torch.rand(vis.shape[1], generator=generator) < first_prob
            frame = torch.where(take_first, vis.float().argmax(0), frame)
    xy = sample["tracks_tn2"].gather(0, frame[None, :, None].expand(1, -1, 2))[0]
    queries = torch.cat([frame.float()[:, None], xy], dim=-1)
    queries = torch.where(valid[:, None], queries, torch.zeros_like(queries))
    return {**sample, "queries_n3": queries, "track_valid_n": valid}


TRACK_KEYS_TN = ("tracks_tn2", "tracks3d_tn3", "visibility_tn")  # per-track keys, tracks on axis 1
TRACK_KEYS_N = ("queries_n3", "track_valid_n")  # per-track keys, tracks on axis 0


def first_tracks(batch: Sample, num_tracks: int) -> Sample:
    """A collated batch (B, ...) reduced to its first `num_tracks` tracks (other keys shared)."""
    out = dict(batch)
    for key in TRACK_KEYS_TN:
        out[key] = batch[key][:, :, :num_tracks]
    for key in TRACK_KEYS_N:
        out[key] = batch[key][:, :num_tracks]
    return out


def subsample_tracks(sample: Sample, num_tracks: int, *, generator: torch.Generator) -> Sample:
    """Keep `num_tracks` tracks, preferring valid ones (random order), padding with invalid ones."""
    valid = sample["track_valid_n"]
    n = valid.shape[0]
    order = torch.argsort(torch.rand(n, generator=generator) - 2.0 * valid.float())
    keep = order[:num_tracks]
    out = dict(sample)
    for key in TRACK_KEYS_TN:
        out[key] = sample[key][:, keep]
    for key in TRACK_KEYS_N:
        out[key] = sample[key][keep]
    missing = num_tracks - keep.shape[0]
    if missing > 0:
        pad = empty_sample(sample["rgb_tchw"].shape[0], 1, 1, missing)
        for key in TRACK_KEYS_TN:
            out[key] = torch.cat([out[key], pad[key]], dim=1)
        for key in TRACK_KEYS_N:
            out[key] = torch.cat([out[key], pad[key]], dim=0)
    return out
