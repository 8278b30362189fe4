"""Render scenes to ``SyntheticClip``: images and exact dense ground truth, batched in torch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange

from l4p.data.synthetic.camera import pixel_rays, project, world_to_camera
from l4p.data.synthetic.clip import SyntheticClip
from l4p.data.synthetic.config import SceneConfig
from l4p.data.synthetic.raycast import NEAR, RayHit, cast_rays, surface_poses
from l4p.data.synthetic.scene import Scene, sample_scene
from l4p.data.synthetic.textures import lambert, surface_color
from l4p.data.synthetic.tracks import render_tracks
from l4p.data.synthetic.transforms import rotate


def _pixel_grid(height: int, width: int, device: torch.device) -> torch.Tensor:
    """(H * W, 2) pixel centres (x, y), row-major."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2)


def _shade(scene: Scene, config: SceneConfig, hit: RayHit) -> torch.Tensor:
    """Colour (B, T, P, 3) of the hit points: local-frame texture times optional Lambert shading."""
    b = torch.arange(hit.surface.shape[0], device=hit.surface.device)[:, None, None]
    s = hit.surface
    albedo = surface_color(
        point=hit.point_local,
        kind=scene.tex_kind_bm[b, s],
        colors=scene.tex_colors_bm23[b, s],
        freq=scene.tex_freq_bm[b, s],
        offset=scene.tex_offset_bm3[b, s],
        direction=scene.tex_dir_bm3[b, s],
        seed=scene.tex_seed_bm[b, s],
        sharpness=config.texture_sharpness,
        jitter=config.color_jitter,
    )
    if hit.normal_world is None:
        return albedo
    return albedo * lambert(hit.normal_world, scene.light_b3[:, None, None], ambient=config.ambient)


def _flow_to(
    scene: Scene, hit: RayHit, xy: torch.Tensor, step: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move every pixel's surface point to frame t + step and project it there.

    Returns:
        flow (B, T, P, 2) pixels, depth (B, T, P) metres in camera t + step, valid (B, T, P) bool;
        flow and depth are 0 where invalid.
    """
    B, T = scene.intrinsics_bt33.shape[:2]
    dev = xy.device
    src = torch.arange(T, device=dev)
    exists = ((src + step) >= 0) & ((src + step) < T)
    dst = (src + step).clamp(0, T - 1)
    rot_all, pos_all = surface_poses(scene)
    b, t = torch.arange(B, device=dev)[:, None, None], dst[None, :, None]
    world = rotate(rot_all[b, t, hit.surface], hit.point_local) + pos_all[b, t, hit.surface]
    cam = world_to_camera(scene.extrinsics_bt44[:, dst, None], world)
    z = cam[..., 2]
    valid = exists[None, :, None] & (z > NEAR)
    flow = project(scene.intrinsics_bt33[:, dst, None], cam) - xy
    return flow * valid[..., None], z * valid, valid


def _moving_surfaces(scene: Scene) -> torch.Tensor:
    """(B, T, M) bool: surface pose differs from the previous or the next frame (room never moves)."""
    rot, pos = scene.obj_rot_btk33, scene.obj_pos_btk3
    step = ((rot[:, 1:] - rot[:, :-1]).abs().flatten(-2).amax(-1) > 0) | (
        (pos[:, 1:] - pos[:, :-1]).abs().amax(-1) > 0
    )  # (B, T - 1, K)
    moving = torch.zeros(rot.shape[:3], dtype=torch.bool, device=rot.device)
    moving[:, :-1] |= step
    moving[:, 1:] |= step
    room = torch.zeros(*moving.shape[:2], 1, dtype=torch.bool, device=moving.device)
    return torch.cat([room, moving], dim=2)


def _render_pixels(scene: Scene, config: SceneConfig, xy: torch.Tensor) -> dict[str, torch.Tensor]:
    """Dense ground truth at pixel positions ``xy`` (P, 2): a dict of (B, T, P, ...) tensors."""
    origin, direction = pixel_rays(
        intrinsics=scene.intrinsics_bt33[:, :, None], extrinsics=scene.extrinsics_bt44[:, :, None], xy=xy
    )
    hit = cast_rays(
        origin=origin,
        direction=direction,
        obj_rot=scene.obj_rot_btk33[:, :, None],
        obj_pos=scene.obj_pos_btk3[:, :, None],
        obj_size=scene.obj_size_bk3[:, None, None],
        obj_kind=scene.obj_kind_bk[:, None, None],
        obj_active=scene.obj_active_bk[:, None, None],
        room_min=scene.room_min_b3[:, None, None],
        room_max=scene.room_max_b3[:, None, None],
        with_normals=config.shading,
    )
    flow_fwd, depth_fwd, valid_fwd = _flow_to(scene, hit, xy, +1)
    flow_bwd, depth_bwd, valid_bwd = _flow_to(scene, hit, xy, -1)
    B, T = hit.surface.shape[:2]
    b = torch.arange(B, device=xy.device)[:, None, None]
    t = torch.arange(T, device=xy.device)[None, :, None]
    return {
        "rgb": _shade(scene, config, hit),
        "depth": hit.depth,
        "flow_fwd": flow_fwd,
        "flow_bwd": flow_bwd,
        "valid_fwd": valid_fwd,
        "valid_bwd": valid_bwd,
        "depth_fwd": depth_fwd,
        "depth_bwd": depth_bwd,
        "motion": _moving_surfaces(scene)[b, t, hit.surface],
        "instance": hit.surface,
    }


def render_scene(scene: Scene, config: SceneConfig, *, pixels_per_chunk: int | None = None) -> SyntheticClip:
    """Render a batched ``Scene`` with all ground truth (see ``SyntheticClip``).

    Args:
        scene: B scenes drawn with ``config`` (on the device to render on).
        config: The configuration the scenes were drawn with.
        pixels_per_chunk: Render this many pixels (of every frame) at a time to bound memory and
            stay in cache; None picks 4096 on the CPU and the whole image elsewhere. The result
            does not depend on it.

    Returns:
        The rendered ``SyntheticClip`` on the scene's device.
    """
    H, W = config.height, config.width
    dev = scene.intrinsics_bt33.device
    if pixels_per_chunk is None:
        pixels_per_chunk = 4096 if dev.type == "cpu" else H * W
    xy = _pixel_grid(H, W, dev)
    chunks = [_render_pixels(scene, config, part) for part in xy.split(pixels_per_chunk)]
    dense = {key: torch.cat([c[key] for c in chunks], dim=2) for key in chunks[0]}

    def maps(x: torch.Tensor) -> torch.Tensor:
        return rearrange(x, "b t (h w) -> b t h w", h=H, w=W)

    def vectors(x: torch.Tensor) -> torch.Tensor:
        return rearrange(x, "b t (h w) c -> b t c h w", h=H, w=W)

    return SyntheticClip(
        rgb_btchw=vectors(dense["rgb"]),
        depth_bthw=maps(dense["depth"]),
        flow_fwd_bt2hw=vectors(dense["flow_fwd"]),
        flow_bwd_bt2hw=vectors(dense["flow_bwd"]),
        flow_fwd_valid_bthw=maps(dense["valid_fwd"]),
        flow_bwd_valid_bthw=maps(dense["valid_bwd"]),
        depth_fwd_bthw=maps(dense["depth_fwd"]),
        depth_bwd_bthw=maps(dense["depth_bwd"]),
        motion_bthw=maps(dense["motion"]),
        instance_bthw=maps(dense["instance"]),
        intrinsics_bt33=scene.intrinsics_bt33,
        extrinsics_bt44=scene.extrinsics_bt44,
        seed_b=scene.seed_b,
        **render_tracks(scene, config),
    )


@torch.no_grad()
def render_batch(
    config: SceneConfig,
    seeds: Sequence[int],
    *,
    device: torch.device | str = "cpu",
    pixels_per_chunk: int | None = None,
) -> SyntheticClip:
    """Draw and render one clip per seed, batched on ``device``.

    Scenes are drawn on the CPU from each seed independently, so a clip does not depend on the
    device or on the other seeds of the batch.

    Args:
        config: Scene configuration shared by the batch.
        seeds: One integer seed per clip.
        device: Where to render (e.g. ``"cpu"``, ``"cuda"``).
        pixels_per_chunk: See ``render_scene`` (memory/speed trade-off only).

    Returns:
        A ``SyntheticClip`` with B = len(seeds).
    """
    if len(seeds) == 0:
        raise ValueError("seeds must not be empty")
    scene = Scene.cat([sample_scene(config, seed) for seed in seeds]).to(device)
    return render_scene(scene, config, pixels_per_chunk=pixels_per_chunk)
