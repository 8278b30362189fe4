"""``l4p bench pose-*``: Sim(3)-aligned ATE / RPE on tiny TUM, ScanNet and Sintel trees."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bench_support import ReplayPredictor, context, texture, write_rgb

from l4p.bench.registry import get_protocol
from l4p.data.formats.sintel import write_cam
from l4p.outputs import Prediction


def _rz(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _trajectory(n: int) -> np.ndarray:
    """(n, 4, 4) camera-to-world: centres on a helix, rotations about z."""
    c2w = np.tile(np.eye(4), (n, 1, 1))
    for k in range(n):
        c2w[k, :3, :3] = _rz(0.2 * k)
        c2w[k, :3, 3] = [np.cos(0.7 * k), np.sin(0.9 * k), 0.3 * k]
    return c2w


def _camera_oracle(c2w_by_call: list[np.ndarray], *, world=None, scale=1.0, spin=0.0):
    """Returns world-to-camera of the given trajectories, in a similarity-moved world, each camera
    also turned by ``spin * k`` about its own z axis."""

    def respond(video, **_):
        c2w = c2w_by_call.pop(0).copy()
        assert len(video) == len(c2w)
        c2w[:, :3, 3] *= scale
        c2w = (np.eye(4) if world is None else world) @ c2w
        for k in range(len(c2w)):
            c2w[k, :3, :3] = c2w[k, :3, :3] @ _rz(spin * k)
        return Prediction(extrinsics=torch.from_numpy(np.linalg.inv(c2w)).float()[None])

    return ReplayPredictor(respond)


def _quat(rot: np.ndarray) -> np.ndarray:
    w = np.sqrt(1 + np.trace(rot)) / 2
    return np.array(
        [
            (rot[2, 1] - rot[1, 2]) / (4 * w),
            (rot[0, 2] - rot[2, 0]) / (4 * w),
            (rot[1, 0] - rot[0, 1]) / (4 * w),
            w,
        ]
    )


def test_tum_association_selection_and_similarity_invariance(tmp_path) -> None:
    rng = np.random.default_rng(0)
    seq = tmp_path / "tum" / "rgbd_dataset_freiburg3_walking_xyz"
    c2w = _trajectory(8)
    rgb, gt = ["# timestamp filename"], ["# timestamp tx ty tz qx qy qz qw"]
    for k in range(8):
        stamp = 1341846647.0 + 0.033 * k
        write_rgb(seq / "rgb" / f"{stamp:.6f}.png", texture(rng, 12, 16))
        rgb.append(f"{stamp:.6f} rgb/{stamp:.6f}.png")
        gt.append(" ".join(f"{v:.9f}" for v in [stamp + 0.004, *c2w[k, :3, 3], *_quat(c2w[k, :3, :3])]))
        gt.append(f"{stamp + 0.016:.6f} 9 9 9 0 0 0 1")  # a farther stamp: never the nearest
    rgb.append("1341846650.000000 rgb/none.png")  # no GT within 0.02 s: dropped
    (seq / "rgb.txt").write_text("\n".join(rgb) + "\n")
    (seq / "groundtruth.txt").write_text("\n".join(gt) + "\n")
    world = np.eye(4)
    world[:3, :3], world[:3, 3] = _rz(1.0) @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]), [5, -2, 1]
    stub = _camera_oracle([c2w[0:8:2]], world=world, scale=0.25)
    opts = {"max_frames": "8", "stride": "2"}
    out = get_protocol("pose-tum").load()(context(tmp_path / "tum", tmp_path / "o", stub, options=opts))
    assert stub.calls[0]["video"].shape == (4, 12, 16, 3)
    for key in ("ate", "rte", "rre"):
        assert out["scores"][key] == pytest.approx(0.0, abs=1e-5)


def test_scannet_drops_lost_frames_and_known_rotation_error(tmp_path) -> None:
    rng = np.random.default_rng(1)
    scene = tmp_path / "scannet" / "scene0707_00"
    c2w = _trajectory(6)
    for k in range(6):
        write_rgb(scene / "color" / f"{k}.jpg", texture(rng, 12, 16))
        (scene / "pose").mkdir(parents=True, exist_ok=True)
        pose = np.full((4, 4), -np.inf) if k == 3 else c2w[k]
        np.savetxt(scene / "pose" / f"{k}.txt", pose)
    kept = c2w[[0, 1, 2, 4, 5]]
    stub = _camera_oracle([kept], spin=np.deg2rad(2.0))
    out = get_protocol("pose-scannet").load()(
        context(tmp_path / "scannet", tmp_path / "o", stub, options={"stride": "1"})
    )
    # Each camera turned by 2°·k about its own axis: centres unchanged (ATE 0), every relative
    # rotation off by exactly 2° (all rotations share the z axis).
    assert out["scores"]["ate"] == pytest.approx(0.0, abs=1e-6)
    assert out["scores"]["rre"] == pytest.approx(2.0, abs=1e-4)


def test_sintel_cameras(tmp_path) -> None:
    rng = np.random.default_rng(2)
    root = tmp_path / "training"
    c2w = _trajectory(4)
    k = np.array([[50.0, 0, 8], [0, 50.0, 6], [0, 0, 1]])
    for i in range(4):
        write_rgb(root / "clean" / "ambush_2" / f"frame_{i + 1:04d}.png", texture(rng, 12, 16))
        (root / "camdata_left" / "ambush_2").mkdir(parents=True, exist_ok=True)
        write_cam(root / "camdata_left" / "ambush_2" / f"frame_{i + 1:04d}.cam", k, np.linalg.inv(c2w[i])[:3])
    out = get_protocol("pose-sintel").load()(
        context(tmp_path, tmp_path / "o", _camera_oracle([c2w], scale=3.0))
    )
    assert out["scores"]["ate"] == pytest.approx(0.0, abs=1e-5) and out["scores"]["rre"] == pytest.approx(
        0.0, abs=1e-3
    )
