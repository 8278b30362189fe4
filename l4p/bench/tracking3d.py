"""TAPVid-3D: 3D tracking (``tapvid3d``, Table 4) and its 2D projection (``tapvid3d-2d``, Table 3).

Layout (``--data``): ``<root>/<subset>/<file>.npz`` with the official keys (``images_jpeg_bytes``,
``queries_xyt``, ``tracks_XYZ``, ``visibility``, ``fx_fy_cx_cy``, ``extrinsics_w2c``), subsets
``adt``, ``pstudio``, ``drivetrack`` (``--set subsets=adt,pstudio``). The split is the set of
files present (the official minival / full_eval lists cannot be downloaded here; put only the
split's files in the folders, or ``--set file_list=FILE`` naming ``<subset>/<file>.npz`` lines).

Model inputs: queries rounded to frames; TAPVid-3D pixels (top-left corner = 0) shifted by
-0.5 to the library's pixel centres, the principal point likewise (the unprojection is
unchanged); the GT intrinsics are given; tracking runs in both directions
(``--set direction=forward`` for the released behaviour).

``tapvid3d``: the official metric (``l4p.metrics.evaluate_tapvid3d_video``) with global median
scaling (``--set scalings=median,...``): per video, mean over a subset's videos, unweighted mean
over subsets; predictions are also written in the official layout
(``<out>/predictions/<subset>/<file>.npz``: ``tracks_XYZ``, ``visibility``) for tapnet's evaluator.

``tapvid3d-2d``: the paper's "2D GT = projected 3D GT" numbers. The predicted 2D tracks are lifted
onto their camera rays and scored with the official ``reproduce_2d`` scaling, which moves each
predicted point along its ray to the GT depth, so the 3D thresholds equal the 2D pixel thresholds
at the 256-pixel evaluation resolution (the spec's definition of 2D-AJ; no frame is excluded).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from l4p.bench.io import fmt, markdown_table
from l4p.bench.paper import PAPER_SUBSET_2D_AJ, PAPER_SUBSET_3D
from l4p.bench.runner import BenchContext, Item, finish, run_items, uses_released_checkpoint
from l4p.data.formats.tapvid3d import TapVid3DSample, load_tapvid3d_npz, save_tapvid3d_prediction
from l4p.metrics import average_over_subsets, evaluate_tapvid3d_video, mean_over

logger = logging.getLogger(__name__)

SUBSETS = ("adt", "pstudio", "drivetrack")
PIXEL_OFFSET = 0.5
COLUMNS = (("average_jaccard", "AJ"), ("average_pts_within_thresh", "APD"), ("occlusion_accuracy", "OA"))


def model_inputs(sample: TapVid3DSample, pixel_offset: float = PIXEL_OFFSET) -> tuple[np.ndarray, np.ndarray]:
    """Queries (N, 3) as (t, x, y) and K (3, 3) in l4p's pixel convention (integer = centre)."""
    height, width = sample.image_size()
    queries = np.array(sample.queries_txy, dtype=np.float64)
    queries[:, 0] = np.clip(np.round(queries[:, 0]), 0, sample.num_frames - 1)
    queries[:, 1:] -= pixel_offset
    outside = (queries[:, 1] < -0.5) | (queries[:, 1] > width - 0.5)
    outside |= (queries[:, 2] < -0.5) | (queries[:, 2] > height - 0.5)
    if outside.any():
        logger.warning("%d queries lie outside the image and are clamped to its border", int(outside.sum()))
        queries[:, 1] = np.clip(queries[:, 1], -0.5, width - 0.5)
        queries[:, 2] = np.clip(queries[:, 2], -0.5, height - 0.5)
    k = sample.intrinsics_matrix()
    k[:2, 2] -= pixel_offset
    return queries.astype(np.float32), k.astype(np.float32)


def predict_tracks(
    predictor, sample: TapVid3DSample, *, pixel_offset: float = PIXEL_OFFSET, direction: str = "both"
):
    """Run the model on one video; returns ``Prediction`` (tracks, tracks_3d, visibility)."""
    queries, k = model_inputs(sample, pixel_offset)
    return predictor.predict(sample.decode_frames(), tasks=("tracks",), queries=torch.from_numpy(queries),
                             intrinsics=torch.from_numpy(k), direction=direction)  # fmt: skip


def lift_2d_tracks(
    tracks_tn2: np.ndarray, fx_fy_cx_cy: np.ndarray, pixel_offset: float = PIXEL_OFFSET
) -> np.ndarray:
    """(T, N, 2) l4p pixels -> (T, N, 3) points at depth 1 on their rays (TAPVid-3D camera)."""
    fx, fy, cx, cy = (float(v) for v in fx_fy_cx_cy)
    u, v = tracks_tn2[..., 0] + pixel_offset, tracks_tn2[..., 1] + pixel_offset
    return np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], axis=-1)


def save_prediction(path: Path, tracks_xyz: np.ndarray, visibility: np.ndarray) -> None:
    """Write an official prediction file atomically (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npz")
    save_tapvid3d_prediction(tmp, tracks_xyz=tracks_xyz, visibility=visibility)
    os.replace(tmp, path)


def _videos(ctx: BenchContext) -> list[tuple[str, str]]:
    subsets = ctx.option("subsets", ",".join(SUBSETS)).split(",")
    listed = None
    if "file_list" in ctx.options:
        lines = Path(ctx.options["file_list"]).read_text().splitlines()
        listed = {line.split("#", 1)[0].strip() for line in lines} - {""}
    out = []
    for sub in subsets:
        for path in sorted((ctx.data / sub).glob("*.npz")):
            if listed is None or f"{sub}/{path.name}" in listed or path.name in listed:
                out.append((sub, path.name))
    return out


def subset_paper_table(kind: str, means: dict[str, dict[str, float]]) -> str:
    """Markdown: the paper's per-subset L4P numbers (Tables 3 and 4) beside ours (×100)."""
    rows = []
    for sub, m in means.items():
        if kind == "2d" and sub in PAPER_SUBSET_2D_AJ:
            rows.append([sub, "2D-AJ", PAPER_SUBSET_2D_AJ[sub], fmt(m["average_jaccard"], 100)])
        elif kind == "3d" and sub in PAPER_SUBSET_3D:
            for (key, label), value in zip(COLUMNS, PAPER_SUBSET_3D[sub]):
                rows.append([sub, label, value, fmt(m[key], 100)])
    return "\n## Paper (L4P) per subset vs this run\n\n" + markdown_table(
        ["subset", "metric", "paper", "ours"], rows
    )


def make_protocol(kind: str):
    """The run function of ``tapvid3d`` (``kind="3d"``) or ``tapvid3d-2d`` (``"2d"``)."""
    name = "tapvid3d" if kind == "3d" else "tapvid3d-2d"

    def run(ctx: BenchContext) -> dict:
        scalings = ctx.option("scalings", "median").split(",") if kind == "3d" else ["reproduce_2d"]
        direction = ctx.option("direction", "both")

        def evaluate(item: Item, ctx: BenchContext) -> dict:
            sub, file = item.name.split("/", 1)
            gt = load_tapvid3d_npz(ctx.data / sub / f"{file}.npz")
            start = time.perf_counter()
            pred = predict_tracks(ctx.predictor(), gt, direction=direction)
            seconds = time.perf_counter() - start
            vis = pred.visibility[0].numpy().astype(bool)
            if kind == "3d":  # frames a track was not followed to (NaN) score as misses at the origin
                xyz = np.nan_to_num(pred.tracks_3d[0].double().numpy(), nan=0.0)
                save_prediction(ctx.out / "predictions" / sub / f"{file}.npz", xyz, vis)
            else:
                xyz = lift_2d_tracks(np.nan_to_num(pred.tracks[0].double().numpy()), gt.fx_fy_cx_cy)
            scores = evaluate_tapvid3d_video(
                gt=gt, pred_tracks_xyz=xyz, pred_visibility=vis, scalings=scalings
            )
            flat = {
                s: {k: float(np.asarray(v).reshape(-1)[0]) for k, v in m.items()} for s, m in scores.items()
            }
            return {
                "subset": sub,
                "scores": flat,
                "num_tracks": int(gt.queries_xyt.shape[0]),
                "predict_seconds": seconds,
            }

        items = [Item(f"{sub}/{Path(file).stem}") for sub, file in _videos(ctx)]
        records = run_items(ctx, name, items, evaluate)
        per_subset: dict[str, list[dict]] = {}
        for rec in records.values():
            per_subset.setdefault(rec["subset"], []).append(rec["scores"])
        means = {
            sub: {s: mean_over([r[s] for r in recs]) for s in scalings} for sub, recs in per_subset.items()
        }
        overall = average_over_subsets(means)
        parts = []
        for s in scalings:
            rows = [
                [sub, len(per_subset[sub]), *(fmt(m[s][k], 100) for k, _ in COLUMNS)]
                for sub, m in means.items()
            ]
            rows.append(["**mean over subsets**", "", *(fmt(overall[s][k], 100) for k, _ in COLUMNS)])
            parts.append(
                f"## scaling `{s}` (×100)\n\n"
                + markdown_table(["subset", "videos", *(c for _, c in COLUMNS)], rows)
            )
        scores = {**overall[scalings[0]], "by_scaling": overall, "subsets": means}
        if uses_released_checkpoint(ctx.checkpoint):
            parts.append(subset_paper_table(kind, {sub: m[scalings[0]] for sub, m in means.items()}))
        return finish(ctx, name, records, scores, "\n".join(parts), title=f"TAPVid-3D ({'3D' if kind == '3d' else '2D projection'})",
                      extra={"all_subsets": set(means) == set(SUBSETS)})  # fmt: skip

    return run
