"""A `stream_to_disk` run killed with SIGKILL (mid-video, then in the time-reversed tracking
pass) and started again with the same command ends with the same store as an uninterrupted
run: dense tasks, cameras and tracks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

import l4p

ALL = ("depth", "flow", "motion", "camera", "tracks")
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, torch
    import l4p
    from l4p.inference import stream as stream_module

    out, kill_at_frame, kill_in_backward = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    torch.manual_seed(0)
    model = l4p.load_model("l4p_test", device="cpu")
    video = np.random.default_rng(3).integers(0, 256, size=(35, 12, 16, 3), dtype=np.uint8)
    if kill_in_backward:
        stream_module.VideoStream._backward = lambda self, t: os.kill(os.getpid(), signal.SIGKILL)

    def frames():
        for i, frame in enumerate(video):
            if i == kill_at_frame:
                os.kill(os.getpid(), signal.SIGKILL)
            yield frame

    l4p.stream_to_disk(model, frames(), out, ("depth", "flow", "motion", "camera", "tracks"), grid_size=2)
    """
)


def _run(out: Path, kill_at_frame: int, kill_in_backward: bool) -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), str(kill_at_frame), "1" if kill_in_backward else "0"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return proc.returncode


def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path):
    out = tmp_path / "pred"
    assert _run(out, kill_at_frame=27, kill_in_backward=False) == -signal.SIGKILL
    state = torch.load(out / ".l4p_resume" / "state.pt", weights_only=False)
    assert state["written"] == 16  # windows at 0 and 8 ran before frame 27 was asked for
    partial = l4p.load_prediction(out)
    assert partial.num_frames == 16 and not partial.attrs["complete"]

    assert _run(out, kill_at_frame=-1, kill_in_backward=True) == -signal.SIGKILL
    state = torch.load(out / ".l4p_resume" / "state.pt", weights_only=False)
    assert state["written"] == 35 and state["stream"]["phase"] == "tracks"

    assert _run(out, kill_at_frame=-1, kill_in_backward=False) == 0
    stored = l4p.load_prediction(out)
    assert stored.attrs["complete"] and not (out / ".l4p_resume").exists()

    torch.manual_seed(0)
    model = l4p.load_model("l4p_test", device="cpu")
    video = np.random.default_rng(3).integers(0, 256, size=(35, 12, 16, 3), dtype=np.uint8)
    ref = model.predict(video, ALL, grid_size=2)
    got = stored.to_prediction()
    assert set(got.tensors()) == set(ref.tensors())
    for name, value in ref.tensors().items():
        np.testing.assert_allclose(
            got.tensors()[name].numpy().astype(np.float64), value.numpy().astype(np.float64), atol=1e-5, rtol=0,
            err_msg=name,
        )  # fmt: skip
