"""docs/plot_training_curves.py: the stages of one run continue each other's steps."""

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "plot_training_curves.py"


def _load():
    spec = importlib.util.spec_from_file_location("plot_training_curves", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stages_continue_the_previous_stages_steps(tmp_path):
    plot = _load()
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("step,val/epe,train/loss_depth\n0,,1.0\n9,2.0,\n")
    second.write_text("step,val/epe,train/loss_depth\n0,,0.5\n4,1.5,\n")
    steps, values = plot.read_series((first, second), "val/epe")
    assert steps.tolist() == [9, 14] and np.allclose(values, [2.0, 1.5])
    assert plot.stage_starts((first, second)) == [10]
    assert plot.read_series(first, "train/loss_depth")[0].tolist() == [0]
    out = plot.plot(
        (first, second), tmp_path / "curves.png", compare=[(first, "other")], compare_keys=("val/epe",)
    )
    assert out.stat().st_size > 0 and not (tmp_path / "curves.tmp.png").exists()
