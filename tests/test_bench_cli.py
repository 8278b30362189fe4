"""``l4p bench`` command line: listing, usage errors, and the tiny real model through every family."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from test_bench_flow import _sintel_tree, _spring_tree
from test_bench_motion import _vkitti_tree
from test_bench_tracking import _davis_video

from l4p.bench.registry import PROTOCOLS
from l4p.cli import main as l4p_main
from l4p.data.formats.sintel import write_cam


def test_list_layout_and_usage_errors(tmp_path, capsys) -> None:
    assert l4p_main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in PROTOCOLS) and "spring-convert" in listed
    assert len(PROTOCOLS) == 20
    assert l4p_main(["bench", "flow-spring", "--layout"]) == 0
    assert "frame_left/frame_left_%04d.png" in capsys.readouterr().out
    assert l4p_main(["bench", "nope", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    assert (
        l4p_main(["bench", "pose-tum", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "x"])
        == 2
    )
    assert l4p_main(["bench", "pose-tum", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no item to evaluate" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        l4p_main(["bench", "pose-tum", "--limit", "x"])
    assert exit_info.value.code == 2


def _tiny(protocol: str, data, out, *extra: str) -> dict:
    argv = [
        "bench",
        protocol,
        "--data",
        str(data),
        "--out",
        str(out),
        "--model",
        "l4p_test",
        "--device",
        "cpu",
    ]
    assert l4p_main([*argv, *extra]) == 0
    return json.loads((out / "summary.json").read_text())


def test_tiny_model_through_flow_tracking_pose_and_motion(tmp_path) -> None:
    rng = np.random.default_rng(0)
    _sintel_tree(tmp_path / "sintel", rng)
    _spring_tree(tmp_path / "spring" / "train", rng)
    s = _tiny("flow-spring", tmp_path / "spring", tmp_path / "o2", "--set", "directions=BW")
    assert s["scores"]["regions"]["total"]["num_pixels"] == 2 * 47

    (tmp_path / "davis").mkdir()
    with (tmp_path / "davis" / "tapvid_davis.pkl").open("wb") as f:
        pickle.dump({"bear": _davis_video(rng, t=6)}, f)
    s = _tiny("tapvid-davis", tmp_path / "davis", tmp_path / "o3")
    assert 0 <= s["scores"]["strided"]["average_jaccard"] <= 1

    cams = tmp_path / "sintel" / "training" / "camdata_left" / "alley_1"
    cams.mkdir(parents=True)
    for i in range(3):
        w2c = np.eye(4)[:3]
        w2c[:, 3] = [0.1 * i, 0.02 * i * i, 0.05 * i]
        write_cam(cams / f"frame_{i + 1:04d}.cam", np.diag([50.0, 50.0, 1.0]), w2c)
    s = _tiny("pose-sintel", tmp_path / "sintel", tmp_path / "o4")
    assert np.isfinite(s["scores"]["ate"]) and s["scores"]["num_sequences"] == 1
    _vkitti_tree(tmp_path / "vkitti", rng)
    s = _tiny("motion-vkitti", tmp_path / "vkitti", tmp_path / "o5")
    assert s["scores"]["num_frames"] >= 0 and s["items"] == ["Scene01/clone"]
    assert "released checkpoint" in (tmp_path / "o5" / "summary.md").read_text()
