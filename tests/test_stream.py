"""The stream: iterators of frames, chunk timing (latency), bad frames, the on-disk store,
and the request checks of issues 14 and 16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import l4p
from l4p.inference.emit import collect
from l4p.inference.store import StoreError

ALL = ("depth", "flow", "motion", "camera", "tracks")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return l4p.load_model("l4p_test", device="cpu")


@pytest.fixture(scope="module")
def video():
    return np.random.default_rng(1).integers(0, 256, size=(19, 12, 16, 3), dtype=np.uint8)


def _close(a: l4p.Prediction, b: l4p.Prediction, atol: float = 1e-5) -> None:
    assert set(a.tensors()) == set(b.tensors())
    for name, value in a.tensors().items():
        torch.testing.assert_close(value, b.tensors()[name], atol=atol, rtol=0, equal_nan=True, msg=name)


def test_iterator_of_frames_matches_predict_and_latency(model, video):
    """Frames one at a time: same outputs as the in-memory video; a stride comes out once
    the window after it is full (frames s..s+7 after frame s+15 arrived)."""
    ref = model.predict(video, ALL, grid_size=2)
    consumed = []

    def frames():
        for i, frame in enumerate(video):
            consumed.append(i + 1)
            yield frame

    chunks, seen_at = [], []
    for chunk in model.stream(frames(), ALL, grid_size=2):
        chunks.append(chunk)
        seen_at.append(consumed[-1])
    assert [(c.start, c.stop, c.kind) for c in chunks] == [
        (0, 8, "frames"), (8, 16, "frames"), (16, 19, "frames"), (0, 19, "tracks")
    ]  # fmt: skip
    assert seen_at[:2] == [16, 19]  # window 0 needs frames 0..15; window 8 waits for the end
    _close(collect(chunks), ref)


def test_frames_of_changing_size(model, video):
    frames = [*video[:5], np.zeros((10, 16, 3), np.uint8), *video[5:]]
    with pytest.raises(ValueError, match=r"frame 5 is 16x10 \(WxH\) but frame 0 is 16x12"):
        list(model.stream(iter(frames), ("depth",)))


def test_stream_to_disk_matches_predict_and_reads_lazily(model, video, tmp_path):
    ref = model.predict(video, ALL, grid_size=2)
    out = l4p.stream_to_disk(model, video, tmp_path / "pred", ALL, grid_size=2)
    stored = l4p.load_prediction(out)
    assert stored.attrs["complete"] and stored.num_frames == 19
    assert "OpenCV" in stored.attrs["units"]["extrinsics"] and stored.fps is None
    part = stored.depth[0, 8:10]  # reads only those chunks
    assert isinstance(part, np.ndarray) and part.shape == (2, 12, 16)
    np.testing.assert_array_equal(part, ref.depth[0, 8:10].numpy())
    _close(stored.to_prediction(), ref, atol=0)
    assert not (out / ".l4p_resume").exists()


def test_unwritable_output_is_a_clear_error(model, video, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot write the prediction store to .*pick a writable folder"):
        l4p.stream_to_disk(model, video[:3], blocker / "pred", ("depth",))


def test_request_checks(model, video):
    """Issue 14.11: one-line errors naming the fix; comma-separated tasks."""
    with pytest.raises(ValueError, match="mode must be 'default' or 'released', got 'fast'"):
        model.predict(video[:2], ("depth",), mode="fast")
    with pytest.raises(ValueError, match="mode must be"):
        l4p.L4PPredictor(model.model, mode="fast")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here; pass device='cpu'"):
            l4p.L4PPredictor(model.model, device="cuda")
    pred = model.predict(video[:2], "depth, flow")
    assert pred.depth is not None and pred.flow is not None and pred.motion is None


def test_frame_zero_is_the_world_in_default_mode(model, video):
    """Issue 14.4: frame 0's extrinsics are the identity in default mode, not in released mode."""
    default = model.predict(video, ("camera",))
    torch.testing.assert_close(default.extrinsics[:, 0], torch.eye(4)[None], atol=1e-6, rtol=0)
    released = model.predict(video, ("camera",), mode="released")
    assert (released.extrinsics[:, 0] - torch.eye(4)).abs().max() > 1e-3


def test_save_returns_the_file_and_load_round_trips(model, video, tmp_path):
    """Issue 14.10: save("x") writes and returns x.npz; load reads back every field exactly."""
    pred = model.predict(video[:9], ("depth", "tracks"), grid_size=2)
    path = pred.save(tmp_path / "x")
    assert path == tmp_path / "x.npz" and path.exists()
    for back in (l4p.Prediction.load(path), l4p.load_prediction(tmp_path / "x")):
        assert back.depth_kind == pred.depth_kind and back.visibility.dtype == torch.bool
        _close(back, pred, atol=0)


def test_tracks_without_intrinsics_use_the_camera_head(model, video):
    """Issue 16: 3D tracks without given K use the camera head's window-0 estimate."""
    with_camera = model.predict(video, ("camera", "tracks"), grid_size=2)
    tracks_only = model.predict(video, ("tracks",), grid_size=2)
    assert tracks_only.intrinsics is None and tracks_only.tracks_3d is not None
    torch.testing.assert_close(
        tracks_only.tracks_3d, with_camera.tracks_3d, atol=1e-5, rtol=0, equal_nan=True
    )


def test_video_file_is_decoded_as_it_goes(model, tmp_path):
    """A path streams through `iter_frames`: same outputs as its decoded frames, fps stored."""
    from l4p.data.video import read_video, write_video

    frames = np.random.default_rng(2).integers(0, 256, size=(11, 16, 24, 3), dtype=np.uint8)
    path = write_video(tmp_path / "clip.mp4", frames, fps=12.0)
    decoded = read_video(path).frames
    _close(model.predict(path, ("depth", "camera")), model.predict(decoded, ("depth", "camera")), atol=0)
    stored = l4p.load_prediction(l4p.stream_to_disk(model, path, tmp_path / "pred", ("depth",)))
    assert stored.fps == pytest.approx(12.0) and stored.depth.shape == (1, 11, 16, 24)


def test_path_source_knows_its_length_for_the_progress_bar(tmp_path):
    """A file's declared frame count feeds the progress bar (total and ETA); T stays unbound."""
    from l4p.data.video import write_video
    from l4p.inference.source import FrameSource

    frames = np.zeros((9, 16, 24, 3), dtype=np.uint8)
    source = FrameSource(write_video(tmp_path / "clip.mp4", frames, fps=10.0))
    assert source.expected_frames == 9
    assert source.num_frames is None  # a truncated file may deliver fewer: nothing is validated against it
