"""Real-data loaders on small files fabricated in each data set's published layout."""

import gzip
import json
import logging

import cv2
import numpy as np
import pytest
import torch

from l4p.training.datamodule import MixtureDataset
from l4p.training.datasets import DynamicReplicaDataset, KubricDataset, PointOdysseyDataset, TartanAirDataset
from l4p.training.datasets.base import quaternion_to_matrix
from l4p.training.losses import project_points

T, H, W, N = 6, 24, 32, 20
RNG = np.random.default_rng(0)


def _write_rgb(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)
    cv2.imwrite(str(path), image)


def _check_tracks(sample):
    front = sample["tracks3d_tn3"][..., 2] > 0
    proj = project_points(sample["tracks3d_tn3"], sample["intrinsics_t33"])
    assert bool(front.any())
    assert torch.allclose(proj[front], sample["tracks_tn2"][front], atol=1e-3)


def _world_points(n=N):
    return np.stack([RNG.uniform(-1, 1, n), RNG.uniform(-0.8, 0.8, n), RNG.uniform(3, 6, n)], -1)


def test_quaternion_to_matrix_known_rotations():
    assert np.allclose(quaternion_to_matrix(np.array([1.0, 0, 0, 0])), np.eye(3))
    half = np.sqrt(0.5)
    rz90 = quaternion_to_matrix(np.array([half, 0, 0, half]))  # 90 degrees about z
    assert np.allclose(rz90 @ np.array([1.0, 0, 0]), [0, 1, 0])


def test_pointodyssey_layout(tmp_path):
    seq = tmp_path / "train" / "scene_a"
    k = np.array([[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1]])
    ext = np.tile(np.eye(4), (T, 1, 1))
    ext[:, 0, 3] = -0.05 * np.arange(T)  # camera moving right
    world = np.repeat(_world_points()[None], T, 0)
    cam = world + ext[:, None, :3, 3]
    trajs_2d = (cam @ k.T)[..., :2] / cam[..., 2:]
    for i in range(T):
        _write_rgb(seq / "rgbs" / f"rgb_{i:05d}.jpg", i)
        (seq / "depths").mkdir(exist_ok=True)
        cv2.imwrite(str(seq / "depths" / f"depth_{i:05d}.png"), np.full((H, W), 327, np.uint16))
    visibs = RNG.random((T, N)) > 0.2
    np.savez(seq / "anno.npz", trajs_2d=trajs_2d, trajs_3d=world, valids=np.ones((T, N), bool), visibs=visibs,
             intrinsics=np.tile(k, (T, 1, 1)), extrinsics=ext)  # fmt: skip
    data = PointOdysseyDataset(tmp_path, split="train", num_frames=4, frame_stride=1)
    assert len(data) == 1
    sample = data[0]
    assert sample["rgb_tchw"].shape == (4, 3, H, W)
    assert torch.allclose(sample["depth_thw"], torch.full((4, H, W), 327 * 1000 / 65535))
    assert bool(sample["has_tracks"]) and not bool(sample["has_flow"])
    _check_tracks(sample)
    assert torch.equal(sample["visibility_tn"], torch.from_numpy(visibs[:4][:, visibs[:4].any(0)]))


def test_kubric_layout(tmp_path):
    seq = tmp_path / "train" / "0007"
    f_mm, sensor = 35.0, 32.0
    fx = f_mm / sensor * W
    positions = np.stack([0.1 * np.arange(T), np.zeros(T), np.zeros(T)], -1)
    quats = np.tile([1.0, 0, 0, 0], (T, 1))  # Blender camera looking down -z
    world = np.stack([RNG.uniform(-1, 1, N), RNG.uniform(-0.7, 0.7, N), -RNG.uniform(3, 6, N)], -1)
    rel = world[None] - positions[:, None]  # camera frame (rotation identity), Blender axes
    cv = rel * np.array([1.0, -1.0, -1.0])
    raster = np.stack([fx * cv[..., 0] / cv[..., 2] + W / 2, fx * cv[..., 1] / cv[..., 2] + H / 2], -1)
    ranges = np.linalg.norm(rel, axis=-1)
    occluded = RNG.random((N, T)) < 0.2
    for i in range(T):
        _write_rgb(seq / "frames" / f"{i:03d}.png", i)
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    z = 4.0
    dist = z * np.sqrt(1 + ((xs - W / 2) / fx) ** 2 + ((ys - H / 2) / fx) ** 2)
    ann = {
        "coords": raster.transpose(1, 0, 2), "visibility": occluded, "coords_depth": ranges.T,
        "depth": np.tile(dist[None, ..., None], (T, 1, 1, 1)).astype(np.float32),
        "camera": {"focal_length": f_mm, "sensor_width": sensor, "positions": positions, "quaternions": quats},
    }  # fmt: skip
    np.save(seq / "0007.npy", ann, allow_pickle=True)
    sample = KubricDataset(tmp_path, num_frames=T)[0]
    _check_tracks(sample)
    assert torch.allclose(sample["depth_thw"], torch.full((T, H, W), z), atol=1e-4)
    assert torch.allclose(sample["tracks3d_tn3"][0], torch.from_numpy(cv[0]).float(), atol=1e-4)
    keep = ~occluded.all(1)
    assert torch.equal(sample["visibility_tn"], torch.from_numpy(~occluded[keep].T))
    centres = torch.linalg.inv(sample["extrinsics_t44"])[:, :3, 3]
    assert torch.allclose(centres, torch.from_numpy(positions).float(), atol=1e-5)


def _pytorch3d_viewpoint(r, t, focal, pp):
    return {
        "R": r.tolist(),
        "T": t.tolist(),
        "focal_length": focal,
        "principal_point": pp,
        "intrinsics_format": "ndc_isotropic",
    }


def test_dynamic_replica_layout(tmp_path):
    split = tmp_path / "valid"
    focal, pp, s = [2.2, 2.2], [0.05, -0.1], min(H, W) / 2
    world = _world_points()
    entries = []
    for cam in ("left", "right"):
        for i in range(T):
            r, t = np.eye(3), np.array([0.05 * i + (cam == "right") * 0.1, 0.0, 0.0])
            view = world @ r + t  # PyTorch3D: X_view = X_world R + T (+X left, +Y up)
            ndc = np.array(focal) * view[:, :2] / view[:, 2:] + np.array(pp)
            screen = np.array([W / 2, H / 2]) - ndc * s
            name = f"seq1_{cam}"
            img, dep, trj = (
                f"{name}/images/{name}-{i:04d}.png",
                f"{name}/depths/{name}_{i:04d}.geometric.png",
                f"{name}/trajectories/{i:06d}.pth",
            )
            _write_rgb(split / img, i)
            (split / dep).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(split / dep), np.full((H, W), 2.5, np.float16).view(np.uint16))
            (split / trj).parent.mkdir(parents=True, exist_ok=True)
            vis = torch.from_numpy(RNG.random(N) > 0.3)
            torch.save({"traj_2d": torch.from_numpy(np.concatenate([screen, view[:, 2:]], -1)).float(),
                        "traj_3d_world": torch.from_numpy(world).float(), "verts_inds_vis": vis}, split / trj)  # fmt: skip
            entries.append({"sequence_name": "seq1", "frame_number": i, "camera_name": cam, "image": {"path": img, "size": [H, W]},
                            "depth": {"path": dep, "scale_adjustment": 2.0}, "viewpoint": _pytorch3d_viewpoint(r, t, focal, pp),
                            "trajectories": {"path": trj}})  # fmt: skip
    with gzip.open(split / "frame_annotations_valid.jgz", "wt", encoding="utf8") as f:
        json.dump(entries[::-1], f)
    data = DynamicReplicaDataset(tmp_path, split="valid", num_frames=3, frame_stride=2)
    assert len(data) == 1
    sample = data[0]
    assert torch.allclose(sample["depth_thw"], torch.full((3, H, W), 5.0))
    _check_tracks(sample)
    # X_view = X_world + T: the centre is -T in the (unchanged) world frame
    centres = torch.linalg.inv(sample["extrinsics_t44"])[:, :3, 3]
    assert torch.allclose(centres[:, 0], torch.tensor([0.0, -0.1, -0.2]), atol=1e-5)


def test_tartanair_layout_and_derived_backward_flow(tmp_path):
    seq = tmp_path / "abandonedfactory" / "Easy" / "P001"
    poses = []
    for i in range(T):
        _write_rgb(seq / "image_left" / f"{i:06d}_left.png", i)
        (seq / "depth_left").mkdir(exist_ok=True)
        depth = np.full((H, W), 5.0, np.float32)
        depth[0, :] = 10000.0  # sky
        np.save(seq / "depth_left" / f"{i:06d}_left_depth.npy", depth)
        # NED body axes = (forward, right, down); this quaternion makes the OpenCV camera axes the world axes
        poses.append([0.1 * i, 0.0, 0.0, -0.5, -0.5, -0.5, 0.5])
    np.savetxt(seq / "pose_left.txt", np.array(poses))
    sample = TartanAirDataset(tmp_path, num_frames=4)[0]
    assert torch.allclose(sample["extrinsics_t44"][:, :3, :3], torch.eye(3).expand(4, 3, 3), atol=1e-6)
    assert not bool(sample["depth_valid_thw"][:, 0].any()) and bool(sample["depth_valid_thw"][:, 1:].all())
    valid = sample["flow_bwd_valid_thw"]
    assert not bool(valid[0].any()) and bool(valid[1:, 1:].all())
    # camera moves +0.1 along x per frame, plane at z = 5, f = W / 2: previous frame sees it 0.1 * f / 5 px right
    assert torch.allclose(
        sample["flow_bwd_t2hw"][1:, 0][valid[1:]], torch.tensor(0.1 * (W / 2) / 5.0), atol=1e-4
    )
    assert torch.allclose(sample["flow_bwd_t2hw"][1:, 1][valid[1:]], torch.tensor(0.0), atol=1e-4)


def test_corrupt_or_missing_items_are_logged_and_skipped(tmp_path, caplog):
    for name, broken in (("a_bad", True), ("b_good", False)):
        seq = tmp_path / "train" / name
        for i in range(4):
            _write_rgb(seq / "rgbs" / f"rgb_{i:05d}.jpg", i)
            (seq / "depths").mkdir(exist_ok=True)
            if not (broken and i == 2):  # a missing depth file
                cv2.imwrite(str(seq / "depths" / f"depth_{i:05d}.png"), np.full((H, W), 1000, np.uint16))
        world = np.repeat(_world_points()[None], 4, 0)
        np.savez(seq / "anno.npz", trajs_2d=world[..., :2] * 10 + 12, trajs_3d=world, valids=np.ones((4, N), bool),
                 visibs=np.ones((4, N), bool), intrinsics=np.tile(np.eye(3), (4, 1, 1)), extrinsics=np.tile(np.eye(4), (4, 1, 1)))  # fmt: skip
    (tmp_path / "train" / "c_corrupt").mkdir()
    (tmp_path / "train" / "c_corrupt" / "anno.npz").write_bytes(b"not a zip file")
    (tmp_path / "train" / "c_corrupt" / "rgbs").mkdir()
    source = PointOdysseyDataset(tmp_path, num_frames=4)
    assert [s.name for s in source.sequences] == ["a_bad", "b_good"]  # no frames: c_corrupt is skipped
    mixture = MixtureDataset([source], size=(16, 16), num_tracks=4, augment=None)
    with caplog.at_level(logging.WARNING):
        sample = mixture[(0, 0, 0)]
    assert "skipping unreadable item 0" in caplog.text
    assert sample["rgb_tchw"].shape == (4, 3, 16, 16) and bool(sample["has_depth"])
    with pytest.raises(RuntimeError, match="consecutive unreadable"):
        MixtureDataset([source], size=(16, 16), num_tracks=4, augment=None, max_retries=1)[(0, 0, 0)]


def test_mixture_of_synthetic_and_real_sources_collates(tmp_path):
    from torch.utils.data import default_collate

    from l4p.training.datamodule import L4PDataModule, SourceConfig

    test_pointodyssey_layout(tmp_path)
    data = L4PDataModule(
        train_sources=[SourceConfig(seeds=(0, 10), weight=1.0), SourceConfig(kind="pointodyssey", root=str(tmp_path), weight=1.0)],
        num_frames=4, height=16, width=16, num_tracks=5, batch_size=4, samples_per_epoch=8,
    )  # fmt: skip
    loader = data.train_dataloader()
    keys = list(loader.sampler)
    assert {k[0] for k in keys} == {0, 1}
    batch = default_collate([loader.dataset[k] for k in keys[:6]])
    assert batch["rgb_tchw"].shape == (6, 4, 3, 16, 16)
    sources = torch.tensor([k[0] for k in keys[:6]])
    assert torch.equal(batch["has_flow"], sources == 0) and bool(batch["has_tracks"].all())
