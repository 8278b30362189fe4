"""Our hand-written geometry against kornia as an independent implementation.

Where kornia computes the same quantity (homography DLT, RQ / K-R split, pinhole projection,
depth unprojection, Rodrigues), both must agree with each other and with the ground truth the
data were made from. See docs/design_notes.md for why we keep our versions.
"""

from __future__ import annotations

import math
import os

import pytest
import torch

from l4p.data.synthetic.camera import project
from l4p.data.synthetic.transforms import axis_angle_to_matrix, random_rotation
from l4p.geometry.align import overlap_point_maps
from l4p.geometry.homography import fit_homography_dlt, rq3x3
from l4p.geometry.intrinsics import intrinsics_from_rays, pixel_grid


@pytest.fixture(scope="module")
def kornia():
    try:
        import kornia
    except ImportError:
        msg = "kornia is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return kornia


def _intrinsics(b: int, gen: torch.Generator) -> torch.Tensor:
    f = 12 + 6 * torch.rand(b, generator=gen)
    k = torch.zeros(b, 3, 3)
    k[:, 0, 0], k[:, 1, 1] = f, f * (0.9 + 0.2 * torch.rand(b, generator=gen))
    k[:, 0, 2], k[:, 1, 2] = 7.5 + torch.rand(b, generator=gen), 7.5 + torch.rand(b, generator=gen)
    k[:, 2, 2] = 1
    return k


def _rotations(b: int, gen: torch.Generator, max_angle: float = 0.4) -> torch.Tensor:
    axis = torch.nn.functional.normalize(torch.randn(b, 3, generator=gen), dim=-1)
    return axis_angle_to_matrix(axis * max_angle * torch.rand(b, 1, generator=gen))


def _unit_h(h: torch.Tensor) -> torch.Tensor:
    return h / h[:, 2:3, 2:3]


@pytest.mark.parametrize("noise", [0.0, 1e-3])
def test_homography_dlt_matches_kornia(kornia, noise):
    """Exact points: both recover H; noisy points: both land within the noise of H and of each other."""
    from kornia.geometry.homography import find_homography_dlt

    gen = torch.Generator().manual_seed(0)
    b, n = 6, 200
    h_true = _unit_h(_intrinsics(b, gen) @ _rotations(b, gen) @ torch.linalg.inv(_intrinsics(b, gen)))
    src = torch.rand(b, n, 2, generator=gen) * 16
    dst = kornia.geometry.transform_points(h_true.double(), src.double()).float()
    dst = dst + noise * torch.randn(dst.shape, generator=gen)
    ones = torch.ones(b, n, 1)
    ours = _unit_h(fit_homography_dlt(torch.cat([src, ones], -1), torch.cat([dst, ones], -1)))
    theirs = _unit_h(find_homography_dlt(src, dst, solver="svd"))
    atol = 1e-4 if noise == 0 else 20 * noise
    torch.testing.assert_close(ours, h_true, atol=atol, rtol=0)
    torch.testing.assert_close(theirs, h_true, atol=atol, rtol=0)
    torch.testing.assert_close(ours, theirs, atol=atol, rtol=0)


def test_weighted_homography_ignores_zero_weight_outliers_like_kornia(kornia):
    from kornia.geometry.homography import find_homography_dlt

    gen = torch.Generator().manual_seed(1)
    b, n = 3, 120
    h_true = _unit_h(_intrinsics(b, gen) @ _rotations(b, gen))
    src = torch.rand(b, n, 2, generator=gen) * 16
    dst = kornia.geometry.transform_points(h_true, src)
    dst[:, :20] += 5 * torch.randn(b, 20, 2, generator=gen)  # gross outliers, weight 0
    weights = torch.ones(b, n)
    weights[:, :20] = 0
    ones = torch.ones(b, n, 1)
    ours = _unit_h(
        fit_homography_dlt(torch.cat([src, ones], -1), torch.cat([dst, ones], -1), weights_bn=weights)
    )
    theirs = _unit_h(find_homography_dlt(src, dst, weights=weights, solver="svd"))
    torch.testing.assert_close(ours, h_true, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(theirs, h_true, atol=1e-4, rtol=1e-4)


def test_rq_matches_kornia_krt(kornia):
    """M = K R: our RQ and kornia's K/R split of the projection [M | 0] agree (and are K, R)."""
    from kornia.geometry.epipolar import KRt_from_projection

    gen = torch.Generator().manual_seed(2)
    k, r = _intrinsics(8, gen), random_rotation((8,), gen)
    m = 3.0 * k @ r  # any positive scale
    k_ours, q_ours = rq3x3(m)
    k_theirs, r_theirs, t = KRt_from_projection(torch.cat([m, torch.zeros(8, 3, 1)], dim=-1))
    torch.testing.assert_close(k_ours / k_ours[:, 2:, 2:], k, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(k_theirs / k_theirs[:, 2:, 2:], k, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(q_ours, r, atol=1e-5, rtol=0)
    torch.testing.assert_close(r_theirs, r, atol=1e-5, rtol=0)
    assert t.abs().max() < 1e-5


def test_intrinsics_from_rays_matches_kornia_pipeline(kornia):
    """K from a frame of rays: ours (homogeneous DLT + RQ) vs kornia (DLT on z = 1, then KRt)."""
    from kornia.geometry.epipolar import KRt_from_projection
    from kornia.geometry.homography import find_homography_dlt

    gen = torch.Generator().manual_seed(3)
    b, h, w = 4, 16, 16
    k, r = _intrinsics(b, gen), _rotations(b, gen)  # world-to-camera r; directions in the world frame
    grid = pixel_grid(h, w)
    dirs = torch.einsum("bji,bjk,nk->bni", r, torch.linalg.inv(k), grid)  # R^T K^-1 (i, j, 1)
    ours = intrinsics_from_rays(dirs.transpose(1, 2).reshape(b, 3, h, w), method="dlt")
    hom = find_homography_dlt(
        dirs[..., :2] / dirs[..., 2:], grid[None, :, :2].expand(b, -1, -1), solver="svd"
    )
    k_theirs, r_theirs, _ = KRt_from_projection(torch.cat([hom, torch.zeros(b, 3, 1)], dim=-1))
    torch.testing.assert_close(ours, k, atol=1e-3, rtol=0)
    torch.testing.assert_close(k_theirs / k_theirs[:, 2:, 2:], k, atol=1e-3, rtol=0)
    torch.testing.assert_close(r_theirs, r, atol=1e-4, rtol=0)


def test_projection_matches_kornia(kornia):
    from kornia.geometry.camera import project_points

    gen = torch.Generator().manual_seed(4)
    k = _intrinsics(5, gen)[:, None].expand(5, 50, 3, 3)
    points = torch.randn(5, 50, 3, generator=gen)
    points[..., 2] = points[..., 2].abs() + 0.5
    torch.testing.assert_close(project(k, points), project_points(points, k), atol=1e-5, rtol=1e-6)


def test_unprojection_matches_kornia_depth_to_3d(kornia):
    """World point maps from depth, K and pose: `overlap_point_maps` vs kornia's depth_to_3d_v2."""
    from kornia.geometry.depth import depth_to_3d_v2

    gen = torch.Generator().manual_seed(5)
    b, t, h, w = 2, 4, 12, 20
    depth = 1 + torch.rand(b, t, h, w, generator=gen)
    k = _intrinsics(b * t, gen).reshape(b, t, 3, 3)
    pose = torch.eye(4).repeat(b, t, 1, 1)
    pose[..., :3, :3] = _rotations(b * t, gen, math.pi).reshape(b, t, 3, 3)
    pose[..., :3, 3] = torch.randn(b, t, 3, generator=gen)
    ours = overlap_point_maps(depth, k, pose, frame_step=1)
    cam = depth_to_3d_v2(depth.reshape(-1, h, w), k.reshape(-1, 3, 3))  # integer pixel = centre, like ours
    world = kornia.geometry.transform_points(pose.reshape(-1, 4, 4), cam.reshape(b * t, h * w, 3))
    torch.testing.assert_close(ours, world.reshape(b, t * h * w, 3), atol=1e-5, rtol=1e-5)


def test_rodrigues_matches_kornia(kornia):
    from kornia.geometry.conversions import axis_angle_to_rotation_matrix

    gen = torch.Generator().manual_seed(6)
    rotvec = torch.randn(100, 3, generator=gen) * 1.5
    rotvec[0] = 0  # the identity
    torch.testing.assert_close(
        axis_angle_to_matrix(rotvec), axis_angle_to_rotation_matrix(rotvec), atol=1e-6, rtol=0
    )
