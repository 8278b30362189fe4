"""Plücker camera rays <-> cameras (intrinsics, rotation, centre), batched over clips and frames.

A ray map `(B, 6, T, h, w)` holds, per frame and patch-grid point `(i, j)` (column, row;
integer = patch centre), a direction `d` (channels 0-2, world frame, any length) and a
moment `m = c x d` (channels 3-5) of the line through the camera centre `c`.
Axes follow OpenCV: x right, y down, z forward. Intrinsics are in grid units (see
`l4p.geometry.intrinsics`). Everything is computed in float32 on the input's device.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import einsum, rearrange

from l4p.geometry.intrinsics import IntrinsicsMethod, intrinsics_from_rays, pixel_grid
from l4p.geometry.precision import full_precision


class CamerasFromRays(NamedTuple):
    """Cameras recovered from a ray map.

    Attributes:
        world_to_camera: `(B, T, 4, 4)` extrinsics `[R | -R c]`.
        camera_to_world: `(B, T, 4, 4)` poses `[R^T | c]`.
        intrinsics_grid: `(B, 3, 3)` K in grid units (one per clip).
    """

    world_to_camera: torch.Tensor
    camera_to_world: torch.Tensor
    intrinsics_grid: torch.Tensor


@full_precision
def line_points(directions: torch.Tensor, moments: torch.Tensor) -> torch.Tensor:
    """`p = d x (m / |d|)` per ray, `(..., 3)` (the released formula).

    For unit `d` this is the point of the line nearest the origin. For other lengths it is
    `|d|` times that point, i.e. still on the line's plane through the origin but not on the
    line; the released camera-centre estimate uses it as is, and so do we (parity).
    """
    return torch.linalg.cross(directions, moments / directions.norm(dim=-1, keepdim=True), dim=-1)


@full_precision
def nearest_point_to_lines(directions: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Least-squares point nearest to a set of lines, via batched normal equations.

    Solves `(sum_i P_i) c = sum_i P_i p_i` with `P_i = I - u_i u_i^T`, `u_i = d_i / |d_i|`.

    Args:
        directions: `(..., N, 3)` line directions.
        points: `(..., N, 3)` one point per line.

    Returns:
        `(..., 3)`.
    """
    unit = directions / directions.norm(dim=-1, keepdim=True)
    eye = torch.eye(3, dtype=unit.dtype, device=unit.device)
    proj = eye - einsum(unit, unit, "... n i, ... n j -> ... n i j")
    lhs = proj.sum(dim=-3)
    rhs = einsum(proj, points, "... n i j, ... n j -> ... i")
    return torch.linalg.solve(lhs, rhs)


@full_precision
def kabsch_rotation(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Rotation `R` (det +1) minimising `sum_i |target_i - R source_i|^2`, batched.

    Args:
        source: `(..., N, 3)`.
        target: `(..., N, 3)` (its row lengths act as weights).

    Returns:
        `(..., 3, 3)`.
    """
    cov = einsum(target, source, "... n i, ... n j -> ... i j")
    u, _, vh = torch.linalg.svd(cov)
    sign = torch.sign(torch.linalg.det(u @ vh))
    ones = torch.ones_like(sign)
    return u @ torch.diag_embed(torch.stack([ones, ones, sign], dim=-1)) @ vh


def _camera_rays(k_grid: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Unit rays `K^-1 (i, j, 1)` in the camera frame, `(..., h*w, 3)` for K `(..., 3, 3)`."""
    grid = pixel_grid(h, w, device=k_grid.device)
    rays = einsum(torch.linalg.inv(k_grid), grid, "... i j, n j -> ... n i")
    return rays / rays.norm(dim=-1, keepdim=True)


def _homogeneous(rot: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
    """Stack `(..., 3, 3)` and `(..., 3)` into `(..., 4, 4)` rigid transforms."""
    top = torch.cat([rot, trans[..., None]], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


@full_precision
def rays_to_cameras(
    rays_b6thw: torch.Tensor,
    *,
    intrinsics_grid_b33: torch.Tensor | None = None,
    intrinsics_method: IntrinsicsMethod = "dlt",
    intrinsics_frame: int = 0,
) -> CamerasFromRays:
    """Recover per-frame cameras from a Plücker ray map.

    1. Camera centre per frame: nearest point to its rays (`line_points`, normal equations).
    2. Intrinsics (unless given): from the rays of frame `intrinsics_frame`
       (`intrinsics_from_rays`), shared by all frames.
    3. Rotation per frame: Kabsch between the unit camera rays `K^-1 (i, j, 1)` and the raw
       predicted directions (longer predictions weigh more, as released).
    With `intrinsics_method="released"` and defaults this is the released conversion
    (its homography step runs on CPU with OpenCV); `"dlt"` stays on the device.

    Args:
        rays_b6thw: `(B, 6, T, h, w)` ray map (any float dtype; computed in float32).
        intrinsics_grid_b33: Known intrinsics in grid units, `(B, 3, 3)` or per frame
            `(B, T, 3, 3)`; see `l4p.geometry.intrinsics.pixels_to_grid`.
        intrinsics_method: How to estimate K when not given: `"dlt"` or `"released"`.
        intrinsics_frame: Frame whose rays give K.

    Returns:
        `CamerasFromRays` (world = the frame the rays are expressed in, usually the first
        camera of the clip). `intrinsics_grid` is the estimate, or the given K.
    """
    rays = rays_b6thw.float()
    _, _, _, h, w = rays.shape
    directions = rearrange(rays[:, :3], "b c t h w -> b t (h w) c")
    moments = rearrange(rays[:, 3:], "b c t h w -> b t (h w) c")
    if intrinsics_grid_b33 is None:
        k_grid = intrinsics_from_rays(rays[:, :3, intrinsics_frame], method=intrinsics_method)
    else:
        k_grid = intrinsics_grid_b33.to(device=rays.device, dtype=torch.float32)
    k_frames = (k_grid if k_grid.ndim == 4 else k_grid[:, None]).expand(*directions.shape[:2], 3, 3)
    centres = nearest_point_to_lines(directions, line_points(directions, moments))
    cam_to_world_rot = kabsch_rotation(_camera_rays(k_frames, h, w), directions)
    world_to_cam_rot = cam_to_world_rot.transpose(-1, -2)
    world_to_camera = _homogeneous(
        world_to_cam_rot, -einsum(world_to_cam_rot, centres, "b t i j, b t j -> b t i")
    )
    camera_to_world = _homogeneous(cam_to_world_rot, centres)
    return CamerasFromRays(world_to_camera, camera_to_world, k_grid)


@full_precision
def cameras_to_rays(
    intrinsics_grid: torch.Tensor, camera_to_world_bt44: torch.Tensor, grid_hw: tuple[int, int]
) -> torch.Tensor:
    """Plücker rays of known cameras on the patch grid (the camera-ray head's training target).

    Directions are unit `R K^-1 (i, j, 1)`, moments `c x d`. The released model was trained
    with rays expressed relative to the first camera of each window: pass
    `inverse(pose_0) @ pose_t` for that.

    Args:
        intrinsics_grid: `(B, 3, 3)` or `(B, T, 3, 3)` K in grid units.
        camera_to_world_bt44: `(B, T, 4, 4)` poses.
        grid_hw: `(h, w)` of the ray map.

    Returns:
        `(B, 6, T, h, w)` float32.
    """
    h, w = grid_hw
    pose = camera_to_world_bt44.float()
    k = intrinsics_grid.to(device=pose.device, dtype=torch.float32)
    k_frames = (k if k.ndim == 4 else k[:, None]).expand(*pose.shape[:2], 3, 3)
    cam_rays = _camera_rays(k_frames, h, w)
    # float() keeps the rays in float32 under autocast (einsum would return bf16/fp16).
    directions = einsum(pose[..., :3, :3], cam_rays, "b t i j, b t n j -> b t n i").float()
    centres = pose[..., None, :3, 3].expand_as(directions)
    moments = torch.linalg.cross(centres, directions, dim=-1)
    rays = torch.cat([directions, moments], dim=-1)
    return rearrange(rays, "b t (h w) c -> b c t h w", h=h, w=w)
