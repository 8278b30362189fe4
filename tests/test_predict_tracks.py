"""Point tracks through `predict` with the tiny model: conventions, memory over several
windows, bidirectional tracking, chunking, and 3D consistency."""

from __future__ import annotations

import pytest
import torch

import l4p
from l4p.inference.engine import run_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return l4p.load_model("l4p_test", device="cpu")


@pytest.fixture(scope="module")
def video():
    torch.manual_seed(1)
    return torch.rand(30, 3, 48, 64)  # 30 frames -> padded to 32 -> 3 windows


QUERIES = torch.tensor([[0.0, 10.0, 20.0], [12.0, 40.0, 5.0], [29.0, 63.0, 47.0], [20.0, 0.0, 0.0]])


@pytest.fixture(scope="module")
def both(model, video):
    return model.predict(video, ("camera", "tracks"), queries=QUERIES)


@pytest.fixture(scope="module")
def forward(model, video):
    return model.predict(video, ("camera", "tracks"), queries=QUERIES, direction="forward")


def test_shapes(both):
    assert both.tracks.shape == (1, 30, 4, 2)
    assert both.visibility.shape == both.visibility_prob.shape == both.track_depth.shape == (1, 30, 4)
    assert both.visibility.dtype == torch.bool
    assert both.tracks_3d.shape == both.tracks_world.shape == (1, 30, 4, 3)
    torch.testing.assert_close(both.queries[0], QUERIES)


def test_bidirectional_fills_every_frame(both):
    assert torch.isfinite(both.tracks).all() and torch.isfinite(both.track_depth).all()
    assert (both.track_depth > 0).all()


def test_forward_only_leaves_frames_before_query_empty(forward):
    before = torch.arange(30)[:, None] < QUERIES[:, 0][None]  # (T, N)
    assert torch.isnan(forward.tracks[0][before]).all()
    assert torch.isfinite(forward.tracks[0][~before]).all()
    assert not forward.visibility[0][before].any()


def test_directions_agree_after_the_query(both, forward):
    after = torch.arange(30)[:, None] >= QUERIES[:, 0][None]
    torch.testing.assert_close(both.tracks[0][after], forward.tracks[0][after])
    torch.testing.assert_close(both.visibility_prob[0][after], forward.visibility_prob[0][after])


def test_tracks_3d_reproject_through_intrinsics(both):
    k = both.intrinsics[0]  # (T, 3, 3), the camera head's estimate in input pixels
    proj = torch.einsum("tij,tnj->tni", k, both.tracks_3d[0])
    torch.testing.assert_close(proj[..., :2] / proj[..., 2:], both.tracks[0], atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(
        both.tracks_3d[0, ..., 2] / k[:, None, 2, 2], both.track_depth[0], atol=1e-4, rtol=1e-4
    )
    world = torch.cat([both.tracks_world[0], torch.ones(30, 4, 1)], -1)
    cam = torch.einsum("tij,tnj->tni", both.extrinsics[0], world)[..., :3]
    torch.testing.assert_close(cam, both.tracks_3d[0], atol=1e-3, rtol=1e-4)


def test_given_intrinsics_are_used(model, video):
    k = torch.tensor([[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]])
    pred = model.predict(video[:8], ("tracks",), queries=QUERIES[:1], intrinsics=k)
    proj = torch.einsum("ij,tnj->tni", k, pred.tracks_3d[0])
    torch.testing.assert_close(proj[..., :2] / proj[..., 2:], pred.tracks[0], atol=1e-3, rtol=1e-4)


def test_memory_over_three_windows(model, video):
    """Engine level: three windows, track features carried, queries re-seeded (label 2)."""
    clip = torch.rand(1, 3, 32, 112, 112)
    queries = torch.tensor([[[0.5, 20.5, 30.5], [3.5, 90.5, 60.5]]])
    with torch.inference_mode():
        raw = run_model(model.model, clip, tasks=("tracks",), queries_bn3=queries)
    records = raw.tracks.windows
    assert [r.start for r in records] == [0, 8, 16]
    assert records[0].track_feature_labels.tolist() == [[0, 0]]
    assert records[1].track_feature_labels.tolist() == [[1, 1]] == records[2].track_feature_labels.tolist()
    assert (records[2].point_labels == 2).all()  # both queries were re-seeded from the overlap
    assert (records[2].queries[..., 0] >= 0).all()  # re-seeded times lie inside the window


def test_chunking_invariance(model, video):
    queries = torch.tensor(
        [[0, 10, 20], [12, 40, 5], [15, 63, 47], [3, 30, 30], [5, 5, 40], [7, 60, 10]]
    ).float()
    ref = model.predict(video[:16], ("tracks",), queries=queries, direction="forward")
    tracker = model.model.tracker
    saved, tracker.max_queries = tracker.max_queries, 2
    try:
        chunked = model.predict(video[:16], ("tracks",), queries=queries, direction="forward")
    finally:
        tracker.max_queries = saved
    torch.testing.assert_close(chunked.tracks, ref.tracks, atol=1e-2, rtol=0, equal_nan=True)
    torch.testing.assert_close(chunked.visibility_prob, ref.visibility_prob, atol=1e-4, rtol=0)


def test_grid_queries(model, video):
    pred = model.predict(video[:10], ("tracks",), grid_size=3, grid_frame=4)
    assert pred.tracks.shape == (1, 10, 9, 2)
    assert (pred.queries[0, :, 0] == 4).all()
    xs = pred.queries[0, :3, 1]
    torch.testing.assert_close(xs, torch.tensor([64 / 6 - 0.5, 64 / 2 - 0.5, 5 * 64 / 6 - 0.5]))


def test_batched_queries(model, video):
    videos = torch.stack([video[:12], video[:12].flip(0)])
    queries = torch.stack([QUERIES[:2], QUERIES[:2]])
    queries[..., 0] = torch.tensor([0.0, 5.0])
    pred = model.predict(videos, ("tracks",), queries=queries)
    one = model.predict(videos[1], ("tracks",), queries=queries[1])
    torch.testing.assert_close(pred.tracks[1], one.tracks[0], atol=1e-2, rtol=0)


def test_align_track_depth_per_window():
    """Per-window scales of track depth are mapped onto the depth map."""
    from l4p.inference.tracks import align_track_depth

    t, n = 24, 5
    depth_map = torch.full((1, t, 20, 30), 3.0)
    true_depth = torch.full((1, t, n), 3.0)
    segments = torch.clamp(torch.arange(t) // 8, max=2)[None, :, None].expand(1, t, n)
    raw = true_depth / torch.tensor([1.0, 2.0, 0.5])[segments]  # a different scale per window
    tracks = torch.rand(1, t, n, 2) * torch.tensor([29.0, 19.0])
    visible = torch.ones(1, t, n, dtype=torch.bool)
    visible[0, 16:] = False  # last window has no visible entries: uses the video's median
    out = align_track_depth(raw, tracks, visible, depth_map, segments)
    torch.testing.assert_close(out[0, :16], true_depth[0, :16])
    assert torch.isfinite(out).all() and (out > 0).all()


def test_default_mode_track_depth_matches_depth_map(model, video):
    """Depth map scaled by e^2 relative to the tracking head: default mode follows the map."""
    import copy

    net = copy.deepcopy(model.model)
    with torch.no_grad():
        net.heads["depth"].dpt.head2.out.bias += 2.0
    predictor = l4p.L4PPredictor(net)

    def ratio(pred):
        x = pred.tracks[0, ..., 0].round().long().clamp(0, 63)
        y = pred.tracks[0, ..., 1].round().long().clamp(0, 47)
        return (pred.depth[0][torch.arange(30)[:, None], y, x] / pred.track_depth[0]).nanmedian()

    aligned = ratio(predictor.predict(video, ("depth", "tracks"), queries=QUERIES))
    released = ratio(predictor.predict(video, ("depth", "tracks"), queries=QUERIES, mode="released"))
    assert 0.8 < aligned < 1.25, aligned
    assert released > 3.0, released  # the released model leaves track depth on its own scale
