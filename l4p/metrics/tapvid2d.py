"""TAP-Vid (2D point tracking) metrics: AJ, δ_avg (< δ px) and OA.

Follows ``compute_tapvid_metrics`` of the official TAP-Vid evaluation (tapnet) to the bit:
coordinates are raster pixels of a **256x256** video (the datasets store x, y in [0, 1]; the
loaders resize frames to 256x256 and multiply by (W, H) = (256, 256), with no half-pixel shift);
a point is "within δ" when its squared distance is strictly below δ², δ ∈ {1, 2, 4, 8, 16}.

Which frames count depends on how the queries were sampled:
- ``"first"``: queries are each track's first visible point; only frames **after** the query
  frame are evaluated (everything before it is known to be occluded).
- ``"strided"``: queries every 5th frame; every frame **except** the query frame is evaluated.

Benchmark numbers: the score of each video, then the plain mean over videos (``mean_over``),
reported ×100.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from l4p.metrics._tap_common import THRESHOLDS_PX, mean_over, tap_scores

__all__ = [
    "compute_tapvid2d_metrics",
    "mean_over",
    "normalized_to_raster",
    "pixels_to_raster",
    "raster_to_pixels",
    "sample_queries_first",
    "sample_queries_strided",
]

QueryMode = Literal["first", "strided"]


def evaluation_mask(*, query_frames: np.ndarray, num_frames: int, query_mode: QueryMode) -> np.ndarray:
    """Frames scored for each query.

    Args:
        query_frames: Query frame indices, any shape ``S`` (floats are rounded half to even,
            as ``np.round`` does in the official code).
        num_frames: T.
        query_mode: ``"first"`` (frames after the query) or ``"strided"`` (all but the query).

    Returns:
        Bool array of shape ``S + (T,)``.
    """
    eye = np.eye(num_frames, dtype=np.int32)
    if query_mode == "first":
        table = np.cumsum(eye, axis=1) - eye
    elif query_mode == "strided":
        table = 1 - eye
    else:
        raise ValueError(f"unknown query_mode {query_mode!r}; expected 'first' or 'strided'")
    return table[np.round(query_frames).astype(np.int32)] > 0


def compute_tapvid2d_metrics(
    *,
    query_points: np.ndarray,
    gt_occluded: np.ndarray,
    gt_tracks: np.ndarray,
    pred_occluded: np.ndarray,
    pred_tracks: np.ndarray,
    query_mode: QueryMode,
    trackwise: bool = False,
) -> dict[str, np.ndarray]:
    """TAP-Vid metrics for a batch of videos (each video scored separately).

    Layouts are the official ones: batch first, tracks before frames.

    Args:
        query_points: (B, N, 3) queries as **(t, y, x)**; t a frame index.
        gt_occluded: (B, N, T) bool, True = occluded.
        gt_tracks: (B, N, T, 2) as **(x, y)** raster pixels at 256x256.
        pred_occluded: (B, N, T) bool, True = predicted occluded.
        pred_tracks: (B, N, T, 2) as (x, y), same pixels.
        query_mode: ``"first"`` or ``"strided"`` (see the module docstring).
        trackwise: If True, scores per track, shape (B, N), instead of per video, (B,).

    Returns:
        Dict with ``occlusion_accuracy``, ``pts_within_{1,2,4,8,16}``, ``jaccard_{...}``,
        ``average_jaccard`` (AJ) and ``average_pts_within_thresh`` (δ_avg); values in [0, 1],
        float64 arrays of shape (B,) or (B, N).
    """
    if gt_tracks.ndim != 4 or gt_tracks.shape[-1] != 2:
        raise ValueError(f"gt_tracks must be (B, N, T, 2), got {gt_tracks.shape}")
    if pred_tracks.shape != gt_tracks.shape:
        raise ValueError(f"pred_tracks {pred_tracks.shape} != gt_tracks {gt_tracks.shape}")
    if gt_occluded.shape != gt_tracks.shape[:3] or pred_occluded.shape != gt_occluded.shape:
        raise ValueError("occlusion arrays must be (B, N, T) matching the tracks")
    evaluated = evaluation_mask(
        query_frames=query_points[..., 0], num_frames=gt_tracks.shape[2], query_mode=query_mode
    )
    sq_dist = np.sum(np.square(pred_tracks - gt_tracks), axis=-1)
    within = [sq_dist < np.square(delta) for delta in THRESHOLDS_PX]
    return tap_scores(
        within=within,
        gt_occluded=gt_occluded,
        pred_occluded=pred_occluded,
        weights=evaluated,
        axis=(2,) if trackwise else (1, 2),
    )


def normalized_to_raster(*, points_xy: np.ndarray, width: int = 256, height: int = 256) -> np.ndarray:
    """Scale points stored in [0, 1] to raster pixels, ``(x·W, y·H)``, as the TAP-Vid loaders do.

    Args:
        points_xy: (..., 2) as (x, y) in [0, 1].
        width: Frame width after resizing (256 for the benchmark).
        height: Frame height after resizing (256).

    Returns:
        (..., 2) float64 pixels.
    """
    return points_xy * np.array([width, height])


def pixels_to_raster(
    *, points_xy: np.ndarray, height: int, width: int, resolution: tuple[int, int] = (256, 256)
) -> np.ndarray:
    """Library pixel coordinates → TAP-Vid raster coordinates of the evaluation resolution.

    The library puts integer coordinates at pixel **centres**; tapnet's raster coordinates put
    (0, 0) at the upper-left **corner** of the upper-left pixel (tapnet README, "A Note on
    Coordinates"). So ``x_raster = (x + 0.5) · W_eval / W`` and likewise for y.

    Args:
        points_xy: (..., 2) as (x, y) in pixels of an H x W video, integer = pixel centre.
        height: H of the video the points refer to.
        width: W.
        resolution: (H_eval, W_eval), (256, 256) for the benchmark.

    Returns:
        (..., 2) float64 raster coordinates.
    """
    scale = np.array([resolution[1] / width, resolution[0] / height])
    return (np.asarray(points_xy, dtype=np.float64) + 0.5) * scale


def raster_to_pixels(
    *, points_xy: np.ndarray, height: int, width: int, resolution: tuple[int, int] = (256, 256)
) -> np.ndarray:
    """Inverse of ``pixels_to_raster``: raster coordinates at ``resolution`` → H x W pixel centres."""
    scale = np.array([resolution[1] / width, resolution[0] / height])
    return np.asarray(points_xy, dtype=np.float64) / scale - 0.5


def sample_queries_first(
    *, occluded: np.ndarray, points_xy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Query each track at its first visible frame ("first" mode); never-visible tracks are dropped.

    Args:
        occluded: (N, T) bool, True = occluded.
        points_xy: (N, T, 2) track positions as (x, y).

    Returns:
        ``(query_points (1, M, 3) as (t, y, x), points_xy (1, M, T, 2), occluded (1, M, T))``,
        M ≤ N the number of tracks visible at least once, in their original order.
    """
    keep = np.sum(np.logical_not(occluded), axis=1) > 0
    points_xy, occluded = points_xy[keep], occluded[keep]
    first = np.argmax(np.logical_not(occluded), axis=1)
    rows = np.arange(points_xy.shape[0])
    xy = points_xy[rows, first]
    queries = np.stack([first, xy[:, 1], xy[:, 0]], axis=-1).astype(np.float64)
    return queries[None], points_xy[None], occluded[None]


def sample_queries_strided(
    *, occluded: np.ndarray, points_xy: np.ndarray, stride: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Query every track at every ``stride``-th frame where it is visible ("strided" mode).

    A track visible at frames 0, 5 and 10 yields three queries, each with a copy of the track.

    Args:
        occluded: (N, T) bool, True = occluded.
        points_xy: (N, T, 2) as (x, y).
        stride: Query every this many frames, starting at frame 0.

    Returns:
        ``(query_points (1, M, 3) as (t, y, x), points_xy (1, M, T, 2), occluded (1, M, T),
        track_group (1, M))``; queries are grouped by frame (all of frame 0 first), and
        ``track_group`` is the index of the source track.
    """
    queries, tracks, occs, groups = [], [], [], []
    for t in range(0, occluded.shape[1], stride):
        mask = np.logical_not(occluded[:, t])
        q = np.stack([np.full(occluded.shape[0], float(t)), points_xy[:, t, 1], points_xy[:, t, 0]], axis=-1)
        queries.append(q[mask])
        tracks.append(points_xy[mask])
        occs.append(occluded[mask])
        groups.append(np.arange(occluded.shape[0])[mask])
    return (
        np.concatenate(queries)[None],
        np.concatenate(tracks)[None],
        np.concatenate(occs)[None],
        np.concatenate(groups)[None],
    )
