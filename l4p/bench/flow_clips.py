"""Optical flow as the L4P paper evaluates it (Table 2): validation clips resized to 224x224.

Protocol: every frame of a sequence (``--set max_frames=N`` to cut) is resized to 224x224
(bilinear) and fed to the model; its **backward** flow (t -> t-1) of frames 1..T-1 is compared with
the GT backward flow resized to 224x224: vectors scaled by (224/W, 224/H), bilinear, and a pixel is
scored only where every GT sample its bilinear footprint touches is valid. EPE and the fraction
with EPE < 1 px are pooled over every scored pixel of every pair (the paper prints "EPE / % EPE<1").

Layouts (``--data``):

- ``flow-spring-224``: the Spring split folder (``train/`` or its parent); frames
  ``<scene>/frame_left/frame_left_%04d.png`` and ``<scene>/flow_BW_left/flow_BW_left_%04d.flo5``
  (twice the image resolution, NaN = none), first reduced to image resolution as ``spring_utils``
  does (``GT[::2, ::2]``). Frame k's BW flow maps k -> k-1.
- ``flow-dynamic-replica``: the published layout (``--data``: the ``valid`` split folder or its
  parent): ``<seq>/images/<seq>-%04d.png`` and ``<seq>/flow_backward/<seq>_%04d.png`` with
  ``flow_backward_mask/`` beside it; a flow PNG is 16-bit, its uint16 buffer reinterpreted as
  float16 gives an (H, 2W) array, u in the left half and v in the right; mask > 0 = valid (facts
  from public Dynamic Replica loaders). Folders in our clip layout (below) are read too.
- ``flow-kubric``: **our** clip layout (an assumption: the paper's Kubric validation export is
  not public, and Kubric MOVi ships flow inside TFDS records with per-clip ranges):
  ``<seq>/frames/*.png|jpg`` (sorted) and ``<seq>/flow_backward/<frame stem>.flo`` (or ``.npy``
  (H, W, 2) float, NaN = no GT) for frames 1..T-1, in input pixels; converting an export into it
  is left to the user.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np

from l4p.bench.io import fmt, markdown_table
from l4p.bench.runner import BenchContext, Item, finish, run_items
from l4p.data.formats.depth_video import read_rgb
from l4p.data.formats.middlebury import read_flo
from l4p.metrics import FlowAccumulator

logger = logging.getLogger(__name__)

SIZE = 224
_IMAGES = (".png", ".jpg", ".jpeg")


def resize_flow(flow: np.ndarray, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 2) flow with NaN = unknown -> ``(flow (size, size, 2), valid (size, size))``."""
    h, w = flow.shape[:2]
    valid = np.isfinite(flow).all(axis=-1).astype(np.float32)
    filled = np.where(valid[..., None] > 0, flow, 0.0).astype(np.float32)
    out = cv2.resize(filled, (size, size), interpolation=cv2.INTER_LINEAR)
    out *= np.array([size / w, size / h], dtype=np.float32)
    return out, cv2.resize(valid, (size, size), interpolation=cv2.INTER_LINEAR) > 1 - 1e-6


def resize_frames(frames: np.ndarray, size: int = SIZE) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3), bilinear."""
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in frames])


def _clip_items(root: Path) -> dict[str, tuple[list[Path], list[Path | None]]]:
    out = {}
    for seq in sorted(p for p in root.iterdir() if (p / "frames").is_dir()):
        frames = sorted(p for p in (seq / "frames").iterdir() if p.suffix.lower() in _IMAGES)
        flows: list[Path | None] = [None]
        for f in frames[1:]:
            cands = [seq / "flow_backward" / f"{f.stem}{s}" for s in (".flo", ".npy", ".png")]
            flows.append(next((c for c in cands if c.is_file()), None))
        out[seq.name] = (frames, flows)
    return out


def _dynamic_replica_items(root: Path) -> dict[str, tuple[list[Path], list[Path | None]]]:
    split = root / "valid" if (root / "valid").is_dir() else root
    out = {}
    for seq in sorted(
        p for p in split.iterdir() if (p / "images").is_dir() and (p / "flow_backward").is_dir()
    ):
        frames = sorted((seq / "images").glob("*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        flows: list[Path | None] = []
        for f in frames:
            prefix, number = f.stem.rsplit("-", 1)
            path = seq / "flow_backward" / f"{prefix}_{number}.png"
            flows.append(path if path.is_file() else None)
        out[seq.name] = (frames, flows)
    return out or _clip_items(root)


def read_dynamic_replica_flow(path: Path) -> np.ndarray:
    """(H, W, 2) float32 flow of a Dynamic Replica flow PNG (NaN where its mask is 0)."""
    from l4p.data.formats.depth_video import read_png_uint16

    raw = read_png_uint16(path)
    flow = np.ascontiguousarray(raw).view(np.float16).astype(np.float32)
    w = flow.shape[1] // 2
    out = np.stack([flow[:, :w], flow[:, w:]], axis=-1)
    mask_path = path.parent.parent / f"{path.parent.name}_mask" / path.name
    if mask_path.is_file():
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
        if mask is None:
            raise FileNotFoundError(f"cannot read {mask_path}")
        out[mask == 0] = np.nan
    return out


def _spring_items(root: Path) -> dict[str, tuple[list[Path], list[Path | None]]]:
    split = root / "train" if (root / "train").is_dir() else root
    out = {}
    for scene in sorted(p for p in split.iterdir() if (p / "frame_left").is_dir()):
        frames = sorted((scene / "frame_left").glob("frame_left_*.png"))
        flows: list[Path | None] = []
        for f in frames:
            p = scene / "flow_BW_left" / f"flow_BW_left_{f.stem.rsplit('_', 1)[1]}.flo5"
            flows.append(p if p.is_file() else None)
        out[scene.name] = (frames, flows)
    return out


def read_backward_flow(path: Path) -> np.ndarray:
    """(H, W, 2) float32 GT backward flow: ``.flo``, ``.npy``, Dynamic Replica ``.png``, Spring ``.flo5``."""
    if path.suffix == ".flo5":
        from l4p.data.formats.spring import read_flo5

        return read_flo5(path)[::2, ::2].astype(np.float32)
    if path.suffix == ".npy":
        return np.load(path).astype(np.float32)
    if path.suffix == ".png":
        return read_dynamic_replica_flow(path)
    return read_flo(path)


def make_protocol(dataset: str):
    """The run function of ``flow-kubric``, ``flow-dynamic-replica`` or ``flow-spring-224``."""
    name = f"flow-{dataset}"

    def run(ctx: BenchContext) -> dict:
        listers = {"spring-224": _spring_items, "dynamic-replica": _dynamic_replica_items}
        items = listers.get(dataset, _clip_items)(ctx.data)
        max_frames = int(ctx.option("max_frames", "0")) or None

        def evaluate(item: Item, ctx: BenchContext) -> dict:
            frame_paths, flow_paths = items[item.name]
            frame_paths, flow_paths = frame_paths[:max_frames], flow_paths[:max_frames]
            frames = resize_frames(np.stack([read_rgb(p) for p in frame_paths]))
            start = time.perf_counter()
            pred = ctx.predictor().predict(frames, tasks=("flow",)).flow[0].float().numpy()
            seconds = time.perf_counter() - start
            acc = FlowAccumulator()
            for t, path in enumerate(flow_paths):
                if t > 0 and path is not None:
                    gt, valid = resize_flow(read_backward_flow(path))
                    if valid.any():
                        acc.update(pred=np.moveaxis(pred[t], 0, -1), gt=gt, valid=valid)
            try:
                s = acc.summary()
            except ValueError:  # no pair with GT
                return {"num_pixels": 0, "num_pairs": 0, "predict_seconds": seconds}
            return {"epe": s["epe_pooled"], "acc_1px": s["acc_1px"], "num_pixels": s["num_pixels"],
                    "num_pairs": int(s["num_images"]), "predict_seconds": seconds}  # fmt: skip

        records = run_items(ctx, name, [Item(n) for n in items], evaluate)
        scored = [r for r in records.values() if r["num_pixels"]]
        pixels = sum(r["num_pixels"] for r in scored)
        scores = {"epe": sum(r["epe"] * r["num_pixels"] for r in scored) / pixels if pixels else None,
                  "acc_1px": sum(r["acc_1px"] * r["num_pixels"] for r in scored) / pixels if pixels else None,
                  "num_pixels": pixels, "num_pairs": sum(r["num_pairs"] for r in scored)}  # fmt: skip
        rows = [
            [n, r["num_pairs"], fmt(r.get("epe"), 1, 3), fmt(r.get("acc_1px"), 100)]
            for n, r in records.items()
        ]
        rows.append(
            ["**all (pooled)**", scores["num_pairs"], fmt(scores["epe"], 1, 3), fmt(scores["acc_1px"], 100)]
        )
        table = markdown_table(["sequence", "pairs", "EPE", "EPE<1 %"], rows)
        return finish(
            ctx, name, records, scores, table, title=f"{name}: backward flow at 224x224 (L4P Table 2)"
        )

    return run
