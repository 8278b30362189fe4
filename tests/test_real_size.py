"""The real-size released architecture (random weights): slow on CPU, and bf16 on CUDA.

Deselected by the README test command (`-m "not slow and not gpu"`); run with
`pytest -m slow` (about 2-3 minutes and 8 GB of RAM on a 2-core CPU) or `pytest -m gpu`.
"""

from __future__ import annotations

import pytest
import torch

import l4p

TASKS = ("depth", "flow", "motion", "camera", "tracks")


@pytest.fixture(scope="module")
def vitg14():
    torch.manual_seed(0)
    return l4p.build_model("l4p_vitg14").eval()


@pytest.mark.slow
def test_vitg14_predict_cpu(vitg14):
    predictor = l4p.L4PPredictor(vitg14, device="cpu")
    video = torch.rand(16, 3, 64, 96)
    pred = predictor.predict(video, TASKS, queries=[[0, 10, 10], [8, 50, 30]], direction="forward")
    assert pred.depth.shape == (1, 16, 64, 96) and pred.tracks.shape == (1, 16, 2, 2)
    for name in ("depth", "motion", "extrinsics", "intrinsics"):
        assert torch.isfinite(getattr(pred, name)).all(), name
    assert torch.isfinite(pred.flow[:, 1:]).all() and torch.isfinite(pred.tracks[:, 8:]).all()


@pytest.mark.gpu
def test_vitg14_bf16_cuda_close_to_fp32(vitg14):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    video = torch.rand(16, 3, 224, 224)
    fp32 = l4p.L4PPredictor(vitg14, device="cuda").predict(video, ("depth", "flow"))
    bf16 = l4p.L4PPredictor(vitg14, device="cuda", dtype=torch.bfloat16).predict(video, ("depth", "flow"))
    assert bf16.depth.dtype == torch.float32
    rel = ((bf16.depth - fp32.depth).abs() / fp32.depth).median()
    assert rel < 0.02, rel
    assert (bf16.flow[:, 1:] - fp32.flow[:, 1:]).abs().median() < 0.05
