"""Record `predict` outputs of the tiny model, used by `tests/test_stream_parity.py`.

Run from the repository root: `python tests/data/make_predict_reference.py`. The committed
`predict_reference.npz` was made with the pre-streaming `predict` (commit 4005a99: the
in-memory code of f89b8a5 with the geometry fixes of f76837a), so the
test compares the streaming engine against numbers the in-memory code produced. Inputs are
tiny (6 x 8 pixels) to keep the file small; the model works at its own 112 x 112 window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import l4p

HEIGHT, WIDTH = 6, 8
ALL = ("depth", "flow", "motion", "camera", "tracks")


def cases() -> list[dict]:
    """The recorded cases: name, mode, batch, frames, tasks."""
    out = [
        dict(name=f"default_t{t}", mode="default", batch=1, frames=t, tasks=ALL)
        for t in (1, 5, 16, 17, 40, 100)
    ]
    out += [dict(name=f"released_t{t}", mode="released", batch=1, frames=t, tasks=ALL) for t in (1, 17, 40)]
    out += [
        dict(name="default_b2_t17", mode="default", batch=2, frames=17, tasks=ALL),
        dict(name="released_b2_t17", mode="released", batch=2, frames=17, tasks=ALL),
        dict(name="default_camera_t40", mode="default", batch=1, frames=40, tasks=("camera",)),
        dict(name="default_depth_t40", mode="default", batch=1, frames=40, tasks=("depth",)),
        dict(name="released_depth_t40", mode="released", batch=1, frames=40, tasks=("depth",)),
        dict(name="default_tracks_fwd_t40", mode="default", batch=1, frames=40, tasks=("depth", "tracks")),
    ]
    return out


def inputs(case: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The case's video (B, T, 3, H, W) and queries (B, N, 3)."""
    gen = torch.Generator().manual_seed(case["frames"] * 10 + case["batch"])
    video = torch.rand(case["batch"], case["frames"], 3, HEIGHT, WIDTH, generator=gen)
    t_last = case["frames"] - 1
    queries = torch.tensor([[0.0, 1.0, 2.0], [t_last // 2, 6.0, 4.0], [t_last, 3.0, 1.0]])
    return video, queries.expand(case["batch"], -1, -1).clone()


def model() -> l4p.L4PPredictor:
    """The tiny model with seed-0 random weights."""
    torch.manual_seed(0)
    return l4p.load_model("l4p_test", device="cpu")


def main() -> None:
    """Run every case and save the outputs as `<case>/<field>` arrays."""
    predictor = model()
    arrays: dict[str, np.ndarray] = {}
    for case in cases():
        video, queries = inputs(case)
        direction = "forward" if case["name"].startswith("default_tracks_fwd") else None
        pred = predictor.predict(
            video, case["tasks"], queries=queries if "tracks" in case["tasks"] else None,
            mode=case["mode"], direction=direction,
        )  # fmt: skip
        for key, value in pred.to_numpy().items():
            arrays[f"{case['name']}/{key}"] = value
    path = Path(__file__).with_name("predict_reference.npz")
    np.savez_compressed(path, **arrays)
    print(path, path.stat().st_size)  # noqa: T201


if __name__ == "__main__":
    main()
