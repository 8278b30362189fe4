"""3D export: PLY files parse back, unprojection and frusta are geometrically right, poses and
the 3D-track npz have the documented layout."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from test_viz import _fake_prediction

from l4p.export import (
    camera_frustum,
    depth_to_points,
    export_3d,
    rotation_to_quaternion,
    save_tracks_npz,
    write_ply,
    write_tum_trajectory,
)
from l4p.export.folder import write_depth_png16

_PLY_TYPES = {"float": "<f4", "uchar": "u1", "int": "<i4", "double": "<f8"}


def read_ply(path):
    """Minimal independent PLY reader: vertex properties, and triangle faces (uchar count, int indices)."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    assert header[0] == "ply"
    fmt = header[1].split()[1]
    elements, current = [], None
    for line in header[2:]:
        words = line.split()
        if words[0] == "element":
            current = {"name": words[1], "count": int(words[2]), "props": []}
            elements.append(current)
        elif words[0] == "property":
            current["props"].append(words[1:])
    out = {}
    if fmt == "ascii":
        rows = data[end:].decode("ascii").split("\n")
        for el in elements:
            block, rows = rows[: el["count"]], rows[el["count"] :]
            out[el["name"]] = np.array([[float(v) for v in r.split()] for r in block]).reshape(
                el["count"], -1
            )
        return out
    assert fmt == "binary_little_endian"
    offset = end
    for el in elements:
        if el["props"][0][0] == "list":
            dtype = np.dtype([("n", "u1"), ("idx", "<i4", (3,))])
            table = np.frombuffer(data, dtype, el["count"], offset)
            assert (table["n"] == 3).all()
            out[el["name"]] = table["idx"]
        else:
            dtype = np.dtype([(p[1], _PLY_TYPES[p[0]]) for p in el["props"]])
            table = np.frombuffer(data, dtype, el["count"], offset)
            out[el["name"]] = np.stack([table[n].astype(np.float64) for n in dtype.names], -1)
        offset += dtype.itemsize * el["count"]
    assert offset == len(data)
    return out


@pytest.mark.parametrize("binary", [True, False])
def test_ply_roundtrip(tmp_path, binary):
    rng = np.random.default_rng(0)
    verts = rng.normal(size=(7, 3)).astype(np.float32)
    colors = rng.integers(0, 255, (7, 3), dtype=np.uint8)
    faces = np.array([[0, 1, 2], [2, 3, 6]])
    ply = read_ply(write_ply(tmp_path / "a.ply", vertices=verts, colors=colors, faces=faces, binary=binary))
    np.testing.assert_allclose(ply["vertex"][:, :3], verts, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ply["vertex"][:, 3:], colors)
    faces_back = ply["face"][:, 1:] if not binary else ply["face"]
    np.testing.assert_array_equal(faces_back, faces)
    assert read_ply(write_ply(tmp_path / "b.ply", vertices=verts))["vertex"].shape == (7, 3)
    with pytest.raises(ValueError):
        write_ply(tmp_path / "c.ply", vertices=verts, faces=np.array([[0, 1, 9]]))


def _pose(rng):
    rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot *= np.sign(np.linalg.det(rot))
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rot, rng.normal(size=3)
    return pose


def test_unprojection_reprojects_to_pixel_centres():
    rng = np.random.default_rng(1)
    k = np.array([[40.0, 0.5, 15.2], [0, 38.0, 11.7], [0, 0, 1]])
    depth = rng.uniform(1, 5, (24, 32)).astype(np.float32)
    depth[0, 0] = 0
    w2c = _pose(rng)
    points, pix = depth_to_points(depth=depth, intrinsics=k, world_to_camera=w2c, stride=2)
    assert len(points) == 12 * 16 - 1 and (pix % 2 == 0).all()
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    uv = cam @ k.T
    np.testing.assert_allclose(uv[:, :2] / uv[:, 2:], pix[:, ::-1], atol=1e-3)
    np.testing.assert_allclose(cam[:, 2], depth[pix[:, 0], pix[:, 1]], rtol=1e-5)


def test_frustum_apex_is_the_camera_centre_and_corners_project_to_image_corners():
    rng = np.random.default_rng(2)
    w2c, k = _pose(rng), np.array([[50.0, 0, 20], [0, 50, 15], [0, 0, 1]])
    verts = camera_frustum(world_to_camera=w2c, intrinsics=k, width=40, height=30, size=0.5)
    np.testing.assert_allclose(verts[0], np.linalg.inv(w2c)[:3, 3], atol=1e-5)
    cam = verts[1:] @ w2c[:3, :3].T + w2c[:3, 3]
    uv = cam @ k.T
    np.testing.assert_allclose(
        uv[:, :2] / uv[:, 2:], [[-0.5, -0.5], [39.5, -0.5], [39.5, 29.5], [-0.5, 29.5]], atol=1e-3
    )
    np.testing.assert_allclose(cam[:, 2], 0.5, atol=1e-5)


def _quat_to_matrix(q):
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])  # fmt: skip


def test_quaternions_and_tum_file(tmp_path):
    rng = np.random.default_rng(3)
    rotations = [_pose(rng)[:3, :3] for _ in range(20)]
    rotations += [np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1]), np.eye(3)]
    for rot in rotations:
        q = rotation_to_quaternion(rot)
        assert q[3] >= 0 and np.linalg.norm(q) == pytest.approx(1)
        np.testing.assert_allclose(_quat_to_matrix(q), rot, atol=1e-9)
    poses = np.stack([_pose(rng) for _ in range(4)])
    lines = write_tum_trajectory(tmp_path / "t.txt", extrinsics=poses, fps=2).read_text().splitlines()
    values = np.array([[float(v) for v in line.split()] for line in lines[1:]])
    assert values.shape == (4, 8)
    np.testing.assert_allclose(values[:, 0], [0, 0.5, 1, 1.5])
    np.testing.assert_allclose(values[2, 1:4], np.linalg.inv(poses[2])[:3, 3], atol=1e-6)


def test_export_3d_files_and_tracks_npz_layout(tmp_path):
    t, h, w, n = 5, 24, 32, 4
    pred = _fake_prediction(t, h, w, n)
    frames = np.random.default_rng(4).integers(0, 255, (t, h, w, 3), dtype=np.uint8)
    written = export_3d(tmp_path, frames=frames, pred=pred, fps=12.5, stride=2)
    assert sorted(written) == ["cameras_json", "cameras_ply", "pointclouds", "tracks_3d", "trajectory"]
    clouds = sorted((tmp_path / "pointclouds").glob("*.ply"))
    assert [p.name for p in clouds] == [f"frame_{i:05d}.ply" for i in range(t)]
    cloud = read_ply(clouds[3])["vertex"]
    assert cloud.shape == ((h // 2) * (w // 2), 6)
    np.testing.assert_array_equal(cloud[0, 3:], frames[3, 0, 0])
    cams = read_ply(tmp_path / "cameras.ply")
    assert cams["vertex"].shape == (5 * t, 6) and cams["face"].shape == (6 * t, 3)
    np.testing.assert_allclose(cams["vertex"][5 * 4, :3], [-1.0, 0, 0], atol=1e-5)  # centre of last camera
    doc = json.loads((tmp_path / "cameras.json").read_text())
    assert len(doc["frames"]) == t and doc["fps"] == 12.5 and np.shape(doc["frames"][0]["K"]) == (3, 3)

    npz = np.load(tmp_path / "tracks_3d.npz")
    shapes = {k: npz[k].shape for k in npz.files}
    assert shapes == {
        "coords": (t, n, 3), "coords_cam": (t, n, 3), "tracks_2d": (t, n, 2), "visibs": (t, n), "confs": (t, n),
        "queries": (n, 3), "intrinsics": (t, 3, 3), "extrinsics": (t, 4, 4), "depths": (t, h, w),
        "video": (t, 3, h, w), "video_fps": (1,),
    }  # fmt: skip
    assert npz["visibs"].dtype == bool and npz["video"].max() <= 1.0
    np.testing.assert_allclose(npz["coords"], pred.tracks_world[0].numpy())
    no_video = np.load(save_tracks_npz(tmp_path / "nv.npz", pred, include_video=False))
    assert "video" not in no_video.files


def test_tracks_npz_without_cameras_and_without_tracks(tmp_path):
    pred = _fake_prediction()
    pred.extrinsics = pred.intrinsics = pred.tracks_world = None
    npz = np.load(save_tracks_npz(tmp_path / "a.npz", pred))
    np.testing.assert_array_equal(npz["coords"], npz["coords_cam"])
    np.testing.assert_array_equal(npz["extrinsics"][2], np.eye(4))
    pred.tracks_3d = None
    with pytest.raises(ValueError, match="no 3D tracks"):
        save_tracks_npz(tmp_path / "b.npz", pred)


def test_depth_png16_roundtrip(tmp_path):
    depth = torch.rand(3, 8, 10).numpy() * 20 + 0.1
    depth[1, 2, 3] = np.nan
    folder = write_depth_png16(tmp_path / "d", depth)
    scale = json.loads((folder / "scale.json").read_text())["scale"]
    back = np.stack([cv2.imread(str(folder / f"frame_{i:05d}.png"), cv2.IMREAD_UNCHANGED) for i in range(3)])
    assert back.dtype == np.uint16 and back[1, 2, 3] == 0
    valid = np.isfinite(depth)
    np.testing.assert_allclose(back[valid] * scale, depth[valid], atol=scale)


def test_export_3d_without_cameras_says_so(tmp_path, caplog):
    import logging

    import torch

    from l4p.export import export_3d
    from l4p.outputs import Prediction

    pred = Prediction(depth=torch.ones(1, 2, 8, 8), tracks=torch.zeros(1, 2, 1, 2))
    with caplog.at_level(logging.WARNING):
        written = export_3d(tmp_path, frames=np.zeros((2, 8, 8, 3), np.uint8), pred=pred)
    assert written == {} and "need the 'camera' task" in caplog.text
