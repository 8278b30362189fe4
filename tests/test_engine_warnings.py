"""The Sim(3) fallback is reported once per video, not once per window."""

from __future__ import annotations

import dataclasses
import logging

import torch

import l4p
import l4p.inference.window_step as window_step


def test_sim3_fallback_is_warned_once_naming_the_windows(monkeypatch, caplog) -> None:
    real_fit = window_step.fit_sim3

    def failing_fit(*args, **kwargs):
        result = real_fit(*args, **kwargs)
        return dataclasses.replace(result, success=torch.zeros_like(result.success))

    monkeypatch.setattr(window_step, "fit_sim3", failing_fit)
    torch.manual_seed(0)
    model = l4p.load_model("l4p_test", device="cpu")
    video = torch.rand(40, 3, 48, 64, generator=torch.Generator().manual_seed(0))  # 4 windows
    with caplog.at_level(logging.WARNING, logger="l4p"):
        model.predict(video, tasks=("depth", "camera"))
    sim3 = [r.getMessage() for r in caplog.records if "Sim(3)" in r.getMessage()]
    assert len(sim3) == 1, sim3
    assert "failed for 3 of the 3 windows after the first (windows 1, 2, 3)" in sim3[0]


def test_fit_sim3_without_warning_returns_the_same_fallback() -> None:
    """`warn=False` silences the log line only; the failed items still get the fallback."""
    from l4p.geometry.align_sim3_robust import fit_sim3

    gen = torch.Generator().manual_seed(0)
    src = torch.randn(2, 200, 3, generator=gen)
    dst = torch.randn(2, 200, 3, generator=gen) * 5  # unrelated points: the robust fit fails
    loud = fit_sim3(src, dst, threshold=1e-3)
    quiet = fit_sim3(src, dst, threshold=1e-3, warn=False)
    assert not bool(loud.success.any())
    for a, b in zip(dataclasses.astuple(loud), dataclasses.astuple(quiet)):
        assert torch.equal(a, b)
