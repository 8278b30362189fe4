"""Visualisation (colour wheel, depth colormap, overlays, mosaic, prediction videos) and video I/O."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l4p.data.video import VideoWriter, iter_frames, read_video, video_fps, write_video
from l4p.outputs import Prediction
from l4p.viz import (
    color_wheel,
    colorize_depth,
    depth_to_unit,
    draw_tracks,
    flow_to_rgb,
    mosaic,
    motion_overlay,
    visualize_prediction,
)
from l4p.viz._common import colormap_lut


def _flow(*vectors):
    """(2, N, 1) flow from (dx, dy) pairs."""
    return np.asarray(vectors, np.float32).T[:, :, None]


# ------------------------------------------------------------------------------- flow wheel
def test_wheel_has_55_hues_starting_red_with_primaries_at_segment_starts():
    wheel = color_wheel()
    assert wheel.shape == (55, 3)
    np.testing.assert_allclose(wheel[[0, 15, 21, 25, 36, 49]] * 255, [
        [255, 0, 0], [255, 255, 0], [0, 255, 0], [0, 255, 255], [0, 0, 255], [255, 0, 255]])  # fmt: skip


def test_flow_colours_at_known_directions():
    rgb = flow_to_rgb(_flow((3, 0), (0, 0), (-3, 0), (1.5, 0), (6, 0)), max_flow=3)[:, 0]
    assert rgb[0].tolist() == [255, 0, 0]  # +x: the wheel's angle-0 hue, red, fully saturated
    assert rgb[1].tolist() == [255, 255, 255]  # zero flow: white
    assert rgb[2][0] < 30 and rgb[2][1] > 150 and rgb[2][2] > 200  # -x: cyan-blue, opposite red
    assert rgb[3].tolist() == [255, 128, 128]  # half length: halfway to white
    assert rgb[4].tolist() == [191, 0, 0]  # beyond max_flow: darkened (x 0.75)


def test_flow_wheel_is_continuous_across_the_positive_x_axis():
    rgb = flow_to_rgb(_flow((1, 1e-4), (1, -1e-4), (1, 0)), max_flow=1.001)[:, 0].astype(int)
    assert np.abs(rgb[0] - rgb[1]).max() <= 2 and np.abs(rgb[0] - rgb[2]).max() <= 2 and rgb[2][0] == 255


def test_flow_layouts_nan_and_default_normalisation():
    flow = np.random.default_rng(0).normal(size=(3, 2, 5, 7)).astype(np.float32)
    flow[0] = np.nan
    a = flow_to_rgb(torch.from_numpy(flow))
    b = flow_to_rgb(np.moveaxis(flow, 1, -1), channel_axis=-1)
    assert a.shape == (3, 5, 7, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert (a[0] == 0).all()  # non-finite flow is black
    length = np.hypot(flow[1:, 0], flow[1:, 1])
    longest = np.unravel_index(np.argmax(length), length.shape)
    assert a[1:][longest].min() < 10  # the longest vector is fully saturated by default


# ---------------------------------------------------------------------------------- depth
def test_depth_colormap_is_monotonic_near_warm_far_cold():
    depth = np.linspace(1.0, 10.0, 200, dtype=np.float32)[None]
    for inverse in (True, False):
        unit = depth_to_unit(depth, inverse=inverse, percentiles=(0, 100))[0]
        assert unit[0] == 1.0 and unit[-1] == 0.0
        assert (np.diff(unit) <= 0).all()  # farther is never warmer
    rgb = colorize_depth(depth, cmap="turbo", percentiles=(0, 100))[0]
    lut = colormap_lut("turbo")
    index = np.round(depth_to_unit(depth, percentiles=(0, 100))[0] * 255).astype(int)
    np.testing.assert_array_equal(rgb, lut[index])
    assert (np.diff(index) <= 0).all()


def test_depth_invalid_black_outliers_clipped_and_fixed_range():
    depth = np.full((1, 4, 4), 2.0, np.float32)
    depth[0, 0, 0], depth[0, 0, 1], depth[0, 0, 2] = 0.0, np.nan, 1e6
    rgb = colorize_depth(depth)
    assert (rgb[0, 0, 0] == 0).all() and (rgb[0, 0, 1] == 0).all()
    unit = depth_to_unit(depth, value_range=(1.0, 4.0))
    assert unit[0, 1, 1] == pytest.approx((0.5 - 0.25) / 0.75)
    with pytest.raises(ValueError, match="colormap"):
        colorize_depth(depth, cmap="not_a_colormap")


# ----------------------------------------------------------------------------- overlays
def test_motion_overlay_blends_by_probability():
    frames = np.full((2, 3, 3, 3), 100, np.uint8)
    prob = np.zeros((2, 3, 3), np.float32)
    prob[1, 1, 1] = 1.0
    out = motion_overlay(frames, prob, color=(255, 0, 0), alpha=0.5, dim=1.0)
    assert (out[0] == 100).all()
    assert out[1, 1, 1].tolist() == [178, 50, 50]
    with pytest.raises(ValueError, match="do not match"):
        motion_overlay(frames, prob[:, :2])


def test_track_overlay_draws_at_the_right_pixel_filled_or_hollow():
    frames = np.zeros((2, 40, 50, 3), np.uint8)
    tracks = np.array([[[10.0, 7.0], [30.0, 25.0]], [[20.0, 7.0], [31.0, 25.0]]])  # (T, N, 2) x, y
    vis = np.array([[True, False], [True, False]])
    colors = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    out = draw_tracks(frames, tracks, vis, colors=colors, radius=4, tail=0)
    assert out[0, 7, 10].tolist() == [255, 0, 0]  # row y = 7, column x = 10, filled disc
    assert out[1, 7, 20].tolist() == [255, 0, 0] and out[1, 7, 10].sum() == 0  # moved with the track
    assert out[0, 25, 30].sum() == 0  # occluded: hollow circle, centre untouched...
    assert out[0, 25, 34, 1] > 100 and out[0, 21, 30, 1] > 100  # ...ring at radius 4
    assert out[0, 0, 0].sum() == 0 and frames.sum() == 0  # far pixels untouched; input not modified


def test_track_tails_nan_and_chunks():
    frames = np.zeros((3, 20, 40, 3), np.uint8)
    tracks = np.array([[[5.0, 10.0]], [[15.0, 10.0]], [[25.0, 10.0]]])
    colors = np.array([[0, 0, 255]], np.uint8)
    full = draw_tracks(frames, tracks, colors=colors, tail=2, radius=1.5)
    assert full[2, 10, 10, 2] > 0 and full[0, 10, 10, 2] == 0  # tail through earlier positions
    chunk = draw_tracks(frames[2:], tracks, colors=colors, tail=2, radius=1.5, start=2)
    np.testing.assert_array_equal(chunk[0], full[2])
    tracks[1] = np.nan
    assert draw_tracks(frames, tracks, colors=colors, tail=0)[1].sum() == 0
    with pytest.raises(ValueError, match="covering"):
        draw_tracks(frames, tracks[:2])


def test_mosaic_layout_and_labels():
    panels = [np.full((2, 10, 12, 3), v, np.uint8) for v in (50, 100, 150, 200)]
    out = mosaic(panels, columns=3, gap=2)
    assert out.shape == (2, 22, 40, 3)
    assert out[0, 0, 0, 0] == 50 and out[0, 0, 14, 0] == 100 and out[0, 12, 0, 0] == 200
    assert (out[0, 12:, 14:] == 0).all()  # empty slot stays black
    labelled = mosaic(panels, labels=["a", "b", "c", "d"])
    assert not np.array_equal(labelled, mosaic(panels))
    with pytest.raises(ValueError):
        mosaic([panels[0], panels[0][:, :5]])


# ------------------------------------------------------------------------ prediction videos
def _fake_prediction(t=5, h=24, w=32, n=4):
    g = torch.Generator().manual_seed(0)
    ext = torch.eye(4).repeat(1, t, 1, 1)
    ext[0, :, 0, 3] = torch.linspace(0, 1, t)
    pred = Prediction(
        depth=1 + torch.rand(1, t, h, w, generator=g), flow=torch.randn(1, t, 2, h, w, generator=g),
        motion=torch.rand(1, t, h, w, generator=g), extrinsics=ext,
        intrinsics=torch.tensor([[30.0, 0, w / 2], [0, 30.0, h / 2], [0, 0, 1]]).repeat(1, t, 1, 1),
        tracks=torch.rand(1, t, n, 2, generator=g) * torch.tensor([w - 1.0, h - 1.0]),
        visibility=torch.rand(1, t, n, generator=g) > 0.3, visibility_prob=torch.rand(1, t, n, generator=g),
        queries=torch.zeros(1, n, 3), tracks_3d=torch.rand(1, t, n, 3, generator=g) + 1,
        tracks_world=torch.rand(1, t, n, 3, generator=g) + 1, track_depth=torch.rand(1, t, n, generator=g) + 1,
    )  # fmt: skip
    pred.flow[:, 0] = float("nan")
    return pred


def test_visualize_prediction_writes_decodable_videos(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (5, 24, 32, 3), dtype=np.uint8)
    paths = visualize_prediction(frames, _fake_prediction(), tmp_path, fps=7, chunk=2)
    assert sorted(paths) == ["depth", "flow", "mosaic", "motion", "tracks"]
    for name, path in paths.items():
        video = read_video(path)
        assert video.frames.shape[0] == 5 and video.fps == pytest.approx(7)
        if name != "mosaic":
            assert video.frames.shape[1:] == (24, 32, 3)
    assert read_video(paths["mosaic"]).frames.shape[1:3] == (50, 100)  # 2 rows x 3 columns, gap 2
    only_depth = Prediction(depth=_fake_prediction().depth)
    gif = visualize_prediction(frames, only_depth, tmp_path / "g", fps=5, suffix=".gif")
    assert sorted(gif) == ["depth", "mosaic"] and read_video(gif["depth"]).frames.shape == (5, 24, 32, 3)


# ------------------------------------------------------------------------------- video I/O
def test_video_roundtrip_fps_chunks_and_odd_sizes(tmp_path):
    frames = np.random.default_rng(1).integers(0, 255, (7, 33, 47, 3), dtype=np.uint8)
    write_video(tmp_path / "a.mp4", frames, fps=29.97)
    video = read_video(tmp_path / "a.mp4")
    assert video.frames.shape == (7, 32, 46, 3) and video.fps == pytest.approx(29.97, abs=1e-3)
    assert [len(c) for c in iter_frames(tmp_path / "a.mp4", chunk=3)] == [3, 3, 1]
    assert [len(c) for c in iter_frames(tmp_path / "a.mp4", chunk=4, max_frames=5)] == [4, 1]
    assert read_video(tmp_path / "a.mp4", max_frames=2).frames.shape[0] == 2
    smooth = np.repeat(np.linspace(0, 255, 48, dtype=np.uint8)[None, None, :, None], 32, 1).repeat(3, -1)
    write_video(tmp_path / "s.mp4", np.repeat(smooth, 3, 0), fps=5)
    assert np.abs(read_video(tmp_path / "s.mp4").frames.astype(int) - smooth).mean() < 3


def test_gif_folder_and_errors(tmp_path):
    frames = np.random.default_rng(2).integers(0, 255, (4, 9, 11, 3), dtype=np.uint8)
    with VideoWriter(tmp_path / "a.gif", fps=8) as writer:
        writer.write(frames[:2])
        writer.write(frames[2])
        writer.write(frames[3])
    gif = read_video(tmp_path / "a.gif")
    assert gif.frames.shape == (4, 9, 11, 3) and gif.fps == pytest.approx(8, rel=0.05)
    import imageio.v3 as iio

    (tmp_path / "frames").mkdir()
    for i, f in enumerate(frames):
        iio.imwrite(tmp_path / "frames" / f"{i:03d}.png", f)
    folder = read_video(tmp_path / "frames")
    np.testing.assert_array_equal(folder.frames, frames)
    assert folder.fps is None and video_fps(tmp_path / "frames") is None
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "bad.mp4").write_text("not a video")
    with pytest.raises(ValueError, match="could not decode"):
        read_video(tmp_path / "bad.mp4")
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", frames.astype(np.float32))
