"""`predict` with the tiny model: shapes and conventions on odd inputs, mapping outputs back
to input pixels, determinism, saving, and errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import l4p
from l4p.checkpoints import StateDictMismatchError
from l4p.inference.resize import resize_flow, scale_intrinsics, scale_points
from l4p.inference.windows import mirror_indices, padded_length, window_starts

DENSE = ("depth", "flow", "motion", "camera")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return l4p.load_model("l4p_test", device="cpu")


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((1, 3, 40, 56), torch.float32), ((5, 3, 100, 300), torch.uint8), ((17, 3, 64, 64), torch.float32)],
)
def test_dense_shapes_and_finite(model, shape, dtype):
    video = torch.rand(shape) if dtype == torch.float32 else torch.randint(0, 256, shape, dtype=torch.uint8)
    pred = model.predict(video, DENSE)
    t, _, h, w = shape
    assert pred.depth.shape == (1, t, h, w) and pred.motion.shape == (1, t, h, w)
    assert pred.flow.shape == (1, t, 2, h, w)
    assert pred.extrinsics.shape == (1, t, 4, 4) and pred.intrinsics.shape == (1, t, 3, 3)
    assert (pred.depth > 0).all() and ((pred.motion >= 0) & (pred.motion <= 1)).all()
    assert torch.isnan(pred.flow[:, 0]).all() and torch.isfinite(pred.flow[:, 1:]).all()
    assert torch.isfinite(pred.extrinsics).all() and torch.isfinite(pred.intrinsics).all()
    rot = pred.extrinsics[..., :3, :3]
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), torch.eye(3).expand_as(rot), atol=1e-4, rtol=0)
    assert all(v.device.type == "cpu" for v in pred.tensors().values())


def test_long_video_batch_and_numpy(model):
    """37 frames (five windows, padded to 48), batch of 2, numpy uint8 channels-last."""
    video = np.random.default_rng(0).integers(0, 256, size=(2, 37, 48, 80, 3), dtype=np.uint8)
    pred = model.predict(video, ("depth", "flow"))
    assert pred.depth.shape == (2, 37, 48, 80) and pred.flow.shape == (2, 37, 2, 48, 80)
    assert torch.isfinite(pred.depth).all()
    single = model.predict(video[1], ("depth", "flow"))
    torch.testing.assert_close(single.depth[0], pred.depth[1], atol=1e-4, rtol=1e-4)


def test_same_input_same_output(model):
    video = torch.rand(9, 3, 32, 48)
    a = model.predict(video, DENSE)
    b = model.predict(video, DENSE)
    for name, value in a.tensors().items():
        torch.testing.assert_close(value, b.tensors()[name], rtol=0, atol=0, equal_nan=True)


def test_windows_and_padding():
    assert padded_length(1, window=16, stride=8) == 16
    assert padded_length(17, window=16, stride=8) == 24
    assert padded_length(37, window=16, stride=8) == 40
    assert window_starts(40, window=16, stride=8) == [0, 8, 16, 24]
    idx = mirror_indices(5, 12).tolist()
    assert idx == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3]
    assert mirror_indices(1, 4).tolist() == [0, 0, 0, 0]


def test_flow_and_intrinsics_map_back():
    """A constant translation at window size maps to the scaled translation at input size,
    and a 3D point projects consistently through the rescaled intrinsics."""
    flow = torch.zeros(1, 2, 2, 112, 112)
    flow[:, :, 0], flow[:, :, 1] = 3.0, -2.0
    up = resize_flow(flow, (100, 300))
    torch.testing.assert_close(up[0, 0, 0], torch.full((100, 300), 3.0 * 300 / 112))
    torch.testing.assert_close(up[0, 0, 1], torch.full((100, 300), -2.0 * 100 / 112))
    k_win = torch.tensor([[90.0, 0.0, 55.5], [0.0, 80.0, 50.0], [0.0, 0.0, 1.0]])
    k_in = scale_intrinsics(k_win, src=(112, 112), dst=(100, 300))
    point = torch.tensor([0.3, -0.2, 2.0])
    project = lambda k: (k @ point)[:2] / point[2]  # noqa: E731
    torch.testing.assert_close(project(k_in), scale_points(project(k_win), src=(112, 112), dst=(100, 300)))


def test_save_load_roundtrip_and_prediction_file(model, tmp_path):
    video = torch.rand(6, 3, 40, 40)
    model.save_pretrained(tmp_path / "tiny")
    again = l4p.load_model(tmp_path / "tiny", device="cpu")
    a, b = model.predict(video, ("depth",)), again.predict(video, ("depth",))
    torch.testing.assert_close(a.depth, b.depth, rtol=0, atol=0)
    path = a.save(tmp_path / "pred.npz")
    data = np.load(path)
    assert data["depth"].shape == (1, 6, 40, 40) and "flow" not in data


def test_load_subset_of_heads_and_mismatch(model, tmp_path):
    model.save_pretrained(tmp_path / "tiny")
    depth_only = l4p.load_model(tmp_path / "tiny", device="cpu", tasks=("depth",))
    assert depth_only.tasks == ("depth",)
    with pytest.raises(ValueError, match="has no head for 'flow'"):
        depth_only.predict(torch.rand(2, 3, 32, 32), ("flow",))
    other = l4p.build_model("l4p_vits16", tasks=("depth",))
    from l4p.checkpoints.own import save_pretrained

    save_pretrained(other, tmp_path / "small")
    with pytest.raises(StateDictMismatchError, match="mis-shaped keys"):
        l4p.load_model("l4p_test", checkpoint=tmp_path / "small" / "model.safetensors", tasks=("depth",))


@pytest.mark.parametrize(
    ("video", "kwargs", "message"),
    [
        (torch.rand(0, 3, 32, 32), {}, "video is empty"),
        (torch.rand(4, 2, 32, 32), {}, "expected 3"),
        (torch.full((4, 3, 32, 32), float("nan")), {}, "NaN or infinite"),
        (torch.rand(4, 3, 32, 32) * 255, {}, r"expected \[0, 1\]"),
        (torch.rand(4, 3, 32, 32), {"tasks": ("depht",)}, "unknown task 'depht'"),
        (torch.rand(4, 3, 32, 32), {"tasks": ("tracks",)}, "tracks need queries"),
        (torch.rand(4, 3, 32, 32), {"tasks": ("tracks",), "queries": [[0, 40, 5]]}, "outside the video"),
        (torch.rand(4, 3, 32, 32), {"tasks": ("tracks",), "queries": [[0, 4]]}, r"must be \(N, 3\)"),
        (torch.rand(4, 3, 32, 32), {"tasks": ("tracks",), "queries": [[9, 4, 4]]}, "outside the video"),
        ("does_not_exist.mp4", {}, "does not exist"),
    ],
)
def test_bad_inputs(model, video, kwargs, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        model.predict(video, **{"tasks": ("depth",), **kwargs})


def test_non_video_file(model, tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(ValueError, match="could not decode"):
        model.predict(path, ("depth",))


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'l4p_huge'"):
        l4p.build_model("l4p_huge")


def test_import_is_cheap():
    import subprocess
    import sys

    code = "import sys, l4p; assert 'torch' not in sys.modules, 'importing l4p imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_window_batching_matches_sequential(model):
    video = torch.rand(30, 3, 40, 40)  # 3 windows
    ref = model.predict(video, ("depth", "flow", "tracks"), grid_size=2)
    batched = l4p.L4PPredictor(model.model, window_batch_size=3)
    out = batched.predict(video, ("depth", "flow", "tracks"), grid_size=2)
    for name in ("depth", "flow", "tracks"):
        torch.testing.assert_close(
            getattr(out, name), getattr(ref, name), atol=1e-4, rtol=1e-4, equal_nan=True
        )


def test_bf16_autocast_close_to_fp32(model):
    video = torch.rand(8, 3, 32, 48)
    ref = model.predict(video, ("depth", "tracks"), grid_size=2)
    low = l4p.L4PPredictor(model.model, dtype=torch.bfloat16).predict(video, ("depth", "tracks"), grid_size=2)
    assert low.depth.dtype == torch.float32
    torch.testing.assert_close(low.depth, ref.depth, rtol=0.05, atol=0.05)
    assert (low.tracks - ref.tracks).abs().max() < 2.0


def test_camera_only_model(tmp_path, model):
    """A model with only the camera head still predicts cameras over several windows."""
    model.save_pretrained(tmp_path / "tiny")
    camera_only = l4p.load_model(tmp_path / "tiny", device="cpu", tasks=("camera",))
    pred = camera_only.predict(torch.rand(20, 3, 32, 32), ("camera",))
    assert pred.extrinsics.shape == (1, 20, 4, 4) and torch.isfinite(pred.extrinsics).all()
