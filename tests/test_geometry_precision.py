"""Geometry edge cases that silently changed results: the released z-threshold, and autocast dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_path

import l4p
from l4p.geometry.intrinsics import intrinsics_from_rays, pixel_grid
from l4p.geometry.precision import full_precision
from l4p.geometry.rays import rays_to_cameras

TASKS = ("depth", "flow", "motion", "camera", "tracks")


def _opencv_k(directions_n3: np.ndarray, grid_n3: np.ndarray) -> np.ndarray:
    """The released recipe written out with OpenCV alone, on the rays it is given."""
    import cv2

    ref = grid_n3 / np.linalg.norm(grid_n3, axis=-1, keepdims=True)
    hom, _ = cv2.findHomography(
        ref[:, :2] / ref[:, 2:], directions_n3[:, :2] / directions_n3[:, 2:], cv2.RANSAC, 0.2
    )
    if np.linalg.det(hom) < 0:
        hom = -hom
    _, k, *_ = cv2.RQDecomp3x3(np.linalg.inv(hom))
    return k / k[2, 2]


@pytest.mark.parametrize("index", [0, 37, 200])
def test_released_intrinsics_drop_rays_by_raw_z(index: int) -> None:
    """A short ray with raw |z| = 6.6e-5 (unit |z| far above 1e-4) is left out, as the release does."""
    with np.load(shared_path("reference/parity/single.npz")) as case:
        dirs = torch.from_numpy(case["debug_camray_rays_b6thw_w0"][:, :3, 0]).clone()
    _, _, h, w = dirs.shape
    row, col = divmod(index, w)
    ray = dirs[0, :, row, col]
    dirs[0, :, row, col] = ray * (6.6e-5 / ray[2].abs())
    assert (dirs[0, :, row, col] / dirs[0, :, row, col].norm()).abs()[2] > 1e-3  # unit z is not tiny

    k = intrinsics_from_rays(dirs, method="released")[0].double().numpy()

    grid = pixel_grid(h, w).double().numpy()
    rays = dirs[0].reshape(3, -1).T.double().numpy()
    keep = np.ones(h * w, dtype=bool)
    keep[index] = False
    k_release = _opencv_k(rays[keep], grid[keep])
    k_kept = _opencv_k(rays, grid)
    assert np.abs(k_kept - k_release).max() > 1.0  # keeping the ray changes RANSAC's answer
    np.testing.assert_allclose(k, k_release, atol=1e-4, rtol=1e-5)


def test_full_precision_leaves_fp32_untouched_and_upcasts_low_precision() -> None:
    seen: list[torch.dtype] = []

    @full_precision
    def probe(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.dtype)
        return torch.linalg.det(x @ x.transpose(-1, -2))

    x = torch.randn(2, 3, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = probe(x.bfloat16())
        assert out.dtype == torch.float32
        assert torch.is_autocast_enabled("cpu")  # restored afterwards
    assert seen == [torch.float32]
    assert torch.equal(probe(x), torch.linalg.det(x @ x.transpose(-1, -2)))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_rays_to_cameras_under_autocast_matches_fp32(dtype: torch.dtype) -> None:
    with np.load(shared_path("reference/parity/single.npz")) as case:
        rays = torch.from_numpy(case["debug_camray_rays_b6thw_w0"])
    ref = rays_to_cameras(rays)
    with torch.autocast("cpu", dtype=dtype):
        got = rays_to_cameras(rays)
    assert got.camera_to_world.dtype == torch.float32
    torch.testing.assert_close(got.camera_to_world, ref.camera_to_world)
    torch.testing.assert_close(got.intrinsics_grid, ref.intrinsics_grid)


def _predict_all_tasks(dtype: torch.dtype | None, device: str, frames: int = 20) -> l4p.Prediction:
    torch.manual_seed(0)
    model = l4p.load_model("l4p_test", dtype=dtype, device=device)
    video = torch.rand(frames, 3, 48, 64, generator=torch.Generator().manual_seed(1))
    return model.predict(video, tasks=TASKS, grid_size=3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_every_task_runs_under_low_precision_on_cpu(dtype: torch.dtype) -> None:
    """bf16/fp16 autocast used to crash whenever the camera task ran (LU has no bf16 kernel).

    bf16 runs two windows (alignment and the camera chain too); fp16 convolutions have no fast
    CPU kernel, so fp16 runs one window to keep the suite short.
    """
    pred = _predict_all_tasks(dtype, "cpu", frames=20 if dtype == torch.bfloat16 else 16)
    for name in ("depth", "motion", "extrinsics", "intrinsics", "visibility_prob", "track_depth"):
        value = getattr(pred, name)
        assert value is not None and value.dtype == torch.float32, name
        assert torch.isfinite(value).all(), name
    assert torch.isfinite(pred.flow[:, 1:]).all()
    assert torch.isfinite(pred.tracks).all()
    rot = pred.extrinsics[..., :3, :3].double()
    eye = torch.eye(3, dtype=torch.float64).expand_as(rot)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), eye, atol=1e-4, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_every_task_runs_under_low_precision_on_cuda(dtype: torch.dtype) -> None:
    pred = _predict_all_tasks(dtype, "cuda")
    assert torch.isfinite(pred.extrinsics).all() and torch.isfinite(pred.intrinsics).all()
