"""benchmarks/eval_synthetic_heads.py: the paired per-clip gain over the trivial baseline."""

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the scripts live in the repository, not in the installed package
    sys.path.insert(0, str(REPO))

from benchmarks import eval_synthetic_heads as ev  # noqa: E402
from l4p.training.heldout import SCORES  # noqa: E402


def _clips(values: dict[str, list[float]]) -> list[dict[str, float]]:
    n = len(next(iter(values.values())))
    return [{name: values.get(name, [0.0] * n)[i] for name in SCORES} for i in range(n)]


def test_constant_gain_is_a_point_interval_and_lower_is_better_flips_the_sign():
    base = _clips({"aj": [0.1, 0.2, 0.3], "epe": [2.0, 3.0, 4.0]})
    model = _clips({"aj": [0.15, 0.25, 0.35], "epe": [1.0, 2.0, 3.0]})
    gains = ev.paired_gain(model, base)
    assert gains["aj"]["gain"] == pytest.approx(0.05) and gains["aj"]["ci95"] == pytest.approx([0.05, 0.05])
    assert gains["epe"]["gain"] == pytest.approx(1.0)  # lower EPE is a positive gain
    assert (gains["epe"]["better"], gains["epe"]["level"], gains["epe"]["worse"]) == (3, 0, 0)
    assert (gains["oa"]["better"], gains["oa"]["level"], gains["oa"]["worse"]) == (0, 3, 0)


def test_interval_brackets_the_mean_and_narrows_with_more_clips():
    rng = np.random.default_rng(1)
    widths = []
    for n in (12, 192):
        diff = rng.normal(0.01, 0.02, n)
        gains = ev.paired_gain(_clips({"oa": list(0.8 + diff)}), _clips({"oa": [0.8] * n}))["oa"]
        low, high = gains["ci95"]
        assert low < gains["gain"] < high and gains["gain"] == pytest.approx(diff.mean())
        # a 95 % interval of a mean: about +-1.96 standard errors
        assert high - low == pytest.approx(2 * 1.96 * diff.std(ddof=1) / np.sqrt(n), rel=0.25)
        assert gains["better"] + gains["worse"] == n
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


def test_nan_scores_are_left_out_and_the_table_shows_the_gain_columns():
    base = _clips({"aj_3d": [0.1, float("nan"), 0.1]})
    model = _clips({"aj_3d": [0.2, 0.5, 0.3]})
    gains = ev.paired_gain(model, base)
    assert gains["aj_3d"]["better"] == 2 and gains["aj_3d"]["gain"] == pytest.approx(0.15)
    means = {
        name: {**{s: 0.0 for s in SCORES}, "aj_moving": 0.0, "delta_avg_moving": 0.0} for name in ("a", "b")
    }
    text = ev.table(means, gains)
    row = next(line for line in text.splitlines() if line.startswith("| 3D tracks 3D-AJ, K given"))
    assert "+0.150 [" in row and "2/0/0" in row
