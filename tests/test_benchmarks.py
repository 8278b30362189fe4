"""Benchmark scripts end to end on small data sets fabricated in the exact on-disk layouts."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from l4p.api import L4PPredictor
from l4p.data.readers import (
    TapVid3DSample,
    load_tapvid3d_prediction,
    save_tapvid3d_npz,
    save_tapvid3d_prediction,
    write_cam,
    write_dpt,
    write_flo,
)
from l4p.outputs import Prediction

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the scripts live in the repository, not in the installed package
    sys.path.insert(0, str(REPO))

from benchmarks import sintel, speed, tapvid3d  # noqa: E402

H, W = 48, 64


def _texture(rng: np.random.Generator, h: int = H, w: int = W) -> np.ndarray:
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _tapvid3d_sample(rng: np.random.Generator, t: int = 12, n: int = 5, extrinsics: bool = False):
    fx_fy_cx_cy = np.array([60.0, 60.0, W / 2, H / 2])
    z = rng.uniform(2.0, 5.0, n)
    u0, v0 = rng.uniform(8, W - 8, n), rng.uniform(8, H - 8, n)
    xyz0 = np.stack([(u0 - W / 2) * z / 60.0, (v0 - H / 2) * z / 60.0, z], axis=-1)
    velocity = rng.normal(0, 0.01, (n, 3))
    tracks = xyz0[None] + np.arange(t)[:, None, None] * velocity[None]
    vis = rng.random((t, n)) > 0.2
    tq = rng.integers(0, t, n)
    vis[tq, np.arange(n)] = True
    q = tracks[tq, np.arange(n)]
    queries = np.stack(
        [60.0 * q[:, 0] / q[:, 2] + W / 2, 60.0 * q[:, 1] / q[:, 2] + H / 2, tq.astype(float)], -1
    )
    return TapVid3DSample(
        images_jpeg_bytes=[_jpeg(_texture(rng)) for _ in range(t)],
        queries_xyt=queries,
        tracks_xyz=tracks,
        visibility=vis,
        fx_fy_cx_cy=fx_fy_cx_cy,
        extrinsics_w2c=np.tile(np.eye(4), (t, 1, 1)) if extrinsics else None,
    )


@pytest.fixture(scope="module")
def tapvid3d_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tapvid3d")
    rng = np.random.default_rng(3)
    for subset, names in {
        "pstudio": ["basketball_5", "boxes_7"],
        "adt": ["Apartment_release_seq1_0"],
    }.items():
        (root / subset).mkdir()
        for name in names:
            save_tapvid3d_npz(
                root / subset / f"{name}.npz", _tapvid3d_sample(rng, extrinsics=subset == "adt")
            )
    return root


def _count_predict(monkeypatch) -> list[int]:
    calls = [0]
    original = L4PPredictor.predict

    def counted(self, *args, **kwargs):
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(L4PPredictor, "predict", counted)
    return calls


def _in_unit(x) -> bool:
    return x is not None and 0.0 <= x <= 1.0


def test_tapvid3d_model_end_to_end_and_resume(tapvid3d_root, tmp_path, monkeypatch) -> None:
    calls = _count_predict(monkeypatch)
    argv = [
        "--data_root",
        str(tapvid3d_root),
        "--subset",
        "pstudio",
        "--model",
        "l4p_test",
        "--device",
        "cpu",
    ]
    argv += ["--out", str(tmp_path), "--scalings", "median,per_trajectory"]
    summary = tapvid3d.main(argv)
    assert calls[0] == 2
    for name in ("basketball_5", "boxes_7"):
        tracks, vis = load_tapvid3d_prediction(tmp_path / "predictions" / "pstudio" / f"{name}.npz")
        assert tracks.shape == (12, 5, 3) and vis.shape == (12, 5) and np.isfinite(tracks).all()
        record = json.loads((tmp_path / "per_video" / "pstudio" / f"{name}.json").read_text())
        assert set(record["scores"]) == {"median", "per_trajectory"}
    scores = summary["subsets"]["pstudio"]["scores"]["median"]
    assert summary["subsets"]["pstudio"]["num_videos"] == 2
    assert all(
        _in_unit(scores[k]) for k in ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")
    )
    assert summary["overall"]["median"] == pytest.approx(scores)
    assert json.loads((tmp_path / "summary.json").read_text())["subsets"]["pstudio"]["num_videos"] == 2
    assert "3D-AJ" in (tmp_path / "summary.md").read_text()

    again = tapvid3d.main(argv)  # every video is done: nothing is predicted again
    assert calls[0] == 2
    assert again["overall"]["median"] == pytest.approx(summary["overall"]["median"])
    tapvid3d.main([*argv[:-1], "median,none"])  # a new scaling re-scores from the saved predictions
    assert calls[0] == 2


def test_tapvid3d_ground_truth_as_predictions_scores_perfectly(tapvid3d_root, tmp_path) -> None:
    preds = tmp_path / "preds"
    for gt_file in tapvid3d_root.glob("*/*.npz"):
        data = np.load(gt_file)
        (preds / gt_file.parent.name).mkdir(parents=True, exist_ok=True)
        save_tapvid3d_prediction(
            preds / gt_file.parent.name / gt_file.name,
            tracks_xyz=data["tracks_XYZ"],
            visibility=data["visibility"],
        )
    argv = ["--data_root", str(tapvid3d_root), "--subset", "pstudio,adt", "--predictions", str(preds)]
    summary = tapvid3d.main([*argv, "--out", str(tmp_path / "eval"), "--scalings", "median,per_trajectory"])
    for scaling in ("median", "per_trajectory"):
        overall = summary["overall"][scaling]
        assert overall["average_jaccard"] == 1.0 and overall["occlusion_accuracy"] == 1.0
        assert overall["average_pts_within_thresh"] == 1.0
    assert summary["subsets"]["adt"]["num_videos"] == 1
    with pytest.raises(ValueError, match="pixel_offset"):  # resuming with other settings is refused
        tapvid3d.main([*argv, "--out", str(tmp_path / "eval"), "--pixel_offset", "0"])

    # A missing prediction scores 0 and counts (official); the subset mean halves.
    (preds / "pstudio" / "boxes_7.npz").unlink()
    summary = tapvid3d.main([*argv, "--out", str(tmp_path / "eval2")])
    assert summary["subsets"]["pstudio"]["scores"]["median"]["average_jaccard"] == 0.5
    assert summary["overall"]["median"]["average_jaccard"] == 0.75


def test_tapvid3d_file_list_and_pixel_convention(tapvid3d_root, tmp_path) -> None:
    (tmp_path / "list.txt").write_text("# minival\npstudio/boxes_7.npz\nbasketball_5.npz  # bare name\n")
    names = tapvid3d.select_files(
        tapvid3d_root,
        "pstudio",
        split="minival",
        file_list=tapvid3d.read_file_list(tmp_path / "list.txt"),
        max_videos=None,
    )
    assert names == ["boxes_7.npz", "basketball_5.npz"]
    with pytest.raises(FileNotFoundError):
        tapvid3d.select_files(
            tapvid3d_root, "adt", split="minival", file_list=["adt/absent.npz"], max_videos=None
        )

    sample = _tapvid3d_sample(np.random.default_rng(1))
    queries, k = tapvid3d.model_inputs(sample, pixel_offset=0.5)
    np.testing.assert_allclose(queries[:, 1:], sample.queries_xyt[:, :2] - 0.5, atol=1e-5)
    np.testing.assert_array_equal(queries[:, 0], sample.queries_xyt[:, 2])
    # Shifting queries and principal point together leaves every unprojected ray unchanged.
    rays_ours = np.linalg.solve(k.astype(np.float64), np.c_[queries[:, 1:], np.ones(5)].T)
    rays_tap = np.linalg.solve(sample.intrinsics_matrix(), np.c_[sample.queries_xyt[:, :2], np.ones(5)].T)
    np.testing.assert_allclose(rays_ours, rays_tap, atol=1e-6)


# ------------------------------------------------------------------------------------ Sintel
SEQUENCES = {"alley_1": 5, "market_6": 4}


def _write_sintel(root: Path, *, shift: tuple[int, int] = (2, 1)) -> None:
    """Textures translating by ``shift`` px per frame; GT forward flow = +shift everywhere."""
    rng = np.random.default_rng(5)
    for name, t in SEQUENCES.items():
        base = _texture(rng, H + 16, W + 16)
        for folder in ("clean", "final", "flow", "occlusions", "invalid", "depth", "camdata_left"):
            (root / folder / name).mkdir(parents=True)
        for i in range(t):
            frame = np.roll(base, (shift[1] * i, shift[0] * i), axis=(0, 1))[8 : 8 + H, 8 : 8 + W]
            for render_pass in ("clean", "final"):
                cv2.imwrite(str(root / render_pass / name / f"frame_{i + 1:04d}.png"), frame[..., ::-1])
            write_dpt(root / "depth" / name / f"frame_{i + 1:04d}.dpt", rng.uniform(1.0, 90.0, (H, W)))
            rt = np.eye(4)[:3]
            rt[:, 3] = [-0.3 * i, 0.05 * i, 0.1 * i * i]
            write_cam(
                root / "camdata_left" / name / f"frame_{i + 1:04d}.cam",
                np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]]),
                rt,
            )
            if i < t - 1:
                write_flo(
                    root / "flow" / name / f"frame_{i + 1:04d}.flo",
                    np.broadcast_to(np.float32(shift), (H, W, 2)),
                )
                occ = np.zeros((H, W), np.uint8)
                occ[:, :2] = 255
                cv2.imwrite(str(root / "occlusions" / name / f"frame_{i + 1:04d}.png"), occ)
                cv2.imwrite(
                    str(root / "invalid" / name / f"frame_{i + 1:04d}.png"), np.zeros((H, W), np.uint8)
                )


@pytest.fixture(scope="module")
def sintel_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sintel") / "training"
    _write_sintel(root)
    return root


def test_sintel_model_end_to_end_and_resume(sintel_root, tmp_path, monkeypatch) -> None:
    calls = _count_predict(monkeypatch)
    argv = ["--data_root", str(sintel_root.parent), "--tasks", "flow,depth,camera", "--pass", "final"]
    argv += ["--model", "l4p_test", "--device", "cpu", "--out", str(tmp_path)]
    summary = sintel.main(argv)
    assert calls[0] == 4  # per sequence: one time-reversed run (flow) and one forward run (depth + camera)
    for name, t in SEQUENCES.items():
        record = json.loads((tmp_path / "per_sequence" / f"{name}.json").read_text())
        assert record["flow_final"]["num_pairs"] == t - 1
        assert set(record["flow_final"]["regions"]) == {"all", "noc", "occ"}
        assert record["depth_clean"]["num_frames"] == t and record["camera_clean"] is not None
    flow = summary["scores"]["flow_final"]["all"]
    assert flow["num_images"] == 7 and math.isfinite(flow["epe"]) and flow["epe"] >= 0
    assert all(_in_unit(flow[k]) for k in ("acc_1px", "acc_3px", "acc_5px", "fl"))
    depth = summary["scores"]["depth_clean"]
    assert depth["abs_rel"] >= 0 and _in_unit(depth["delta1"]) and depth["num_sequences"] == 2
    cam = summary["scores"]["camera_clean"]
    assert cam["ate"] >= 0 and 0 <= cam["rre"] <= 180 and math.isfinite(cam["focal_rel_err"])
    assert "## flow_final" in (tmp_path / "summary.md").read_text()

    sintel.main(argv)  # done: no prediction
    assert calls[0] == 4
    sintel.main([*argv[:5], "clean", *argv[6:]])  # another pass: only its flow runs
    assert calls[0] == 6


class _TranslationOracle:
    """Backward flow (t -> t-1) of a globally translating video, found by exhaustive search."""

    def predict(self, video, tasks, **_) -> Prediction:
        assert tuple(tasks) == ("flow",)
        frames = np.asarray(video, dtype=np.float32)
        flow = np.full((1, len(frames), 2, H, W), np.nan, np.float32)
        shifts = [(dx, dy) for dx in range(-3, 4) for dy in range(-3, 4)]
        for t in range(1, len(frames)):
            # Content at p in frame t sits at p + f in frame t-1: frame t rolled by f matches frame t-1.
            err = [
                np.abs(np.roll(frames[t], (dy, dx), (0, 1)) - frames[t - 1])[8:-8, 8:-8].mean()
                for dx, dy in shifts
            ]
            flow[0, t, 0], flow[0, t, 1] = shifts[int(np.argmin(err))]
        return Prediction(flow=torch.from_numpy(flow))


def test_sintel_flow_direction_is_exact(sintel_root, tmp_path, monkeypatch) -> None:
    """A perfect backward-flow model scores EPE 0 against Sintel's forward GT."""
    monkeypatch.setattr(sintel, "load_predictor", lambda *a, **k: _TranslationOracle())
    summary = sintel.main(["--data_root", str(sintel_root), "--tasks", "flow", "--out", str(tmp_path)])
    assert summary["scores"]["flow_clean"]["all"]["epe"] == 0.0
    assert summary["scores"]["flow_clean"]["all"]["acc_1px"] == 1.0


# ------------------------------------------------------------------------------------- speed
def test_speed_predict_writes_valid_json(tmp_path) -> None:
    out = tmp_path / "speed.json"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "speed.py"),
        "--what",
        "predict",
        "--variants",
        "l4p_test",
    ]
    cmd += [
        "--frames",
        "16",
        "--tasks",
        "depth+flow",
        "--resolution",
        "48x64",
        "--warmup",
        "0",
        "--repeats",
        "1",
    ]
    subprocess.run([*cmd, "--out", str(out)], check=True, cwd=tmp_path, timeout=120)
    doc = json.loads(out.read_text())
    assert doc["meta"]["machine"] and doc["meta"]["date"]
    (rec,) = doc["records"]
    assert "error" not in rec and rec["tasks"] == "depth+flow" and rec["frames"] == 16
    assert rec["median_s"] > 0 and rec["frames_per_s"] == pytest.approx(16 / rec["median_s"])
    assert rec["peak_rss_gb"] > 0 and len(rec["times_s"]) == 1
    assert "| predict | l4p_test | depth+flow | 0 | 16 | 48x64 |" in out.with_suffix(".md").read_text()


def test_speed_configs_cover_the_grid() -> None:
    args = speed.parse_args(
        ["--what", "predict", "--variants", "a,b", "--frames", "16,48,96", "--tasks", "depth,all"]
    )
    cfgs = speed.configs(args)
    assert len(cfgs) == 2 * 3 * 2 and {c["dtype"] for c in cfgs} == {"fp32"}
    cuda = speed.configs(speed.parse_args(["--what", "predict", "--device", "cuda"]))
    assert cuda[0]["dtype"] == "bf16" and cuda[0]["tasks"] == "all"
