"""Optical flow as the peers report it: MPI-Sintel and KITTI-15 training sets, full resolution.

``flow-sintel`` (``--data``: ``MPI-Sintel-complete/training`` or its parent; ``clean/ final/
flow/ occlusions/``): RAFT's ``validate_sintel`` convention: every pixel of every pair of the pass
(``--set pass=clean|final``, default clean), pooled EPE, 1/3/5 px = fraction *below* (``acc_*``)
and outlier rates (``outlier_*``), plus EPE over matched (non-occluded) and unmatched pixels when
``occlusions/`` exists. The model's flow is backward; Sintel GT is forward (K -> K+1), so the
model runs on the time-reversed sequence, whose backward flow at reversed frame j *is* the
forward flow of pair T-1-j (exact, no warping).

``flow-kitti15`` (``--data``: ``data_scene_flow`` or its ``training/`` folder;
``image_2/%06d_10.png``, ``image_2/%06d_11.png``, ``flow_occ/%06d_10.png``, or ``--set
gt=flow_noc``): the model sees the pair reversed ([11, 10]) and its backward flow of frame 10 is
the forward flow 10 -> 11. RAFT's ``validate_kitti``: EPE averaged over the valid pixels of each
image, then over images; Fl-all = 100 · pooled fraction of valid pixels with EPE > 3 px and
EPE / |f| > 5 %.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from l4p.bench.io import fmt, markdown_table
from l4p.bench.runner import BenchContext, Item, finish, run_items
from l4p.data.formats.kitti import read_kitti_flow
from l4p.data.formats.sintel import SintelSequence
from l4p.metrics import FlowAccumulator, sintel_eval_mask

logger = logging.getLogger(__name__)

REGIONS = ("all", "noc", "occ")
POOLED_KEYS = ("acc_1px", "acc_3px", "acc_5px", "outlier_1px", "outlier_3px", "outlier_5px", "fl")


def forward_flows(predictor, frames: np.ndarray) -> np.ndarray:
    """(T-1, H, W, 2) forward flows i -> i+1 from one run on the time-reversed frames."""
    rev = predictor.predict(np.ascontiguousarray(frames[::-1]), tasks=("flow",)).flow[0].float().numpy()
    t = len(frames)
    return np.stack([np.moveaxis(rev[t - 1 - i], 0, -1) for i in range(t - 1)])


def flow_scores_of_sequence(predictor, seq: SintelSequence) -> dict | None:
    """Forward flow of every pair from the time-reversed run, scored per region."""
    pairs = [i for i in range(len(seq) - 1) if seq.has("flow", i)]
    if not pairs:
        return None
    with_occ = all(seq.has("occlusions", i) for i in pairs)
    start = time.perf_counter()
    flows = forward_flows(predictor, seq.frames())
    seconds = time.perf_counter() - start
    accs = {r: FlowAccumulator() for r in (REGIONS if with_occ else REGIONS[:1])}
    for i in pairs:
        occluded = seq.occlusions(i) if with_occ else None
        gt = seq.flow(i)
        for region, acc in accs.items():
            mask = sintel_eval_mask(occluded=occluded, region=region)  # type: ignore[arg-type]
            if mask is None or mask.any():
                acc.update(pred=flows[i], gt=gt, valid=mask)
    out = {}
    for region, acc in accs.items():
        try:
            scores = acc.summary()
            out[region] = {"epe": scores.pop("epe_pooled"), **scores}
        except ValueError:  # no pixel of this region in the whole sequence
            logger.info("%s: no %s pixel", seq.name, region)
    return {"regions": out, "num_pairs": len(pairs), "predict_seconds": seconds}


def pool_flow(records: Sequence[dict], region: str) -> dict[str, float] | None:
    """Dataset flow scores of one region, pooled over every pixel of every sequence."""
    items = [r["regions"][region] for r in records if region in r["regions"]]
    if not items:
        return None
    pixels, images = sum(s["num_pixels"] for s in items), sum(s["num_images"] for s in items)
    out = {"epe": sum(s["epe"] * s["num_pixels"] for s in items) / pixels}
    out["epe_image_mean"] = sum(s["epe_image_mean"] * s["num_images"] for s in items) / images
    for key in POOLED_KEYS:
        out[key] = sum(s[key] * s["num_pixels"] for s in items) / pixels
    return {**out, "num_pixels": pixels, "num_images": images, "num_sequences": len(items)}


def sintel_report(done: dict[str, dict]) -> tuple[dict, list, list]:
    """Pooled scores per region, table header and rows (a row per sequence, then the pool)."""
    pooled = {r: pool_flow(list(done.values()), r) for r in REGIONS}
    head = ["sequence", "pairs", "EPE", "EPE matched", "EPE unmatched", "<1px %", "<3px %", "<5px %"]

    def row(name: str, regions: dict, pairs: object) -> list:
        regions = {r: regions.get(r) or {} for r in REGIONS}
        epe = [fmt(regions[r].get("epe"), 1, 3) for r in REGIONS]
        return [name, pairs, *epe, *(fmt(regions["all"].get(f"acc_{k}px"), 100) for k in (1, 3, 5))]

    rows = [row(n, r["regions"], r["num_pairs"]) for n, r in done.items()]
    rows.append(row("**all (pooled)**", pooled, int(pooled["all"]["num_images"])))  # type: ignore[index]
    return pooled, head, rows


def _run_sintel(ctx: BenchContext) -> dict:
    root = ctx.data / "training" if (ctx.data / "training").is_dir() else ctx.data
    render_pass = ctx.option("pass", "clean")
    names = sorted(p.name for p in (root / render_pass).iterdir() if p.is_dir())

    def evaluate(item: Item, ctx: BenchContext) -> dict:
        seq = SintelSequence(root, item.name, render_pass=render_pass)  # type: ignore[arg-type]
        return flow_scores_of_sequence(ctx.predictor(), seq) or {"regions": {}, "num_pairs": 0}

    records = run_items(ctx, "flow-sintel", [Item(n) for n in names], evaluate)
    pooled, head, rows = sintel_report({n: r for n, r in records.items() if r["regions"]})
    scores = {**(pooled["all"] or {}), "regions": pooled}
    return finish(ctx, "flow-sintel", records, scores, markdown_table(head, rows),
                  title=f"MPI-Sintel flow, {render_pass} pass (RAFT convention)")  # fmt: skip


def _run_kitti(ctx: BenchContext) -> dict:
    root = ctx.data / "training" if (ctx.data / "training").is_dir() else ctx.data
    gt_dir = root / ctx.option("gt", "flow_occ")
    names = sorted(p.name.removesuffix("_10.png") for p in gt_dir.glob("*_10.png"))

    def evaluate(item: Item, ctx: BenchContext) -> dict:
        from l4p.data.formats.depth_video import read_rgb

        frames = np.stack([read_rgb(root / "image_2" / f"{item.name}_{k}.png") for k in ("10", "11")])
        flow = forward_flows(ctx.predictor(), frames)[0]
        gt, valid = read_kitti_flow(gt_dir / f"{item.name}_10.png")
        acc = FlowAccumulator()
        acc.update(pred=flow, gt=gt, valid=valid)
        s = acc.summary()
        return {
            "epe": s["epe_image_mean"],
            "fl_count": s["fl"] * s["num_pixels"],
            "num_pixels": s["num_pixels"],
        }

    records = run_items(ctx, "flow-kitti15", [Item(n) for n in names], evaluate)
    pixels = sum(r["num_pixels"] for r in records.values())
    scores = {"epe": float(np.mean([r["epe"] for r in records.values()])),
              "fl_all_percent": 100 * sum(r["fl_count"] for r in records.values()) / pixels,
              "num_images": len(records)}  # fmt: skip
    rows = [[n, fmt(r["epe"], 1, 3), fmt(r["fl_count"] / r["num_pixels"], 100)] for n, r in records.items()]
    rows.append(["**mean / pooled**", fmt(scores["epe"], 1, 3), fmt(scores["fl_all_percent"], 1)])
    table = markdown_table(["pair", "EPE", "Fl-all %"], rows)
    return finish(
        ctx, "flow-kitti15", records, scores, table, title="KITTI-15 flow, training set (RAFT convention)"
    )


def make_protocol(dataset: str):
    """The run function of ``flow-sintel`` or ``flow-kitti15``."""
    return _run_sintel if dataset == "sintel" else _run_kitti
