"""TAP-Vid 2D and TAPVid-3D metrics on hand-computable cases."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from l4p.data.formats.tapvid3d import TapVid3DSample, save_tapvid3d_npz, save_tapvid3d_prediction
from l4p.metrics import (
    average_over_subsets,
    compute_tapvid2d_metrics,
    compute_tapvid3d_metrics,
    evaluate_tapvid3d_subset,
    evaluate_tapvid3d_video,
    metric_eval_intrinsics,
    pixels_to_raster,
    raster_to_pixels,
    sample_queries_first,
    sample_queries_strided,
)

RNG = np.random.default_rng(0)


def _tracks2d(n: int = 5, t: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gt = RNG.uniform(20, 230, size=(1, n, t, 2))
    occ = np.zeros((1, n, t), dtype=bool)
    queries = np.stack([np.zeros(n), gt[0, :, 0, 1], gt[0, :, 0, 0]], axis=-1)[None]  # (t, y, x)
    return queries, gt, occ


@pytest.mark.parametrize("mode", ["first", "strided"])
def test_2d_perfect_prediction_scores_one(mode: str) -> None:
    q, gt, occ = _tracks2d()
    m = compute_tapvid2d_metrics(
        query_points=q, gt_occluded=occ, gt_tracks=gt, pred_occluded=occ, pred_tracks=gt, query_mode=mode
    )
    for name in ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy"):
        assert m[name].shape == (1,) and m[name][0] == 1.0


def test_2d_constant_offset_gives_known_deltas() -> None:
    q, gt, occ = _tracks2d()
    m = compute_tapvid2d_metrics(
        query_points=q,
        gt_occluded=occ,
        gt_tracks=gt,
        pred_occluded=occ,
        pred_tracks=gt + [3.0, 4.0],
        query_mode="first",
    )
    # distance 5 px: within 8 and 16 only
    assert [m[f"pts_within_{d}"][0] for d in (1, 2, 4, 8, 16)] == [0, 0, 0, 1, 1]
    assert m["average_pts_within_thresh"][0] == pytest.approx(0.4)
    assert m["average_jaccard"][0] == pytest.approx(
        0.4
    )  # wrong-but-visible = false positive AND false negative
    # strict "<": a 4 px error is not within 4 px
    m4 = compute_tapvid2d_metrics(
        query_points=q,
        gt_occluded=occ,
        gt_tracks=gt,
        pred_occluded=occ,
        pred_tracks=gt + [0.0, 4.0],
        query_mode="first",
    )
    assert m4["pts_within_4"][0] == 0 and m4["pts_within_8"][0] == 1


def test_2d_occlusion_handling_by_hand() -> None:
    # one track, 3 frames, query at frame 0 (strided: frames 1, 2 scored)
    q = np.array([[[0.0, 10.0, 10.0]]])
    gt = np.full((1, 1, 3, 2), 10.0)
    gt_occ = np.array([[[False, False, True]]])
    pred_occ = np.zeros((1, 1, 3), dtype=bool)  # predicted visible everywhere
    m = compute_tapvid2d_metrics(
        query_points=q,
        gt_occluded=gt_occ,
        gt_tracks=gt,
        pred_occluded=pred_occ,
        pred_tracks=gt,
        query_mode="strided",
    )
    assert m["occlusion_accuracy"][0] == 0.5  # frame 1 right, frame 2 wrong
    assert m["pts_within_1"][0] == 1.0  # only GT-visible frame 1 counts
    assert m["jaccard_1"][0] == 0.5  # TP 1 / (GT 1 + FP 1)
    # predicting "occluded" with perfect positions: positions still count, Jaccard is 0
    m = compute_tapvid2d_metrics(
        query_points=q,
        gt_occluded=np.zeros((1, 1, 3), bool),
        gt_tracks=gt,
        pred_occluded=np.ones((1, 1, 3), bool),
        pred_tracks=gt,
        query_mode="strided",
    )
    assert (
        m["pts_within_1"][0] == 1.0 and m["average_jaccard"][0] == 0.0 and m["occlusion_accuracy"][0] == 0.0
    )


def test_2d_first_mode_ignores_query_and_earlier_frames() -> None:
    q, gt, occ = _tracks2d(n=1, t=5)
    q[..., 0] = 2.0
    pred = gt.copy()
    pred[:, :, :3] += 100.0  # bad at frames 0..2 (the query frame and before)
    first = compute_tapvid2d_metrics(
        query_points=q, gt_occluded=occ, gt_tracks=gt, pred_occluded=occ, pred_tracks=pred, query_mode="first"
    )
    strided = compute_tapvid2d_metrics(
        query_points=q,
        gt_occluded=occ,
        gt_tracks=gt,
        pred_occluded=occ,
        pred_tracks=pred,
        query_mode="strided",
    )
    assert first["average_pts_within_thresh"][0] == 1.0
    assert strided["average_pts_within_thresh"][0] == pytest.approx(2 / 4)  # frames 0, 1, 3, 4 scored


def test_2d_trackwise_shape() -> None:
    q, gt, occ = _tracks2d(n=4)
    m = compute_tapvid2d_metrics(
        query_points=q,
        gt_occluded=occ,
        gt_tracks=gt,
        pred_occluded=occ,
        pred_tracks=gt,
        query_mode="first",
        trackwise=True,
    )
    assert m["average_jaccard"].shape == (1, 4)


def test_query_sampling_by_hand() -> None:
    occ = np.array([[True, False, False], [True, True, True], [False, True, False]])
    pts = np.arange(18, dtype=np.float64).reshape(3, 3, 2)
    q, tracks, o = sample_queries_first(occluded=occ, points_xy=pts)
    assert q.shape == (1, 2, 3) and tracks.shape == (1, 2, 3, 2) and o.shape == (1, 2, 3)
    np.testing.assert_array_equal(q[0], [[1, pts[0, 1, 1], pts[0, 1, 0]], [0, pts[2, 0, 1], pts[2, 0, 0]]])
    q, tracks, o, group = sample_queries_strided(occluded=occ, points_xy=pts, stride=2)
    # frame 0: track 2 visible; frame 2: tracks 0 and 2
    np.testing.assert_array_equal(group[0], [2, 0, 2])
    np.testing.assert_array_equal(q[0, :, 0], [0, 2, 2])


# ----------------------------------------------------------------------------------- TAPVid-3D
K256 = np.array([100.0, 100.0, 128.0, 128.0])


def _tracks3d(n: int = 6, t: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, N, 3) GT tracks in front of the camera, all visible, queries at frame 0 as (t, y, x)."""
    gt = RNG.normal(size=(t, n, 3))
    gt[..., 2] = RNG.uniform(2.0, 20.0, size=(t, n))
    vis = np.ones((t, n), dtype=bool)
    q = np.zeros((n, 3))
    return gt, vis, q


def _m3(gt, vis, pred, pvis, q, **kw):
    return compute_tapvid3d_metrics(
        gt_occluded=~vis, gt_tracks=gt, pred_occluded=~pvis, pred_tracks=pred, intrinsics=K256, query_points=q,
        order="t n", **kw,
    )  # fmt: skip


def test_3d_perfect_and_globally_scaled_prediction() -> None:
    gt, vis, q = _tracks3d()
    for pred in (gt, 0.5 * gt):
        m = _m3(gt, vis, pred, vis, q, scaling="median")
        assert m["average_jaccard"][0] == pytest.approx(1.0)
        assert m["occlusion_accuracy"][0] == 1.0
    m = _m3(gt, vis, 0.5 * gt, vis, q, scaling="none")
    assert m["average_jaccard"][0] < 0.5


def test_3d_depth_adaptive_threshold_by_hand() -> None:
    # one point at z = 10 m, f = 100 px: tau = delta * 10 / 100 m = 0.1 * delta
    gt = np.array([[[0.0, 0.0, 10.0]]] * 3)
    vis = np.ones((3, 1), bool)
    pred = gt + [0.25, 0.0, 0.0]  # 0.25 m off: within delta = 4, 8, 16 only
    m = _m3(gt, vis, pred, vis, np.zeros((1, 3)), scaling="none")
    assert [m[f"pts_within_{d}"][0] for d in (1, 2, 4, 8, 16)] == [0, 0, 1, 1, 1]
    assert m["average_pts_within_thresh"][0] == pytest.approx(0.6)
    # the radius uses the GT depth: 1.8 m too deep misses τ16 = 1.6 m (it would pass 16·11.8/100)
    m = _m3(gt, vis, gt + [0.0, 0.0, 1.8], vis, np.zeros((1, 3)), scaling="none")
    assert m["pts_within_16"][0] == 0.0
    # fixed radii 0.01, 0.04, 0.16, 0.64, 2.56 m
    m = _m3(
        gt, vis, gt + [0.1, 0.0, 0.0], vis, np.zeros((1, 3)), scaling="none", use_fixed_metric_threshold=True
    )
    assert [m[f"pts_within_{d}"][0] for d in (1, 2, 4, 8, 16)] == [0, 0, 1, 1, 1]


def test_3d_every_frame_counts_including_the_query_frame() -> None:
    gt, vis, q = _tracks3d(n=4, t=4)
    pred = gt.copy()
    pred[0] += 50.0  # wrong at the query frame only
    m = _m3(gt, vis, pred, vis, q, scaling="none")
    assert m["average_pts_within_thresh"][0] == pytest.approx(3 / 4)


def test_3d_per_trajectory_and_reproduce_2d_recover_per_track_scales() -> None:
    gt, vis, q = _tracks3d()
    per_track = RNG.uniform(0.3, 3.0, size=(1, gt.shape[1], 1))
    pred = gt * per_track
    assert _m3(gt, vis, pred, vis, q, scaling="per_trajectory")["average_jaccard"][0] == pytest.approx(1.0)
    assert _m3(gt, vis, pred, vis, q, scaling="median")["average_jaccard"][0] < 1.0
    along_rays = gt * RNG.uniform(0.3, 3.0, size=gt.shape[:2] + (1,))
    assert _m3(gt, vis, along_rays, vis, q, scaling="reproduce_2d")["average_jaccard"][0] == pytest.approx(
        1.0
    )


def test_3d_local_neighborhood_by_hand() -> None:
    # two identical GT tracks: track 0 predicted perfectly, track 1 far off (same query depth)
    t = 4
    track = np.stack([np.zeros(t), np.zeros(t), np.linspace(5, 8, t)], axis=-1)
    gt = np.stack([track, track], axis=1)  # (T, 2, 3)
    pred = gt.copy()
    pred[1:, 1, 0] += 3.0
    vis = np.ones((t, 2), bool)
    q = np.zeros((2, 3))
    per_traj = _m3(gt, vis, pred, vis, q, scaling="per_trajectory", trackwise=True)
    local = _m3(gt, vis, pred, vis, q, scaling="local_neighborhood", trackwise=True)
    np.testing.assert_allclose(per_traj["pts_within_1"][0], [1.0, 1 / 4])
    # each track's neighbourhood holds both tracks, each point weighing 1/2
    np.testing.assert_allclose(local["pts_within_1"][0], [5 / 8, 5 / 8])
    video = _m3(gt, vis, pred, vis, q, scaling="local_neighborhood")
    assert video["pts_within_1"].shape == (1,) and video["pts_within_1"][0] == pytest.approx(5 / 8)
    # far-apart tracks: neighbourhoods are the tracks themselves, so it equals per_trajectory
    gt2, vis2, q2 = _tracks3d()
    gt2[..., 0] += 10 * np.arange(gt2.shape[1])
    pred2 = gt2 + RNG.normal(scale=0.05, size=gt2.shape) * np.arange(gt2.shape[1])[:, None]
    vis2[1:, :3] = False  # tracks with different visible counts keep their own weight
    a = _m3(gt2, vis2, pred2, vis2, q2, scaling="local_neighborhood")
    b = _m3(gt2, vis2, pred2, vis2, q2, scaling="per_trajectory")
    assert a["average_jaccard"][0] == pytest.approx(b["average_jaccard"][0])


def test_3d_batched_median_scales_each_video() -> None:
    gt, vis, q = _tracks3d()
    gt_b = np.stack([gt, gt])
    pred_b = np.stack([2.0 * gt, 0.25 * gt])
    m = compute_tapvid3d_metrics(
        gt_occluded=~np.stack([vis, vis]), gt_tracks=gt_b, pred_occluded=~np.stack([vis, vis]), pred_tracks=pred_b,
        intrinsics=K256, scaling="median", order="b t n",
    )  # fmt: skip
    np.testing.assert_allclose(m["average_jaccard"], [1.0, 1.0])


def test_metric_eval_intrinsics() -> None:
    k = metric_eval_intrinsics(fx_fy_cx_cy=np.array([720.0, 720.0, 320.0, 180.0]), height=360, width=640)
    np.testing.assert_allclose(k, [512.0, 512.0, 320.0 * 256 / 360, 128.0])


def _jpeg(h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _sample(t: int = 3, n: int = 4) -> TapVid3DSample:
    gt, vis, _ = _tracks3d(n=n, t=t)
    vis[1, 0] = False
    queries_xyt = np.stack([RNG.uniform(0, 64, n), RNG.uniform(0, 32, n), np.zeros(n)], axis=-1)
    return TapVid3DSample(
        images_jpeg_bytes=[_jpeg(32, 64)] * t, queries_xyt=queries_xyt, tracks_xyz=gt, visibility=vis,
        fx_fy_cx_cy=np.array([40.0, 40.0, 32.0, 16.0]),
    )  # fmt: skip


def test_video_driver_and_official_failure_emulation() -> None:
    s = _sample()
    out = evaluate_tapvid3d_video(
        gt=s,
        pred_tracks_xyz=s.tracks_xyz,
        pred_visibility=s.visibility,
        scalings=("median", "per_trajectory"),
    )
    assert out["median"]["average_jaccard"][0] == pytest.approx(1.0)
    assert out["per_trajectory"]["average_jaccard"][0] == pytest.approx(1.0)
    off = evaluate_tapvid3d_video(
        gt=s, pred_tracks_xyz=s.tracks_xyz, pred_visibility=s.visibility, scalings=("per_trajectory",),
        reproduce_official_failures=True,
    )  # fmt: skip
    assert all(v[0] == 0.0 for v in off["per_trajectory"].values())


def test_subset_mean_and_equal_subset_weights(tmp_path) -> None:
    for subset, names in {"a": ["v0.npz"], "b": ["v1.npz", "v2.npz"]}.items():
        (tmp_path / "gt" / subset).mkdir(parents=True)
        (tmp_path / "pred" / subset).mkdir(parents=True)
        for name in names:
            s = _sample()
            save_tapvid3d_npz(tmp_path / "gt" / subset / name, s)
            if name != "v2.npz":  # v2's prediction is missing: it scores 0 and still counts
                save_tapvid3d_prediction(
                    tmp_path / "pred" / subset / name, tracks_xyz=s.tracks_xyz, visibility=s.visibility
                )
    per_subset = {
        sub: evaluate_tapvid3d_subset(
            gt_dir=tmp_path / "gt" / sub, pred_dir=tmp_path / "pred" / sub, file_names=names
        )
        for sub, names in {"a": ["v0.npz"], "b": ["v1.npz", "v2.npz"]}.items()
    }
    assert per_subset["a"]["median"]["average_jaccard"] == pytest.approx(1.0)
    assert per_subset["b"]["median"]["average_jaccard"] == pytest.approx(0.5)
    overall = average_over_subsets(per_subset)
    assert overall["median"]["average_jaccard"] == pytest.approx(0.75)  # not 2/3 (the per-video mean)
    with pytest.raises(FileNotFoundError):
        evaluate_tapvid3d_subset(
            gt_dir=tmp_path / "gt" / "b",
            pred_dir=tmp_path / "pred" / "b",
            file_names=["v2.npz"],
            missing="raise",
        )


def test_pixel_centre_to_raster_convention() -> None:
    # centre of the top-left pixel of a 512 x 1024 video; the last pixel's centre
    pts = np.array([[0.0, 0.0], [1023.0, 511.0]])
    r = pixels_to_raster(points_xy=pts, height=512, width=1024)
    np.testing.assert_allclose(r, [[0.125, 0.25], [255.875, 255.75]])
    np.testing.assert_allclose(raster_to_pixels(points_xy=r, height=512, width=1024), pts)
