"""``l4p bench depth-*``: DepthCrafter-protocol video depth on tiny trees in the exact layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bench_support import ReplayPredictor, context, t, texture, write_png16, write_rgb

from l4p.bench.registry import get_protocol
from l4p.cli import main as l4p_main
from l4p.data.formats.sintel import write_dpt
from l4p.data.video import write_video
from l4p.outputs import Prediction


def _bonn_tree(root: Path, rng: np.random.Generator, n_frames: int = 33) -> dict[str, np.ndarray]:
    """Two Bonn sequences of 11x13 frames (odd: the protocol cuts to even); returns GT depth."""
    gts = {}
    for seq in ("rgbd_bonn_balloon", "rgbd_bonn_crowd"):
        depth = rng.uniform(0.5, 4.0, (n_frames, 11, 13))
        depth[:, 0, 0] = 0.0  # no measurement: never scored
        for i in range(n_frames):
            stamp = f"{1548266469 + i}.{i:04d}"
            write_rgb(root / seq / "rgb" / f"{stamp}.png", texture(rng, 11, 13))
            write_png16(root / seq / "depth" / f"{stamp}.png", np.round(depth[i] * 5000))
        gts[seq] = np.round(depth * 5000) / 5000
    return gts


def _depth_oracle(gt_by_order: list[np.ndarray], transform=lambda d: d):
    """Replays GT depth (after ``transform``) for the videos in the order they are predicted."""
    queue = list(gt_by_order)

    def respond(video: np.ndarray, **_) -> Prediction:
        depth = transform(queue.pop(0))
        assert depth.shape[1:] == video.shape[1:3]
        return Prediction(depth=t(np.where(depth > 0, depth, 1.0)))

    return respond


def test_bonn_ground_truth_scores_perfectly_resumes_and_perturbation(tmp_path) -> None:
    rng = np.random.default_rng(0)
    gts = _bonn_tree(tmp_path / "bonn", rng)
    # DepthCrafter's selection: frames 30..139 (3 here), cut to even size (10 x 12).
    expected = [gts[s][30:, :10, :12] for s in sorted(gts)]
    stub = ReplayPredictor(_depth_oracle(expected, transform=lambda d: 3.0 * d))  # any scale: aligned away
    run = get_protocol("depth-bonn").load()
    summary = run(context(tmp_path / "bonn", tmp_path / "out", stub))
    assert len(stub.calls) == 2 and stub.calls[0]["video"].shape == (3, 10, 12, 3)
    assert summary["scores"]["abs_rel"] < 1e-6 and summary["scores"]["delta1"] == 1.0
    assert summary["scores"]["num_sequences"] == 2
    # Resume: nothing is predicted again (the factory would fail).
    again = run(context(tmp_path / "bonn", tmp_path / "out", None))
    assert again["scores"] == summary["scores"]

    # Known perturbation: GT of two depths (1 m and 2 m, as many pixels each), prediction
    # constant: the fit gives disparity 0.75 everywhere, D̂ = 4/3: AbsRel = (1/3 + 1/3) / 2, δ1 = 0.
    two = np.ones((33, 11, 13))
    two[:, :, 6:12] = 2.0
    two[:, :, 12] = 0.0  # beyond the even crop anyway
    for seq in ("rgbd_bonn_balloon", "rgbd_bonn_crowd"):
        for i, f in enumerate(sorted((tmp_path / "bonn" / seq / "depth").glob("*.png"))):
            write_png16(f, np.round(two[i] * 5000))
    const = ReplayPredictor(lambda video, **_: Prediction(depth=t(np.full(video.shape[:3], 7.0))))
    out = run(context(tmp_path / "bonn", tmp_path / "out", const, overwrite=True))
    assert out["scores"]["abs_rel"] == pytest.approx(1 / 3, rel=1e-7)  # the fit targets 1/(D + 1e-8)
    assert out["scores"]["delta1"] == 0.0


def test_scannet_selection_crop_and_stride(tmp_path) -> None:
    rng = np.random.default_rng(1)
    scene = tmp_path / "scans_test" / "scene0707_00"
    depth_mm = rng.integers(500, 4000, (8, 24, 30))
    for i in range(8):  # file names are unpadded numbers: 10 sorts after 9 numerically
        write_rgb(scene / "color" / f"{i}.jpg", texture(rng, 24, 30))
        write_png16(scene / "depth" / f"{i}.png", depth_mm[i])
    gt = depth_mm[0:8:3, 8:-8, 11:-11] / 1000.0  # frames 0, 3, 6; 8 rows / 11 columns cropped
    stub = ReplayPredictor(_depth_oracle([gt]))
    summary = get_protocol("depth-scannet").load()(context(tmp_path / "scans_test", tmp_path / "out", stub))
    assert stub.calls[0]["video"].shape == (3, 8, 8, 3)
    assert summary["scores"]["abs_rel"] < 1e-6 and summary["scores"]["delta1"] == 1.0


def test_nyuv2_csv_layout_repeats_the_frame(tmp_path) -> None:
    """DepthCrafter's extracted layout (CSV + mp4 + npz 'disparity' (T,1,H,W)); NYUv2 repeats x16."""
    rng = np.random.default_rng(2)
    root = tmp_path / "datasets"
    (root / "NYUv2").mkdir(parents=True)
    rows = ["filepath_left,filepath_disparity"]
    gts = []
    for name in ("bathroom_0001", "kitchen_0002"):
        gt = rng.uniform(0.5, 9.0, (1, 1, 16, 24)).astype(np.float64)
        np.savez(root / "NYUv2" / f"{name}_disparity.npz", disparity=gt)
        write_video(root / "NYUv2" / f"{name}_rgb_left.mp4", texture(rng, 16, 24)[None])
        rows.append(f"NYUv2/{name}_rgb_left.mp4,NYUv2/{name}_disparity.npz")
        gts.append(np.repeat(gt[:, 0], 16, axis=0))
    (root / "meta_nyu_test.csv").write_text("\n".join(rows) + "\n")
    stub = ReplayPredictor(_depth_oracle(gts))
    summary = get_protocol("depth-nyuv2").load()(context(root, tmp_path / "out", stub))
    assert [c["video"].shape[0] for c in stub.calls] == [16, 16]
    assert summary["scores"]["abs_rel"] < 1e-6 and summary["items"] == ["bathroom_0001", "kitchen_0002"]


def test_kitti_and_sintel_raw_layouts(tmp_path) -> None:
    rng = np.random.default_rng(3)
    drive = "2011_09_26_drive_0002_sync"
    gt_dir = (
        tmp_path
        / "kitti"
        / "data_depth_annotated"
        / "val"
        / drive
        / "proj_depth"
        / "groundtruth"
        / "image_02"
    )
    raw = tmp_path / "kitti" / "raw_data" / drive[:10] / drive / "image_02" / "data"
    depth = rng.uniform(2.0, 79.0, (2, 12, 20))
    depth[:, :4] = 0  # LiDAR: no GT in the top rows
    for i in range(2):
        write_png16(gt_dir / f"{i + 5:010d}.png", np.round(depth[i] * 256))
        write_rgb(raw / f"{i + 5:010d}.png", texture(rng, 12, 20))
    stub = ReplayPredictor(_depth_oracle([np.round(depth * 256) / 256]))
    out = get_protocol("depth-kitti").load()(context(tmp_path / "kitti", tmp_path / "k_out", stub))
    assert out["scores"]["abs_rel"] < 1e-6 and out["max_depth"] == 80.0

    sintel = tmp_path / "sintel" / "training"
    sdepth = rng.uniform(1.0, 100.0, (3, 8, 10)).astype(np.float32)  # > 70 (sky) is not scored
    for i in range(3):
        write_rgb(sintel / "clean" / "alley_1" / f"frame_{i + 1:04d}.png", texture(rng, 8, 10))
        (sintel / "depth" / "alley_1").mkdir(parents=True, exist_ok=True)
        write_dpt(sintel / "depth" / "alley_1" / f"frame_{i + 1:04d}.dpt", sdepth[i])
    stub = ReplayPredictor(_depth_oracle([np.where(sdepth > 70, 500.0, sdepth)]))
    out = get_protocol("depth-sintel").load()(context(tmp_path / "sintel", tmp_path / "s_out", stub))
    assert out["scores"]["abs_rel"] < 1e-6 and out["seq_len"] == 50


def test_cli_runs_the_tiny_model_end_to_end(tmp_path) -> None:
    _bonn_tree(tmp_path / "bonn", np.random.default_rng(4))
    argv = ["bench", "depth-bonn", "--data", str(tmp_path / "bonn"), "--out", str(tmp_path / "out")]
    assert l4p_main([*argv, "--model", "l4p_test", "--device", "cpu", "--limit", "1"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["items"] == ["rgbd_bonn_balloon"] and 0 <= summary["scores"]["delta1"] <= 1
    assert np.isfinite(summary["scores"]["abs_rel"])
    assert "released checkpoint" in (tmp_path / "out" / "summary.md").read_text()
    assert l4p_main(["bench", "depth-bonn", "--data", str(tmp_path / "nowhere"), "--out", "x"]) == 2
    assert l4p_main(["bench", "depth-bonn", "--data", str(tmp_path / "bonn")]) == 2


def test_paper_numbers_beside_ours_with_the_released_checkpoint(tmp_path) -> None:
    gts = _bonn_tree(tmp_path / "bonn", np.random.default_rng(5))
    stub = ReplayPredictor(_depth_oracle([gts[s][30:, :10, :12] for s in sorted(gts)]))
    ckpt = "/weights/l4p_depth_flow_2d3dtrack_camray_dynseg_v1.ckpt"
    out = get_protocol("depth-bonn").load()(context(tmp_path / "bonn", tmp_path / "o", stub, checkpoint=ckpt))
    md = (tmp_path / "o" / "summary.md").read_text()
    assert "## Paper (L4P) vs this run" in md and "| AbsRel | 0.060 | 0.0000 | Table 1, L4P |" in md
    assert "| δ1 % | 97.3 | 100.00 | Table 1, L4P |" in md
    assert out["paper_l4p"]["AbsRel (L4P*)"] == 0.058
