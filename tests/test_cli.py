"""The `l4p` command end to end with the tiny model: predict (mp4, gif, several videos,
skipping), demo, convert, errors and exit codes; hubconf."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, shared_path
from test_export import read_ply

from l4p.cli import main
from l4p.cli_commands import load_queries
from l4p.data.video import read_video, write_video

T, H, W, GRID = 6, 40, 56, 3
ALL = "depth,flow,motion,camera,tracks"
L4P = str(Path(sys.executable).with_name("l4p"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    frames = np.random.default_rng(0).integers(0, 255, (T, H, W, 3), dtype=np.uint8)
    write_video(root / "clip.mp4", frames, fps=12)
    write_video(root / "anim.gif", frames[:5], fps=10)
    return root


@pytest.fixture(scope="module")
def predicted(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("pred")
    torch.manual_seed(0)
    args = ["predict", str(videos / "clip.mp4"), str(videos / "anim.gif"), "--model", "l4p_test",
            "--tasks", ALL, "--grid", str(GRID), "--export-3d", "--png16", "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    return out


def test_predict_writes_a_store_with_documented_shapes(predicted):
    import l4p

    pred = l4p.load_prediction(predicted / "clip" / "prediction.zarr")
    n = GRID * GRID
    expected = {
        "depth": (1, T, H, W), "flow": (1, T, 2, H, W), "motion": (1, T, H, W), "extrinsics": (1, T, 4, 4),
        "intrinsics": (1, T, 3, 3), "tracks": (1, T, n, 2), "visibility": (1, T, n), "visibility_prob": (1, T, n),
        "track_depth": (1, T, n), "tracks_3d": (1, T, n, 3), "tracks_world": (1, T, n, 3), "queries": (1, n, 3),
    }  # fmt: skip
    assert {k: getattr(pred, k).shape for k in pred.fields()} == expected
    assert pred.visibility.dtype == bool and pred.fps == 12.0 and pred.attrs["complete"]
    assert pred.attrs["source"].endswith("clip.mp4") and "depth" in pred.attrs["units"]
    assert np.isnan(pred.flow[0, 0]).all() and np.isfinite(pred.depth[0, :]).all()
    assert not (predicted / "clip" / "prediction.npz").exists()
    assert l4p.load_prediction(predicted / "anim" / "prediction.zarr").depth.shape == (1, 5, H, W)


@pytest.mark.parametrize(("name", "frames", "fps"), [("clip", T, 12.0), ("anim", 5, 10.0)])
def test_predict_videos_decode_with_input_length_size_and_rate(predicted, name, frames, fps):
    folder = predicted / name
    for video in ("depth", "flow", "motion", "tracks"):
        v = read_video(folder / f"{video}.mp4")
        assert v.frames.shape == (frames, H, W, 3) and v.fps == pytest.approx(fps, rel=0.02)
    mosaic = read_video(folder / "mosaic.mp4")
    assert mosaic.frames.shape == (frames, 2 * H + 2, 3 * W + 4, 3)  # 6 panels, 3 columns
    marker = json.loads((folder / "l4p_done.json").read_text())
    assert marker["tasks"] == ALL.split(",") and marker["frames"] == frames
    assert all((folder / f).exists() for f in marker["files"])


def test_predict_png16_and_3d_exports(predicted):
    folder = predicted / "clip"
    assert len(list((folder / "depth_png16").glob("frame_*.png"))) == T
    clouds = sorted((folder / "pointclouds").glob("*.ply"))
    assert len(clouds) == T and read_ply(clouds[0])["vertex"].shape == ((H // 2) * (W // 2), 6)
    assert read_ply(folder / "cameras.ply")["face"].shape == (6 * T, 3)
    tracks = np.load(folder / "tracks_3d.npz")
    assert tracks["coords"].shape == (T, GRID * GRID, 3) and tracks["video"].shape == (T, 3, H, W)


def test_rerun_skips_done_videos_and_redoes_unfinished_ones(predicted, videos, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(predicted, out)
    (out / "anim" / "l4p_done.json").unlink()  # as if the run had crashed while writing anim/
    before = (out / "clip" / "l4p_done.json").stat().st_mtime_ns
    capsys.readouterr()
    args = ["predict", str(videos), "--model", "l4p_test", "--tasks", ALL, "--grid", str(GRID), "--export-3d",
            "--png16", "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main(args) == 0  # the same settings as the first run
    text = capsys.readouterr().out
    assert "1 done, 1 skipped, 0 failed" in text
    assert (out / "clip" / "l4p_done.json").stat().st_mtime_ns == before
    assert json.loads((out / "anim" / "l4p_done.json").read_text())["tasks"] == ALL.split(",")


def test_queries_file_formats(tmp_path):
    q = np.array([[0, 1.5, 2], [3, 4, 5]], np.float32)
    np.save(tmp_path / "q.npy", q)
    (tmp_path / "q.csv").write_text("t,x,y\n0,1.5,2\n3,4,5\n")
    (tmp_path / "q.txt").write_text("# t x y\n0 1.5 2\n3 4 5\n")
    for name in ("q.npy", "q.csv", "q.txt"):
        np.testing.assert_array_equal(load_queries(tmp_path / name), q)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tasks", "depth,bogus"], "unknown task 'bogus'"),
        (["--queries", "{tmp}/bad.txt"], "queries in"),
        (["--queries", "{tmp}/none.npy"], "does not exist"),
        (["--grid", "0"], "--grid must be >= 1"),
        (["--checkpoint", "{tmp}/none.ckpt"], "checkpoint"),
        (["--model", "no_such_model"], "unknown model"),
        (["--dtype", "int8"], "invalid choice"),
    ],
)
def test_predict_usage_errors_exit_2_with_one_line(videos, tmp_path, capsys, extra, message):
    (tmp_path / "bad.txt").write_text("1 2\n3 4\n")
    extra = [e.format(tmp=tmp_path) for e in extra]
    args = ["predict", str(videos / "clip.mp4"), "--model", "l4p_test", "--out", str(tmp_path / "o"), *extra]
    err = capsys.readouterr().err.strip().splitlines()
    code = _exit_code(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0] and err[0].startswith("l4p")
    assert not (tmp_path / "o").exists()


def _exit_code(args):
    """main's return value, or the code of the SystemExit that argparse raises."""
    try:
        return main(args)
    except SystemExit as exit_:
        return exit_.code


def test_failed_video_is_reported_and_exit_1(tmp_path, capsys):
    (tmp_path / "broken.mp4").write_text("not a video")
    code = main(
        [
            "predict",
            str(tmp_path / "broken.mp4"),
            "--model",
            "l4p_test",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "could not decode" in err and "broken.mp4" in err and "ValueError" not in err
    assert (tmp_path / "o" / "broken" / "l4p_failed.txt").exists()
    assert not (tmp_path / "o" / "broken" / "l4p_done.json").exists()


def test_training_commands_delegate(monkeypatch):
    seen = []
    fake = types.ModuleType("l4p.training.cli")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "l4p.training.cli", fake)
    assert main(["--quiet", "fit", "--config", "configs/tiny.yaml"]) == 0
    assert seen == [["fit", "--config", "configs/tiny.yaml"]]


def test_demo_writes_and_scores(tmp_path, capsys):
    out = tmp_path / "demo"
    (out / "pointclouds").mkdir(parents=True)  # a longer earlier run's files, and a user's file
    (out / "pointclouds" / "frame_00009.ply").write_text("stale")
    (out / "cameras.json").write_text("stale")
    (out / "my_notes.txt").write_text("mine")
    assert (
        main(["demo", "--out", str(out), "--frames", "4", "--size", "32x48", "--grid", "2", "--random"]) == 0
    )
    text = capsys.readouterr().out
    assert "RANDOM WEIGHTS" in text and "--checkpoint l4p_depth_flow_2d3dtrack_camray_dynseg_v1.ckpt" in text
    assert "AbsRel" in text and "EPE" in text and "IoU" in text
    for name in ("input.mp4", "depth.mp4", "mosaic.mp4", "prediction.npz", "ground_truth/mosaic.mp4"):
        assert (out / name).exists(), name
    assert read_video(out / "mosaic.mp4").frames.shape[0] == 4
    assert not (out / "pointclouds" / "frame_00009.ply").exists() and (out / "my_notes.txt").exists()
    assert json.loads((out / "cameras.json").read_text())["frames"]  # rewritten by this run


def test_demo_fallback_pattern_moves():
    from l4p.demo import pattern_clip

    clip = pattern_clip(frames=5, height=24, width=40)
    assert clip.shape == (5, 24, 40, 3) and clip.dtype == np.uint8
    assert np.abs(clip[4].astype(int) - clip[0]).mean() > 5


def _run(*args):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([L4P, *args], capture_output=True, text=True, env=env, timeout=300)


def test_console_script_convert_own_folder_roundtrip_and_errors(tmp_path):
    from safetensors.torch import load_file

    from l4p.build import build_model
    from l4p.checkpoints.own import save_pretrained

    torch.manual_seed(1)
    save_pretrained(build_model("l4p_test"), tmp_path / "a")
    run = _run(
        "convert", str(tmp_path / "a" / "model.safetensors"), str(tmp_path / "b"), "--model", "l4p_test"
    )
    assert run.returncode == 0, run.stderr
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["name"] == "l4p_test"
    missing = _run("predict", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o"))
    assert (
        missing.returncode == 2
        and missing.stderr.strip() == f"l4p: error: video {tmp_path / 'nope.mp4'} does not exist"
    )
    usage = _run("predict")
    assert usage.returncode == 2 and "required" in usage.stderr and "Traceback" not in usage.stderr


def test_convert_released_format_fixture(tmp_path, capsys):
    cfg = json.loads(shared_path("reference/parity/config.json").read_text())["widths"]
    overrides = {
        "encoder_dim": cfg["encoder_embed_dim"], "encoder_heads": cfg["encoder_num_heads"],
        "dpt_feature_dim": cfg["dpt_feature_dim"], "dpt_last_dim": cfg["dpt_last_dim"],
        "dpt_layer_dims": cfg["dpt_layer_dims"], "tracker_mlp": cfg["sam_mlp_dim"], "tracker_heads": cfg["sam_num_heads"],
    }  # fmt: skip
    variant = tmp_path / "variant"
    variant.mkdir()
    (variant / "config.json").write_text(json.dumps({"name": "l4p_vitg14", "overrides": overrides}))
    released = shared_path("reference/parity/state_dict.safetensors")
    assert main(["convert", str(released), str(tmp_path / "out"), "--model", str(variant)]) == 0
    assert "tasks depth,flow,motion,camera,tracks" in capsys.readouterr().out
    from l4p.checkpoints.own import build_and_load

    direct = build_and_load(variant, released).state_dict()
    converted = build_and_load(tmp_path / "out").state_dict()
    assert direct.keys() == converted.keys() and all(torch.equal(direct[k], converted[k]) for k in direct)


def test_convert_refuses_to_overwrite(tmp_path, capsys):
    (tmp_path / "ckpt.safetensors").write_bytes(b"")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model.safetensors").write_bytes(b"")
    assert main(["convert", str(tmp_path / "ckpt.safetensors"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]


def test_hubconf_local_entry_point():
    predictor = torch.hub.load(str(REPO), "l4p_test", source="local", device="cpu")
    assert type(predictor).__name__ == "L4PPredictor" and set(predictor.tasks) == set(ALL.split(","))
    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    assert all(callable(getattr(hubconf, n)) for n in ("l4p_vitg14", "l4p_vitb16", "l4p_vits16", "l4p_test"))


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_splits_the_videos(tmp_path):
    frames = np.random.default_rng(3).integers(0, 255, (3, 24, 32, 3), dtype=np.uint8)
    for i in range(3):
        write_video(tmp_path / "in" / f"v{i}.mp4", frames, fps=5)
    run = _run("predict", str(tmp_path / "in"), "--model", "l4p_test", "--tasks", "depth", "--no-viz",
               "--device", "cpu", "--devices", "2", "--out", str(tmp_path / "out"))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("3 done, 0 skipped, 0 failed") == 1  # only rank 0 reports, for every video
    markers = [json.loads((tmp_path / "out" / f"v{i}" / "l4p_done.json").read_text()) for i in range(3)]
    assert {m["rank"] for m in markers} == {0, 1}
