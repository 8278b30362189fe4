"""TAP-Vid DAVIS and Kinetics: 2D point tracking, query-first and strided (the peers' protocol).

Layout (``--data``): the DAVIS pickle ``tapvid_davis.pkl`` (or its folder), or the Kinetics folder
of ``*_of_*.pkl`` shards (see ``l4p.data.formats.tapvid``).

Protocol (tapnet ``evaluation_datasets.py`` and ``compute_tapvid_metrics``): each video is
resized to 256x256 and the [0, 1] points scaled to 256 raster pixels; queries are sampled from
the GT: ``first`` (each track at its first visible frame) and ``strided`` (every track visible at
frames 0, 5, 10, ...); ``--set modes=first`` runs one. The model tracks the queries on the 256x256
video in both directions (``direction="both"``; strided queries lie mid-video), raster
coordinates converted to and from the library's pixel-centre convention. Metrics per video: AJ,
δ_avg (< δ^x_avg), OA over the evaluated frames (``first``: after the query; ``strided``: all but
the query frame), then the mean over videos. Values are fractions (the tables print ×100).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from l4p.bench.io import fmt, markdown_table
from l4p.bench.runner import BenchContext, Item, finish, run_items
from l4p.data.formats.tapvid import TapVidPickles, resize_video
from l4p.metrics import (
    compute_tapvid2d_metrics,
    mean_over,
    normalized_to_raster,
    pixels_to_raster,
    raster_to_pixels,
    sample_queries_first,
    sample_queries_strided,
)

logger = logging.getLogger(__name__)

SIZE = 256
COLUMNS = (("average_jaccard", "AJ"), ("average_pts_within_thresh", "δ_avg"), ("occlusion_accuracy", "OA"))


def track_queries(
    ctx: BenchContext, frames: np.ndarray, queries_tyx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Track raster queries (M, 3) as (t, y, x) on a 256x256 video.

    Returns:
        ``(tracks (M, T, 2) raster (x, y), occluded (M, T))``.
    """
    xy = raster_to_pixels(points_xy=queries_tyx[:, [2, 1]], height=SIZE, width=SIZE)
    queries = torch.from_numpy(np.concatenate([queries_tyx[:, :1], xy], axis=1).astype(np.float32))
    pred = ctx.predictor().predict(frames, tasks=("tracks",), queries=queries, direction="both")
    tracks = pred.tracks[0].double().numpy().transpose(1, 0, 2)
    tracks = pixels_to_raster(points_xy=np.nan_to_num(tracks, nan=0.0), height=SIZE, width=SIZE)
    return tracks, ~pred.visibility[0].numpy().astype(bool).T


def evaluate_video(
    ctx: BenchContext, frames: np.ndarray, points: np.ndarray, occluded: np.ndarray, mode: str
) -> dict:
    """Metrics of one video and query mode (frames already 256x256, points raster)."""
    if mode == "first":
        queries, gt_tracks, gt_occ = sample_queries_first(occluded=occluded, points_xy=points)
    else:
        queries, gt_tracks, gt_occ, _ = sample_queries_strided(occluded=occluded, points_xy=points)
    if queries.shape[1] == 0:
        return {}
    tracks, pred_occ = track_queries(ctx, frames, queries[0])
    scores = compute_tapvid2d_metrics(query_points=queries, gt_occluded=gt_occ, gt_tracks=gt_tracks,
                                      pred_occluded=pred_occ[None], pred_tracks=tracks[None], query_mode=mode)  # type: ignore[arg-type]  # fmt: skip
    return {k: float(v[0]) for k, v in scores.items()} | {"num_queries": int(queries.shape[1])}


def make_protocol(dataset: str):
    """The run function of ``tapvid-davis`` or ``tapvid-kinetics``."""
    name = f"tapvid-{dataset}"

    def run(ctx: BenchContext) -> dict:
        pickles = TapVidPickles(ctx.data)
        modes = ctx.option("modes", "first,strided").split(",")

        def evaluate(item: Item, ctx: BenchContext) -> dict:
            video = pickles.video(item.name)
            frames = resize_video(video.frames, SIZE)
            points = normalized_to_raster(points_xy=video.points, width=SIZE, height=SIZE)
            start = time.perf_counter()
            out = {m: evaluate_video(ctx, frames, points, video.occluded, m) for m in modes}
            return {**out, "num_frames": len(frames), "predict_seconds": time.perf_counter() - start}

        records = run_items(ctx, name, [Item(n) for n in pickles.names], evaluate)
        scores: dict = {}
        parts = []
        for mode in modes:
            done = {n: r[mode] for n, r in records.items() if r.get(mode)}
            if not done:
                continue
            scores[mode] = mean_over(
                [{k: v for k, v in s.items() if k != "num_queries"} for s in done.values()]
            )
            rows = [[n, s["num_queries"], *(fmt(s[k], 100) for k, _ in COLUMNS)] for n, s in done.items()]
            rows.append(["**mean**", "", *(fmt(scores[mode][k], 100) for k, _ in COLUMNS)])
            parts.append(
                f"## query mode `{mode}` (×100)\n\n"
                + markdown_table(["video", "queries", *(c for _, c in COLUMNS)], rows)
            )
        return finish(ctx, name, records, scores, "\n".join(parts), title=f"TAP-Vid {dataset} (256x256)")

    return run
