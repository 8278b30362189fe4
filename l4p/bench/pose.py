"""Camera pose on Sintel, TUM RGB-D dynamic and ScanNet (the usual video-pose protocol).

The L4P paper reports no pose numbers; this follows what video-pose papers (CasualSAM, MonST3R
and successors) report: ATE, RPE-trans and RPE-rot after a Sim(3) (Umeyama, with scale)
alignment of the predicted camera centres to the GT ones (``l4p.metrics.pose_metrics``: RMSE over
frames / consecutive pairs, RPE-rot in degrees; ``--set reduction=mean`` for means), then the mean
over sequences. The model sees the frames only (no GT intrinsics).

Layouts (``--data``) and frame selection:

- ``pose-sintel``: ``training/`` (or its parent) with ``<pass>/<seq>/frame_%04d.png`` and
  ``camdata_left/<seq>/frame_%04d.cam`` (``--set depth_root=`` for the depth package,
  ``--set pass=final``); every frame of every sequence (``--only`` to choose, e.g. the 14 dynamic
  ones MonST3R uses).
- ``pose-tum``: ``<seq>/rgb.txt`` (``timestamp path`` lines, ``#`` comments) and
  ``<seq>/groundtruth.txt`` (``timestamp tx ty tz qx qy qz qw``, camera-to-world); images and GT
  stamps are associated as TUM's ``associate.py`` does (pairs closer than 0.02 s, greedily by time
  difference, each stamp once), then every 3rd pair of the first 270 (90 frames), as MonST3R's
  ``prepare_tum.py`` selects them.
- ``pose-scannet``: ``<scene>/color/<i>.jpg`` and ``<scene>/pose/<i>.txt`` (4x4 camera-to-world);
  frames sorted by number, the first 270 with stride 3 (90), as MonST3R's ``prepare_scannet.py``;
  frames whose pose is not finite (ScanNet marks lost tracking with -inf) are then dropped (our
  addition: such a pose cannot be scored).
``--set max_frames=270,stride=3`` changes the selection of TUM and ScanNet.
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
from l4p.data.formats.depth_video import read_rgb
from l4p.data.formats.sintel import SintelSequence
from l4p.metrics import pose_metrics

logger = logging.getLogger(__name__)

NAMES = (("ate", "ATE"), ("rte", "RPE-trans"), ("rre", "RPE-rot °"))


def quaternion_pose(values: np.ndarray) -> np.ndarray:
    """(7,) ``tx ty tz qx qy qz qw`` -> 4x4 camera-to-world."""
    t, (x, y, z, w) = values[:3], values[3:] / np.linalg.norm(values[3:])
    rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])  # fmt: skip
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rot, t
    return out


def _table(path: Path) -> list[list[str]]:
    lines = (line.split("#", 1)[0].split() for line in path.read_text().splitlines())
    return [parts for parts in lines if parts]


def associate(stamps_a: np.ndarray, stamps_b: np.ndarray, max_dt: float = 0.02) -> list[tuple[int, int]]:
    """TUM's ``associate.py`` matching of two stamp lists.

    Candidate pairs closer than ``max_dt`` are taken greedily by time difference, each stamp once;
    returns the index pairs sorted by the first stamp.
    """
    diff = np.abs(stamps_a[:, None] - stamps_b[None, :])
    ia, ib = np.nonzero(diff < max_dt)
    used_a, used_b, pairs = set(), set(), []
    for k in np.argsort(diff[ia, ib], kind="stable"):
        if ia[k] not in used_a and ib[k] not in used_b:
            used_a.add(ia[k])
            used_b.add(ib[k])
            pairs.append((int(ia[k]), int(ib[k])))
    return sorted(pairs, key=lambda p: stamps_a[p[0]])


def tum_frames(seq: Path, max_frames: int, stride: int) -> tuple[list[Path], np.ndarray]:
    """Images and camera-to-world GT poses of a TUM sequence (see the module docstring)."""
    gt = np.array([[float(v) for v in row[:8]] for row in _table(seq / "groundtruth.txt")])
    rgb = _table(seq / "rgb.txt")
    pairs = associate(np.array([float(r[0]) for r in rgb]), gt[:, 0])[:max_frames:stride]
    return [seq / rgb[i][1] for i, _ in pairs], np.stack([quaternion_pose(gt[j, 1:]) for _, j in pairs])


def scannet_frames(scene: Path, max_frames: int, stride: int) -> tuple[list[Path], np.ndarray]:
    """Images and camera-to-world GT poses of a ScanNet scene (see the module docstring)."""
    numbers = sorted(int(p.stem) for p in (scene / "color").glob("*.jpg"))[:max_frames:stride]
    images, poses = [], []
    for n in numbers:
        pose = np.loadtxt(scene / "pose" / f"{n}.txt").reshape(4, 4)
        if np.isfinite(pose).all():
            images.append(scene / "color" / f"{n}.jpg")
            poses.append(pose)
    return images, np.stack(poses)


def _from_files(select, folder: Path, max_frames: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    images, c2w = select(folder, max_frames, stride)
    return np.stack([read_rgb(p) for p in images]), np.linalg.inv(c2w)


def _sequences(ctx: BenchContext, dataset: str):
    """``{name: loader() -> (frames (T, H, W, 3), GT world-to-camera (T, 4, 4))}``."""
    max_frames, stride = int(ctx.option("max_frames", "270")), int(ctx.option("stride", "3"))

    if dataset == "sintel":
        root = ctx.data / "training" if (ctx.data / "training").is_dir() else ctx.data
        render_pass, depth_root = ctx.option("pass", "clean"), Path(ctx.option("depth_root", str(root)))

        def sintel(name: str):
            seq = SintelSequence(root, name, render_pass=render_pass, depth_root=depth_root)  # type: ignore[arg-type]
            w2c = np.tile(np.eye(4), (len(seq), 1, 1))
            w2c[:, :3] = np.stack([seq.camera(i)[1] for i in range(len(seq))])
            return seq.frames(), w2c

        names = sorted(p.name for p in (root / render_pass).iterdir() if p.is_dir())
        return {n: partial(sintel, n) for n in names}
    if dataset == "tum":
        seqs = sorted(p for p in ctx.data.iterdir() if (p / "groundtruth.txt").is_file())
        return {s.name: partial(_from_files, tum_frames, s, max_frames, stride) for s in seqs}
    scenes = sorted(p for p in ctx.data.iterdir() if (p / "pose").is_dir())
    return {s.name: partial(_from_files, scannet_frames, s, max_frames, stride) for s in scenes}


def make_protocol(dataset: str):
    """The run function of ``pose-sintel``, ``pose-tum`` or ``pose-scannet``."""
    name = f"pose-{dataset}"

    def run(ctx: BenchContext) -> dict:
        loaders = _sequences(ctx, dataset)
        reduction = ctx.option("reduction", "rmse")

        def evaluate(item: Item, ctx: BenchContext) -> dict:
            frames, gt_w2c = loaders[item.name]()
            start = time.perf_counter()
            pred = ctx.predictor().predict(frames, tasks=("camera",))
            seconds = time.perf_counter() - start
            scores = pose_metrics(pred_poses=pred.extrinsics[0].double().numpy(), gt_poses=gt_w2c,
                                  convention="w2c", align="sim3", reduction=reduction)  # type: ignore[arg-type]  # fmt: skip
            return {**dataclasses.asdict(scores), "num_frames": len(frames), "predict_seconds": seconds}

        records = run_items(ctx, name, [Item(n) for n in loaders], evaluate)
        mean = {k: float(np.mean([r[k] for r in records.values()])) for k, _ in NAMES}
        rows = [[n, r["num_frames"], *(fmt(r[k], 1, 4) for k, _ in NAMES)] for n, r in records.items()]
        rows.append(["**mean**", "", *(fmt(mean[k], 1, 4) for k, _ in NAMES)])
        table = markdown_table(["sequence", "frames", *(c for _, c in NAMES)], rows)
        return finish(ctx, name, records, {**mean, "num_sequences": len(records)}, table,
                      title=f"Camera pose, {dataset} (Sim(3)-aligned, {reduction})")  # fmt: skip

    return run
