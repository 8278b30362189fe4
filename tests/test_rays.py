"""Rays <-> cameras: parity with the released conversion, and exact synthetic round trips."""

from __future__ import annotations

import json
import math
from functools import cache

import numpy as np
import pytest
import torch
from conftest import shared_path
from einops import rearrange

from l4p.geometry.homography import fit_homography_dlt, rq3x3
from l4p.geometry.intrinsics import grid_to_pixels, intrinsics_from_rays, pixels_to_grid
from l4p.geometry.rays import cameras_to_rays, rays_to_cameras


@cache
def _atol(key: str) -> float:
    config = json.loads(shared_path("reference/parity/config.json").read_text())
    return float(config["tolerances"]["per_key"][key]["atol"])


def _case(name: str) -> dict[str, np.ndarray]:
    with np.load(shared_path(f"reference/parity/{name}.npz")) as data:
        return {k: data[k] for k in data.files}


def _mats(flat_b16t: np.ndarray) -> torch.Tensor:
    return rearrange(torch.from_numpy(flat_b16t), "b (r c) t -> b t r c", r=4)


def test_single_window_matches_released() -> None:
    case = _case("single")
    cams = rays_to_cameras(torch.from_numpy(case["debug_camray_rays_b6thw_w0"]), intrinsics_method="released")
    poses = _mats(case["output_traj3d_est_b16t"])
    assert (cams.camera_to_world - poses).abs().max().item() <= _atol("traj3d_est_b16t")
    k_ref = _mats(case["output_traj3d_intrinsics_est_b16t"])
    k_224 = grid_to_pixels(cams.intrinsics_grid, 14)
    assert (k_224[:, None] - k_ref[..., :3, :3]).abs().max().item() <= _atol("traj3d_intrinsics_est_b16t")
    eye = torch.eye(4).expand_as(poses)
    assert torch.allclose(cams.world_to_camera @ cams.camera_to_world, eye, atol=1e-5)


def test_two_windows_match_released() -> None:
    case = _case("camray_windowed")
    poses = _mats(case["output_traj3d_est_b16t"])
    tol = _atol("traj3d_est_b16t")
    # Window 0 (frames 0-15) estimates K; window 1 (frames 8-23) overwrites frames 8-15.
    first = rays_to_cameras(
        torch.from_numpy(case["debug_camray_rays_b6thw_w0"]), intrinsics_method="released"
    )
    assert (first.camera_to_world[:, :8] - poses[:, :8]).abs().max().item() <= tol
    # Window 1 uses the input intrinsics (224 px) converted to the 16-grid, per frame.
    k_in = rearrange(torch.from_numpy(case["input_intrinsics_b44t"]), "b r c t -> b t r c")[:, 8:24, :3, :3]
    second = rays_to_cameras(
        torch.from_numpy(case["debug_camray_rays_b6thw_w1"]), intrinsics_grid_b33=pixels_to_grid(k_in, 14)
    )
    assert (second.camera_to_world - poses[:, 8:24]).abs().max().item() <= tol


def test_pixel_grid_conversion() -> None:
    k_224 = torch.tensor([[125.9, 0.3, 111.6], [0.0, 224.0, 111.7], [0.0, 0.0, 1.0]])
    # The released normalise(224) -> denormalise(16) path, written out.
    fx, fy = k_224[0, 0] / 224 * 16, k_224[1, 1] / 224 * 16
    cx, cy = (k_224[0, 2] + 0.5) / 224 * 16 - 0.5, (k_224[1, 2] + 0.5) / 224 * 16 - 0.5
    k_16 = pixels_to_grid(k_224, 14)
    assert torch.allclose(k_16[[0, 1, 0, 1], [0, 1, 2, 2]], torch.stack([fx, fy, cx, cy]), atol=1e-5)
    assert torch.allclose(grid_to_pixels(k_16, 14), k_224, atol=1e-4)
    k_rect = grid_to_pixels(k_16, (10, 20))
    assert torch.allclose(k_rect[0, 2], (k_16[0, 2] + 0.5) * 20 - 0.5)
    assert torch.allclose(k_rect[1, 1], k_16[1, 1] * 10)


def _rotation(axis: list[float], angle: float) -> torch.Tensor:
    a = torch.tensor(axis) / torch.tensor(axis).norm()
    k = torch.tensor([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return torch.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def _synthetic(b: int = 2, t: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Known cameras: per clip K (grid units, 12x16 grid), first camera near identity."""
    k = torch.tensor([[[15.5, 0.0, 7.8], [0.0, 13.2, 5.4], [0.0, 0.0, 1.0]],
                      [[11.0, 0.0, 7.1], [0.0, 11.4, 6.2], [0.0, 0.0, 1.0]]])[:b]  # fmt: skip
    poses = torch.eye(4).repeat(b, t, 1, 1)
    gen = torch.Generator().manual_seed(3)
    for i in range(b):
        for j in range(t):
            axis = torch.randn(3, generator=gen).tolist()
            poses[i, j, :3, :3] = _rotation(axis, 0.1 if j == 0 else 0.3 + 0.4 * j)
            poses[i, j, :3, 3] = torch.randn(3, generator=gen)
    return k, poses


@pytest.mark.parametrize("method", ["released", "dlt"])
def test_round_trip_recovers_cameras(method: str) -> None:
    k, poses = _synthetic()
    rays = cameras_to_rays(k, poses, (12, 16))
    assert rays.shape == (2, 6, 3, 12, 16)
    cams = rays_to_cameras(rays, intrinsics_method=method)  # type: ignore[arg-type]
    assert torch.allclose(cams.intrinsics_grid, k, atol=1e-4)
    assert torch.allclose(cams.camera_to_world, poses, atol=1e-4)
    assert torch.allclose(torch.linalg.inv(poses), cams.world_to_camera, atol=1e-4)


def test_given_intrinsics_and_scaled_rays() -> None:
    k, poses = _synthetic()
    rays = cameras_to_rays(k, poses, (12, 16))
    # Scaling a ray's direction and moment together keeps the same line.
    scale = torch.rand(2, 1, 3, 12, 16, generator=torch.Generator().manual_seed(1)) + 0.5
    cams = rays_to_cameras(rays * scale, intrinsics_grid_b33=k)
    assert torch.allclose(cams.camera_to_world[..., :3, :3], poses[..., :3, :3], atol=1e-4)
    assert cams.intrinsics_grid is not None and torch.equal(cams.intrinsics_grid, k)


def test_batched_equals_per_item() -> None:
    k, poses = _synthetic()
    rays = cameras_to_rays(k, poses, (12, 16)) + 0.01 * torch.randn(2, 6, 3, 12, 16)
    batched = rays_to_cameras(rays, intrinsics_method="dlt")
    for i in range(2):
        single = rays_to_cameras(rays[i : i + 1], intrinsics_method="dlt")
        assert torch.allclose(single.camera_to_world, batched.camera_to_world[i : i + 1], atol=1e-5)
        assert torch.allclose(single.intrinsics_grid, batched.intrinsics_grid[i : i + 1], atol=1e-5)


def test_robust_dlt_resists_outliers() -> None:
    k, poses = _synthetic(b=1, t=1)
    rays = cameras_to_rays(k, poses, (16, 16))
    bad = torch.rand(16, 16, generator=torch.Generator().manual_seed(5)) < 0.1
    noisy = rays.clone()
    noisy[:, :3, 0][:, :, bad] += 0.5 * torch.randn(1, 3, int(bad.sum()))
    plain = intrinsics_from_rays(noisy[:, :3, 0], method="dlt")
    robust = intrinsics_from_rays(noisy[:, :3, 0], method="dlt", robust_iterations=10)
    weighted = intrinsics_from_rays(noisy[:, :3, 0], method="dlt", weights_bhw=(~bad).float()[None])
    err_plain = (plain - k).abs().max().item()
    assert (robust - k).abs().max().item() < 0.1 * err_plain
    assert torch.allclose(weighted, k, atol=1e-3)


def test_rq_and_homography_primitives() -> None:
    m = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(2))
    upper, ortho = rq3x3(m)
    assert torch.allclose(upper @ ortho, m, atol=1e-5)
    assert torch.allclose(upper.tril(-1), torch.zeros_like(upper))
    assert (torch.diagonal(upper, dim1=-2, dim2=-1) >= 0).all()
    assert torch.allclose(ortho @ ortho.transpose(-1, -2), torch.eye(3).expand(5, 3, 3), atol=1e-5)
    src = torch.randn(5, 20, 3, generator=torch.Generator().manual_seed(4))
    dst = torch.einsum("bij,bnj->bni", m, src) * (torch.rand(5, 20, 1) + 0.5)
    h = fit_homography_dlt(src, dst)
    h = h * torch.sign((h * m).sum(dim=(-1, -2)))[:, None, None]
    assert torch.allclose(h, m / m.flatten(1).norm(dim=-1)[:, None, None], atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dlt_path_on_gpu() -> None:
    k, poses = _synthetic()
    rays = cameras_to_rays(k, poses, (12, 16)).to("cuda")
    cams = rays_to_cameras(rays, intrinsics_method="dlt")
    assert cams.camera_to_world.is_cuda
    assert torch.allclose(cams.camera_to_world.cpu(), poses, atol=1e-4)
