"""Analytic ray casting against the room box (from inside), spheres and boxes (slab test).

Rays are ``origin + s * direction`` with ``direction = R_c2w @ K^-1 @ (u, v, 1)``: its camera-frame
z component is 1, so the ray parameter ``s`` of a hit *is* the camera-frame depth z. Rigid
transforms preserve ``s``, so objects are intersected in their local frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from l4p.data.synthetic.scene import Scene
from l4p.data.synthetic.transforms import rotate, rotate_inv

NEAR = 1e-4  # metres; hits closer than this are ignored


@dataclass
class RayHit:
    """First surface hit by each ray; ``...`` are the rays' leading axes.

    Attributes:
        depth: (...) ray parameter = camera-frame z of the hit, metres.
        surface: (...) long surface index: 0 room, k >= 1 object slot k - 1.
        point_local: (...) x 3 hit point in the surface's local frame (world frame for the room).
        normal_world: (...) x 3 unit outward normal in world coordinates (inward for the room),
            or None when not requested.
    """

    depth: torch.Tensor
    surface: torch.Tensor
    point_local: torch.Tensor
    normal_world: torch.Tensor | None


def surface_poses(scene: Scene) -> tuple[torch.Tensor, torch.Tensor]:
    """Local-to-world poses of all M = K + 1 surfaces, the room (identity) first.

    Returns:
        rot_btm33 (B, T, M, 3, 3) and pos_btm3 (B, T, M, 3).
    """
    rot, pos = scene.obj_rot_btk33, scene.obj_pos_btk3
    eye = torch.eye(3, dtype=rot.dtype, device=rot.device).expand(*rot.shape[:2], 1, 3, 3)
    origin = torch.zeros(*pos.shape[:2], 1, 3, dtype=pos.dtype, device=pos.device)
    return torch.cat([eye, rot], dim=2), torch.cat([origin, pos], dim=2)


def _safe(d: torch.Tensor) -> torch.Tensor:
    """Replace exact zeros of a direction by a tiny positive value so that slab divisions stay finite."""
    return torch.where(d == 0, torch.full_like(d, 1e-20), d)


def cast_rays(
    *,
    origin: torch.Tensor,
    direction: torch.Tensor,
    obj_rot: torch.Tensor,
    obj_pos: torch.Tensor,
    obj_size: torch.Tensor,
    obj_kind: torch.Tensor,
    obj_active: torch.Tensor,
    room_min: torch.Tensor,
    room_max: torch.Tensor,
    with_normals: bool = True,
) -> RayHit:
    """Intersect rays with the scene and return the first hit of each.

    Shapes broadcast over the leading axes ``...`` (e.g. (B, T, P) pixels or (B, N) queries).

    Args:
        origin: (..., 3) ray origins (camera centres), world metres; must lie inside the room.
        direction: (..., 3) world ray directions whose camera-frame z component is 1.
        obj_rot: (..., K, 3, 3) object local-to-world rotations.
        obj_pos: (..., K, 3) object centres, world.
        obj_size: (..., K, 3) sphere radius (x component used) or box half-extents.
        obj_kind: (..., K) long, 0 sphere, 1 box.
        obj_active: (..., K) bool; inactive objects are never hit.
        room_min: (..., 3) room minimum corner, world.
        room_max: (..., 3) room maximum corner, world.
        with_normals: Also compute world normals (needed for shading only).

    Returns:
        The ``RayHit`` of each ray (the room always catches a ray).
    """
    if obj_kind.shape[-1] == 0:  # no object slots: add one inactive dummy so gathers stay valid
        obj_rot = torch.eye(3, dtype=origin.dtype, device=origin.device).expand(*obj_rot.shape[:-3], 1, 3, 3)
        obj_pos = torch.zeros(*obj_pos.shape[:-2], 1, 3, dtype=origin.dtype, device=origin.device)
        obj_size = torch.ones(*obj_size.shape[:-2], 1, 3, dtype=origin.dtype, device=origin.device)
        obj_kind = torch.zeros(*obj_kind.shape[:-1], 1, dtype=torch.long, device=origin.device)
        obj_active = torch.zeros(*obj_active.shape[:-1], 1, dtype=torch.bool, device=origin.device)
    o_local = rotate_inv(obj_rot, origin[..., None, :] - obj_pos)  # (..., K, 3)
    d_local = rotate_inv(obj_rot, direction[..., None, :])
    d_local = d_local.expand(*torch.broadcast_shapes(d_local.shape, o_local.shape))

    radius = obj_size[..., 0]
    a = (d_local * d_local).sum(-1)
    b = (o_local * d_local).sum(-1)
    disc = b * b - a * ((o_local * o_local).sum(-1) - radius * radius)
    s_sphere = (-b - disc.clamp(min=0.0).sqrt()) / a
    hit_sphere = (disc >= 0) & (s_sphere > NEAR)

    inv = 1.0 / _safe(d_local)
    t1, t2 = (-obj_size - o_local) * inv, (obj_size - o_local) * inv
    s_box = torch.minimum(t1, t2).amax(-1)
    hit_box = (torch.maximum(t1, t2).amin(-1) >= s_box) & (s_box > NEAR)

    is_sphere = obj_kind == 0
    s_obj = torch.where(is_sphere, s_sphere, s_box)
    hit_obj = torch.where(is_sphere, hit_sphere, hit_box) & obj_active
    s_obj = torch.where(hit_obj, s_obj, torch.full_like(s_obj, float("inf")))

    d_room = _safe(direction)
    exit_axes = torch.maximum((room_min - origin) / d_room, (room_max - origin) / d_room)  # (..., 3)
    s_room, room_axis = exit_axes.min(-1)

    depth, surface = torch.cat([s_room[..., None], s_obj], dim=-1).min(-1)
    lead, num = surface.shape, o_local.shape[-2] + 1
    o_all = torch.cat([origin[..., None, :].expand(*o_local.shape[:-2], 1, 3), o_local], dim=-2)
    d_all = torch.cat([direction[..., None, :].expand(*d_local.shape[:-2], 1, 3), d_local], dim=-2)
    o_all, d_all = o_all.expand(*lead, num, 3), d_all.expand(*lead, num, 3)
    index = surface[..., None, None].expand(*lead, 1, 3)
    point = (o_all.gather(-2, index) + depth[..., None, None] * d_all.gather(-2, index))[..., 0, :]

    normal = (
        _normals(point, surface, room_axis, direction, obj_rot, obj_size, obj_kind) if with_normals else None
    )
    return RayHit(depth=depth, surface=surface, point_local=point, normal_world=normal)


def _normals(
    point: torch.Tensor,
    surface: torch.Tensor,
    room_axis: torch.Tensor,
    direction: torch.Tensor,
    obj_rot: torch.Tensor,
    obj_size: torch.Tensor,
    obj_kind: torch.Tensor,
) -> torch.Tensor:
    """World normals at the hits (see ``cast_rays``)."""
    shape = surface.shape
    k = (surface - 1).clamp(min=0)
    size = obj_size.expand(*shape, *obj_size.shape[-2:]).gather(-2, k[..., None, None].expand(*shape, 1, 3))[
        ..., 0, :
    ]
    kind = obj_kind.expand(*shape, obj_kind.shape[-1]).gather(-1, k[..., None])[..., 0]
    rot = obj_rot.expand(*shape, *obj_rot.shape[-3:])
    rot = rot.gather(-3, k[..., None, None, None].expand(*shape, 1, 3, 3))[..., 0, :, :]

    sphere_n = point / size[..., :1]
    box_axis = (point.abs() / size).argmax(-1, keepdim=True)
    box_n = torch.zeros_like(point).scatter(-1, box_axis, point.gather(-1, box_axis).sign())
    local_n = torch.where((kind == 0)[..., None], sphere_n, box_n)
    obj_n = rotate(rot, local_n)

    room_dir = direction.expand_as(point).gather(-1, room_axis[..., None])
    room_n = torch.zeros_like(point).scatter(-1, room_axis[..., None], -room_dir.sign())
    normal = torch.where((surface == 0)[..., None], room_n, obj_n)
    return normal / normal.norm(dim=-1, keepdim=True).clamp(min=1e-12)
