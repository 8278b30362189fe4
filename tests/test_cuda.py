"""CUDA runs give the CPU's answer: every task, two windows, bidirectional tracks.

Run on a machine with a GPU: `pytest -m gpu tests/test_cuda.py`. Device mix-ups (run state kept
on the CPU meeting outputs on the GPU) only show here: `predict(tasks="camera")` on CUDA once
failed with "Expected all tensors to be on the same device".
"""

from __future__ import annotations

import pytest
import torch

import l4p
from l4p.api import L4PPredictor
from l4p.build import build_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

TASKS = ("depth", "flow", "motion", "camera", "tracks")
# Fields that must agree to float rounding (cuDNN's TF32 is turned off for the comparison).
CLOSE = ("depth", "flow", "motion", "tracks", "visibility_prob", "track_depth", "queries")


@pytest.fixture(autouse=True)
def _no_tf32():
    was = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = was


def _video(frames: int = 20) -> torch.Tensor:
    return torch.rand(frames, 3, 48, 64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", ["l4p_test", "l4p_synthetic_s"])
def test_cuda_predict_matches_cpu(name: str) -> None:
    """fp32 on CUDA equals the CPU result, and every field comes back on the CPU.

    `l4p_synthetic_s` covers the query-feature sampling of its tracking head (random weights).
    """
    video = _video()
    preds = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = L4PPredictor(build_model(name), device=device)
        preds[device] = model.predict(video, tasks=TASKS, grid_size=3, direction="both")
    for field, cpu_value in preds["cpu"].tensors().items():
        cuda_value = getattr(preds["cuda"], field)
        assert cuda_value.device.type == "cpu", field
        assert cuda_value.shape == cpu_value.shape and cuda_value.dtype == cpu_value.dtype, field
        assert torch.equal(torch.isfinite(cpu_value.float()), torch.isfinite(cuda_value.float())), field
        if field in CLOSE:
            torch.testing.assert_close(cuda_value, cpu_value, atol=2e-3, rtol=2e-3, equal_nan=True, msg=field)
    # Poses and K: random-weight rays make the fits ill-conditioned (see tests/test_onnx.py), so
    # only their validity is compared: rotations stay rotations.
    rot = preds["cuda"].extrinsics[..., :3, :3].double()
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand_as(rot),
                               atol=1e-4, rtol=0)  # fmt: skip


def test_cuda_stream_to_disk_round_trip(tmp_path) -> None:
    """The streaming writer runs on CUDA and its store loads back to `predict`'s answer."""
    pytest.importorskip("zarr")
    video = _video()
    model = l4p.load_model("l4p_test", device="cuda")
    torch.manual_seed(0)
    expected = model.predict(video, tasks=TASKS, grid_size=3)
    path = l4p.stream_to_disk(model, video, tmp_path / "pred.zarr", tasks=TASKS, grid_size=3)
    got = l4p.load_prediction(path).to_prediction()
    for field, value in expected.tensors().items():
        torch.testing.assert_close(
            getattr(got, field), value, atol=1e-4, rtol=1e-4, equal_nan=True, msg=field
        )
