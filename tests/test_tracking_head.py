"""Tracking head and cross-window memory against the reduced-width parity fixture.

Every expected number comes from the released L4P code (see ../shared/reference/parity).
Fixture layouts are (B, N, 2, T) / (B, N, 1, T); ours are (B, N, T, 2) / (B, N, T).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path
from einops import rearrange
from safetensors.torch import load_file

from l4p.checkpoints import StateDictMismatchError, load_state_dict_strict
from l4p.checkpoints.released_tracking import RELEASED_PREFIX, convert_released_tracking
from l4p.heads.tracking import TrackingHead, TrackMemory, init_memory, run_windows, window_inputs
from l4p.heads.tracking.memory import reseed_queries

CASES = {"single": (16, [0]), "windowed": (32, [0, 8, 16])}


@pytest.fixture(scope="module")
def parity_dir() -> Path:
    return shared_path("reference/parity")


@pytest.fixture(scope="module")
def config(parity_dir: Path) -> dict:
    return json.loads((parity_dir / "config.json").read_text())


@pytest.fixture(scope="module")
def released_sd(parity_dir: Path) -> dict[str, torch.Tensor]:
    sd = load_file(str(parity_dir / "state_dict.safetensors"))
    return {k.removeprefix(RELEASED_PREFIX): v for k, v in sd.items() if k.startswith(RELEASED_PREFIX)}


@pytest.fixture(scope="module")
def head(released_sd: dict[str, torch.Tensor], config: dict) -> TrackingHead:
    widths = config["widths"]
    model = TrackingHead(
        dim=widths["encoder_embed_dim"], mlp_dim=widths["sam_mlp_dim"], num_heads=widths["sam_num_heads"]
    )
    load_state_dict_strict(model, convert_released_tracking(released_sd), source="parity track_2d")
    return model.eval()


@pytest.fixture(scope="module")
def cases(parity_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for name in CASES:
        with np.load(parity_dir / f"{name}.npz") as data:
            out[name] = {k: data[k] for k in data.files if "track" in k or k.endswith("_i40")}
    return out


def atol(config: dict, key: str) -> float:
    return config["tolerances"]["per_key"][key]["atol"]


def t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def expected_tracks(case: dict[str, np.ndarray], prefix: str) -> tuple[torch.Tensor, ...]:
    traj = rearrange(t(case[f"{prefix}traj_est_bn2t"]), "b n k t -> b n t k")
    vis = rearrange(t(case[f"{prefix}vis_est_bn1t"]), "b n 1 t -> b n t")
    depth = rearrange(t(case[f"{prefix}depth_est_bn1t"]), "b n 1 t -> b n t")
    return traj, vis, depth


def assert_close(name: str, ours: torch.Tensor, ref: torch.Tensor, tol: float) -> float:
    assert ours.shape == ref.shape, (name, ours.shape, ref.shape)
    err = (ours.double() - ref.double()).abs().max().item()
    assert err <= tol, f"{name}: max abs error {err:.3g} > atol {tol:.3g}"
    return err


def run_case(head: TrackingHead, case: dict[str, np.ndarray], name: str):
    num_frames, starts = CASES[name]
    tokens = [t(case[f"debug_enc_features_bpc_w{w}_i40"]) for w in range(len(starts))]
    with torch.no_grad():
        return run_windows(
            head,
            tokens,
            t(case["input_track_2d_pointquerries_bn3"]),
            t(case["input_track_2d_pointlabels_bn"]),
            window_starts=starts,
            num_frames=num_frames,
        )


@pytest.fixture(scope="module")
def results(head: TrackingHead, cases: dict) -> dict:
    return {name: run_case(head, cases[name], name) for name in CASES}


def check_final(result, case: dict[str, np.ndarray], config: dict) -> None:
    """Final stitched tracks: placeholders exactly, estimates within the fixture's atol."""
    traj, vis, depth = expected_tracks(case, "output_track_2d_")
    q_t = t(case["input_track_2d_pointquerries_bn3"])[..., 0]
    frames = torch.arange(traj.shape[2], dtype=q_t.dtype)
    before = (frames[None, None] + 0.5) < q_t[..., None]  # (B, N, T) placeholder frames
    assert torch.equal(traj[before], torch.zeros_like(traj[before]))  # the fixture says so, too
    assert torch.equal(result.traj[before], traj[before])
    assert torch.equal(result.vis[before], vis[before])
    assert torch.equal(result.depth[before], depth[before])
    est = ~before
    assert_close("traj", result.traj[est], traj[est], atol(config, "track_2d_traj_est_bn2t"))
    assert_close("vis", result.vis[est], vis[est], atol(config, "track_2d_vis_est_bn1t"))
    assert_close("depth", result.depth[est], depth[est], atol(config, "track_2d_depth_est_bn1t"))


def check_windows(result, case: dict[str, np.ndarray], config: dict) -> None:
    """Per-window head inputs (re-seeded queries, labels) and raw window outputs."""
    for w, rec in enumerate(result.windows):
        prefix = f"debug_track_w{w}_"
        queries = t(case[prefix + "queries_bn3"])
        assert torch.equal(rec.queries[..., 0], queries[..., 0]), f"window {w} query times"
        assert_close(
            f"w{w} query xy",
            rec.queries[..., 1:],
            queries[..., 1:],
            atol(config, "debug_track_w*_queries_bn3"),
        )
        assert torch.equal(rec.point_labels, t(case[prefix + "labels_bn"])), f"window {w} labels"
        feature_labels = t(case[prefix + "promptfeature_labels_bn"])
        assert torch.equal(rec.track_feature_labels.to(feature_labels), feature_labels), f"window {w}"
        traj, vis, depth = expected_tracks(case, prefix)
        assert_close(f"w{w} traj", rec.traj, traj, atol(config, "debug_track_w*_traj_est_bn2t"))
        assert_close(f"w{w} vis", rec.vis, vis, atol(config, "debug_track_w*_vis_est_bn1t"))
        assert_close(f"w{w} depth", rec.depth, depth, atol(config, "debug_track_w*_depth_est_bn1t"))


def test_converter_loads_released_keys(released_sd: dict, head: TrackingHead) -> None:
    converted = convert_released_tracking(released_sd)
    assert "mask_decoder.iou_token.weight" in released_sd
    assert not any("iou_token" in k or "no_mask_embed" in k for k in converted)
    # The persistent Gaussian matrix is loaded, not re-drawn.
    gaussian = released_sd["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"]
    assert torch.equal(head.prompt_encoder.pe.gaussian_matrix, gaussian)
    assert "prompt_encoder.pe.gaussian_matrix" in head.state_dict()
    emb = head.prompt_encoder.point_label_embed.weight
    assert torch.equal(emb[1], released_sd["prompt_encoder.point_embeddings.1.weight"][0])
    # Full-prefix keys work as well; a missing key is reported.
    full = {RELEASED_PREFIX + k: v for k, v in released_sd.items()}
    assert convert_released_tracking(full).keys() == converted.keys()
    broken = dict(converted)
    broken.pop("history_proj.weight")
    with pytest.raises(StateDictMismatchError, match="history_proj.weight"):
        load_state_dict_strict(TrackingHead(dim=48, mlp_dim=32), broken)


def test_single_window_forward(head: TrackingHead, cases: dict, config: dict) -> None:
    """The stateless head on window 0's recorded inputs, first-window memory."""
    case = cases["single"]
    prefix = "debug_track_w0_"
    memory = init_memory(
        t(case["input_track_2d_pointquerries_bn3"]),
        t(case["input_track_2d_pointlabels_bn"]),
        mask_token_c=head.history_mask(),
        num_tokens=2048,
    )
    inputs = window_inputs(memory, 0, 16)
    assert torch.equal(inputs.queries, t(case[prefix + "queries_bn3"]))
    feature_labels = t(case[prefix + "promptfeature_labels_bn"])
    with torch.no_grad():
        out = head(
            t(case["debug_enc_features_bpc_w0_i40"]),
            grid_thw=(8, 16, 16),
            queries_bn3=t(case[prefix + "queries_bn3"]),
            point_labels_bn=t(case[prefix + "labels_bn"]),
            track_features_bnc=torch.zeros(1, 8, 48),
            track_feature_labels_bn=feature_labels,
            history_bnpc=inputs.history,
        )
    traj, vis, depth = expected_tracks(case, prefix)
    assert_close("traj", out.traj, traj, atol(config, "debug_track_w*_traj_est_bn2t"))
    assert_close("vis", out.vis, vis, atol(config, "debug_track_w*_vis_est_bn1t"))
    assert_close("depth", out.depth, depth, atol(config, "debug_track_w*_depth_est_bn1t"))
    assert out.track_feature.shape == (1, 8, 48)
    assert out.decoded_tokens.shape == (1, 8, 2048, 48)


@pytest.mark.parametrize("name", list(CASES))
def test_driver_matches_released(name: str, results: dict, cases: dict, config: dict) -> None:
    check_windows(results[name], cases[name], config)
    check_final(results[name], cases[name], config)


def test_reseeding_happened(results: dict, cases: dict) -> None:
    """The windowed case exercises re-seeding and carried features (guards the fixture's intent)."""
    labels = results["windowed"].windows[2].point_labels
    assert (labels == 2).sum() == 6 and (results["windowed"].windows[2].track_feature_labels == 1).sum() == 6


def test_query_on_last_frame(results: dict, cases: dict, config: dict) -> None:
    """Query 7 of the windowed case sits on frame 31: only that frame is estimated."""
    res = results["windowed"]
    traj, vis, depth = expected_tracks(cases["windowed"], "output_track_2d_")
    assert torch.equal(res.vis[0, 7, :31], torch.full((31,), -10.0))
    assert torch.equal(res.traj[0, 7, :31], torch.zeros(31, 2))
    assert_close(
        "last-frame traj", res.traj[0, 7, 31], traj[0, 7, 31], atol(config, "track_2d_traj_est_bn2t")
    )
    assert_close("last-frame vis", res.vis[0, 7, 31], vis[0, 7, 31], atol(config, "track_2d_vis_est_bn1t"))


def test_chunking_invariance(head: TrackingHead, results: dict, cases: dict, config: dict) -> None:
    """max_queries=3 (chunks 3+3+2) gives the released numbers and agrees with one chunk."""
    head.max_queries = 3
    try:
        chunked = run_case(head, cases["windowed"], "windowed")
    finally:
        head.max_queries = 128
    check_windows(chunked, cases["windowed"], config)
    check_final(chunked, cases["windowed"], config)
    # Only float32 kernel-blocking noise may differ between chunk sizes.
    full = results["windowed"]
    assert_close("chunked traj", chunked.traj, full.traj, 0.01)
    assert_close("chunked vis", chunked.vis, full.vis, 1e-4)


def test_batch_of_two(head: TrackingHead, cases: dict, config: dict) -> None:
    """Batch element 1 holds the queries in reverse order: each element has its own memory."""
    case = cases["windowed"]
    num_frames, starts = CASES["windowed"]
    tokens = [t(case[f"debug_enc_features_bpc_w{w}_i40"]).expand(2, -1, -1) for w in range(3)]
    queries = t(case["input_track_2d_pointquerries_bn3"])
    labels = t(case["input_track_2d_pointlabels_bn"])
    with torch.no_grad():
        res = run_windows(
            head,
            tokens,
            torch.cat([queries, queries.flip(1)]),
            torch.cat([labels, labels]),
            window_starts=starts,
            num_frames=num_frames,
        )
    traj, vis, depth = expected_tracks(case, "output_track_2d_")
    for b, order in ((0, torch.arange(8)), (1, torch.arange(7, -1, -1))):
        assert_close(f"b{b} traj", res.traj[b, order], traj[0], atol(config, "track_2d_traj_est_bn2t"))
        assert_close(f"b{b} vis", res.vis[b, order], vis[0], atol(config, "track_2d_vis_est_bn1t"))
        assert_close(f"b{b} depth", res.depth[b, order], depth[0], atol(config, "track_2d_depth_est_bn1t"))
        ref_labels = t(case["debug_track_w2_labels_bn"])[0]
        assert torch.equal(res.windows[2].point_labels[b, order], ref_labels)


def test_reseed_and_label_rules_from_spec() -> None:
    """Rules the fixture cannot separate (spec section d), on hand-computed values."""
    queries = torch.tensor([[[0.5, 10.0, 20.0], [2.5, 30.0, 40.0], [3.5, 50.0, 60.0]]])
    traj = torch.stack([torch.arange(4.0)[None].expand(3, 4) + 100 * torch.arange(3.0)[:, None]] * 2, -1)
    traj[..., 1] += 200
    vis = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 3.0, 1.0], [-10.0, -10.0, -10.0, 2.0]]])
    new = reseed_queries(queries, traj[None], vis, start=2, stop=4)
    # q0: tie at frames 2 and 3 -> the first (2); q1: best frame 2 is not strictly later than 2.5;
    # q2: best frame 3 gives 3.5, not strictly later.
    expected = torch.tensor([[[2.5, 2.0, 202.0], [2.5, 30.0, 40.0], [3.5, 50.0, 60.0]]])
    assert torch.equal(new, expected)

    user = torch.tensor([[[0.5, 10.0, 20.0], [0.5, 10.0, 20.0], [30.5, 1.0, 1.0], [0.5, 1.0, 1.0]]])
    current = torch.tensor([[[8.5, 10.0, 99.0], [8.5, 11.0, 99.0], [30.5, 1.0, 1.0], [30.5, 2.0, 2.0]]])
    memory = TrackMemory(
        user_queries=user,
        user_labels=torch.ones(1, 4),
        queries=current,
        track_features=torch.zeros(1, 4, 2),
        track_feature_labels=torch.zeros(1, 4, dtype=torch.long),
        history=torch.zeros(1, 4, 1, 2),
    )
    inputs = window_inputs(memory, 8, 16)
    # Any equal coordinate counts as "still the user's query" (released quirk): q0 and the
    # inactive q2 get 1; the re-seeded active q1 gets 2; the (artificial) inactive q3 gets 0.
    assert inputs.point_labels.tolist() == [[1.0, 2.0, 1.0, 0.0]]
    assert inputs.queries[..., 0].tolist() == [[0.5, 0.5, 22.5, 22.5]]
    assert inputs.valid[0, 0].all() and not inputs.valid[0, 2].any()


def test_other_window_and_grid_sizes_and_gradients() -> None:
    """Non-default grid (4, 6, 10) -> window 8 x 84 x 140 px, stride 4, B=2: shapes, ranges, grads."""
    head = TrackingHead(dim=32, mlp_dim=16, num_heads=4, window_size=(8, 84, 140), max_queries=2)
    grid = head.default_grid
    assert grid == (4, 6, 10)
    tokens = [torch.randn(2, 240, 32) for _ in range(3)]
    queries = torch.tensor([[[0.5, 10.5, 70.5], [5.5, 139.5, 0.5], [15.5, 70.0, 42.0]]]).expand(2, -1, -1)
    res = run_windows(head, tokens, queries, window_starts=[0, 4, 8], num_frames=16)
    assert res.traj.shape == (2, 3, 16, 2) and res.vis.shape == (2, 3, 16) and res.depth.shape == (2, 3, 16)
    est = res.vis > -10
    assert torch.equal(est[0, :, :], torch.arange(16)[None] + 0.5 >= queries[0, :, :1])
    x, y = res.traj[..., 0][est], res.traj[..., 1][est]
    assert (x > 0).all() and (x < 140).all() and (y > 0).all() and (y < 84).all()
    assert (res.depth[est] > 0).all() and torch.isfinite(res.vis).all()
    (res.traj.sum() + res.vis[est].sum() + res.depth.sum()).backward()
    no_grad = [n for n, p in head.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == [], no_grad
