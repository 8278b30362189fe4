"""``l4p bench flow-*`` and the Spring server tools on tiny trees in the exact layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bench_support import ReplayPredictor, context, t, texture, write_png16, write_rgb

from l4p.bench.registry import get_protocol
from l4p.cli import main as l4p_main
from l4p.data.formats.kitti import write_kitti_flow
from l4p.data.formats.middlebury import write_flo
from l4p.data.formats.spring import read_flo5, write_flo5
from l4p.metrics.flow_spring_server import subsample_indices
from l4p.outputs import Prediction

D = np.array([3.0, 4.0], dtype=np.float32)  # a perturbation of exactly 5 px


def _flow_prediction(flows_thw2: np.ndarray) -> Prediction:
    """Backward flows (T, H, W, 2), frame 0 NaN, as a Prediction (B, T, 2, H, W)."""
    flows = np.moveaxis(flows_thw2, -1, 1).copy()
    flows[0] = np.nan
    return Prediction(flow=t(flows))


def _sintel_tree(root: Path, rng: np.random.Generator) -> np.ndarray:
    fwd = rng.integers(-6, 7, (2, 10, 12, 2)).astype(np.float32)  # integer flows: exact EPEs
    for i in range(3):
        write_rgb(root / "training" / "clean" / "alley_1" / f"frame_{i + 1:04d}.png", texture(rng, 10, 12))
    for i in range(2):
        (root / "training" / "flow" / "alley_1").mkdir(parents=True, exist_ok=True)
        write_flo(root / "training" / "flow" / "alley_1" / f"frame_{i + 1:04d}.flo", fwd[i])
    return fwd


def test_sintel_forward_flow_via_reversal_exact_and_perturbed(tmp_path) -> None:
    fwd = _sintel_tree(tmp_path / "sintel", np.random.default_rng(0))

    def reversed_gt(offset):  # the model's backward flow of the reversed clip = forward GT
        return lambda video, **_: _flow_prediction(np.stack([fwd[0], fwd[1] + offset, fwd[0] + offset]))

    run = get_protocol("flow-sintel").load()
    out = run(context(tmp_path / "sintel", tmp_path / "o", ReplayPredictor(reversed_gt(0))))
    assert out["scores"]["epe"] == 0 and out["scores"]["acc_1px"] == 1.0
    out = run(context(tmp_path / "sintel", tmp_path / "o", ReplayPredictor(reversed_gt(D)), overwrite=True))
    assert out["scores"]["epe"] == pytest.approx(5.0) and out["scores"]["outlier_3px"] == 1.0
    assert out["scores"]["acc_5px"] == 0.0 and out["scores"]["num_pixels"] == 2 * 10 * 12


def test_kitti15_epe_and_fl(tmp_path) -> None:
    rng = np.random.default_rng(1)
    root = tmp_path / "data_scene_flow" / "training"
    gts = []
    for n in range(2):
        for k in ("10", "11"):
            write_rgb(root / "image_2" / f"{n:06d}_{k}.png", texture(rng, 8, 20))
        gt = rng.integers(-20, 21, (8, 20, 2)).astype(np.float32)
        valid = rng.random((8, 20)) > 0.3
        (root / "flow_occ").mkdir(parents=True, exist_ok=True)
        write_kitti_flow(root / "flow_occ" / f"{n:06d}_10.png", gt, valid)
        gts.append(gt)
    run = get_protocol("flow-kitti15").load()
    queue = list(gts)  # reversed pair [11, 10]: backward flow of frame 10 = forward 10->11
    stub = ReplayPredictor(lambda video, **_: _flow_prediction(np.stack([queue[0], queue.pop(0)])))
    out = run(context(tmp_path / "data_scene_flow", tmp_path / "o", stub))
    assert stub.calls[0]["video"].shape == (2, 8, 20, 3)
    assert out["scores"]["epe"] == 0 and out["scores"]["fl_all_percent"] == 0
    queue = [g + D for g in gts]
    stub = ReplayPredictor(lambda video, **_: _flow_prediction(np.stack([queue[0], queue.pop(0)])))
    out = run(context(tmp_path / "data_scene_flow", tmp_path / "o", stub, overwrite=True))
    assert out["scores"]["epe"] == pytest.approx(5.0)
    assert out["scores"]["fl_all_percent"] == pytest.approx(100.0)  # 5 > 3 px and 5/|f| > 5 % (|f| <= 29)


def _spring_tree(split: Path, rng: np.random.Generator, n: int = 3) -> dict:
    """Scene 0001: n frames of 6x8; GT at 12x16, constant in each 2x2 block, speed 5/20/50 by row."""
    scene = split / "0001"
    gts = {}
    for k in range(1, n + 1):
        write_rgb(scene / "frame_left" / f"frame_left_{k:04d}.png", texture(rng, 6, 8))
    speed = np.repeat([5.0, 20.0, 50.0], 2)[:, None] * np.ones((6, 8))
    for direction, frames in (("FW", range(1, n)), ("BW", range(2, n + 1))):
        for k in frames:
            angle = rng.uniform(0, 2 * np.pi, (6, 8))
            low = np.stack([speed * np.cos(angle), speed * np.sin(angle)], -1).round()
            gt = np.repeat(np.repeat(low, 2, 0), 2, 1).astype(np.float32)
            gt[0, 0] = np.nan  # one sample unknown: that pixel is not scored
            write_flo5(scene / f"flow_{direction}_left" / f"flow_{direction}_left_{k:04d}.flo5", gt)
            gts[(direction, k)] = low.astype(np.float32)
    return gts


def _spring_oracle(gts: dict, n: int, offset=0.0):
    calls = [0]

    def respond(video, **_):
        calls[0] += 1
        if calls[0] % 2 == 1:  # BW run on frames 1..n
            flows = [np.zeros((6, 8, 2))] + [gts[("BW", k)] + offset for k in range(2, n + 1)]
        else:  # reversed run: index j is FW of frame n - j
            flows = [np.zeros((6, 8, 2))] + [gts[("FW", n - j)] + offset for j in range(1, n)]
        return _flow_prediction(np.stack(flows).astype(np.float32))

    return respond


def test_spring_full_resolution_server_metric_and_regions(tmp_path) -> None:
    gts = _spring_tree(tmp_path / "spring" / "train", np.random.default_rng(2))
    run = get_protocol("flow-spring").load()
    out = run(context(tmp_path / "spring", tmp_path / "o", ReplayPredictor(_spring_oracle(gts, 3))))
    total = out["scores"]["regions"]["total"]
    assert total["epe"] == 0 and total["px1_percent"] == 0 and total["num_pixels"] == 4 * (48 - 1)
    assert [out["scores"]["regions"][r]["num_pixels"] for r in ("s0-10", "s10-40", "s40+")] == [
        4 * 15,
        64,
        64,
    ]
    stub = ReplayPredictor(_spring_oracle(gts, 3, offset=D))
    out = run(
        context(tmp_path / "spring", tmp_path / "o", stub, overwrite=True, options={"write_predictions": "1"})
    )
    total = out["scores"]["regions"]["total"]
    assert total["epe"] == 5.0 and total["px1_percent"] == 100 and total["fl_percent"] == 100
    assert total["wauc_percent"] == pytest.approx(100 * 0.01 / 50.5)  # only i = 100 (5 <= 100/20), w = 0.01
    written = read_flo5(tmp_path / "o" / "predictions" / "0001" / "flow_FW_left" / "flow_FW_left_0002.flo5")
    np.testing.assert_array_equal(written, gts[("FW", 2)] + D)


def test_spring_server_tools_convert_submit_score(tmp_path, capsys) -> None:
    gts = _spring_tree(tmp_path / "train", np.random.default_rng(3))
    preds = tmp_path / "pred"
    for (direction, k), low in gts.items():
        write_flo5(preds / "0001" / f"flow_{direction}_left" / f"flow_{direction}_left_{k:04d}.flo5", low)
    opts = ["--set", "scenes=1:3", "--set", "hero=none", "--set", "cams=left", "--set", "steps=1,2,3"]
    opts += ["--set", "size=10"]
    assert (
        l4p_main(["bench", "spring-convert", str(tmp_path / "train"), str(tmp_path / "gt.hdf5"), *opts]) == 0
    )
    assert l4p_main(["bench", "spring-submission", str(preds), str(tmp_path / "sub.hdf5"), *opts]) == 0
    gt, sub = read_flo5(tmp_path / "gt.hdf5"), read_flo5(tmp_path / "sub.hdf5")
    assert gt.shape == (40, 4, 2) and sub.shape == (40, 2) and gt.dtype == sub.dtype == np.float16
    # Case order: FW 1, FW 2, BW 3, BW 2; frame 1 of scene 1 starts at step index 1: pixels 2, 5, 6, 8, ...
    rows, cols = subsample_indices(scene=1, frame=1, width=8, steps=(1, 2, 3), size=10)
    assert list(rows * 8 + cols)[:4] == [2, 5, 6, 8]
    np.testing.assert_array_equal(sub[:10], gts[("FW", 1)][rows, cols].astype(np.float16))
    np.testing.assert_array_equal(
        sub[20:30], gts[("BW", 3)][subsample_indices(scene=1, frame=3, width=8, steps=(1, 2, 3), size=10)]
    )
    capsys.readouterr()
    assert l4p_main(["bench", "spring-score", str(tmp_path / "sub.hdf5"), str(tmp_path / "gt.hdf5")]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert (
        scores["total"]["epe"] == 0.0 and scores["total"]["num_pixels"] == 40
    )  # pixel 0 (NaN) is never sampled
    assert l4p_main(["bench", "spring-convert", str(tmp_path / "nowhere"), str(tmp_path / "x.hdf5")]) == 2


@pytest.mark.parametrize("protocol", ["flow-spring-224", "flow-kubric", "flow-dynamic-replica"])
def test_paper_flow_at_224(protocol, tmp_path) -> None:
    rng = np.random.default_rng(4)
    root = tmp_path / "data"
    const = np.array([2.0, 1.0], dtype=np.float32)  # at 32x16 -> (14, 14) px at 224x224
    for k in range(1, 4):
        gt = np.broadcast_to(const, (16, 32, 2)).copy()
        gt[:4] = np.nan  # no GT in the top quarter
        if protocol == "flow-spring-224":
            write_rgb(
                root / "train" / "0007" / "frame_left" / f"frame_left_{k:04d}.png", texture(rng, 16, 32)
            )
            if k > 1:
                gt2 = np.repeat(np.repeat(gt, 2, 0), 2, 1)
                write_flo5(root / "train" / "0007" / "flow_BW_left" / f"flow_BW_left_{k:04d}.flo5", gt2)
        elif protocol == "flow-dynamic-replica":  # published layout: float16 bits in a 16-bit PNG
            seq = root / "valid" / "3dd1a4-3_obj_source_left"
            write_rgb(seq / "images" / f"{seq.name}-{k - 1:04d}.png", texture(rng, 16, 32))
            halves = np.concatenate([np.nan_to_num(gt[..., 0]), np.nan_to_num(gt[..., 1])], axis=1)
            write_png16(
                seq / "flow_backward" / f"{seq.name}_{k - 1:04d}.png",
                halves.astype(np.float16).view(np.uint16),
            )
            write_png16(
                seq / "flow_backward_mask" / f"{seq.name}_{k - 1:04d}.png", np.isfinite(gt[..., 0]) * 255
            )
        else:
            write_rgb(root / "seq_a" / "frames" / f"{k:05d}.png", texture(rng, 16, 32))
            if k > 1:
                (root / "seq_a" / "flow_backward").mkdir(parents=True, exist_ok=True)
                np.save(root / "seq_a" / "flow_backward" / f"{k:05d}.npy", gt)
    run = get_protocol(protocol).load()
    for offset, epe, acc in ((0.0, 0.0, 1.0), (D, 5.0, 0.0)):
        flows = np.broadcast_to(np.array([14.0, 14.0]) + offset, (3, 224, 224, 2)).astype(np.float32)
        stub = ReplayPredictor(lambda video, flows=flows, **_: _flow_prediction(flows.copy()))
        out = run(context(root, tmp_path / "o", stub, overwrite=True))
        assert stub.calls[0]["video"].shape == (3, 224, 224, 3)
        assert out["scores"]["epe"] == pytest.approx(epe, abs=1e-5) and out["scores"]["acc_1px"] == acc
        assert 0 < out["scores"]["num_pixels"] < 2 * 224 * 224  # the NaN rows are not scored


def test_spring_server_subtracts_in_float16_and_regions_ignore_nan() -> None:
    from l4p.metrics.flow_spring_server import server_scores

    # float16 spacing is 2 at 2048: GT 2049 is stored as 2048, the submission 2048.6 as 2048, so
    # the server's EPE is 0 (in float32 it would be 0.4).
    gt = np.array([[[2049.0, 0.0]] * 4, [[3.0, 4.0], [np.nan, np.nan], [6.0, 8.0], [6.0, 8.0]]])
    sub = np.array([[2048.6, 0.0], [3.0, 4.0]])
    scores = server_scores(sub, gt)
    assert scores["total"]["num_pixels"] == 1 and scores["total"]["epe"] == 0.0  # NaN sample: unscored
    # Region of pixel 2: mean of its 3 known lengths (5, 10, 10) = 8.33 -> s0-10 (it is unscored there).
    assert scores["s40+"]["num_pixels"] == 1 and scores["s0-10"]["num_pixels"] == 0


def test_spring_map_regions_as_the_server_names_them(tmp_path) -> None:
    gts = _spring_tree(tmp_path / "spring" / "train", np.random.default_rng(5))
    maps = tmp_path / "spring" / "train" / "0001" / "maps"
    for k in (1, 2, 3):
        sky = np.zeros((12, 16), np.uint8)  # 0/1 values; the server averages the raw values
        sky[:4] = 1  # image rows 0-1 are sky (4 of 4 samples)
        sky[4, :] = 1  # row 2: 2 of 4 samples -> mean 0.5 -> sky too
        sky[7, 0::2] = 1  # row 3: 1 of 4 samples -> mean 0.25 -> not sky
        write_png16(maps / "skymap_left" / f"skymap_left_{k:04d}.png", sky)
    run = get_protocol("flow-spring").load()
    out = run(context(tmp_path / "spring", tmp_path / "o", ReplayPredictor(_spring_oracle(gts, 3))))
    regions = out["scores"]["regions"]
    # 4 scored frames; rows 0-2 (24 px, minus the NaN pixel) are sky.
    assert regions["sky"]["num_pixels"] == 4 * 23 and regions["notsky"]["num_pixels"] == 4 * 24
    assert "lowdetail" not in regions  # no detail map on disk: no such region
