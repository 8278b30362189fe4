"""Flow, video-depth and camera-pose metrics: hand-computable cases and the real flow samples."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path

from l4p.data.readers import read_flo, read_kitti_flow, read_mask_png
from l4p.metrics import (
    DEPTHCRAFTER_PROTOCOLS,
    FlowAccumulator,
    endpoint_error,
    flow_scores,
    mean_over_sequences,
    pose_metrics,
    sintel_eval_mask,
    spring_endpoint_error,
    spring_flow_scores,
    umeyama_similarity,
    video_depth_metrics,
)

RNG = np.random.default_rng(0)
SINTEL = "data/sintel_alley_1_sample/training"


# ------------------------------------------------------------------------------------- flow
def test_sintel_gt_against_itself_and_a_known_shift() -> None:
    gt = read_flo(shared_path(f"{SINTEL}/flow/alley_1/frame_0002.flo"))
    assert flow_scores(pred=gt, gt=gt)["epe"] == 0.0
    s = flow_scores(pred=gt + np.array([1.5, -2.0], np.float32), gt=gt)
    assert s["epe"] == pytest.approx(2.5, abs=1e-5)  # float32 rounding of (u + 1.5) − u
    assert (s["acc_1px"], s["acc_3px"], s["acc_5px"]) == (0.0, 1.0, 1.0)
    assert (s["outlier_1px"], s["outlier_3px"], s["outlier_5px"]) == (1.0, 0.0, 0.0)
    assert s["fl"] == 0.0  # epe 2.5 <= 3
    assert s["num_pixels"] == 436 * 1024
    on_threshold = flow_scores(pred=gt + np.array([0.0, 1.0], np.float32), gt=gt)
    exact = np.abs((gt[..., 1] + np.float32(1.0)) - gt[..., 1] - 1.0) == 0  # float32 may round u + 1
    assert on_threshold["acc_1px"] + on_threshold["outlier_1px"] == pytest.approx(1 - exact.mean())


def test_sintel_masks_select_the_right_pixels() -> None:
    gt = read_flo(shared_path(f"{SINTEL}/flow/alley_1/frame_0002.flo"))
    occ = read_mask_png(shared_path(f"{SINTEL}/occlusions/alley_1/frame_0002.png"))
    inv = read_mask_png(shared_path(f"{SINTEL}/invalid/alley_1/frame_0002.png"))
    pred = gt.copy()
    pred[occ] += np.array([3.0, 4.0], np.float32)  # wrong only where occluded
    noc = flow_scores(pred=pred, gt=gt, valid=sintel_eval_mask(occluded=occ, region="noc"))
    occ_s = flow_scores(pred=pred, gt=gt, valid=sintel_eval_mask(occluded=occ, region="occ"))
    all_s = flow_scores(pred=pred, gt=gt, valid=sintel_eval_mask(occluded=occ, region="all"))
    assert noc["epe"] == 0.0 and noc["num_pixels"] == int((~occ).sum())
    assert occ_s["epe"] == pytest.approx(5.0, abs=1e-5) and occ_s["num_pixels"] == int(occ.sum())
    assert all_s["epe"] == pytest.approx(5.0 * occ.mean(), rel=1e-5)
    both = sintel_eval_mask(occluded=occ, invalid=inv, region="noc", exclude_invalid=True)
    assert both.sum() == int((~occ & ~inv).sum()) and inv.sum() > 0


def test_kitti_fl_on_the_real_sparse_gt() -> None:
    gt, valid = read_kitti_flow(shared_path("data/kitti_flow_sample/flow_gt.png"))
    s = flow_scores(pred=gt + np.array([3.0, 4.0], np.float32), gt=gt, valid=valid)
    assert s["epe"] == pytest.approx(5.0, abs=1e-5) and s["num_pixels"] == int(valid.sum())
    # epe 5 > 3 px, so a pixel is an Fl outlier iff 5 > 0.05·|f|, i.e. |f| < 100 px
    mag = np.hypot(gt[..., 0].astype(np.float64), gt[..., 1].astype(np.float64))[valid]
    assert s["fl"] == pytest.approx(np.mean(mag < 100.0), abs=2e-4)  # float32 ties at |f| = 100
    assert 0.0 < s["fl"] < 1.0


def test_endpoint_error_channel_axis() -> None:
    pred = np.zeros((2, 3, 4))
    gt = np.zeros((2, 3, 4))
    gt[0] = 3.0
    gt[1] = 4.0
    np.testing.assert_array_equal(endpoint_error(pred=pred, gt=gt, channel_axis=0), np.full((3, 4), 5.0))


@pytest.mark.parametrize("exact", [False, True])
def test_accumulator_pooled_vs_image_mean(exact: bool) -> None:
    acc = FlowAccumulator(exact=exact)
    gt_a = np.zeros((2, 2, 2), np.float32)
    acc.update(pred=gt_a + np.array([1.0, 0.0], np.float32), gt=gt_a)  # 4 pixels, epe 1
    gt_b = np.zeros((1, 3, 2), np.float32)
    valid_b = np.array([[True, False, False]])
    acc.update(pred=gt_b + np.array([0.0, 4.0], np.float32), gt=gt_b, valid=valid_b)  # 1 pixel, epe 4
    s = acc.summary()
    assert s["epe_pooled"] == pytest.approx(8 / 5)
    assert s["epe_image_mean"] == pytest.approx(5 / 2)
    assert s["acc_1px"] == 0.0 and s["outlier_1px"] == pytest.approx(1 / 5)  # epe == 1 is neither
    assert s["acc_5px"] == 1.0 and s["fl"] == pytest.approx(1 / 5)  # |gt| = 0 → any epe > 3 is Fl
    assert (s["num_pixels"], s["num_images"]) == (5, 2)


def test_spring_four_sample_min_and_wauc() -> None:
    h, w = 3, 4
    gt = RNG.normal(size=(2 * h, 2 * w, 2)).astype(np.float32)
    pred = gt[1::2, 0::2].copy()  # equals one of the four samples everywhere
    gt[0, 0] = np.nan  # pixel (0, 0) has no full GT: excluded
    epe, gt_len = spring_endpoint_error(pred=pred, gt=gt)
    assert np.isnan(epe[0, 0]) and np.all(epe[~np.isnan(epe)] == 0.0)
    s = spring_flow_scores(epe=epe, gt_len_max=gt_len)
    assert (
        s["num_pixels"] == h * w - 1 and s["wauc_percent"] == pytest.approx(100.0) and s["px1_percent"] == 0.0
    )
    # all errors 0.5 px: counted from threshold i/20 = 0.5 (i = 10) on; Σw(1..100) = 50.5, Σw(1..9) = 8.64
    s = spring_flow_scores(epe=np.full((2, 2), 0.5), gt_len_max=np.ones((2, 2)))
    assert s["wauc_percent"] == pytest.approx(100 * (50.5 - 8.64) / 50.5)


# ------------------------------------------------------------------------------------ depth
def _depth_video(t: int = 4, h: int = 12, w: int = 16) -> np.ndarray:
    return RNG.uniform(1.0, 60.0, size=(t, h, w)).astype(np.float32)


def test_depth_affine_disparity_is_recovered_exactly() -> None:
    gt = _depth_video()
    pred = (2.0 / gt + 0.3).astype(np.float32)  # disparity up to scale 2 and shift 0.3
    s = video_depth_metrics(pred_disparity=pred, gt_depth=gt, max_depth=70.0)
    assert s.abs_rel == pytest.approx(0.0, abs=1e-5) and s.rmse == pytest.approx(0.0, abs=1e-3)
    assert s.delta1 == 1.0 and s.num_frames == 4
    assert s.scale == pytest.approx(0.5, rel=1e-4) and s.shift == pytest.approx(-0.15, abs=1e-4)


def test_depth_invalid_pixels_frames_and_seq_len() -> None:
    gt = _depth_video(t=5)
    pred = (1.0 / gt).astype(np.float32)
    gt[0, :4] = 500.0  # beyond d_max (sky): ignored even though the prediction is wrong there
    gt[1] = 0.0  # a frame without valid pixels: dropped
    pred[4] = 123.0  # beyond seq_len: never read
    s = video_depth_metrics(pred_disparity=pred, gt_depth=gt, max_depth=70.0, seq_len=4)
    assert s.num_frames == 3 and s.abs_rel == pytest.approx(0.0, abs=1e-5) and s.delta1 == 1.0


def test_depth_prediction_at_lower_resolution_is_resized() -> None:
    gt = np.repeat(np.repeat(_depth_video(h=4, w=4), 2, axis=1), 2, axis=2)[:, :, :]
    gt[:] = gt[:, :1, :1]  # constant per frame, so any interpolation is exact
    pred = (1.0 / gt[:, ::2, ::2]).astype(np.float32)
    s = video_depth_metrics(pred_disparity=pred, gt_depth=gt, max_depth=70.0)
    assert s.abs_rel == pytest.approx(0.0, abs=1e-5)


def test_depth_known_error_by_hand() -> None:
    # "disp" domain: one fit D ≈ s·P + t over the three valid pixels (P = 1, 2, 20; D = 1, 2, 5;
    # the pixel with D = 50 ≥ d_max is out), predictions clipped to d_max, then AbsRel per frame
    # (frame 0: two pixels, frame 1: one) and the mean over frames, not over pixels.
    gt = np.array([[[1.0, 2.0]], [[5.0, 50.0]]], np.float32)
    pred = np.array([[[1.0, 2.0]], [[20.0, 1.0]]], np.float32)
    s = video_depth_metrics(pred_disparity=pred, gt_depth=gt, max_depth=10.0, domain="disp")
    assert s.num_frames == 2
    fit = np.linalg.lstsq(np.array([[1.0, 1], [2, 1], [20, 1]]), np.array([1.0, 2, 5]), rcond=None)[0]
    d_hat = np.clip(fit[0] * np.array([1.0, 2.0, 20.0]) + fit[1], 1e-3, 10.0)
    rel = np.abs(d_hat - [1, 2, 5]) / [1, 2, 5]
    assert s.abs_rel == pytest.approx((rel[:2].mean() + rel[2]) / 2)
    assert s.abs_rel != pytest.approx(rel.mean())  # the pixel-pooled mean would differ


def test_depth_protocol_table_and_sequence_mean() -> None:
    assert DEPTHCRAFTER_PROTOCOLS["sintel"] == (50, 70.0) and DEPTHCRAFTER_PROTOCOLS["kitti"] == (110, 80.0)
    gt = _depth_video()
    a = video_depth_metrics(pred_disparity=(1.0 / gt).astype(np.float32), gt_depth=gt, max_depth=70.0)
    b = video_depth_metrics(
        pred_disparity=RNG.uniform(0.1, 1, gt.shape).astype(np.float32), gt_depth=gt, max_depth=70.0
    )
    m = mean_over_sequences([a, b])
    assert m["abs_rel"] == pytest.approx((a.abs_rel + b.abs_rel) / 2) and m["num_sequences"] == 2


# ------------------------------------------------------------------------------------- pose
def _rot(axis: np.ndarray, deg: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(deg)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _c2w(rots: list[np.ndarray], centres: np.ndarray) -> np.ndarray:
    out = np.tile(np.eye(4), (len(rots), 1, 1))
    out[:, :3, :3] = np.stack(rots)
    out[:, :3, 3] = centres
    return out


def test_umeyama_recovers_a_similarity() -> None:
    src = RNG.normal(size=(20, 3))
    rot = _rot(np.array([1.0, 2.0, 3.0]), 40.0)
    dst = 2.5 * src @ rot.T + [1.0, -2.0, 0.5]
    s, r, t = umeyama_similarity(src=src, dst=dst)
    assert s == pytest.approx(2.5) and np.allclose(r, rot) and np.allclose(t, [1.0, -2.0, 0.5])
    _, r_mirror, _ = umeyama_similarity(src=src, dst=src * [1, 1, -1])  # reflection: still a rotation
    assert np.linalg.det(r_mirror) == pytest.approx(1.0)


def test_pose_metrics_invariant_to_similarity_and_convention() -> None:
    t = 8
    gt = _c2w([_rot(RNG.normal(size=3), RNG.uniform(0, 90)) for _ in range(t)], RNG.normal(size=(t, 3)))
    world = _c2w([_rot(np.array([0.0, 1.0, 1.0]), 30.0)], np.array([[3.0, 0.0, -1.0]]))[0]
    pred = world @ gt
    pred[:, :3, 3] *= 0.2  # another world frame and scale
    s = pose_metrics(pred_poses=pred, gt_poses=gt, convention="c2w")
    assert s.ate == pytest.approx(0.0, abs=1e-9) and s.rte == pytest.approx(0.0, abs=1e-9)
    assert s.rre == pytest.approx(0.0, abs=1e-6) and s.scale == pytest.approx(5.0)
    w2c = pose_metrics(pred_poses=np.linalg.inv(pred), gt_poses=np.linalg.inv(gt), convention="w2c")
    assert w2c.ate == pytest.approx(0.0, abs=1e-9)


def test_pose_errors_by_hand() -> None:
    eye = [np.eye(3)] * 5
    centres = np.stack([np.arange(5.0), np.zeros(5), np.zeros(5)], axis=-1)
    gt = _c2w(eye, centres)
    moved = centres.copy()
    moved[2, 1] = 0.3  # frame 2 displaced sideways by 0.3
    s = pose_metrics(pred_poses=_c2w(eye, moved), gt_poses=gt, convention="c2w", align="none")
    assert s.ate == pytest.approx(0.3 / np.sqrt(5))  # RMSE over 5 frames
    assert s.rte == pytest.approx(0.3 / np.sqrt(2))  # two of four pairs off by 0.3
    assert s.rre == 0.0
    mean = pose_metrics(
        pred_poses=_c2w(eye, moved), gt_poses=gt, convention="c2w", align="none", reduction="mean"
    )
    assert mean.ate == pytest.approx(0.06) and mean.rte == pytest.approx(0.15)
    turned = list(eye)
    turned[2] = _rot(np.array([0.0, 0.0, 1.0]), 10.0)  # frame 2 turned 10° in place
    s = pose_metrics(
        pred_poses=_c2w(turned, centres), gt_poses=gt, convention="c2w", align="none", reduction="mean"
    )
    assert s.ate == 0.0 and s.rre == pytest.approx(2 * 10.0 / 4)
