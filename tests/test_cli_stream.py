"""`l4p predict` streams long videos to a zarr store and resumes a killed run (issue 12, CLI half).

A run killed with SIGKILL or Ctrl-C and started again with the same command continues from
its last saved chunk and ends with exactly the arrays of an uninterrupted run; changed
settings redo the folder; a full disk or an unwritable folder is one clear line and keeps
what was finished; a truncated video is predicted as far as it decodes, with a warning.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli_errors import write_truncated_mp4

import l4p
from l4p.cli import main
from l4p.data.video import read_video, write_video

T, H, W, GRID = 24, 48, 64, 2  # 24 frames: windows [0, 16) and [8, 24); chunks end at 8, 16, 24
ALL = "depth,flow,motion,camera,tracks"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """The tiny variant saved once, so every process loads the same weights."""
    from l4p.build import build_model
    from l4p.checkpoints.own import save_pretrained

    folder = tmp_path_factory.mktemp("model")
    save_pretrained(build_model("l4p_test"), folder)
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    frames = np.clip(rng.integers(0, 255, (1, H, W, 3)) + np.arange(T)[:, None, None, None] * 4, 0, 255)
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames.astype(np.uint8), fps=10)


def _args(video: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return ["predict", str(video), "--model", str(model), "--out", str(out), "--device", "cpu", "--save-every", "0",
            *extra]  # fmt: skip


def _assert_same_store(a: Path, b: Path) -> None:
    ref, got = l4p.load_prediction(a), l4p.load_prediction(b)
    assert ref.fields() == got.fields() and ref.num_frames == got.num_frames and got.attrs["complete"]
    for name in ref.fields():
        x, y = np.asarray(getattr(ref, name)), np.asarray(getattr(got, name))
        assert x.shape == y.shape, name
        if x.dtype == bool:
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            np.testing.assert_allclose(x, y, atol=1e-5, rtol=0, equal_nan=True, err_msg=name)


def test_sigkilled_run_resumes_to_the_uninterrupted_result(clip, model, tmp_path, capsys):
    tasks = ["--tasks", ALL, "--grid", str(GRID), "--export-3d"]
    assert main(_args(clip, tmp_path / "ref", model, *tasks)) == 0
    out = tmp_path / "out"
    env = {
        **os.environ,
        "L4P_TEST_SIGNAL_AT": "16:KILL",
    }  # after frames 8..15 are written, before their state
    killed = subprocess.run([sys.executable, "-m", "l4p.cli", *_args(clip, out, model, *tasks)], env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    store = out / "clip" / "prediction.zarr"
    attrs = json.loads((store / "zarr.json").read_text())["attributes"]
    assert attrs["frames"] == 16 and not attrs["complete"]  # the last chunk is not in the saved state
    assert (store / ".l4p_resume" / "state.pt").is_file() and not (out / "clip" / "l4p_done.json").exists()
    capsys.readouterr()
    assert main(_args(clip, out, model, *tasks)) == 0
    assert "continuing the interrupted run" in capsys.readouterr().err
    _assert_same_store(tmp_path / "ref" / "clip" / "prediction.zarr", store)
    assert not (store / ".l4p_resume").exists() and not (out / "clip" / "l4p_run.json").exists()
    marker = json.loads((out / "clip" / "l4p_done.json").read_text())
    assert marker["resumed"] and marker["frames"] == T
    for name in ("tracks", "mosaic"):
        np.testing.assert_array_equal(
            read_video(out / "clip" / f"{name}.mp4").frames, read_video(tmp_path / "ref" / "clip" / f"{name}.mp4").frames
        )  # fmt: skip
    for name in ("cameras.json", "trajectory_tum.txt"):
        assert (out / "clip" / name).read_text() == (tmp_path / "ref" / "clip" / name).read_text()
    ref_tracks, got_tracks = (np.load(p / "clip" / "tracks_3d.npz") for p in (tmp_path / "ref", out))
    np.testing.assert_allclose(got_tracks["coords"], ref_tracks["coords"], atol=1e-5, equal_nan=True)


def test_ctrl_c_exits_130_keeping_chunks_and_changed_settings_redo(
    clip, model, tmp_path, capsys, monkeypatch
):
    out, dense = tmp_path / "out", ["--tasks", "depth,camera", "--no-viz"]
    monkeypatch.setenv("L4P_TEST_SIGNAL_AT", "16:INT")
    assert main(_args(clip, out, model, *dense)) == 130
    assert "interrupted" in capsys.readouterr().err
    store = out / "clip" / "prediction.zarr"
    assert l4p.load_prediction(store).num_frames == 16 and (out / "clip" / "l4p_run.json").is_file()
    assert not (out / "clip" / "l4p_done.json").exists()
    monkeypatch.delenv("L4P_TEST_SIGNAL_AT")
    assert main(_args(clip, out, model, "--tasks", "depth", "--no-viz")) == 0  # other tasks: start over
    err = capsys.readouterr().err
    assert (
        "changed since the interrupted run: tasks (camera,depth -> depth)" in err and "continuing" not in err
    )
    pred = l4p.load_prediction(store)
    assert pred.fields() == ["depth"] and pred.num_frames == T


def test_full_disk_is_one_line_and_a_rerun_continues(clip, model, tmp_path, capsys, monkeypatch):
    import zarr.storage

    real = zarr.storage.LocalStore.set

    async def full_after_a_while(self, key, value):
        if key.startswith("depth/c/0/") and key.split("/")[3] != "0":  # depth of frames 8.. (chunk 1 on)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return await real(self, key, value)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", full_after_a_while)
    out, dense = tmp_path / "out", ["--tasks", "depth", "--no-viz"]
    assert main(_args(clip, out, model, *dense)) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("l4p: error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "clip.mp4" in lines[0], err
    assert "rerun of the same command continues" in lines[0]
    assert l4p.load_prediction(out / "clip" / "prediction.zarr").num_frames == 8  # kept
    monkeypatch.setattr(zarr.storage.LocalStore, "set", real)
    assert main(_args(clip, out, model, *dense)) == 0
    assert "continuing the interrupted run" in capsys.readouterr().err
    assert main(_args(clip, tmp_path / "ref", model, *dense)) == 0
    _assert_same_store(tmp_path / "ref" / "clip" / "prediction.zarr", out / "clip" / "prediction.zarr")


def test_unwritable_out_is_a_one_line_error_before_any_work(clip, model, tmp_path, capsys, monkeypatch):
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", denied)
    assert main(_args(clip, tmp_path / "ro", model, "--tasks", "depth")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"l4p: error: cannot write to --out {tmp_path / 'ro'}: Permission denied; pick a writable "
                   "folder with free space"]  # fmt: skip


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write to a read-only folder"
)
def test_read_only_out_folder_is_a_one_line_error(clip, model, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert main(_args(clip, folder, model, "--tasks", "depth")) == 2
    finally:
        folder.chmod(0o700)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write to --out" in err[0] and "Permission denied" in err[0]


def test_truncated_video_writes_the_decoded_frames_and_warns_with_both_counts(model, tmp_path, capsys):
    write_truncated_mp4(tmp_path, height=H, width=W, keep=1 / 3)
    assert main(_args(tmp_path / "cut.mp4", tmp_path / "out", model, "--tasks", "depth")) == 0
    err = capsys.readouterr().err
    decoded = l4p.load_prediction(tmp_path / "out" / "cut" / "prediction.zarr").num_frames
    assert 0 < decoded < 20
    warnings = [line for line in err.splitlines() if "declares 20 frames" in line]
    assert warnings == [f"l4p: warning: cut.mp4: {tmp_path / 'cut.mp4'} declares 20 frames but only {decoded} "
                        f"could be decoded (truncated or damaged file?); using the {decoded} decoded frames"]  # fmt: skip
    assert read_video(tmp_path / "out" / "cut" / "depth.mp4").frames.shape[0] == decoded


def test_frames_of_changing_size_are_one_line_naming_the_frame_and_sizes(model, tmp_path, capsys):
    import imageio.v3 as iio

    (tmp_path / "f").mkdir()
    iio.imwrite(tmp_path / "f" / "a.png", np.zeros((16, 20, 3), np.uint8))
    iio.imwrite(tmp_path / "f" / "b.png", np.zeros((12, 20, 3), np.uint8))
    assert main(_args(tmp_path / "f", tmp_path / "out", model, "--tasks", "depth", "--quiet")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "b.png is 20x12 but a.png is 20x16" in err[0], err


def test_shipped_weights_are_fingerprinted(tmp_path, monkeypatch):
    from l4p.export.run_record import run_settings

    weights = tmp_path / "l4p_synthetic_s.safetensors"
    weights.write_bytes(b"old")
    monkeypatch.setattr("l4p.weights.embedded_weights", lambda name: weights)
    old = run_settings(model="l4p_synthetic_s", checkpoint=None, mode="default", tasks=("depth",))
    assert old["model_weights"]["path"] == str(weights) and old["model_weights"]["size"] == 3
    weights.write_bytes(b"newer")  # new weights shipped: the result is stale
    assert run_settings(model="l4p_synthetic_s", checkpoint=None, mode="default", tasks=("depth",)) != old
    assert (
        run_settings(model="l4p_test", checkpoint=None, mode="default", tasks=("depth",))["model_weights"]
        is None
    )
