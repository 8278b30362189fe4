"""Random scene parameters: cameras, room, rigid objects and their trajectories, textures.

Everything random is drawn here, on the CPU, from a ``torch.Generator`` seeded by the clip's seed,
so a clip is the same on any device and in any batch. Rendering (``render.py``) is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from l4p.data.synthetic.config import OBJECT_KINDS, TEXTURE_KINDS, SceneConfig
from l4p.data.synthetic.transforms import (
    axis_angle_to_matrix,
    bezier_path,
    deg2rad,
    euler_yxz,
    random_rotation,
    uniform,
    unit_ball,
)

_CLEARANCE_M = 0.3  # minimum gap between the camera centre and an object's bounding sphere


@dataclass
class Scene:
    """Batched scene description; B clips, T frames, K object slots, M = K + 1 surfaces.

    Surface 0 is the room (an axis-aligned box seen from inside, static in the world); surface
    k >= 1 is object slot k - 1. Object poses map local to world: X_w = R @ X_local + pos.

    Attributes:
        intrinsics_bt33: (B, T, 3, 3) pinhole intrinsics, pixels, integer = pixel centre.
        extrinsics_bt44: (B, T, 4, 4) world-to-camera, OpenCV axes (x right, y down, z forward).
        room_min_b3: (B, 3) room box minimum corner, world metres.
        room_max_b3: (B, 3) room box maximum corner, world metres.
        obj_rot_btk33: (B, T, K, 3, 3) object local-to-world rotations.
        obj_pos_btk3: (B, T, K, 3) object centres, world metres.
        obj_size_bk3: (B, K, 3) sphere radius (repeated) or box half-extents, metres.
        obj_kind_bk: (B, K) long index into ``OBJECT_KINDS`` (0 sphere, 1 box).
        obj_active_bk: (B, K) bool, False for padding slots.
        tex_kind_bm: (B, M) long index into ``TEXTURE_KINDS``.
        tex_colors_bm23: (B, M, 2, 3) the two pattern colours in [0, 1].
        tex_freq_bm: (B, M) spatial frequency, cycles per metre (local coordinates).
        tex_offset_bm3: (B, M, 3) offset of the texture coordinates.
        tex_dir_bm3: (B, M, 3) unit direction of stripes.
        tex_seed_bm: (B, M) long hash seed of the noise.
        light_b3: (B, 3) unit world direction towards the light.
        track_t_bc: (B, C) long candidate query frames (C = 16 * num_tracks).
        track_xy_bc2: (B, C, 2) candidate query pixels (x, y), integer = pixel centre.
        track_key_bc: (B, C) Gumbel keys for weighted selection of candidates.
        seed_b: (B,) long clip seeds.
    """

    intrinsics_bt33: torch.Tensor
    extrinsics_bt44: torch.Tensor
    room_min_b3: torch.Tensor
    room_max_b3: torch.Tensor
    obj_rot_btk33: torch.Tensor
    obj_pos_btk3: torch.Tensor
    obj_size_bk3: torch.Tensor
    obj_kind_bk: torch.Tensor
    obj_active_bk: torch.Tensor
    tex_kind_bm: torch.Tensor
    tex_colors_bm23: torch.Tensor
    tex_freq_bm: torch.Tensor
    tex_offset_bm3: torch.Tensor
    tex_dir_bm3: torch.Tensor
    tex_seed_bm: torch.Tensor
    light_b3: torch.Tensor
    track_t_bc: torch.Tensor
    track_xy_bc2: torch.Tensor
    track_key_bc: torch.Tensor
    seed_b: torch.Tensor

    def to(self, device: torch.device | str) -> Scene:
        """Return a copy with every tensor on ``device``."""
        return Scene(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @staticmethod
    def cat(scenes: list[Scene]) -> Scene:
        """Concatenate scenes along the batch axis (same T, K and number of tracks)."""
        return Scene(**{f.name: torch.cat([getattr(s, f.name) for s in scenes]) for f in fields(Scene)})


def _sample_camera(config: SceneConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Return intrinsics (T, 3, 3), camera-to-world poses (T, 4, 4) and the horizontal half-FOV."""
    T, H, W = config.num_frames, config.height, config.width
    half_fov = 0.5 * deg2rad(float(uniform(*config.fov_deg, (1,), gen)))
    fx = 0.5 * W / math.tan(half_fov)
    fy = fx * (1.0 + float(uniform(-config.aspect_jitter, config.aspect_jitter, (1,), gen)))
    pj = uniform(-config.principal_jitter, config.principal_jitter, (2,), gen)
    cx, cy = 0.5 * (W - 1) + float(pj[0]) * W, 0.5 * (H - 1) + float(pj[1]) * H
    K = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    yaw, pitch, roll = (
        uniform(-math.pi, math.pi, (1,), gen),
        uniform(-0.17, 0.17, (1,), gen),
        uniform(-0.09, 0.09, (1,), gen),
    )
    rot0 = euler_yxz(float(yaw), float(pitch), float(roll))
    trans_path = bezier_path(T, config.camera_motion, gen)[0]  # (T, 3) in camera-0 axes
    rot_path = bezier_path(T, deg2rad(config.camera_rotation_deg), gen)[0]
    if config.static_camera:
        trans_path, rot_path = torch.zeros_like(trans_path), torch.zeros_like(rot_path)
    c2w = torch.eye(4).repeat(T, 1, 1)
    c2w[:, :3, :3] = rot0 @ axis_angle_to_matrix(rot_path)
    c2w[:, :3, 3] = trans_path @ rot0.T
    return K.expand(T, 3, 3).clone(), c2w, half_fov


def _sample_objects(
    config: SceneConfig,
    gen: torch.Generator,
    cam_c2w: torch.Tensor,
    half_fov: float,
    ceiling: torch.Tensor,
    floor: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Sample object shapes and trajectories for all K = num_objects[1] slots.

    Args:
        config: Scene configuration.
        gen: Random generator.
        cam_c2w: (T, 4, 4) camera-to-world poses.
        half_fov: Horizontal half field of view, radians.
        ceiling: () world y of the ceiling (the room's minimum y).
        floor: () world y of the floor (the room's maximum y).
    """
    T, K = config.num_frames, config.num_objects[1]
    count = int(torch.randint(config.num_objects[0], K + 1, (1,), generator=gen))
    kinds = torch.tensor([OBJECT_KINDS.index(k) for k in config.object_kinds])
    kind = kinds[torch.randint(len(kinds), (K,), generator=gen)]
    radius = uniform(*config.object_size, (K,), gen)  # bounding radius
    box_half = uniform(0.4, 1.0, (K, 3), gen)
    box_half = radius[:, None] * box_half / box_half.norm(dim=-1, keepdim=True)
    size = torch.where((kind == 0)[:, None], radius[:, None].expand(K, 3), box_half)

    depth = uniform(*config.object_distance, (K,), gen)
    tan_h = math.tan(half_fov)
    tan_v = tan_h * config.height / config.width
    local = torch.stack(
        [depth * tan_h * uniform(-0.7, 0.7, (K,), gen), depth * tan_v * uniform(-0.6, 0.6, (K,), gen), depth],
        dim=-1,
    )
    start = local @ cam_c2w[0, :3, :3].T + cam_c2w[0, :3, 3]
    # keep centres between ceiling and floor (objects may still touch them)
    start[:, 1] = torch.minimum(torch.maximum(start[:, 1], ceiling + 0.5 * radius), floor - 0.5 * radius)
    moving = torch.rand(K, generator=gen) < config.moving_object_prob
    rotating = moving & (torch.rand(K, generator=gen) < config.rotating_object_prob)
    trans = bezier_path(T, config.object_motion, gen, count=K) * moving[:, None, None]
    spin = bezier_path(T, deg2rad(config.object_rotation_deg), gen, count=K) * rotating[:, None, None]
    rot = random_rotation((K,), gen)[:, None] @ axis_angle_to_matrix(spin)  # (K, T, 3, 3)
    pos = start[:, None] + trans  # (K, T, 3)

    centres = cam_c2w[None, :, :3, 3]  # (1, T, 3)
    deficit = (radius + _CLEARANCE_M - (pos - centres).norm(dim=-1).amin(dim=1)).clamp(min=0.0)  # (K,)
    away = start - centres[0, 0]
    pos = (
        pos
        + (1.05 * deficit + 0.01 * (deficit > 0))[:, None, None]
        * (away / away.norm(dim=-1, keepdim=True))[:, None]
    )
    clear = (pos - centres).norm(dim=-1).amin(dim=1) > radius + _CLEARANCE_M
    active = (torch.arange(K) < count) & clear
    return {
        "obj_rot_btk33": rot.transpose(0, 1)[None],
        "obj_pos_btk3": pos.transpose(0, 1)[None],
        "obj_size_bk3": size[None],
        "obj_kind_bk": kind[None],
        "obj_active_bk": active[None],
    }


def _sample_textures(config: SceneConfig, gen: torch.Generator, num_surfaces: int) -> dict[str, torch.Tensor]:
    """Sample texture parameters for the room (surface 0) and every object slot."""
    M = num_surfaces
    kinds = torch.tensor([TEXTURE_KINDS.index(k) for k in config.textures])
    kind = kinds[torch.randint(len(kinds), (M,), generator=gen)]
    first = uniform(0.05, 0.95, (M, 3), gen)
    other = uniform(0.05, 0.95, (M, 3), gen)
    second = (0.4 * other + 0.6 * (1.0 - first)).clamp(0.0, 1.0)  # push towards contrast
    freq = torch.cat([uniform(0.5, 1.2, (1,), gen), uniform(1.5, 3.5, (M - 1,), gen)]) * config.texture_scale
    direction = unit_ball((M,), gen, min_radius=1.0)
    return {
        "tex_kind_bm": kind[None],
        "tex_colors_bm23": torch.stack([first, second], dim=1)[None],
        "tex_freq_bm": freq[None],
        "tex_offset_bm3": uniform(0.0, 64.0, (M, 3), gen)[None],
        "tex_dir_bm3": direction[None],
        "tex_seed_bm": torch.randint(0, 2**20, (M,), generator=gen)[None],
    }


def _rigid_inverse(pose: torch.Tensor) -> torch.Tensor:
    """Invert (..., 4, 4) rigid transforms exactly: [R | t]^-1 = [R^T | -R^T t]."""
    out = torch.zeros_like(pose)
    rot_t = pose[..., :3, :3].transpose(-1, -2)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t @ pose[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def sample_scene(config: SceneConfig, seed: int) -> Scene:
    """Draw one random scene (batch of one, on the CPU) deterministically from ``seed``.

    Args:
        config: Scene configuration.
        seed: Any integer; equal seeds give identical scenes.

    Returns:
        A ``Scene`` with B = 1.
    """
    gen = torch.Generator().manual_seed(int(seed))
    T, H, W, N = config.num_frames, config.height, config.width, config.num_tracks
    intrinsics, c2w, half_fov = _sample_camera(config, gen)
    room_half = torch.cat(
        [uniform(8.0, 12.0, (1,), gen), uniform(1.0, 2.5, (1,), gen), uniform(8.0, 12.0, (1,), gen)]
    )
    floor = uniform(1.2, 1.8, (1,), gen)
    # the camera must stay inside the room, and the objects' paths should too (horizontally)
    reach = config.object_distance[1] + config.object_motion + config.object_size[1] + config.camera_motion
    room_half = torch.maximum(room_half, torch.tensor([reach + 1.0, config.camera_motion + 0.5, reach + 1.0]))
    floor = floor.clamp(min=config.camera_motion + 0.5)
    room_min = -room_half
    room_max = torch.cat([room_half[:1], floor, room_half[2:]])
    objects = _sample_objects(config, gen, c2w, half_fov, room_min[1], room_max[1])
    textures = _sample_textures(config, gen, config.num_objects[1] + 1)
    light = unit_ball((1,), gen, min_radius=1.0)[0] * torch.tensor([1.0, 0.0, 1.0]) + torch.tensor(
        [0.0, -1.5, 0.0]
    )

    C = 16 * N
    if config.query_frames == "first":
        track_t = torch.zeros(C, dtype=torch.long)
    else:
        track_t = torch.randint(0, T, (C,), generator=gen)
    track_xy = torch.rand((C, 2), generator=gen) * torch.tensor([W - 1.0, H - 1.0])
    uniform_01 = torch.rand(C, generator=gen).clamp(1e-12, 1.0 - 1e-7)
    return Scene(
        intrinsics_bt33=intrinsics[None],
        extrinsics_bt44=_rigid_inverse(c2w)[None],
        room_min_b3=room_min[None],
        room_max_b3=room_max[None],
        light_b3=(light / light.norm())[None],
        track_t_bc=track_t[None],
        track_xy_bc2=track_xy[None],
        track_key_bc=(-torch.log(-torch.log(uniform_01)))[None],
        seed_b=torch.tensor([int(seed)]),
        **objects,
        **textures,
    )
