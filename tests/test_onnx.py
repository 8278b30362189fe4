"""ONNX export of `l4p_test` run with onnxruntime on the CPU matches PyTorch (<= 1e-4 on every
output): one window (every graph, batch of two) and through `predict` over three windows with
every task. The export (six graphs, the slow part) is done once for the module."""

from __future__ import annotations

import json
import os

import pytest
import torch

from l4p.api import L4PPredictor
from l4p.build import build_model

TOL = 1e-4
ALL = ("depth", "flow", "motion", "camera", "tracks")


def _require(name: str):
    """Import a package the ONNX backend needs: missing is a failure under CI, a skip elsewhere."""
    try:
        return __import__(name)
    except ImportError:
        msg = f"{name} is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    _require("onnxruntime")
    _require("onnxscript")
    from l4p.deploy import export_onnx

    torch.manual_seed(0)
    model = build_model("l4p_test").eval()
    out = export_onnx(model, tmp_path_factory.mktemp("onnx") / "l4p_test")
    return model, out


@pytest.fixture(scope="module")
def backend(exported):
    from l4p.deploy import OnnxL4P

    return OnnxL4P(exported[1])


def test_export_folder_and_contract(exported):
    import onnx

    _, out = exported
    manifest = json.loads((out / "l4p_onnx.json").read_text())
    assert manifest["tasks"] == list(ALL) and manifest["window"] == [16, 112, 112]
    assert manifest["grid"] == [8, 8, 8] and manifest["stride"] == 8 and manifest["external_data"] == []
    files = {p.name for p in out.iterdir()}
    graphs = {"encoder.onnx", "tracking.onnx", *(f"head_{t}.onnx" for t in ALL[:4])}
    assert graphs | {"l4p_onnx.json", "history_mask_token.npy"} == files
    for name in graphs:
        onnx.checker.check_model(str(out / name))
    enc = onnx.load(str(out / "encoder.onnx"))
    (video,) = enc.graph.input
    dims = video.type.tensor_type.shape.dim
    assert (
        video.name == "video" and dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 16, 112, 112]
    )
    assert [o.name for o in enc.graph.output] == [
        "feature_1",
        "feature_2",
        "feature_3",
        "feature_4",
        "tokens",
    ]
    track = onnx.load(str(out / "tracking.onnx"))
    names = [i.name for i in track.graph.input]
    assert names == [
        "video_tokens",
        "queries",
        "point_labels",
        "track_features",
        "track_feature_labels",
        "history",
    ]
    queries = track.graph.input[1].type.tensor_type.shape.dim
    assert queries[0].dim_param and queries[1].dim_param and queries[2].dim_value == 3  # B, N dynamic
    assert [o.name for o in track.graph.output][:5] == [
        "traj",
        "vis",
        "depth",
        "track_feature",
        "history_next",
    ]
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in track.graph.input)


def test_one_window_matches_pytorch(exported, backend):
    """Every graph on a batch of two windows (the tracking head with a later window's memory)."""
    from l4p.deploy.check import window_differences

    diffs = window_differences(exported[0], backend, batch=2, queries=5)
    expected = {f"feature_{i}" for i in range(1, 5)} | {"depth", "flow", "motion", "camera_rays", "tokens"}
    expected |= {"track_traj", "track_vis", "track_depth", "track_feature", "history_next"}
    assert expected <= set(diffs)
    worst = {k: v for k, v in diffs.items() if not v <= TOL}
    assert not worst, f"outputs differ by more than {TOL}: {worst}"


def test_low_memory_sessions_match(exported):
    from l4p.deploy import OnnxL4P
    from l4p.deploy.check import window_differences

    diffs = window_differences(exported[0], OnnxL4P(exported[1], low_memory=True, threads=1), queries=2)
    assert len(diffs) >= 14 and max(diffs.values()) <= TOL, diffs


def test_tracking_window_without_queries(exported, backend):
    """N = 0 (a batch with no queries): empty outputs of the right shapes, as PyTorch."""
    model, _ = exported
    p, c = 512, 32
    args = dict(
        grid_thw=(8, 8, 8),
        queries_bn3=torch.zeros(2, 0, 3),
        point_labels_bn=torch.zeros(2, 0),
        track_features_bnc=torch.zeros(2, 0, c),
        track_feature_labels_bn=torch.zeros(2, 0),
        history_bnpc=torch.zeros(2, 0, p, c),
    )
    tokens = torch.randn(2, p, c)
    with torch.inference_mode():
        ref, got = model.tracker(tokens, **args), backend.tracker(tokens, **args)
    for name, value in vars(ref).items():
        assert getattr(got, name).shape == value.shape, name


def _compare(ref, got, tol: dict[str, float]) -> None:
    ref_t, got_t = ref.tensors(), got.tensors()
    assert set(got_t) == set(ref_t)
    for name, value in ref_t.items():
        other = got_t[name]
        assert other.shape == value.shape, name
        if value.dtype == torch.bool:  # thresholded at 0.5: compare where the probability is clear of it
            clear = (ref.visibility_prob - 0.5).abs() > TOL
            assert torch.equal(value[clear], other[clear]), name
            continue
        atol = tol.get(name, TOL)
        torch.testing.assert_close(
            other, value, rtol=0, atol=atol, equal_nan=True, msg=lambda m, n=name: f"{n}: {m}"
        )


def _inputs():
    torch.manual_seed(1)
    video = torch.rand(24, 3, 60, 80)  # three windows
    k = torch.tensor([[70.0, 0, 40], [0, 70, 30], [0, 0, 1]])
    return video, dict(queries=torch.tensor([[0, 10, 20], [5, 60, 40], [20, 70, 50.0]]), intrinsics=k)


def test_predict_matches_pytorch_over_windows(exported):
    """Depth, flow, motion and tracks (both directions, 3D with known K) over three windows,
    windows batched in twos: every output within 1e-4."""
    from l4p.deploy import load_onnx

    model, out = exported
    video, kwargs = _inputs()
    tasks = ("depth", "flow", "motion", "tracks")
    ref = L4PPredictor(model, device="cpu").predict(video, tasks, **kwargs)
    got = load_onnx(out, window_batch_size=2).predict(video, tasks, **kwargs)
    assert {"depth", "flow", "motion", "tracks", "visibility_prob", "tracks_3d"} <= set(ref.tensors())
    _compare(ref, got, {})


def test_predict_cameras_over_windows(exported, monkeypatch):
    """Camera (released mode, known K) and tracks over three windows.

    With random weights the rays of a window can be so far from any camera that the pose fit
    turns 1e-7 of ray noise into ~5e-4 of pose: poses and world tracks must then be as close to
    PyTorch as PyTorch is to itself with 1e-7 noise on the rays (and within 1e-4 otherwise).
    """
    from l4p.deploy import load_onnx

    model, out = exported
    video, kwargs = _inputs()
    tasks, kwargs = ("camera", "tracks"), {**kwargs, "mode": "released"}
    predictor = L4PPredictor(model, device="cpu")
    ref = predictor.predict(video, tasks, **kwargs)
    got = load_onnx(out, window_batch_size=2).predict(video, tasks, **kwargs)
    assert {"extrinsics", "intrinsics", "tracks_world"} <= set(ref.tensors())
    decode = model.decode_dense

    def noisy(features, *, tasks):
        dense = decode(features, tasks=tasks)
        dense.camera_rays = dense.camera_rays + 1e-7 * torch.randn_like(dense.camera_rays)
        return dense

    monkeypatch.setattr(model, "decode_dense", noisy)
    jitter = predictor.predict(video, tasks, **kwargs)
    sens = {
        n: 2 * float((getattr(jitter, n) - getattr(ref, n)).abs().max())
        for n in ("extrinsics", "tracks_world")
    }
    _compare(ref, got, {n: max(TOL, s) for n, s in sens.items()})


def test_errors(exported, tmp_path):
    from l4p.deploy import export_onnx, load_onnx

    model, out = exported
    with pytest.raises(FileNotFoundError, match="no l4p_onnx.json"):
        load_onnx(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite"):
        export_onnx(model, out)
    with pytest.raises(ValueError, match="unknown task 'pose'"):
        export_onnx(model, tmp_path / "x", tasks=("pose",))
    camera_only = build_model("l4p_test", tasks=("camera",))
    with pytest.raises(ValueError, match="no head for 'depth'"):
        export_onnx(camera_only, tmp_path / "y", tasks=("depth",))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_export_errors(exported, capsys):
    from l4p.cli import main

    _, out = exported
    assert main(["export", "onnx", "--model", "l4p_test", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", "onnx", "--model", "nope", "--out", str(out.parent / "z")]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_load_model_backend_onnxruntime(exported, tmp_path):
    """`load_model(dir, backend="onnxruntime")` is the export folder run by onnxruntime."""
    import l4p

    model, out = exported
    video, kwargs = _inputs()
    tasks = ("depth", "tracks")
    ref = L4PPredictor(model, device="cpu").predict(video, tasks, **kwargs)
    predictor = l4p.load_model(out, backend="onnxruntime")
    assert type(predictor.model).__name__ == "OnnxL4P"
    _compare(ref, predictor.predict(video, tasks, **kwargs), {})
    with pytest.raises(ValueError, match="drop checkpoint"):
        l4p.load_model(out, "weights.safetensors", backend="onnxruntime")
    with pytest.raises(ValueError, match="needs an export folder"):
        l4p.load_model("l4p_test", backend="onnxruntime")
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        l4p.load_model("l4p_test", backend="tensorrt")
