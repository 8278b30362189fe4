"""``l4p bench motion-*``: GT from cameras, depth and 3D motion; foreground IoU (tiny trees)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from bench_support import ReplayPredictor, context, t, texture, write_png16, write_rgb

from l4p.bench.registry import get_protocol
from l4p.data.formats.spring import write_dsp5, write_flo5
from l4p.outputs import Prediction

H, W, FX = 8, 10, 20.0
CAR = (slice(2, 6), slice(3, 7))  # 16 moving pixels


def _mask_oracle(mask: np.ndarray, n: int) -> ReplayPredictor:
    return ReplayPredictor(
        lambda video, **_: Prediction(motion=t(np.repeat(mask[None], n, 0).astype(np.float32)))
    )


def _vkitti_tree(root: Path, rng: np.random.Generator, n: int = 3, dz: float = 0.3) -> None:
    """Camera moving forward dz per frame; a 'car' moving 0.5 m sideways; depth 5 m."""
    folder = root / "Scene01" / "clone"
    intr, extr = ["frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]"], ["frame cameraID r1,1 ... 0 0 0 1"]
    for k in range(n):
        write_rgb(folder / "frames" / "rgb" / "Camera_0" / f"rgb_{k:05d}.jpg", texture(rng, H, W))
        write_png16(folder / "frames" / "depth" / "Camera_0" / f"depth_{k:05d}.png", np.full((H, W), 500))
        intr.append(f"{k} 0 {FX} {FX} {W / 2} {H / 2}")
        w2c = np.eye(4)
        w2c[2, 3] = -dz * k  # camera centre at z = dz * k
        extr.append(f"{k} 0 " + " ".join(str(v) for v in w2c.reshape(-1)))
        flow = np.zeros((H, W, 3))
        flow[..., 2] = -dz  # static points come closer by dz, seen from camera t+1
        flow[CAR + (0,)] = 0.5
        png = np.round((flow / 10 + 1) / 2 * 65535).astype(np.uint16)[..., ::-1]  # R,G,B = dx,dy,dz
        path = folder / "frames" / "forwardSceneFlow" / "Camera_0" / f"sceneFlow_{k:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), np.ascontiguousarray(png))
    (folder / "intrinsic.txt").write_text("\n".join(intr) + "\n")  # as the textgt archive unpacks
    (folder / "extrinsic.txt").write_text("\n".join(extr) + "\n")


def test_vkitti_iou_perfect_half_and_camera_motion_matters(tmp_path) -> None:
    _vkitti_tree(tmp_path / "vkitti", np.random.default_rng(0))
    car = np.zeros((H, W), bool)
    car[CAR] = True
    run = get_protocol("motion-vkitti").load()
    out = run(context(tmp_path / "vkitti", tmp_path / "o", _mask_oracle(car, 3)))
    assert (
        out["items"] == ["Scene01/clone"] and out["scores"]["iou"] == 1.0 and out["scores"]["num_frames"] == 2
    )
    wider = car.copy()
    wider[2:6, 7:10], wider[6, 3:7] = True, True  # 16 extra pixels: IoU = 16 / 32
    out = run(context(tmp_path / "vkitti", tmp_path / "o", _mask_oracle(wider, 3), overwrite=True))
    assert out["scores"]["iou"] == pytest.approx(0.5)
    # Reading the flow as if it were in camera t ignores the ego-motion: static points "move".
    opts = {"sceneflow_frame": "camera_t"}
    out = run(context(tmp_path / "vkitti", tmp_path / "o2", _mask_oracle(car, 3), options=opts))
    assert out["scores"]["iou"] == pytest.approx(16 / (H * W))


def test_spring_motion_from_disparity_flow_and_cameras(tmp_path) -> None:
    rng = np.random.default_rng(1)
    scene = tmp_path / "spring" / "train" / "0001"
    n, z0, base = 3, 4.0, 0.065
    u, v = np.meshgrid(np.arange(W, dtype=float), np.arange(H, dtype=float))
    (scene / "cam_data").mkdir(parents=True)
    (scene / "cam_data" / "intrinsics.txt").write_text(
        "".join(f"{FX} {FX} {W / 2} {H / 2}\n" for _ in range(n))
    )
    w2c = [np.eye(4) for _ in range(n)]
    for k in range(n):
        w2c[k][0, 3] = -0.1 * k  # camera centre at x = 0.1 k
    (scene / "cam_data" / "extrinsics.txt").write_text(
        "".join(" ".join(map(str, m.reshape(-1))) + "\n" for m in w2c)
    )
    for k in range(1, n + 1):
        write_rgb(scene / "frame_left" / f"frame_left_{k:04d}.png", texture(rng, H, W))
    up = lambda a: np.repeat(np.repeat(a, 2, 0), 2, 1)  # noqa: E731  (GT is stored at 2x)
    for k in range(1, n):
        z1 = np.full((H, W), z0)
        z2 = z1.copy()
        z2[CAR] -= 0.5  # the car comes 0.5 m closer; the camera moves 0.1 m right
        x1 = (u - W / 2) / FX * z1
        u2 = FX * (x1 - 0.1) / z2 + W / 2
        write_dsp5(scene / "disp1_left" / f"disp1_left_{k:04d}.dsp5", up(FX * base / z1))
        write_dsp5(scene / "disp2_FW_left" / f"disp2_FW_left_{k:04d}.dsp5", up(FX * base / z2))
        flow = np.stack([u2 - u, (v - H / 2) / FX * z1 * FX / z2 + H / 2 - v], -1)
        write_flo5(scene / "flow_FW_left" / f"flow_FW_left_{k:04d}.flo5", up(flow).astype(np.float32))
    car = np.zeros((H, W), bool)
    car[CAR] = True
    out = get_protocol("motion-spring").load()(
        context(tmp_path / "spring", tmp_path / "o", _mask_oracle(car, n))
    )
    assert out["scores"]["iou"] == 1.0 and out["scores"]["num_frames"] == 2
