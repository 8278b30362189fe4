"""File readers/writers on the real samples in ../shared/data and on fabricated files."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from conftest import shared_path
from PIL import Image

from l4p.data.readers import (
    SintelSequence,
    TapVid3DSample,
    known_flow_mask,
    load_tapvid3d_npz,
    load_tapvid3d_prediction,
    read_cam,
    read_dpt,
    read_flo,
    read_kitti_flow,
    read_mask_png,
    save_tapvid3d_npz,
    save_tapvid3d_prediction,
    write_cam,
    write_dpt,
    write_flo,
    write_kitti_flow,
)

RNG = np.random.default_rng(0)
SINTEL = "data/sintel_alley_1_sample/training"


# ------------------------------------------------------------------------------------- .flo
def test_sintel_flo_reads_and_rewrites_byte_identically(tmp_path) -> None:
    path = shared_path(f"{SINTEL}/flow/alley_1/frame_0002.flo")
    flow = read_flo(path)
    assert flow.shape == (436, 1024, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    write_flo(tmp_path / "f.flo", flow)
    assert (tmp_path / "f.flo").read_bytes() == path.read_bytes()


def test_sintel_flow_direction_and_component_order() -> None:
    """Sampling frame 3 at x + u(x), y + v(x) reproduces frame 2 (flow K is K → K+1)."""
    seq = SintelSequence(root=shared_path(SINTEL), name="alley_1", render_pass="clean")
    flow, occ = seq.flow(1), seq.occlusions(1)
    f2, f3 = seq.frame(1).astype(np.float32), seq.frame(2).astype(np.float32)
    ys, xs = np.mgrid[0:436, 0:1024].astype(np.float32)
    warped = cv2.remap(f3, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR)
    swapped = cv2.remap(f3, xs + flow[..., 1], ys + flow[..., 0], cv2.INTER_LINEAR)
    keep = ~occ
    err = np.abs(warped - f2)[keep].mean()
    assert err < 0.5 * np.abs(f3 - f2)[keep].mean()
    assert err < 0.5 * np.abs(swapped - f2)[keep].mean()


def test_middlebury_unknown_flow() -> None:
    flow = read_flo(shared_path("data/middlebury_flow_gt/flow_gt.flo"))
    assert flow.shape == (388, 584, 2)
    known = known_flow_mask(flow)
    assert 0.01 < 1 - known.mean() < 0.025  # about 1.6 % unknown (SOURCE.txt)
    assert np.abs(flow[~known]).max() > 1e9 and np.abs(flow[known]).max() < 10


def test_flo_errors(tmp_path) -> None:
    good = tmp_path / "g.flo"
    write_flo(good, RNG.normal(size=(3, 5, 2)).astype(np.float32))
    data = good.read_bytes()
    (tmp_path / "magic.flo").write_bytes(b"XXXX" + data[4:])
    with pytest.raises(ValueError, match="magic"):
        read_flo(tmp_path / "magic.flo")
    (tmp_path / "short.flo").write_bytes(data[:-4])
    with pytest.raises(ValueError, match="truncated"):
        read_flo(tmp_path / "short.flo")
    (tmp_path / "long.flo").write_bytes(data + b"\0")
    with pytest.raises(ValueError, match="trailing"):
        read_flo(tmp_path / "long.flo")
    (tmp_path / "size.flo").write_bytes(data[:4] + np.array([-3, 5], "<i4").tobytes() + data[12:])
    with pytest.raises(ValueError, match="size"):
        read_flo(tmp_path / "size.flo")
    (tmp_path / "tiny.flo").write_bytes(b"PI")
    with pytest.raises(ValueError):
        read_flo(tmp_path / "tiny.flo")


# ------------------------------------------------------------------------------ .dpt / .cam
def test_dpt_round_trip_and_layout(tmp_path) -> None:
    depth = RNG.uniform(0.1, 1e4, size=(7, 11)).astype(np.float32)
    depth[0, 0] = np.inf
    write_dpt(tmp_path / "d.dpt", depth)
    raw = (tmp_path / "d.dpt").read_bytes()
    assert raw[:4] == b"PIEH" and len(raw) == 12 + 4 * 7 * 11
    assert np.frombuffer(raw[4:12], "<i4").tolist() == [11, 7]  # width, then height
    np.testing.assert_array_equal(read_dpt(tmp_path / "d.dpt"), depth)
    assert np.frombuffer(raw[12:16], "<f4")[0] == np.inf  # row-major from the top-left pixel
    (tmp_path / "t.dpt").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_dpt(tmp_path / "t.dpt")


def test_cam_round_trip(tmp_path) -> None:
    k = np.array([[1120.0, 0.0, 511.5], [0.0, 1120.0, 217.5], [0.0, 0.0, 1.0]])
    rt = np.hstack([np.linalg.qr(RNG.normal(size=(3, 3)))[0], RNG.normal(size=(3, 1))])
    write_cam(tmp_path / "c.cam", k, rt)
    raw = (tmp_path / "c.cam").read_bytes()
    assert len(raw) == 172 and raw[:4] == b"PIEH"
    k2, rt2 = read_cam(tmp_path / "c.cam")
    assert np.array_equal(k2, k) and np.array_equal(rt2, rt)
    write_cam(tmp_path / "c2.cam", k2, rt2)
    assert (tmp_path / "c2.cam").read_bytes() == raw
    (tmp_path / "bad.cam").write_bytes(raw[:100])
    with pytest.raises(ValueError, match="172"):
        read_cam(tmp_path / "bad.cam")


# ------------------------------------------------------------------------------------ KITTI
def test_kitti_png_read_and_round_trip(tmp_path) -> None:
    path = shared_path("data/kitti_flow_sample/flow_gt.png")
    flow, valid = read_kitti_flow(path)
    assert flow.shape == (375, 1242, 2) and valid.shape == (375, 1242)
    assert 0.10 < valid.mean() < 0.25  # about 16 % valid (SOURCE.txt)
    assert np.array_equal(flow * 64, np.round(flow * 64))  # 1/64-px steps
    assert np.all(flow[~valid] == 0) and np.abs(flow[valid]).max() > 1
    write_kitti_flow(tmp_path / "k.png", flow, valid)
    flow2, valid2 = read_kitti_flow(tmp_path / "k.png")
    assert np.array_equal(flow2, flow) and np.array_equal(valid2, valid)
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR
    assert np.array_equal(cv2.imread(str(tmp_path / "k.png"), flags), cv2.imread(str(path), flags))
    cv2.imwrite(str(tmp_path / "u8.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="uint16"):
        read_kitti_flow(tmp_path / "u8.png")


# ----------------------------------------------------------------------------- Sintel tree
def test_sintel_sequence_on_the_sample(tmp_path) -> None:
    root = shared_path(SINTEL)
    seq = SintelSequence(root=root, name="alley_1", render_pass="final")
    assert len(seq) == 4 and seq.frame_numbers == [1, 2, 3, 4]
    assert seq.frames().shape == (4, 436, 1024, 3) and seq.frames().dtype == np.uint8
    assert seq.has("flow", 1) and not seq.has("flow", 0) and not seq.has("depth", 1)
    occ = seq.occlusions(1)
    raw = cv2.imread(str(root / "occlusions/alley_1/frame_0002.png"), cv2.IMREAD_UNCHANGED)
    assert occ.sum() == int((raw > 0).sum()) > 0 and set(np.unique(raw)) <= {0, 255}
    assert seq.invalid(1).sum() == int(read_mask_png(root / "invalid/alley_1/frame_0002.png").sum())
    with pytest.raises(FileNotFoundError):
        seq.depth(0)
    with pytest.raises(IndexError):
        seq.flow(4)
    # a depth package beside it
    depth_root = tmp_path / "depth_training"
    (depth_root / "depth/alley_1").mkdir(parents=True)
    (depth_root / "camdata_left/alley_1").mkdir(parents=True)
    depth = RNG.uniform(1, 50, (436, 1024)).astype(np.float32)
    write_dpt(depth_root / "depth/alley_1/frame_0003.dpt", depth)
    write_cam(depth_root / "camdata_left/alley_1/frame_0003.cam", np.eye(3), np.eye(4))
    seq = SintelSequence(root=root, name="alley_1", depth_root=depth_root)
    assert np.array_equal(seq.depth(2), depth) and np.array_equal(seq.camera(2)[1], np.eye(4)[:3])


# -------------------------------------------------------------------------------- TAPVid-3D
def _jpeg(h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_tapvid3d_npz_round_trip(tmp_path) -> None:
    t, n = 3, 5
    sample = TapVid3DSample(
        images_jpeg_bytes=[_jpeg(24, 40) for _ in range(t)],
        queries_xyt=np.stack([RNG.uniform(0, 40, n), RNG.uniform(0, 24, n), RNG.integers(0, t, n)], -1),
        tracks_xyz=RNG.normal(size=(t, n, 3)),
        visibility=RNG.random((t, n)) > 0.3,
        fx_fy_cx_cy=np.array([30.0, 31.0, 20.0, 12.0]),
        extrinsics_w2c=np.tile(np.eye(4), (t, 1, 1)),
    )
    save_tapvid3d_npz(tmp_path / "v.npz", sample)
    with np.load(tmp_path / "v.npz") as raw:  # the released layout, loadable without pickle
        assert raw["images_jpeg_bytes"].dtype.kind == "S" and raw["tracks_XYZ"].shape == (t, n, 3)
    back = load_tapvid3d_npz(tmp_path / "v.npz")
    assert back.images_jpeg_bytes == sample.images_jpeg_bytes
    for name in ("queries_xyt", "tracks_xyz", "visibility", "fx_fy_cx_cy", "extrinsics_w2c"):
        assert np.array_equal(getattr(back, name), getattr(sample, name)), name
    assert back.image_size() == (24, 40) and back.decode_frames().shape == (t, 24, 40, 3)
    np.testing.assert_array_equal(back.query_points_tyx[:, 0], sample.queries_xyt[:, 2])
    np.testing.assert_array_equal(back.query_points_tyx[:, 1], sample.queries_xyt[:, 1])
    np.testing.assert_array_equal(back.queries_txy, sample.queries_xyt[:, [2, 0, 1]])
    # pstudio-like file: no extrinsics
    sample.extrinsics_w2c = None
    save_tapvid3d_npz(tmp_path / "p.npz", sample)
    assert load_tapvid3d_npz(tmp_path / "p.npz").extrinsics_w2c is None
    save_tapvid3d_prediction(
        tmp_path / "pred.npz", tracks_xyz=sample.tracks_xyz, visibility=sample.visibility
    )
    tracks, vis = load_tapvid3d_prediction(tmp_path / "pred.npz")
    assert np.array_equal(tracks, sample.tracks_xyz) and np.array_equal(vis, sample.visibility)


def test_tapvid3d_bad_files(tmp_path) -> None:
    np.savez(tmp_path / "nokey.npz", queries_xyt=np.zeros((2, 3)))
    with pytest.raises(KeyError, match="images_jpeg_bytes"):
        load_tapvid3d_npz(tmp_path / "nokey.npz")
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError):
        load_tapvid3d_npz(tmp_path / "trunc.npz")
    with pytest.raises(FileNotFoundError):
        load_tapvid3d_prediction(tmp_path / "missing.npz")
    np.savez(
        tmp_path / "shape.npz",
        images_jpeg_bytes=np.array([_jpeg(8, 8)] * 2),
        queries_xyt=np.zeros((3, 3)),
        tracks_XYZ=np.zeros((2, 4, 3)),
        visibility=np.ones((2, 3), bool),
        fx_fy_cx_cy=np.ones(4),
    )
    with pytest.raises(ValueError, match="inconsistent"):
        load_tapvid3d_npz(tmp_path / "shape.npz")
