"""`predict` (now a collector over the stream) against outputs recorded with the in-memory
`predict` of commit 4005a99 (`tests/data/make_predict_reference.py`), and the stream's chunks
against `predict`: every task, both modes, T in {1, 5, 16, 17, 40, 100}, batch 1 and 2."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_predict_reference as ref  # noqa: E402

REFERENCE = Path(__file__).parent / "data" / "predict_reference.npz"
CASES = {c["name"]: c for c in ref.cases()}


@pytest.fixture(scope="module")
def predictor():
    return ref.model()


@pytest.fixture(scope="module")
def recorded():
    return dict(np.load(REFERENCE))


def _normalised_world(extrinsics: np.ndarray) -> np.ndarray:
    """Re-express world-to-camera poses with frame 0's camera as the world (default mode)."""
    return extrinsics @ np.linalg.inv(extrinsics[:, :1])


def _run(predictor, name):
    case = CASES[name]
    video, queries = ref.inputs(case)
    direction = "forward" if name.startswith("default_tracks_fwd") else None
    kwargs = dict(
        queries=queries if "tracks" in case["tasks"] else None, mode=case["mode"], direction=direction
    )
    return case, video, kwargs, predictor.predict(video, case["tasks"], **kwargs)


SLOW = {"default_t100"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES])
def test_predict_matches_in_memory_reference(predictor, recorded, name):
    case, _, _, pred = _run(predictor, name)
    ours = pred.to_numpy()
    keys = [k.split("/", 1)[1] for k in recorded if k.startswith(f"{name}/")]
    assert keys, f"no reference for {name}"
    for key in keys:
        expected = recorded[f"{name}/{key}"]
        if key == "extrinsics" and case["mode"] == "default":
            expected = _normalised_world(expected)  # issue 14.4: frame 0 is the world in default mode
        if key == "tracks_world" and case["mode"] == "default":
            continue  # re-expressed in the new world; checked through tracks_3d and extrinsics
        np.testing.assert_allclose(ours[key], expected, atol=1e-5, rtol=0, err_msg=f"{name}: {key}")
