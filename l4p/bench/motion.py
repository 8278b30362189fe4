"""Motion segmentation as the L4P paper evaluates it (Sec. 4.6): foreground IoU, VKITTI 2 and Spring.

Ground truth is derived from cameras, depth and 3D motion (``l4p.metrics.motion``): a pixel of
frame t is moving when its surface point moves in the world by more than ``--set threshold=``
metres (default 0.01) between t and t+1. The model's ``motion`` probability is thresholded at
``--set prob=0.5``. Score: foreground IoU pooled over every valid pixel of every scored frame
(``iou``; the headline number) and the mean of per-frame IoUs (``frame_mean_iou``).
The paper does not state its threshold, frames or pooling: these are **our assumptions**.

``motion-vkitti`` (``--data``: the Virtual KITTI 2 root holding ``Scene01`` ...; items
``<scene>/<variation>``, ``--set variation=clone``, ``--set camera=0``):
``<scene>/<var>/frames/rgb/Camera_0/rgb_%05d.jpg``, ``frames/depth/Camera_0/depth_%05d.png``
(uint16 centimetres), ``frames/forwardSceneFlow/Camera_0/sceneFlow_%05d.png`` and
``<scene>/<var>/{intrinsic,extrinsic}.txt`` (where the ``textgt`` archive puts them, or under
``textgt/``; a header, then ``frame camera fx fy cx cy`` and ``frame camera`` + 16 numbers of the
4x4 world-to-camera matrix). The scene-flow PNG stores (dx, dy, dz) metres in R, G, B as
``(value / 65535 · 2 − 1) · 10`` (as public VKITTI 2 loaders decode it). Assumptions: the displaced
point ``P_t + flow`` is expressed in camera t+1 (``--set sceneflow_frame=camera_t`` if it is in
camera t); depth >= 655 m (sky) has no GT.

``motion-spring`` (``--data``: the split folder, e.g. ``spring/train``): frames
``<scene>/frame_left/frame_left_%04d.png``; per frame k with FW GT: ``disp1_left/..._%04d.dsp5``,
``disp2_FW_left/..._%04d.dsp5`` and ``flow_FW_left/..._%04d.flo5`` (all at twice the resolution,
reduced with ``[::2, ::2]``), ``cam_data/intrinsics.txt`` (``fx fy cx cy`` per frame) and
``cam_data/extrinsics.txt`` (16 numbers per frame). Depth = fx · 0.065 m / disparity (Spring's
stereo baseline). Assumption: the extrinsics are world-to-camera (``--set extrinsics=c2w``
otherwise).
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
from l4p.data.formats.depth_video import read_png_uint16, read_rgb
from l4p.data.formats.spring import read_dsp5, read_flo5
from l4p.metrics.motion import MaskCounts, unproject, world_motion_mask

logger = logging.getLogger(__name__)

SPRING_BASELINE_M = 0.065


def _numbers(path: Path, skip_header: bool) -> np.ndarray:
    lines = path.read_text().splitlines()[1 if skip_header else 0 :]
    return np.array([[float(v) for v in line.split()] for line in lines if line.strip()])


def decode_vkitti_scene_flow(path: Path) -> np.ndarray:
    """(H, W, 3) float64 metres from a VKITTI 2 scene-flow PNG (assumed encoding, module docstring)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read {path}")
    return (img[..., ::-1].astype(np.float64) / 65535.0 * 2.0 - 1.0) * 10.0


def vkitti_gt(folder: Path, camera: int, frame: int, cams: dict, sceneflow_frame: str, threshold: float):
    """``(moving, valid)`` of one VKITTI 2 frame (frame -> frame + 1)."""
    sub = f"Camera_{camera}"
    depth = (
        read_png_uint16(folder / "frames" / "depth" / sub / f"depth_{frame:05d}.png").astype(np.float64) / 100
    )
    flow = decode_vkitti_scene_flow(
        folder / "frames" / "forwardSceneFlow" / sub / f"sceneFlow_{frame:05d}.png"
    )
    k, c2w_t, c2w_t1 = cams["k"][frame], cams["c2w"][frame], cams["c2w"][frame + 1]
    points = unproject(depth=depth, k=k)
    points[depth >= 655.0] = np.nan
    moved = points + flow
    if sceneflow_frame == "camera_t":  # express the displaced point in camera t+1
        moved = (moved @ c2w_t[:3, :3].T + c2w_t[:3, 3] - c2w_t1[:3, 3]) @ c2w_t1[:3, :3]
    return world_motion_mask(
        points_t=points, points_t1=moved, c2w_t=c2w_t, c2w_t1=c2w_t1, threshold=threshold
    )


def spring_gt(scene: Path, frame: int, cams: dict, threshold: float):
    """``(moving, valid)`` of one Spring frame (frame -> frame + 1), left camera."""
    d1 = read_dsp5(scene / "disp1_left" / f"disp1_left_{frame:04d}.dsp5")[::2, ::2].astype(np.float64)
    d2 = read_dsp5(scene / "disp2_FW_left" / f"disp2_FW_left_{frame:04d}.dsp5")[::2, ::2].astype(np.float64)
    flow = read_flo5(scene / "flow_FW_left" / f"flow_FW_left_{frame:04d}.flo5")[::2, ::2].astype(np.float64)
    k = cams["k"][frame - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        z1, z2 = k[0, 0] * SPRING_BASELINE_M / d1, k[0, 0] * SPRING_BASELINE_M / d2
    h, w = d1.shape
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)), -1)
    p_t, p_t1 = unproject(depth=z1, k=k), unproject(depth=z2, k=cams["k"][frame], uv=grid + flow)
    return world_motion_mask(points_t=p_t, points_t1=p_t1, c2w_t=cams["c2w"][frame - 1],
                             c2w_t1=cams["c2w"][frame], threshold=threshold)  # fmt: skip


def _intrinsics(rows: np.ndarray) -> np.ndarray:
    k = np.tile(np.eye(3), (len(rows), 1, 1))
    k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2] = rows.T
    return k


def _items(ctx: BenchContext, dataset: str) -> dict[str, dict]:
    out = {}
    if dataset == "vkitti":
        variation, camera = ctx.option("variation", "clone"), int(ctx.option("camera", "0"))
        for folder in sorted(ctx.data.glob(f"*/{variation}")):
            text = folder if (folder / "extrinsic.txt").is_file() else folder / "textgt"
            if (text / "extrinsic.txt").is_file():
                intr, extr = (_numbers(text / f, True) for f in ("intrinsic.txt", "extrinsic.txt"))
                intr, extr = intr[intr[:, 1] == camera], extr[extr[:, 1] == camera]
                cams = {"k": _intrinsics(intr[:, 2:6]), "c2w": np.linalg.inv(extr[:, 2:18].reshape(-1, 4, 4))}
                frames = sorted((folder / "frames" / "rgb" / f"Camera_{camera}").glob("rgb_*.jpg"))
                out[f"{folder.parent.name}/{variation}"] = {
                    "folder": folder,
                    "cams": cams,
                    "frames": frames,
                    "camera": camera,
                }
        return out
    split = ctx.data / "train" if (ctx.data / "train").is_dir() else ctx.data
    for scene in sorted(p for p in split.iterdir() if (p / "cam_data").is_dir()):
        extr = _numbers(scene / "cam_data" / "extrinsics.txt", False).reshape(-1, 4, 4)
        c2w = np.linalg.inv(extr) if ctx.option("extrinsics", "w2c") == "w2c" else extr
        cams = {"k": _intrinsics(_numbers(scene / "cam_data" / "intrinsics.txt", False)[:, :4]), "c2w": c2w}
        out[scene.name] = {
            "folder": scene,
            "cams": cams,
            "frames": sorted((scene / "frame_left").glob("*.png")),
        }
    return out


def make_protocol(dataset: str):
    """The run function of ``motion-vkitti`` or ``motion-spring``."""
    name = f"motion-{dataset}"

    def run(ctx: BenchContext) -> dict:
        items = _items(ctx, dataset)
        threshold, prob = float(ctx.option("threshold", "0.01")), float(ctx.option("prob", "0.5"))
        max_frames = int(ctx.option("max_frames", "0")) or None

        def evaluate(item: Item, ctx: BenchContext) -> dict:
            info = items[item.name]
            paths = info["frames"][:max_frames]
            frames = np.stack([read_rgb(p) for p in paths])
            start = time.perf_counter()
            motion = ctx.predictor().predict(frames, tasks=("motion",)).motion[0].float().numpy() > prob
            seconds = time.perf_counter() - start
            counts = MaskCounts()
            for t in range(len(paths) - 1):
                if dataset == "vkitti":
                    gt, valid = vkitti_gt(info["folder"], info["camera"], t, info["cams"],
                                          ctx.option("sceneflow_frame", "camera_t1"), threshold)  # fmt: skip
                else:
                    number = int(paths[t].stem.rsplit("_", 1)[1])
                    if not (info["folder"] / "flow_FW_left" / f"flow_FW_left_{number:04d}.flo5").is_file():
                        continue
                    gt, valid = spring_gt(info["folder"], number, info["cams"], threshold)
                counts.add(motion[t], gt, valid)
            return {**dataclasses.asdict(counts), "predict_seconds": seconds}

        records = run_items(ctx, name, [Item(n) for n in items], evaluate)
        parts = [MaskCounts(r["intersection"], r["union"], tuple(r["frame_ious"])) for r in records.values()]
        scores = MaskCounts().merge(parts).scores()
        rows = [[n, len(p.frame_ious), fmt(p.scores()["iou"], 100)] for n, p in zip(records, parts)]
        rows.append(["**all (pooled)**", scores["num_frames"], fmt(scores["iou"], 100)])
        table = markdown_table(["sequence", "frames", "fg IoU %"], rows)
        return finish(ctx, name, records, scores, table, title=f"Motion segmentation, {dataset} (foreground IoU)",
                      extra={"threshold_m": threshold, "prob_threshold": prob})  # fmt: skip

    return run
