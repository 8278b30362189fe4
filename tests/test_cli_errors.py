"""`l4p predict` tells a person plainly what is wrong (issue 14, CLI/IO half).

Bad checkpoints, queries files, videos and options are one-line messages with the fix,
without Python class names, each said once; exit 2 for usage errors, 1 for failed videos.
"""

from __future__ import annotations

import json
import logging
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from l4p.cli import build_parser, main
from l4p.data.video import read_video, write_video
from l4p.logging_context import per_video_warnings

H, W = 32, 48


@pytest.fixture
def clip(tmp_path) -> Path:
    frames = np.random.default_rng(0).integers(0, 255, (4, H, W, 3), dtype=np.uint8)
    return write_video(tmp_path / "clip.mp4", frames, fps=10)


def _run(capsys, *args) -> tuple[int, list[str]]:
    try:
        code = main(list(map(str, args)))
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err.strip().splitlines()


def _checkpoint_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    rng = np.random.default_rng(0)
    (tmp_path / "garbage.ckpt").write_bytes(rng.integers(0, 255, 4000, dtype=np.uint8).tobytes())
    (tmp_path / "garbage.safetensors").write_bytes(b"\xff" * 64)
    (tmp_path / "empty.ckpt").write_bytes(b"")
    torch.save({"state_dict": {"classifier.weight": torch.zeros(2, 2)}}, tmp_path / "other.pth")
    torch.save({"epoch": Fraction(1, 2), "w": torch.zeros(1)}, tmp_path / "objects.ckpt")
    return {
        "garbage": (tmp_path / "garbage.ckpt", "not a PyTorch file: neither"),
        "safetensors": (tmp_path / "garbage.safetensors", "not a valid safetensors file: header too large"),
        "empty": (tmp_path / "empty.ckpt", "the file is empty"),
        "unrelated keys": (tmp_path / "other.pth", "has an L4P name, e.g. 'classifier.weight'"),
        "python objects": (tmp_path / "objects.ckpt", "Python objects besides tensors"),
    }


@pytest.mark.parametrize("case", ["garbage", "safetensors", "empty", "unrelated keys", "python objects"])
def test_a_file_that_is_not_a_checkpoint_is_said_plainly(clip, tmp_path, capsys, case):
    path, reason = _checkpoint_cases(tmp_path)[case]
    code, err = _run(
        capsys, "predict", clip, "--model", "l4p_test", "--checkpoint", path, "--out", tmp_path / "o"
    )
    assert code == 2 and len(err) == 1, err
    assert f"{path} is not an L4P/VideoMAE checkpoint (" in err[0] and reason in err[0]
    assert "weights_only" not in err[0] and "Error" not in err[0]


def test_a_checkpoint_of_another_variant_names_counts_and_fix(clip, tmp_path, capsys):
    from l4p.build import build_model
    from l4p.checkpoints.own import save_pretrained

    save_pretrained(build_model("l4p_test"), tmp_path / "w")
    ckpt = tmp_path / "w" / "model.safetensors"
    code, err = _run(
        capsys, "predict", clip, "--model", "l4p_vits16", "--checkpoint", ckpt, "--out", tmp_path / "o"
    )
    assert code == 2 and len(err) == 1, err
    assert "does not fit model l4p_vits16" in err[0] and "mis-shaped" in err[0] and "--model" in err[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t x y\n0 1 2\n1 2 3x\n", "row 3: '1 2 3x' is not three numbers"),
        ("0 1 2\nbad row here\n", "row 2: 'bad row here' is not three numbers"),
        ("0 1 2\n1.5 3 4\n", "row 2: frame index t=1.5 is not a whole number"),
        ("# comment\n0,1,2\n2,3\n", "row 3: 2 values, expected three"),
    ],
)
def test_malformed_queries_rows_are_rejected_with_the_row(clip, tmp_path, capsys, text, message):
    (tmp_path / "q.txt").write_text(text)
    code, err = _run(
        capsys,
        "predict",
        clip,
        "--model",
        "l4p_test",
        "--queries",
        tmp_path / "q.txt",
        "--out",
        tmp_path / "o",
    )
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_fractional_frame_index_in_npy_is_rejected(clip, tmp_path, capsys):
    np.save(tmp_path / "q.npy", np.array([[0, 1, 2], [0.5, 3, 4]], np.float32))
    code, err = _run(
        capsys,
        "predict",
        clip,
        "--model",
        "l4p_test",
        "--queries",
        tmp_path / "q.npy",
        "--out",
        tmp_path / "o",
    )
    assert code == 2 and "row 2: frame index t=0.5 is not a whole number" in err[0]


def test_failed_video_message_once_without_class_names(tmp_path, capsys):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "broken.mp4").write_text("not a video")
    (tmp_path / "v" / "empty.mp4").write_bytes(b"")
    code = main(
        [
            "predict",
            str(tmp_path / "v"),
            "--model",
            "l4p_test",
            "--tasks",
            "depth",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    for name in ("broken.mp4", "empty.mp4"):
        lines = [line for line in err.splitlines() if name in line]
        assert len(lines) == 1 and lines[0].count(name) == 1 and lines[0].startswith("l4p: error: "), err
    assert "empty.mp4: the file is empty" in err and "broken.mp4 as a video (Invalid data" in err
    assert "Error" not in err  # no ValueError: ValueError: ...


def test_folder_of_frames_with_mixed_sizes_names_the_frame_and_both_sizes(tmp_path):
    import imageio.v3 as iio

    (tmp_path / "f").mkdir()
    iio.imwrite(tmp_path / "f" / "a.png", np.zeros((8, 10, 3), np.uint8))
    iio.imwrite(tmp_path / "f" / "b.png", np.zeros((6, 10, 3), np.uint8))
    with pytest.raises(ValueError, match=r"frame .*b\.png is 10x6 but a\.png is 10x8"):
        read_video(tmp_path / "f")


def write_truncated_mp4(folder: Path, *, height: int = H, width: int = W, keep: float = 0.25) -> Path:
    """`folder/cut.mp4`: 20 frames declared, the first `keep` of the frame data present."""
    frames = np.random.default_rng(0).integers(0, 255, (20, height, width, 3), dtype=np.uint8)
    path = folder / "full.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:  # index first, frames after
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt, stream.options = width, height, "yuv420p", {"g": "1"}
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            container.mux(stream.encode(vf))
        container.mux(stream.encode())
    data = path.read_bytes()
    mdat = data.index(b"mdat") + 4
    (folder / "cut.mp4").write_bytes(data[: mdat + int((len(data) - mdat) * keep)])
    return folder / "cut.mp4"


def test_truncated_mp4_warns_with_declared_and_decoded_counts(tmp_path, caplog):
    write_truncated_mp4(tmp_path)
    with caplog.at_level(logging.WARNING):
        decoded = len(read_video(tmp_path / "cut.mp4").frames)
    assert 0 < decoded < 20
    assert f"declares 20 frames but only {decoded} could be decoded" in caplog.text


def test_out_pointing_at_a_file_is_a_usage_error(clip, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = _run(capsys, "predict", clip, "--model", "l4p_test", "--out", tmp_path / "file")
    assert code == 2 and len(err) == 1 and "is a file" in err[0]


def test_export_3d_without_camera_says_what_to_add(clip, tmp_path, capsys):
    code, err = _run(
        capsys,
        "predict",
        clip,
        "--model",
        "l4p_test",
        "--tasks",
        "tracks",
        "--export-3d",
        "--out",
        tmp_path / "o",
    )
    assert code == 2 and len(err) == 1 and "--tasks tracks,camera" in err[0], err


def test_help_shows_defaults_and_the_random_weights_warning():
    predict = build_parser()._subparsers._group_actions[0].choices["predict"]  # type: ignore[union-attr]
    text = " ".join(predict.format_help().split())
    assert "(default: l4p_vitg14)" in text and "(default: depth,flow,motion,camera)" in text
    assert "RANDOM WEIGHTS" in text


def test_progress_bar_goes_to_stderr_and_stdout_has_only_results(tmp_path, capsys):
    frames = np.random.default_rng(0).integers(0, 255, (3, H, W, 3), dtype=np.uint8)
    for name in ("a", "b"):
        write_video(tmp_path / "v" / f"{name}.mp4", frames, fps=10)
    assert (
        main(
            [
                "predict",
                str(tmp_path / "v"),
                "--model",
                "l4p_test",
                "--tasks",
                "depth",
                "--no-viz",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "100%" not in captured.out and "\r" not in captured.out
    assert all(line.split()[0] in ("done", "2") for line in captured.out.strip().splitlines()), captured.out
    # a bar over each video's frames with elapsed<ETA and the rate in frames per second
    assert re.search(r"a\.mp4: 100%.*3/3 \[\d+:\d+<\d+:\d+, *[\d.]+(frame/s|s/frame)\]", captured.err), (
        captured.err
    )


def test_per_video_warnings_name_the_video_and_are_not_repeated(caplog):
    caplog.set_level(logging.WARNING)
    sim3 = logging.getLogger("l4p.geometry.align_sim3_robust")
    with per_video_warnings("alley.mp4"):
        for _ in range(3):
            sim3.warning("robust Sim(3) fit failed for %d item(s)", 1)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "alley.mp4: robust Sim(3) fit failed for 1 item(s)"
    assert len(messages) == 2 and "occurred 3 times" in messages[1]
    sim3.warning("after")  # outside the block: untouched
    assert caplog.records[-1].getMessage() == "after"


def test_marker_json_is_valid_after_run(clip, tmp_path):
    assert (
        main(
            [
                "predict",
                str(clip),
                "--model",
                "l4p_test",
                "--tasks",
                "depth",
                "--no-viz",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    marker = json.loads((tmp_path / "o" / "clip" / "l4p_done.json").read_text())
    assert marker["settings"]["tasks"] == ["depth"] and marker["settings"]["dtype"] == "fp32"
