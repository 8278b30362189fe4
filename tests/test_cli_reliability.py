"""`l4p predict` never keeps a stale, wrong or half-written result (issue 14, CLI/IO half).

Re-runs redo a folder whenever anything its result depends on changed, clear the earlier
run's files (never a user's), never build the model when every video is done, never let two
sources share a folder; every file is written atomically; Ctrl-C exits 130.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from l4p.cli import main
from l4p.data.video import write_video

T, H, W = 6, 32, 48


@pytest.fixture
def clip(tmp_path) -> Path:
    frames = np.random.default_rng(0).integers(0, 255, (T, H, W, 3), dtype=np.uint8)
    return write_video(tmp_path / "clip.mp4", frames, fps=10)


def _predict(video, out, *extra):
    return main(["predict", str(video), "--model", "l4p_test", "--out", str(out), "--device", "cpu", *extra])


def _depth(folder: Path) -> np.ndarray:
    import l4p

    return np.asarray(l4p.load_prediction(folder / "prediction.zarr").depth)


def _status(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_rerun_redoes_when_anything_the_result_depends_on_changed(clip, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["--tasks", "depth", "--no-viz"]
    assert _predict(clip, out, *base) == 0
    assert _predict(clip, out, *base) == 0
    assert "0 done, 1 skipped" in _status(capsys)[0]
    assert _predict(clip, out, *base, "--max-frames", "3") == 0
    text, err = _status(capsys)
    assert "1 done, 0 skipped" in text and "max_frames (none -> 3)" in err
    assert _depth(out / "clip").shape == (1, 3, H, W)
    from l4p.build import build_model
    from l4p.checkpoints.own import save_pretrained

    save_pretrained(build_model("l4p_test"), tmp_path / "weights")  # "the real checkpoint" after a random run
    ckpt = ["--checkpoint", str(tmp_path / "weights" / "model.safetensors")]
    assert _predict(clip, out, *base, "--max-frames", "3", *ckpt) == 0
    text, err = _status(capsys)
    assert "1 done, 0 skipped" in text and "checkpoint (none ->" in err
    marker = json.loads((out / "clip" / "l4p_done.json").read_text())
    assert (
        marker["settings"]["checkpoint"]["size"]
        == (tmp_path / "weights" / "model.safetensors").stat().st_size
    )
    assert marker["source"]["path"] == str(clip.resolve())


def test_changed_source_file_is_redone_and_other_sources_get_their_own_folder(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert _predict(clip, out, "--tasks", "depth", "--no-viz") == 0
    write_video(clip, np.zeros((4, H, W, 3), np.uint8), fps=10)  # same path, new content
    assert _predict(clip, out, "--tasks", "depth", "--no-viz") == 0
    assert "1 done, 0 skipped" in _status(capsys)[0]
    assert _depth(out / "clip").shape[1] == 4
    gif_frames = np.random.default_rng(2).integers(0, 255, (3, H, W, 3), dtype=np.uint8)
    gif = write_video(tmp_path / "clip.gif", gif_frames, fps=10)
    assert _predict(gif, out, "--tasks", "depth", "--no-viz") == 0  # same stem, another source
    assert _depth(out / "clip").shape[1] == 4  # the mp4's result is kept
    assert _depth(out / "clip-2").shape[1] == 3
    capsys.readouterr()
    assert _predict(tmp_path, out, "--tasks", "depth", "--no-viz") == 0  # both: each finds its own folder
    assert "0 done, 2 skipped" in _status(capsys)[0]


def test_all_done_rerun_never_builds_the_model(clip, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert _predict(clip, out, "--tasks", "depth", "--no-viz") == 0

    def refuse(*args, **kwargs):
        raise AssertionError("the model was built although every video is done")

    monkeypatch.setattr("l4p.cli_commands.load_network", refuse)
    assert _predict(clip, out, "--tasks", "depth", "--no-viz") == 0
    assert "0 done, 1 skipped" in _status(capsys)[0]


def test_redo_and_overwrite_clear_earlier_outputs_but_keep_user_files(clip, tmp_path):
    out = tmp_path / "out"
    assert _predict(clip, out, "--tasks", "depth,camera", "--export-3d", "--png16") == 0
    folder = out / "clip"
    assert len(list((folder / "pointclouds").glob("*.ply"))) == T and (folder / "cameras.json").exists()
    (folder / "my_notes.txt").write_text("mine")
    (folder / "pointclouds" / "mine.ply").write_text("mine")
    assert _predict(clip, out, "--tasks", "depth,camera", "--export-3d", "--max-frames", "3") == 0
    assert len(list((folder / "pointclouds").glob("frame_*.ply"))) == 3  # not 6: the longer run's are gone
    assert not (folder / "depth_png16").exists()
    assert _predict(clip, out, "--tasks", "depth", "--overwrite") == 0
    assert (
        not (folder / "cameras.json").exists() and not (folder / "pointclouds" / "frame_00000.ply").exists()
    )
    assert (folder / "my_notes.txt").read_text() == "mine" and (folder / "pointclouds" / "mine.ply").exists()
    marker = json.loads((folder / "l4p_done.json").read_text())
    assert {Path(f).name for f in marker["files"]} == {p.name for p in folder.iterdir()} - {
        "l4p_done.json",
        "my_notes.txt",
        "pointclouds",
    }


def test_ctrl_c_exits_130_and_restores_the_sigint_handler(clip, tmp_path, monkeypatch, capsys):
    from l4p.api import L4PPredictor

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(L4PPredictor, "stream", interrupt)
    assert _predict(clip, tmp_path / "out", "--tasks", "depth", "--no-viz") == 130
    assert "interrupted" in _status(capsys)[1]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not (tmp_path / "out" / "clip" / "l4p_done.json").exists()


def test_camera_task_alone_matches_the_python_api(tmp_path):
    import l4p
    from l4p.build import build_model
    from l4p.checkpoints.own import save_pretrained

    save_pretrained(build_model("l4p_test"), tmp_path / "model")
    frames = np.random.default_rng(1).integers(0, 255, (24, H, W, 3), dtype=np.uint8)  # 2 windows of 16
    video = write_video(tmp_path / "long.mp4", frames, fps=10)
    args = ["predict", str(video), "--model", str(tmp_path / "model"), "--tasks", "camera", "--no-viz"]
    assert main([*args, "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    cli = np.asarray(l4p.load_prediction(tmp_path / "out" / "long" / "prediction.zarr").extrinsics)
    api = (
        l4p.load_model(str(tmp_path / "model"), device="cpu")
        .predict(str(video), tasks=("camera",))
        .extrinsics
    )
    np.testing.assert_allclose(cli, api.numpy(), atol=1e-4)


@pytest.mark.parametrize(
    "writer", ["npz", "tracks", "ply", "json", "tum", "png16", "mp4", "gif", "pretrained"]
)
def test_every_writer_is_atomic(tmp_path, monkeypatch, writer):
    """An interruption just before the final rename leaves the old file intact and no temporary file."""
    from l4p.export import save_tracks_npz, write_cameras_ply, write_poses_json, write_tum_trajectory
    from l4p.export.folder import write_depth_png16, write_prediction_folder
    from l4p.outputs import Prediction

    frames = np.zeros((2, 8, 8, 3), np.uint8)
    eye = np.broadcast_to(np.eye(4, dtype=np.float32), (2, 4, 4))
    k = np.broadcast_to(np.array([[8, 0, 4], [0, 8, 4], [0, 0, 1]], np.float32), (2, 3, 3))
    pred = Prediction(depth=torch.ones(1, 2, 8, 8), tracks=torch.zeros(1, 2, 1, 2), visibility=torch.ones(1, 2, 1, dtype=torch.bool),
                      visibility_prob=torch.ones(1, 2, 1), tracks_3d=torch.ones(1, 2, 1, 3), queries=torch.zeros(1, 1, 3))  # fmt: skip
    calls = {
        "npz": ("prediction.npz", lambda p: write_prediction_folder(p.parent, frames=frames, pred=pred, fps=1, visualize=False)),
        "tracks": ("t.npz", lambda p: save_tracks_npz(p, pred)),
        "ply": ("cameras.ply", lambda p: write_cameras_ply(p, extrinsics=eye, intrinsics=k, width=8, height=8)),
        "json": ("cameras.json", lambda p: write_poses_json(p, extrinsics=eye, intrinsics=k, width=8, height=8)),
        "tum": ("t.txt", lambda p: write_tum_trajectory(p, extrinsics=eye)),
        "png16": ("frame_00000.png", lambda p: write_depth_png16(p.parent, np.ones((1, 8, 8), np.float32))),
        "mp4": ("v.mp4", lambda p: write_video(p, frames)),
        "gif": ("v.gif", lambda p: write_video(p, frames)),
        "pretrained": ("model.safetensors", lambda p: _save_tiny(p.parent)),
    }  # fmt: skip
    name, write = calls[writer]
    target = tmp_path / "d" / name
    target.parent.mkdir()
    target.write_bytes(b"OLD")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write(target)
    assert target.read_bytes() == b"OLD"
    assert [p.name for p in target.parent.iterdir()] == [name]


def test_atomic_files_get_the_umask_permissions(tmp_path):
    """safetensors creates its file owner-only (0600); written through l4p it is readable like any file."""
    from safetensors.torch import save_file

    from l4p.export.atomic import atomic_path

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "w.safetensors") as tmp:
            save_file({"a": torch.zeros(2)}, str(tmp))
        _save_tiny(tmp_path / "pretrained")
    finally:
        os.umask(old)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "pretrained" / "model.safetensors").stat().st_mode & 0o777 == 0o644


def _save_tiny(folder: Path) -> None:
    from l4p.build import build_model
    from l4p.checkpoints.own import save_pretrained

    save_pretrained(build_model("l4p_test"), folder)


def test_camera_only_checkpoint_still_runs_and_says_windows_are_not_chained(tmp_path, capsys):
    from l4p.build import build_model
    from l4p.checkpoints.own import save_pretrained

    save_pretrained(build_model("l4p_test", tasks=("camera",)), tmp_path / "model")
    video = write_video(tmp_path / "v.mp4", np.zeros((3, H, W, 3), np.uint8), fps=10)
    args = ["predict", str(video), "--model", str(tmp_path / "model"), "--tasks", "camera", "--no-viz"]
    assert main([*args, "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert "no depth head" in capsys.readouterr().err


def test_run_record_units(tmp_path, monkeypatch):
    from l4p.export.atomic import temp_name
    from l4p.export.run_record import clear_outputs, owner, run_settings, stale_reason, write_done_marker

    folder, video = tmp_path / "out", tmp_path / "v.mp4"
    video.write_bytes(b"x")
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    (folder / "l4p_done.json").write_text(json.dumps({"video": "v.mp4", "tasks": ["depth"]}))  # older l4p
    assert owner(folder) == str(video.resolve())
    settings = run_settings(model="l4p_test", checkpoint=None, mode="default", tasks=("depth",))
    assert "older l4p" in stale_reason(folder, source=video, settings=settings)
    write_done_marker(folder, source=video, settings=settings, files=[folder / "prediction.npz"])
    assert stale_reason(folder, source=video, settings=settings) is None
    other = run_settings(
        model="l4p_test", checkpoint=None, mode="default", tasks=("depth",), queries=np.ones((1, 3))
    )
    assert stale_reason(folder, source=video, settings=other).startswith(
        "changed since the last run: queries (none -> "
    )
    video.write_bytes(b"xy")
    assert "source (" in stale_reason(folder, source=video, settings=settings)
    for name in ("prediction.npz", "depth.gif", "mine.npz", temp_name(folder / "depth.mp4").name):
        (folder / name).write_text("")
    (folder / "depth_png16").mkdir()
    (folder / "depth_png16" / "frame_00000.png").write_text("")
    clear_outputs(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["mine.npz"]
