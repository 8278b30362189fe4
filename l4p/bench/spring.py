"""Spring optical flow at full resolution, scored as the benchmark server scores it.

Layout read (``--data``: the split folder, e.g. ``spring/train``, or its parent holding
``train/``): ``<scene>/frame_left/frame_left_%04d.png`` and, for scoring,
``<scene>/flow_{BW,FW}_left/flow_<dir>_left_%04d.flo5`` at twice the image resolution (see
``l4p.data.formats.spring``).

The model runs on every frame of a scene at 1920x1080 (``--set max_frames=N`` to cut). Its
backward flow gives BW of frames 2..N directly; FW (frames 1..N-1) comes from a second run on the
time-reversed scene (exact: reversed backward flow *is* forward flow). ``--set directions=BW``
skips the second run. Each scored frame is turned into the server's layout (every pixel,
prediction float16 (N, 2), GT float16 (N, 4, 2)) and scored with the server's arithmetic
(``l4p.metrics.flow_spring_server``): 4-sample minimum EPE with the float16 subtraction, 1px, Fl,
WAUC over the total, the speed regions s0-10 / s10-40 / s40+ and, where ``<scene>/maps/`` holds
them, the server's map regions (low/high detail, rigid/non-rigid, matched/unmatched,
not-sky/sky; see ``spring_maps``), pooled over every pixel of
every frame (the server pools likewise; it only sees a withheld subset of pixels, so train-set
numbers are the full-frame equivalent). ``--set cam=right`` scores the right camera.

``--set write_predictions=1`` also writes ``<out>/predictions/<scene>/flow_<dir>_<cam>/...flo5``
(image resolution, float32); on the test split (no GT) that is all it does, and
``l4p bench spring-submission <out>/predictions flow_submission.hdf5`` packs them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from l4p.bench.io import fmt, markdown_table
from l4p.bench.runner import BenchContext, Item, finish, run_items
from l4p.data.formats.spring import SpringScene, write_flo5
from l4p.metrics.flow_spring_server import (
    SPEED_REGIONS,
    RegionCounts,
    pool_counts,
    server_counts,
    to_server_gt,
)

logger = logging.getLogger(__name__)


def predicted_flows(
    ctx: BenchContext, frames: np.ndarray, directions: list[str]
) -> dict[tuple[str, int], np.ndarray]:
    """``{(direction, frame number): (H, W, 2) flow}`` for BW frames 2..T and FW frames 1..T-1."""
    out: dict[tuple[str, int], np.ndarray] = {}
    t = len(frames)
    if "BW" in directions:
        bw = ctx.predictor().predict(frames, tasks=("flow",)).flow[0].float().numpy()
        out.update({("BW", k): np.moveaxis(bw[k - 1], 0, -1) for k in range(2, t + 1)})
    if "FW" in directions:
        rev = (
            ctx.predictor()
            .predict(np.ascontiguousarray(frames[::-1]), tasks=("flow",))
            .flow[0]
            .float()
            .numpy()
        )
        out.update({("FW", k): np.moveaxis(rev[t - k], 0, -1) for k in range(1, t)})
    return out


def _png(path: Path) -> np.ndarray | None:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    return None if img is None else (img[..., ::-1] if img.ndim == 3 else img)


def _half(img: np.ndarray) -> np.ndarray:
    """Double-resolution map -> image resolution: mean of the 4 samples >= 0.5 (as the server)."""
    quad = np.stack([img[0::2, 0::2], img[0::2, 1::2], img[1::2, 0::2], img[1::2, 1::2]], -1)
    return quad.astype(np.float32).mean(-1) >= 0.5


def spring_maps(folder: Path, cam: str, direction: str, number: int) -> dict[str, np.ndarray]:
    """The server's region masks of one frame, flattened, where ``maps/`` has them.

    Facts (``create_evalfiles.py``): ``detailmap_flow_<dir>_<cam>`` is at image resolution (> 0);
    ``rigidmap_<dir>_<cam>`` and ``skymap_<cam>`` are at twice the resolution (mean of the 4 samples
    >= 0.5); ``matchmap_flow_<dir>_<cam>`` is at image resolution (red or green > 0). Names pair
    with masks as the server's table does: lowdetail = ~detail, rigid = ~rigidmap, matched =
    ~matchmap, notsky = ~sky.
    """
    maps_dir, out = folder / "maps", {}
    sources = {
        "detail": (f"detailmap_flow_{direction}_{cam}", lambda m: m > 0),
        "rigidmap": (f"rigidmap_{direction}_{cam}", _half),
        "match": (f"matchmap_flow_{direction}_{cam}", lambda m: (m[..., 0] > 0) | (m[..., 1] > 0)),
        "sky": (f"skymap_{cam}", _half),
    }
    names = {"detail": ("lowdetail", "highdetail"), "rigidmap": ("rigid", "nonrigid"),
             "match": ("matched", "unmatched"), "sky": ("notsky", "sky")}  # fmt: skip
    for key, (sub, to_mask) in sources.items():
        img = _png(maps_dir / sub / f"{sub}_{number:04d}.png")
        if img is not None:
            mask = to_mask(img).reshape(-1)
            out[names[key][0]], out[names[key][1]] = ~mask, mask
    return out


def make_protocol():
    """The run function of ``flow-spring``."""

    def run(ctx: BenchContext) -> dict:
        split = ctx.data / "train" if (ctx.data / "train").is_dir() else ctx.data
        cam = ctx.option("cam", "left")
        directions = ctx.option("directions", "BW,FW").split(",")
        max_frames = int(ctx.option("max_frames", "0")) or None
        write = ctx.option("write_predictions", "0") == "1"
        scenes = sorted(p for p in split.iterdir() if (p / f"frame_{cam}").is_dir())

        def evaluate(item: Item, ctx: BenchContext) -> dict:
            scene = SpringScene(split / item.name, cam)
            numbers = scene.numbers[:max_frames]
            frames = np.stack([scene.frame(n) for n in numbers])
            start = time.perf_counter()
            flows = predicted_flows(ctx, frames, directions)
            seconds = time.perf_counter() - start
            parts, scored = [], 0
            for (direction, k), pred in flows.items():
                number = numbers[k - 1]
                if write:
                    path = ctx.out / "predictions" / item.name / f"flow_{direction}_{cam}"
                    write_flo5(path / f"flow_{direction}_{cam}_{number:04d}.flo5", pred.astype(np.float32))
                if scene.flow_path(direction, number).is_file():
                    gt = to_server_gt(scene.flow(direction, number))
                    maps = spring_maps(scene.folder, cam, direction, number)
                    parts.append(server_counts(pred.reshape(-1, 2), gt, maps))
                    scored += 1
            counts = {r: dataclasses.asdict(c) for r, c in pool_counts(parts).items()}
            return {"counts": counts, "num_scored_frames": scored, "predict_seconds": seconds}

        records = run_items(ctx, "flow-spring", [Item(p.name) for p in scenes], evaluate)
        pooled = pool_counts(
            {r: RegionCounts(**c) for r, c in rec["counts"].items()} for rec in records.values()
        )
        scores = {r: c.scores() for r, c in pooled.items()}
        flat = (
            {"epe": scores["total"]["epe"], "px1_percent": scores["total"]["px1_percent"]} if scores else {}
        )
        regions = ("total", *SPEED_REGIONS, *(r for r in scores if r not in ("total", *SPEED_REGIONS)))
        rows = [[r, *(fmt(scores[r][k], 1, 3) for k in ("epe", "px1_percent", "fl_percent", "wauc_percent")),
                 scores[r]["num_pixels"]] for r in regions if r in scores]  # fmt: skip
        table = markdown_table(["region", "EPE", "1px %", "Fl %", "WAUC %", "pixels"], rows) if rows else ""
        if not rows:
            table = "No ground truth found: predictions only (see --set write_predictions=1).\n"
        return finish(ctx, "flow-spring", records, {**flat, "regions": scores}, table,
                      title=f"Spring flow, full resolution, server metric ({cam} camera)")  # fmt: skip

    return run
