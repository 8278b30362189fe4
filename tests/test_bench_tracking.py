"""``l4p bench tapvid-*`` and ``tapvid3d*`` on tiny pickles / npz files in the official layouts."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
from bench_support import ReplayPredictor, context, texture
from PIL import Image
from test_benchmarks import _tapvid3d_sample

from l4p.bench.registry import get_protocol
from l4p.data.readers import load_tapvid3d_prediction, save_tapvid3d_npz
from l4p.outputs import Prediction


def _davis_video(rng: np.random.Generator, t: int = 10, n: int = 6) -> dict:
    points = rng.uniform(0.1, 0.9, (n, 1, 2)) + np.linspace(0, 0.05, t)[None, :, None]
    occluded = rng.random((n, t)) < 0.2
    occluded[:, 5] = False  # every track visible at the strided query frames 0 and 5
    occluded[:, 0] = False
    video = np.stack([texture(rng, 20, 30) for _ in range(t)])
    return {"video": video, "points": points.astype(np.float32), "occluded": occluded}


def _tap_oracle(videos: list[dict], shift_px: float = 0.0, modes: int = 2) -> ReplayPredictor:
    """Answers each query with the GT track through it (in the 256x256 video's pixels)."""

    def respond(video, *, queries, **_):
        v = videos[(len(stub.calls) - 1) // modes]  # one call per query mode and video
        gt = v["points"] * 256 - 0.5  # raster -> l4p pixels at 256x256
        q = queries.numpy()
        match = [
            int(np.argmin(np.linalg.norm(gt[:, int(t)] - xy, axis=-1))) for t, xy in zip(q[:, 0], q[:, 1:])
        ]
        tracks = gt[match].transpose(1, 0, 2) + np.array([shift_px, 0.0])
        vis = ~v["occluded"][match].T
        return Prediction(
            tracks=torch.from_numpy(tracks).float()[None], visibility=torch.from_numpy(vis)[None]
        )

    stub = ReplayPredictor(respond)
    return stub


def test_tapvid_davis_perfect_and_shifted(tmp_path) -> None:
    rng = np.random.default_rng(0)
    videos = {"bear": _davis_video(rng), "camel": _davis_video(rng)}
    (tmp_path / "tapvid_davis").mkdir()
    with (tmp_path / "tapvid_davis" / "tapvid_davis.pkl").open("wb") as f:
        pickle.dump(videos, f)
    run = get_protocol("tapvid-davis").load()
    stub = _tap_oracle([videos["bear"], videos["camel"]])
    out = run(context(tmp_path / "tapvid_davis", tmp_path / "o", stub))
    assert stub.calls[0]["video"].shape == (10, 256, 256, 3) and stub.calls[0]["direction"] == "both"
    for mode in ("first", "strided"):
        assert out["scores"][mode]["average_jaccard"] == pytest.approx(1.0)
        assert out["scores"][mode]["occlusion_accuracy"] == pytest.approx(1.0)
    # 3 px off at 256x256: within 4, 8, 16 px but not 1, 2 -> δ_avg = AJ = 3/5 with perfect occlusion.
    stub = _tap_oracle([videos["bear"], videos["camel"]], shift_px=3.0)
    out = run(context(tmp_path / "tapvid_davis", tmp_path / "o", stub, overwrite=True))
    for mode in ("first", "strided"):
        assert out["scores"][mode]["average_pts_within_thresh"] == pytest.approx(0.6)
        assert out["scores"][mode]["average_jaccard"] == pytest.approx(0.6)


def test_tapvid_kinetics_shards_with_jpeg_frames(tmp_path) -> None:
    rng = np.random.default_rng(1)
    video = _davis_video(rng, t=6)
    jpegs = []
    for frame in video["video"]:
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG")
        jpegs.append(buf.getvalue())
    (tmp_path / "tapvid_kinetics").mkdir()
    with (tmp_path / "tapvid_kinetics" / "0000_of_0001.pkl").open("wb") as f:
        pickle.dump([{**video, "video": jpegs}], f)
    out = get_protocol("tapvid-kinetics").load()(
        context(
            tmp_path / "tapvid_kinetics",
            tmp_path / "o",
            _tap_oracle([video], modes=1),
            options={"modes": "first"},
        )
    )
    assert out["items"] == ["0000_of_0001/0"] and out["scores"]["first"]["average_jaccard"] == pytest.approx(
        1.0
    )


@pytest.fixture
def tv3d_root(tmp_path):
    rng = np.random.default_rng(3)
    samples = {}
    for subset, name in (("pstudio", "basketball_5"), ("adt", "Apartment_release_seq1_0")):
        (tmp_path / "tv3d" / subset).mkdir(parents=True)
        samples[f"{subset}/{name}"] = s = _tapvid3d_sample(rng, extrinsics=subset == "adt")
        save_tapvid3d_npz(tmp_path / "tv3d" / subset / f"{name}.npz", s)
    return tmp_path / "tv3d", samples


def _tv3d_oracle(samples: dict, *, scale_3d: float = 1.0, shift_px: float = 0.0):
    order = [samples[k] for k in sorted(samples)]  # items run adt/..., then pstudio/...

    def respond(video, *, queries, intrinsics, **_):
        s = order.pop(0)
        fx, fy, cx, cy = s.fx_fy_cx_cy
        xyz = s.tracks_xyz
        uv = np.stack([fx * xyz[..., 0] / xyz[..., 2] + cx, fy * xyz[..., 1] / xyz[..., 2] + cy], -1) - 0.5
        return Prediction(tracks=torch.from_numpy(uv + np.array([shift_px, 0.0])).float()[None],
                          tracks_3d=torch.from_numpy(scale_3d * xyz).float()[None],
                          visibility=torch.from_numpy(s.visibility)[None])  # fmt: skip

    return ReplayPredictor(respond)


def test_tapvid3d_perfect_scale_invariant_and_official_prediction_files(tv3d_root, tmp_path) -> None:
    root, samples = tv3d_root
    out = get_protocol("tapvid3d").load()(context(root, tmp_path / "o", _tv3d_oracle(samples, scale_3d=2.5)))
    assert out["scores"]["average_jaccard"] == pytest.approx(1.0)  # global median scaling undoes 2.5x
    assert out["scores"]["occlusion_accuracy"] == pytest.approx(1.0) and not out["all_subsets"]
    tracks, vis = load_tapvid3d_prediction(tmp_path / "o" / "predictions" / "pstudio" / "basketball_5.npz")
    np.testing.assert_allclose(tracks, 2.5 * samples["pstudio/basketball_5"].tracks_xyz, rtol=1e-6)


def test_tapvid3d_2d_projection_known_shift(tv3d_root, tmp_path) -> None:
    root, samples = tv3d_root
    run = get_protocol("tapvid3d-2d").load()
    ckpt = "l4p_depth_flow_2d3dtrack_camray_dynseg_v1.ckpt"
    out = run(context(root, tmp_path / "o", _tv3d_oracle(samples), checkpoint=ckpt))
    assert out["scores"]["average_jaccard"] == pytest.approx(1.0)
    md = (tmp_path / "o" / "summary.md").read_text()
    assert "| pstudio | 2D-AJ | 48.8 | 100.00 |" in md and "| 2D-AJ | 51.2 |" in md
    # 48x64 frames: the 256 evaluation scale is 256/48; 3 px there = 0.5625 px here -> APD = AJ = 3/5.
    out = run(context(root, tmp_path / "o", _tv3d_oracle(samples, shift_px=3 * 48 / 256), overwrite=True))
    assert out["scores"]["average_pts_within_thresh"] == pytest.approx(0.6)
    assert out["scores"]["average_jaccard"] == pytest.approx(0.6)
