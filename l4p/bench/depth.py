"""Video depth with the DepthCrafter protocol: Sintel, ScanNet, KITTI, Bonn, NYUv2.

Protocol (``l4p.metrics.video_depth_metrics``, which matches DepthCrafter's ``eval.py``): the
model sees the first ``seq_len`` frames (Sintel 50, ScanNet 90, KITTI 110, Bonn 110, NYUv2 1);
its relative depth becomes disparity 1/depth; the prediction is resized to the GT resolution
(bilinear); one least-squares scale and shift in disparity over every valid pixel of the whole
video (valid: 1e-3 < D < d_max, d_max = Sintel 70, KITTI 80, others 10); AbsRel and δ1 < 1.25 per
frame, mean over frames, then mean over videos. NYUv2: the paper feeds one frame repeated 16
times (``--set repeat=16``, the default) and the first frame is scored.

Layouts read (``--data ROOT``), tried in this order:

- a DepthCrafter benchmark CSV (``filepath_left,filepath_disparity``; ``--set csv=FILE``, or the
  only ``*.csv`` in ROOT), paths relative to ROOT (see ``l4p.data.formats.depth_video``);
- the raw dataset: ``depth-sintel``: Sintel ``training/`` with ``clean/`` and ``depth/``
  (``--set depth_root=...`` for the separate depth package, ``--set pass=final``);
  ``depth-scannet``: ``<scene>/color|depth``; ``depth-bonn``: ``<seq>/rgb|depth``;
  ``depth-kitti``: ``--set depth_root=`` (default ROOT/data_depth_annotated/val) and
  ``--set raw_root=`` (default ROOT/raw_data); ``depth-nyuv2``: ``--set list=`` (default
  ROOT/filename_list_test.txt) naming ``<image> <depth> <filled depth>`` per line.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from functools import partial
from pathlib import Path

import numpy as np

from l4p.bench.io import fmt, markdown_table
from l4p.bench.runner import BenchContext, Item, finish, run_items
from l4p.data.formats.depth_video import (
    DepthVideo,
    LazyVideo,
    list_bonn,
    list_depthcrafter_csv,
    list_kitti_depth,
    list_nyu,
    list_scannet,
)
from l4p.metrics import DEPTHCRAFTER_PROTOCOLS, VideoDepthScores, mean_over_sequences, video_depth_metrics

logger = logging.getLogger(__name__)

DATASETS = {"sintel": "sintel", "scannet": "scannet", "kitti": "kitti", "bonn": "bonn", "nyuv2": "nyu"}


def _sintel(ctx: BenchContext) -> list[LazyVideo]:
    from l4p.data.formats.sintel import SintelSequence

    root = ctx.data / "training" if (ctx.data / "training").is_dir() else ctx.data
    depth_root = Path(ctx.option("depth_root", str(root)))
    render_pass = ctx.option("pass", "clean")

    def load(name: str) -> DepthVideo:
        seq = SintelSequence(root, name, render_pass=render_pass, depth_root=depth_root)  # type: ignore[arg-type]
        return DepthVideo(name, seq.frames(), np.stack([seq.depth(i) for i in range(len(seq))]))

    names = sorted(p.name for p in (root / render_pass).iterdir() if p.is_dir())
    return [(n, partial(load, n)) for n in names]


def list_videos(ctx: BenchContext, dataset: str) -> list[LazyVideo]:
    """The dataset's videos: a DepthCrafter CSV when there is one, else the raw layout."""
    csvs = [Path(ctx.options["csv"])] if "csv" in ctx.options else sorted(ctx.data.glob("*.csv"))
    if len(csvs) == 1:
        logger.info("reading the DepthCrafter CSV %s", csvs[0])
        return list_depthcrafter_csv(csvs[0], ctx.data)
    if len(csvs) > 1:
        raise ValueError(f"{ctx.data} holds several CSVs; choose one with --set csv=FILE")
    if dataset == "sintel":
        return _sintel(ctx)
    if dataset == "scannet":
        return list_scannet(ctx.data)
    if dataset == "bonn":
        return list_bonn(ctx.data)
    if dataset == "kitti":
        depth_root = ctx.option("depth_root", str(ctx.data / "data_depth_annotated" / "val"))
        return list_kitti_depth(depth_root, ctx.option("raw_root", str(ctx.data / "raw_data")))
    return list_nyu(ctx.data, ctx.option("list", str(ctx.data / "filename_list_test.txt")))


def predict_disparity(ctx: BenchContext, video: DepthVideo, seq_len: int, repeat: int) -> np.ndarray:
    """(L, h, w) float32 relative disparity of the first ``seq_len`` frames."""
    frames = video.frames[:seq_len]
    if repeat > 1 and len(frames) == 1:
        frames = np.repeat(frames, repeat, axis=0)
    pred = ctx.predictor().predict(np.ascontiguousarray(frames), tasks=("depth",))
    depth = pred.depth[0].float().numpy()[: min(seq_len, len(video.frames))]
    return (1.0 / np.clip(depth, 1e-6, None)).astype(np.float32)


def make_protocol(dataset: str):
    """The run function of ``depth-<dataset>``."""
    seq_len, max_depth = DEPTHCRAFTER_PROTOCOLS[DATASETS[dataset]]
    name = f"depth-{dataset}"

    def run(ctx: BenchContext) -> dict:
        videos = dict(list_videos(ctx, dataset))
        repeat = int(ctx.option("repeat", "16" if dataset == "nyuv2" else "1"))

        def evaluate(item: Item, ctx: BenchContext) -> dict:
            video = videos[item.name]()
            start = time.perf_counter()
            disparity = predict_disparity(ctx, video, seq_len, repeat)
            seconds = time.perf_counter() - start
            scores = video_depth_metrics(
                pred_disparity=disparity, gt_depth=video.depth, max_depth=max_depth, seq_len=seq_len
            )
            return {**dataclasses.asdict(scores), "predict_seconds": seconds}

        records = run_items(ctx, name, [Item(n) for n in videos], evaluate)
        fields = {f.name for f in dataclasses.fields(VideoDepthScores)}
        scores = {
            n: VideoDepthScores(**{k: v for k, v in r.items() if k in fields}) for n, r in records.items()
        }
        mean = mean_over_sequences(scores)
        rows = [
            [n, s.num_frames, fmt(s.abs_rel, 1, 3), fmt(s.delta1, 100), fmt(s.rmse, 1, 3)]
            for n, s in scores.items()
        ]
        rows.append(
            ["**mean**", "", fmt(mean["abs_rel"], 1, 3), fmt(mean["delta1"], 100), fmt(mean["rmse"], 1, 3)]
        )
        table = markdown_table(["sequence", "frames", "AbsRel", "δ1 %", "RMSE"], rows)
        return finish(ctx, name, records, mean, table, title=f"Video depth, {dataset} (DepthCrafter protocol)",
                      extra={"seq_len": seq_len, "max_depth": max_depth})  # fmt: skip

    return run
