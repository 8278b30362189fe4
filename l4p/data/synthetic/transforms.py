"""Small rigid-motion helpers for the synthetic renderer (rotations, smooth paths, sampling)."""

from __future__ import annotations

import math

import torch


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula.

    Args:
        rotvec: (..., 3) axis * angle, radians.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    angle = rotvec.norm(dim=-1, keepdim=True)
    axis = rotvec / angle.clamp(min=1e-12)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*rotvec.shape[:-1], 3, 3)
    sin = torch.sin(angle)[..., None]
    cos = torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(skew)
    return eye + sin * skew + (1.0 - cos) * (skew @ skew)


def euler_yxz(yaw: float, pitch: float, roll: float) -> torch.Tensor:
    """Camera-to-world rotation R_y(yaw) @ R_x(pitch) @ R_z(roll), angles in radians; (3, 3)."""
    y = axis_angle_to_matrix(torch.tensor([0.0, yaw, 0.0]))
    x = axis_angle_to_matrix(torch.tensor([pitch, 0.0, 0.0]))
    z = axis_angle_to_matrix(torch.tensor([0.0, 0.0, roll]))
    return y @ x @ z


def uniform(lo: float, hi: float, size: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Uniform samples in [lo, hi) of the given size (CPU, float32)."""
    return lo + (hi - lo) * torch.rand(size, generator=gen)


def unit_ball(size: tuple[int, ...], gen: torch.Generator, *, min_radius: float = 0.0) -> torch.Tensor:
    """Uniform samples in the 3D unit ball with radius >= ``min_radius``; (*size, 3)."""
    direction = torch.randn((*size, 3), generator=gen)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    u = torch.rand(size, generator=gen)
    radius = (min_radius**3 + (1.0 - min_radius**3) * u) ** (1.0 / 3.0)
    return direction * radius[..., None]


def random_rotation(size: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Rotations uniform on SO(3) (normalised Gaussian quaternions); (*size, 3, 3)."""
    q = torch.randn((*size, 4), generator=gen)
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True).clamp(min=1e-12)).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*size, 3, 3)


def bezier_path(num_frames: int, magnitude: float, gen: torch.Generator, *, count: int = 1) -> torch.Tensor:
    """Smooth random 3-vector paths starting at zero, with norm <= ``magnitude`` at every frame.

    A cubic Bezier curve with control points 0, P1, P2, P3 (P1, P2 in the unit ball, P3 with norm in
    [0.5, 1] so the path really goes somewhere), scaled by ``magnitude``. Bernstein weights sum to
    one, so the bound holds.

    Args:
        num_frames: T samples at tau = t / (T - 1).
        magnitude: Scale of the path (metres or radians).
        gen: Random generator.
        count: Number of independent paths.

    Returns:
        (count, T, 3) path values.
    """
    p12 = unit_ball((count, 2), gen)
    p3 = unit_ball((count, 1), gen, min_radius=0.5)
    ctrl = torch.cat([p12, p3], dim=1) * magnitude  # (count, 3, 3)
    tau = torch.linspace(0.0, 1.0, num_frames)
    basis = torch.stack([3 * (1 - tau) ** 2 * tau, 3 * (1 - tau) * tau**2, tau**3], dim=-1)  # (T, 3)
    return torch.einsum("tj,cjd->ctd", basis, ctrl)


def deg2rad(deg: float) -> float:
    """Degrees to radians."""
    return deg * math.pi / 180.0


def rotate(rot: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """Batched ``rot @ vec`` with broadcasting: (..., 3, 3), (..., 3) -> (..., 3) (einsum is fast here)."""
    return torch.einsum("...ij,...j->...i", rot, vec)


def rotate_inv(rot: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """Batched ``rot^T @ vec`` with broadcasting: (..., 3, 3), (..., 3) -> (..., 3)."""
    return torch.einsum("...ji,...j->...i", rot, vec)
