"""Pinhole camera helpers: pixel rays and projection (OpenCV axes, integer = pixel centre)."""

from __future__ import annotations

import torch

from l4p.data.synthetic.transforms import rotate, rotate_inv


def pixel_rays(
    *, intrinsics: torch.Tensor, extrinsics: torch.Tensor, xy: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """World rays through pixel positions.

    Args:
        intrinsics: (..., 3, 3) pixels.
        extrinsics: (..., 4, 4) world-to-camera.
        xy: (..., 2) pixel positions (x, y), broadcastable with the cameras' leading axes.

    Returns:
        origin (..., 3): camera centres, world; direction (..., 3): world directions whose
        camera-frame z component is 1, so a point at ray parameter s has depth z = s.
    """
    rot, trans = extrinsics[..., :3, :3], extrinsics[..., :3, 3]
    origin = -rotate_inv(rot, trans)
    homog = torch.cat([xy, torch.ones_like(xy[..., :1])], dim=-1)
    d_cam = rotate(torch.linalg.inv(intrinsics), homog)
    d_cam = d_cam / d_cam[..., 2:3]  # exact z = 1 despite rounding in the inverse
    direction = rotate_inv(rot, d_cam)
    return origin, direction


def world_to_camera(extrinsics: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply (..., 4, 4) world-to-camera transforms to (..., 3) world points."""
    return rotate(extrinsics[..., :3, :3], points) + extrinsics[..., :3, 3]


def project(intrinsics: torch.Tensor, points_cam: torch.Tensor) -> torch.Tensor:
    """Project (..., 3) camera-frame points to (..., 2) pixels; depth clamped to >= 1e-6 (finite output)."""
    z = points_cam[..., 2:3].clamp(min=1e-6)
    uvw = rotate(intrinsics, points_cam / z)
    return uvw[..., :2]
