"""Tests of window-to-window alignment: inverse-depth affine fit and Sim(3) fits."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from l4p.geometry.align import (
    Sim3Result,
    apply_inverse_depth_affine,
    apply_sim3_to_depth,
    apply_sim3_to_points,
    apply_sim3_to_poses,
    fit_inverse_depth_affine,
    fit_sim3,
    masked_quantile,
    overlap_point_maps,
    safe_inverse,
    sim3_threshold_from_depth,
    subsample_indices,
    umeyama,
)

# ----------------------------------------------------------------------------- depth


def _depth_pair(batch: int = 2, noise: float = 0.0, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    pred = 0.5 + 4.0 * torch.rand(batch, 4, 12, 10, generator=gen)
    scale = torch.tensor([1.7, 0.6][:batch])
    shift = torch.tensor([0.05, -0.02][:batch])
    target_inv = scale[:, None, None, None] / pred + shift[:, None, None, None]
    target_inv = target_inv + noise * torch.randn(target_inv.shape, generator=gen)
    return pred, 1.0 / target_inv, scale, shift


def test_safe_inverse_zeroes_invalid() -> None:
    x = torch.tensor([2.0, 0.0, -1.0, float("nan"), float("inf")])
    assert torch.equal(safe_inverse(x), torch.tensor([0.5, 0.0, 0.0, 0.0, 0.0]))


def test_inverse_depth_affine_exact_and_apply_inverts() -> None:
    pred, target, scale, shift = _depth_pair()
    a, b = fit_inverse_depth_affine(pred, target)
    assert a.shape == (2,) and b.shape == (2,) and a.dtype == torch.float32
    torch.testing.assert_close(a, scale, atol=1e-5, rtol=0)
    torch.testing.assert_close(b, shift, atol=1e-5, rtol=0)
    torch.testing.assert_close(apply_inverse_depth_affine(pred, a, b), target, rtol=1e-5, atol=0)


def test_inverse_depth_affine_noisy_matches_float64_polyfit() -> None:
    pred, target, scale, shift = _depth_pair(noise=0.01)
    a, b = fit_inverse_depth_affine(pred, target)
    for i in range(2):
        ref = np.polyfit(
            (1.0 / pred[i]).double().flatten().numpy(), (1.0 / target[i]).double().flatten().numpy(), 1
        )
        assert abs(a[i].item() - ref[0]) < 1e-4 and abs(b[i].item() - ref[1]) < 1e-4
    assert (a - scale).abs().max() < 0.02 and (b - shift).abs().max() < 0.01


def test_inverse_depth_affine_released_formulation() -> None:
    """lstsq of [x, 1] against y, x/y float32 safe inverses flattened (t, h, w); batch = loop."""
    pred, target, _, _ = _depth_pair(noise=0.01)
    pred[0, 1, 2, 3] = -1.0  # non-positive depth enters as inverse depth 0
    target[1, 0, 0, :] = 0.0
    a, b = fit_inverse_depth_affine(pred, target)
    a2, b2 = fit_inverse_depth_affine(pred, target)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    a32, b32 = fit_inverse_depth_affine(pred, target, solve_dtype=torch.float32)
    for i in range(2):
        x, y = safe_inverse(pred[i]).reshape(-1), safe_inverse(target[i]).reshape(-1)
        design = torch.stack([x, torch.ones_like(x)], dim=1)
        sol64 = torch.linalg.lstsq(design.double(), y[:, None].double()).solution[:, 0].float()
        torch.testing.assert_close(torch.stack([a[i], b[i]]), sol64, rtol=2e-7, atol=0)
        # Released arithmetic: float32 lstsq (MKL's float32 solve varies slightly run to run).
        sol32 = torch.linalg.lstsq(design, y[:, None]).solution[:, 0]
        torch.testing.assert_close(torch.stack([a32[i], b32[i]]), sol32, rtol=1e-4, atol=1e-5)
        a_i, b_i = fit_inverse_depth_affine(pred[i : i + 1], target[i : i + 1])
        torch.testing.assert_close(
            torch.stack([a_i[0], b_i[0]]), torch.stack([a[i], b[i]]), rtol=2e-7, atol=0
        )


def test_inverse_depth_affine_mask_ignores_garbage() -> None:
    pred, target, scale, shift = _depth_pair()
    mask = torch.ones_like(pred, dtype=torch.bool)
    mask[:, :, :4] = False
    corrupted = target.clone()
    corrupted[~mask] = 123.0
    a, b = fit_inverse_depth_affine(pred, corrupted, mask=mask)
    torch.testing.assert_close(a, scale, atol=1e-5, rtol=0)
    torch.testing.assert_close(b, shift, atol=1e-5, rtol=0)
    a_plain, _ = fit_inverse_depth_affine(pred, corrupted)
    assert (a_plain - scale).abs().max() > 0.05


@pytest.mark.parametrize("loss", ["huber", "cauchy"])
def test_inverse_depth_affine_robust_resists_outliers(loss: str) -> None:
    pred, target, scale, shift = _depth_pair(noise=1e-4)
    outlier = torch.rand(pred.shape, generator=torch.Generator().manual_seed(3)) < 0.2
    corrupted = torch.where(outlier, target * 4.0, target)
    a_plain, _ = fit_inverse_depth_affine(pred, corrupted)
    a, b = fit_inverse_depth_affine(pred, corrupted, robust=True, robust_loss=loss, num_iters=10)
    assert (a_plain - scale).abs().max() > 0.05
    assert (a - scale).abs().max() < 5e-3 and (b - shift).abs().max() < 2e-3
    a2, b2 = fit_inverse_depth_affine(pred, corrupted, robust=True, robust_loss=loss, num_iters=10)
    assert torch.equal(a, a2) and torch.equal(b, b2)


def test_inverse_depth_affine_degenerate_is_identity(caplog: pytest.LogCaptureFixture) -> None:
    pred, target, _, _ = _depth_pair()
    pred[1] = 0.0
    with caplog.at_level(logging.WARNING):
        a, b = fit_inverse_depth_affine(pred, target, robust=True)
    assert a[1].item() == 1.0 and b[1].item() == 0.0 and abs(a[0].item() - 1.7) < 1e-4
    assert "failed" in caplog.text


# ----------------------------------------------------------------------------- sim(3)


def _sim3_problem(batch: int = 2, n: int = 4000, outliers: float = 0.0, noise: float = 0.0, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    rot = torch.tensor(Rotation.random(batch, random_state=seed).as_matrix(), dtype=torch.float32)
    scale = torch.tensor([1.7, 0.4, 2.5][:batch])
    trans = torch.randn(batch, 3, generator=gen) * 2
    src = torch.randn(batch, n, 3, generator=gen) * torch.tensor([3.0, 2.0, 1.0]) + torch.tensor([0, 0, 5.0])
    dst = scale[:, None, None] * torch.einsum("bij,bnj->bni", rot, src) + trans[:, None]
    dst = dst + noise * torch.randn(dst.shape, generator=gen)
    is_out = torch.rand(batch, n, generator=gen) < outliers
    dst = torch.where(is_out[..., None], dst + 4.0 * torch.randn(dst.shape, generator=gen), dst)
    return src, dst, scale, rot, trans, is_out


def _rot_err_deg(r_est: torch.Tensor, r_true: torch.Tensor) -> torch.Tensor:
    cos = ((r_est.transpose(-1, -2) @ r_true).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))


@pytest.mark.parametrize("method", ["umeyama", "robust"])
def test_sim3_exact_recovery(method: str) -> None:
    src, dst, scale, rot, trans, _ = _sim3_problem()
    res = fit_sim3(src, dst, method=method)
    assert isinstance(res, Sim3Result) and res.success.all()
    torch.testing.assert_close(res.scale, scale, atol=1e-5, rtol=0)
    torch.testing.assert_close(res.rotation, rot, atol=1e-5, rtol=0)
    torch.testing.assert_close(res.translation, trans, atol=1e-4, rtol=0)
    torch.testing.assert_close(apply_sim3_to_points(src, res), dst, atol=1e-4, rtol=0)
    assert res.inliers.all()


def test_umeyama_matches_float64_svd_and_scipy() -> None:
    src, dst, _, _, _, _ = _sim3_problem(batch=1, n=500, noise=0.3)
    w = torch.rand(1, 500, generator=torch.Generator().manual_seed(5))
    s, r, t, ok = umeyama(src, dst, w)
    assert ok.all()
    x, y, wn = src[0].double().numpy(), dst[0].double().numpy(), w[0].double().numpy() / w.sum().item()
    xc, yc = x - wn @ x, y - wn @ y
    u, d, vt = np.linalg.svd((yc * wn[:, None]).T @ xc)
    corr = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    r_ref = u @ corr @ vt
    s_ref = np.trace(np.diag(d) @ corr) / (wn @ (xc**2).sum(1))
    np.testing.assert_allclose(r[0].numpy(), r_ref, atol=1e-5)
    np.testing.assert_allclose(s[0].item(), s_ref, rtol=1e-5)
    np.testing.assert_allclose(t[0].numpy(), wn @ y - s_ref * r_ref @ (wn @ x), atol=1e-4)
    r_scipy, _ = Rotation.align_vectors(yc, xc, weights=wn)
    np.testing.assert_allclose(r[0].numpy(), r_scipy.as_matrix(), atol=1e-5)


def test_sim3_robust_with_40_percent_outliers() -> None:
    src, dst, scale, rot, trans, is_out = _sim3_problem(n=3000, outliers=0.4, noise=1e-3)
    assert 0.35 < is_out.float().mean() < 0.45
    res = fit_sim3(src, dst, method="robust")
    plain = fit_sim3(src, dst, method="umeyama")
    assert res.success.all()
    assert (_rot_err_deg(res.rotation, rot) < 0.1).all()
    assert ((res.scale - scale).abs() < 1e-3).all()
    assert ((res.translation - trans).norm(dim=-1) < 1e-2).all()
    assert ((plain.scale - scale).abs() > 1e-2).any() or (_rot_err_deg(plain.rotation, rot) > 0.1).any()
    agree = (res.inliers == ~is_out).float().mean()
    assert agree > 0.97


def test_sim3_robust_deterministic_and_batch_equals_items() -> None:
    src, dst, *_ = _sim3_problem(n=2000, outliers=0.3, noise=1e-2)
    first, second = fit_sim3(src, dst), fit_sim3(src, dst)
    for field in ("scale", "rotation", "translation", "inliers", "success"):
        assert torch.equal(getattr(first, field), getattr(second, field)), field
    for i in range(2):
        item = fit_sim3(src[i : i + 1], dst[i : i + 1])
        torch.testing.assert_close(item.scale[0], first.scale[i], atol=1e-6, rtol=0)
        torch.testing.assert_close(item.rotation[0], first.rotation[i], atol=1e-6, rtol=0)
        torch.testing.assert_close(item.translation[0], first.translation[i], atol=1e-5, rtol=0)
        assert (item.inliers[0] != first.inliers[i]).sum() <= 2


def test_sim3_ignores_nan_points_and_uses_threshold() -> None:
    src, dst, scale, rot, _, _ = _sim3_problem(batch=1, n=1000)
    src[0, :100] = float("nan")
    res = fit_sim3(src, dst, threshold=torch.tensor([0.05]))
    assert res.success.all() and not res.inliers[0, :100].any() and res.inliers[0, 100:].all()
    assert abs(res.scale.item() - scale.item()) < 1e-4 and _rot_err_deg(res.rotation, rot).item() < 0.01


@pytest.mark.parametrize("method", ["umeyama", "robust"])
@pytest.mark.parametrize("case", ["identical", "all_nan", "two_points", "collinear", "empty_weights"])
def test_sim3_degenerate_never_raises(method: str, case: str, caplog: pytest.LogCaptureFixture) -> None:
    n = 2 if case == "two_points" else 50
    src = torch.randn(1, n, 3, generator=torch.Generator().manual_seed(2))
    weights = None
    if case == "identical":
        src = torch.full((1, n, 3), 1.5)
    elif case == "all_nan":
        src = torch.full((1, n, 3), float("nan"))
    elif case == "collinear":
        src = torch.linspace(0, 1, n)[None, :, None] * torch.tensor([1.0, 2.0, 3.0])
    elif case == "empty_weights":
        weights = torch.zeros(1, n)
    with caplog.at_level(logging.WARNING):
        res = fit_sim3(src, 2.0 * src + 1.0, method=method, weights=weights)
    assert not res.success.any() and "fit" in caplog.text
    for field in (res.scale, res.rotation, res.translation):
        assert torch.isfinite(field).all()
    assert res.inliers.shape == (1, n) and res.scale.shape == (1,)


def test_sim3_partial_failure_in_batch_keeps_good_item() -> None:
    src, dst, scale, _, _, _ = _sim3_problem(n=500)
    src[1] = float("nan")
    res = fit_sim3(src, dst)
    assert res.success.tolist() == [True, False]
    assert abs(res.scale[0].item() - scale[0].item()) < 1e-4 and res.scale[1].item() == 1.0


# ----------------------------------------------------------------------------- apply / point maps


def _poses(batch: int, frames: int, seed: int) -> torch.Tensor:
    rot = Rotation.random(batch * frames, random_state=seed).as_matrix()
    pose = torch.eye(4).repeat(batch, frames, 1, 1)
    pose[..., :3, :3] = torch.tensor(rot, dtype=torch.float32).reshape(batch, frames, 3, 3)
    pose[..., :3, 3] = torch.randn(batch, frames, 3, generator=torch.Generator().manual_seed(seed))
    return pose


def test_apply_sim3_to_poses_matches_released_rule() -> None:
    _, _, scale, rot, trans, _ = _sim3_problem()
    sim3 = Sim3Result(scale, rot, trans, torch.ones(2, 1, dtype=torch.bool), torch.ones(2, dtype=torch.bool))
    poses = _poses(2, 5, seed=4)
    out = apply_sim3_to_poses(poses, sim3)
    r_out = out[..., :3, :3]
    torch.testing.assert_close(
        r_out @ r_out.transpose(-1, -2), torch.eye(3).expand(2, 5, 3, 3), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(torch.linalg.det(r_out), torch.ones(2, 5), atol=1e-5, rtol=0)
    released = sim3.matrix()[:, None] @ poses  # S · pose, then the 3×3 block divided by s
    released[..., :3, :3] /= scale[:, None, None, None]
    torch.testing.assert_close(out, released, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        out[..., :3, 3], apply_sim3_to_points(poses[..., :3, 3], sim3), atol=1e-5, rtol=0
    )
    assert torch.equal(out[..., 3, :], poses[..., 3, :])


def test_overlap_point_maps_plane_and_sim3_consistency() -> None:
    batch, frames, height, width, fx, fy, cx, cy, depth_z = 2, 8, 6, 7, 50.0, 40.0, 3.0, 2.5, 2.0
    intr = torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]).expand(batch, frames, 3, 3)
    depth = torch.full((batch, frames, height, width), depth_z)
    pts = overlap_point_maps(depth, intr, torch.eye(4).expand(batch, frames, 4, 4), frame_step=3)
    assert pts.shape == (batch, 3 * height * width, 3)
    grid = pts.reshape(batch, 3, height, width, 3)
    torch.testing.assert_close(grid[..., 2], torch.full_like(grid[..., 2], depth_z))
    cols = (torch.arange(width) - cx) * depth_z / fx
    rows = (torch.arange(height) - cy) * depth_z / fy
    torch.testing.assert_close(grid[0, 1, 4, :, 0], cols)
    torch.testing.assert_close(grid[1, 2, :, 5, 1], rows)
    strided = overlap_point_maps(depth, intr, torch.eye(4).expand(batch, frames, 4, 4), pixel_stride=2)
    assert strided.shape == (batch, 3 * 3 * 4, 3)

    # A posed plane: frame t sees z=2 in its camera; world points lie on the posed plane.
    poses = _poses(batch, frames, seed=7)
    world = overlap_point_maps(depth, intr, poses, frame_step=3).reshape(batch, 3, -1, 3)
    normal, centre = poses[:, ::3, :3, 2], poses[:, ::3, :3, 3]
    plane_dist = torch.einsum("btnc,btc->btn", world - centre[:, :, None], normal)
    torch.testing.assert_close(plane_dist, torch.full_like(plane_dist, depth_z), atol=1e-5, rtol=0)

    # Aligning poses and depth by S maps the point maps by S.
    _, _, scale, rot, trans, _ = _sim3_problem()
    sim3 = Sim3Result(scale, rot, trans, torch.ones(2, 1, dtype=torch.bool), torch.ones(2, dtype=torch.bool))
    depth_var = depth * (1 + torch.rand(depth.shape, generator=torch.Generator().manual_seed(8)))
    before = overlap_point_maps(depth_var, intr, poses)
    after = overlap_point_maps(apply_sim3_to_depth(depth_var, sim3), intr, apply_sim3_to_poses(poses, sim3))
    torch.testing.assert_close(after, apply_sim3_to_points(before, sim3), atol=1e-4, rtol=0)


def test_pipeline_recovers_window_sim3_with_released_threshold() -> None:
    batch, frames, height, width = 1, 8, 24, 32
    gen = torch.Generator().manual_seed(11)
    intr = torch.tensor([[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1.0]]).expand(batch, frames, 3, 3)
    depth = 1.0 + 3.0 * torch.rand(batch, frames, height, width, generator=gen)
    poses = _poses(batch, frames, seed=12)
    _, _, scale, rot, trans, _ = _sim3_problem(batch=1, seed=3)
    truth = Sim3Result(scale, rot, trans, torch.ones(1, 1, dtype=torch.bool), torch.ones(1, dtype=torch.bool))
    depth_dst = apply_sim3_to_depth(depth, truth)
    depth_dst[:, :, :6] *= 1.5  # a disagreeing region (e.g. a moving object)
    src = overlap_point_maps(depth, intr, poses)
    dst = overlap_point_maps(depth_dst, intr, apply_sim3_to_poses(poses, truth))
    idx = subsample_indices(src.shape[1], fraction=0.3, seed=0)
    thr = sim3_threshold_from_depth(depth[:, ::3])
    res = fit_sim3(src[:, idx], dst[:, idx], threshold=thr)
    assert res.success.all() and abs(res.scale.item() - scale.item()) < 1e-4
    assert _rot_err_deg(res.rotation, rot).item() < 0.01


def test_subsample_indices_deterministic_without_global_rng() -> None:
    state = torch.random.get_rng_state()
    idx = subsample_indices(1000, fraction=0.1, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert idx.shape == (100,) and torch.equal(idx, idx.unique()) and idx.max() < 1000
    assert torch.equal(idx, subsample_indices(1000, num=100, seed=3))
    assert not torch.equal(idx, subsample_indices(1000, num=100, seed=4))
    stride = subsample_indices(10, num=4, mode="stride")
    assert stride.tolist() == [0, 2, 5, 7]
    assert subsample_indices(5, num=50).tolist() == [0, 1, 2, 3, 4]


def test_quantile_helpers_match_numpy() -> None:
    values = torch.rand(3, 101, generator=torch.Generator().manual_seed(9))
    mask = values > 0.2
    got = masked_quantile(values, q=0.98, mask_bn=mask)
    for i in range(3):
        assert math.isclose(got[i].item(), np.quantile(values[i][mask[i]].numpy(), 0.98), rel_tol=1e-6)
    depth = values.clone()
    depth[0, :5] = float("nan")
    depth[1, :5] = -1.0
    thr = sim3_threshold_from_depth(depth.reshape(3, 1, 101))
    for i in range(3):
        d = depth[i].numpy()
        assert math.isclose(
            thr[i].item(), 0.01 * np.quantile(d[np.isfinite(d) & (d > 0)], 0.98), rel_tol=1e-6
        )
    assert torch.isnan(masked_quantile(values, q=0.5, mask_bn=torch.zeros_like(mask))).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_alignment_runs_on_cuda_like_cpu() -> None:
    src, dst, scale, rot, _, _ = _sim3_problem(n=2000, outliers=0.3, noise=1e-3)
    cpu = fit_sim3(src, dst)
    gpu = fit_sim3(src.cuda(), dst.cuda())
    assert gpu.scale.device.type == "cuda" and gpu.success.all()
    torch.testing.assert_close(gpu.scale.cpu(), cpu.scale, atol=1e-4, rtol=0)
    assert (_rot_err_deg(gpu.rotation.cpu(), rot) < 0.1).all()
    pred, target, _, _ = _depth_pair(noise=0.01)
    a_cpu, b_cpu = fit_inverse_depth_affine(pred, target)
    a_gpu, b_gpu = fit_inverse_depth_affine(pred.cuda(), target.cuda())
    torch.testing.assert_close(a_gpu.cpu(), a_cpu, atol=1e-4, rtol=0)
    torch.testing.assert_close(b_gpu.cpu(), b_cpu, atol=1e-4, rtol=0)
