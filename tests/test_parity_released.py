"""The whole model, loaded through the released-checkpoint filter, against outputs of the
released code (reduced-width fixture in ../shared/reference/parity).

Two levels: the window engine in released mode on the fixture's normalised input (every
output and intermediate), and `predict` on the uint8 video the fixture was made from.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import shared_path
from einops import rearrange

import l4p
from l4p.inference.engine import run_model

PARITY = "reference/parity"


@pytest.fixture(scope="module")
def cfg():
    return json.loads(shared_path(f"{PARITY}/config.json").read_text())


@pytest.fixture(scope="module")
def predictor(cfg):
    w = cfg["widths"]
    return l4p.load_model(
        "l4p_vitg14",
        checkpoint=shared_path(f"{PARITY}/state_dict.safetensors"),
        device="cpu",
        mode="released",
        encoder_dim=w["encoder_embed_dim"],
        encoder_heads=w["encoder_num_heads"],
        dpt_feature_dim=w["dpt_feature_dim"],
        dpt_last_dim=w["dpt_last_dim"],
        dpt_layer_dims=tuple(w["dpt_layer_dims"]),
        tracker_mlp=w["sam_mlp_dim"],
        tracker_heads=w["sam_num_heads"],
    )


def _case(name):
    return dict(np.load(shared_path(f"{PARITY}/{name}.npz")))


def _atol(cfg, key):
    return cfg["tolerances"]["per_key"][key]["atol"]


def _k33(k_b44t):
    return torch.from_numpy(rearrange(k_b44t, "b i j t -> b t i j")[..., :3, :3].copy())


def _run(predictor, case, tasks):
    queries = case.get("input_track_2d_pointquerries_bn3")
    with torch.inference_mode():
        return run_model(
            predictor.model,
            torch.from_numpy(case["input_rgb_b3thw"]),
            tasks=tasks,
            queries_bn3=None if queries is None else torch.from_numpy(queries),
            fallback_intrinsics_bt33=_k33(case["input_intrinsics_b44t"]),
            mode="released",
        )


def _check_tracks(cfg, case, result, prefix="output_track_2d"):
    traj = rearrange(result.traj.numpy(), "b n t c -> b n c t")
    vis = result.vis.numpy()[:, :, None]
    depth = result.depth.numpy()[:, :, None]
    ref_traj, ref_vis, ref_depth = (
        case[f"{prefix}_{k}"] for k in ("traj_est_bn2t", "vis_est_bn1t", "depth_est_bn1t")
    )
    t = np.arange(traj.shape[-1])
    placeholder = (t[None, None, :] + 0.5 < case["input_track_2d_pointquerries_bn3"][..., 0:1])[:, :, None]
    # placeholders exactly as released: 0 / -10 / 0
    assert (traj[np.broadcast_to(placeholder, traj.shape)] == 0).all()
    assert (vis[placeholder] == -10).all() and (depth[placeholder] == 0).all()
    assert (ref_vis[placeholder] == -10).all()
    for ours, ref, key in ((traj, ref_traj, "traj"), (vis, ref_vis, "vis"), (depth, ref_depth, "depth")):
        np.testing.assert_allclose(
            ours,
            ref,
            atol=_atol(cfg, f"track_2d_{key}_est_bn{'2' if key == 'traj' else '1'}t"),
            rtol=0,
            err_msg=key,
        )


def test_single_window_all_tasks(cfg, predictor):
    case = _case("single")
    raw = _run(predictor, case, ("depth", "flow", "motion", "camera", "tracks"))
    tol = lambda k: _atol(cfg, k)  # noqa: E731
    np.testing.assert_allclose(
        raw.depth.numpy(), case["output_depth_est_b1thw"][:, 0], atol=tol("depth_est_b1thw"), rtol=0
    )
    flow = rearrange(raw.flow.numpy(), "b t c h w -> b c t h w")
    np.testing.assert_allclose(
        flow, case["output_flow_2d_backward_est_b2thw"], atol=tol("flow_2d_backward_est_b2thw"), rtol=0
    )
    np.testing.assert_allclose(
        raw.motion_logits.numpy(),
        case["output_dyn_mask_est_b1thw"][:, 0],
        atol=tol("dyn_mask_est_b1thw"),
        rtol=0,
    )
    np.testing.assert_allclose(
        raw.rays[0].numpy(),
        case["debug_camray_rays_b6thw_w0"],
        atol=tol("debug_camray_rays_b6thw_w*"),
        rtol=0,
    )
    poses = rearrange(raw.cam_to_world.numpy(), "b t i j -> b (i j) t")
    np.testing.assert_allclose(poses, case["output_traj3d_est_b16t"], atol=tol("traj3d_est_b16t"), rtol=0)
    k_ref = rearrange(case["output_traj3d_intrinsics_est_b16t"], "b (i j) t -> b t i j", i=4)[..., :3, :3]
    np.testing.assert_allclose(raw.intrinsics.numpy(), k_ref, atol=tol("traj3d_intrinsics_est_b16t"), rtol=0)
    _check_tracks(cfg, case, raw.tracks)


def test_windowed_depth_flow_motion_tracks(cfg, predictor):
    case = _case("windowed")
    raw = _run(predictor, case, ("depth", "flow", "motion", "tracks"))
    assert raw.window_starts == [0, 8, 16]
    _check_depth_alignment(predictor, case, raw)
    np.testing.assert_allclose(
        raw.depth.numpy(), case["output_depth_est_b1thw"][:, 0], atol=_atol(cfg, "depth_est_b1thw"), rtol=0
    )
    flow = rearrange(raw.flow.numpy(), "b t c h w -> b c t h w")
    np.testing.assert_allclose(
        flow, case["output_flow_2d_backward_est_b2thw"], atol=_atol(cfg, "flow_2d_backward_est_b2thw"), rtol=0
    )
    np.testing.assert_allclose(
        raw.motion_logits.numpy(),
        case["output_dyn_mask_est_b1thw"][:, 0],
        atol=_atol(cfg, "dyn_mask_est_b1thw"),
        rtol=0,
    )
    for w, rec in enumerate(raw.tracks.windows):
        np.testing.assert_array_equal(rec.point_labels.numpy(), case[f"debug_track_w{w}_labels_bn"])
        np.testing.assert_array_equal(
            rec.track_feature_labels.numpy(), case[f"debug_track_w{w}_promptfeature_labels_bn"]
        )
        ref_q = case[f"debug_track_w{w}_queries_bn3"]
        np.testing.assert_array_equal(rec.queries.numpy()[..., 0], ref_q[..., 0])
        np.testing.assert_allclose(
            rec.queries.numpy(), ref_q, atol=_atol(cfg, "debug_track_w*_queries_bn3"), rtol=0
        )
    _check_tracks(cfg, case, raw.tracks)


def _check_depth_alignment(predictor, case, raw):
    """The inverse-depth fits solve the same problem as the released code.

    The release solves in float32 with LAPACK `gelsy`, which on CPU is not deterministic:
    repeated identical calls on this fixture return either the exact least-squares solution
    or one about 2e-4 away (the fixture recorded the latter), and how far its float32 answer
    is from the optimum depends on the data. So we test what is meant, not a data-dependent
    threshold: our solution is the float64 least-squares optimum of the released problem
    (the same overlap pixels and target, built here independently with numpy), and the
    stitched depth it produces matches the released output (checked by the caller against
    the fixture's `output_depth_est_b1thw`).
    """
    x = torch.from_numpy(case["input_rgb_b3thw"])
    with torch.inference_mode():
        windows = [
            predictor.model.decode_dense(
                predictor.model.encode(x[:, :, s : s + 16], tasks=("depth",)), tasks=("depth",)
            )
            .depth[0]
            .double()
            .numpy()
            for s in raw.window_starts
        ]
    target = windows[0][8:]
    for w, (scale, shift) in enumerate(raw.depth_alignment, start=1):
        xx, yy = 1 / windows[w][:8].ravel(), 1 / target.ravel()
        design = np.stack([xx, np.ones_like(xx)], 1)
        optimum = np.linalg.lstsq(design, yy, rcond=None)[0]
        ours = np.array([scale.item(), shift.item()])
        np.testing.assert_allclose(ours, optimum, atol=1e-6, rtol=1e-6)
        target = (1 / (ours[0] / windows[w] + ours[1]))[8:]


def test_camera_only_windows(cfg, predictor):
    case = _case("camray_windowed")
    raw = _run(predictor, case, ("camera",))
    for w, rays in enumerate(raw.rays):
        np.testing.assert_allclose(
            rays.numpy(),
            case[f"debug_camray_rays_b6thw_w{w}"],
            atol=_atol(cfg, "debug_camray_rays_b6thw_w*"),
            rtol=0,
        )
    poses = rearrange(raw.cam_to_world.numpy(), "b t i j -> b (i j) t")
    np.testing.assert_allclose(
        poses, case["output_traj3d_est_b16t"], atol=_atol(cfg, "traj3d_est_b16t"), rtol=0
    )


def test_predict_front_end_released_mode(cfg, predictor):
    """`predict` on the uint8 video: conversion, normalisation and query convention."""
    case = _case("single")
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None, None]
    video = np.round((case["input_rgb_b3thw"][0] * std + mean) * 255).astype(np.uint8)  # (3, T, H, W)
    queries = case["input_track_2d_pointquerries_bn3"][0] - 0.5  # integer = centre
    pred = predictor.predict(
        rearrange(video, "c t h w -> t h w c"), ("depth", "flow", "motion", "camera", "tracks"),
        queries=queries, direction="forward",
    )  # fmt: skip
    np.testing.assert_allclose(
        pred.depth.numpy(),
        case["output_depth_est_b1thw"][:, 0],
        atol=2 * _atol(cfg, "depth_est_b1thw"),
        rtol=0,
    )
    flow_ref = rearrange(case["output_flow_2d_backward_est_b2thw"], "b c t h w -> b t c h w")
    assert np.isnan(pred.flow[:, 0].numpy()).all()
    np.testing.assert_allclose(
        pred.flow[:, 1:].numpy(), flow_ref[:, 1:], atol=2 * _atol(cfg, "flow_2d_backward_est_b2thw"), rtol=0
    )
    motion_ref = 1 / (1 + np.exp(-case["output_dyn_mask_est_b1thw"][:, 0]))
    np.testing.assert_allclose(
        pred.motion.numpy(), motion_ref, atol=2 * _atol(cfg, "dyn_mask_est_b1thw"), rtol=0
    )
    pose_ref = rearrange(case["output_traj3d_est_b16t"], "b (i j) t -> b t i j", i=4)
    np.testing.assert_allclose(
        np.linalg.inv(pred.extrinsics.numpy()), pose_ref, atol=2 * _atol(cfg, "traj3d_est_b16t"), rtol=0
    )
    traj_ref = rearrange(case["output_track_2d_traj_est_bn2t"], "b n c t -> b t n c") - 0.5
    valid = ~np.isnan(pred.tracks.numpy()[..., 0])
    assert valid.sum() == (traj_ref[..., 0] != -0.5).sum()  # NaN exactly at the released placeholders
    np.testing.assert_allclose(
        pred.tracks.numpy()[valid], traj_ref[valid], atol=2 * _atol(cfg, "track_2d_traj_est_bn2t"), rtol=0
    )
