"""Ground-truth point tracks: sample points on visible surfaces, follow them rigidly, test visibility."""

from __future__ import annotations

import torch

from l4p.data.synthetic.camera import pixel_rays, project, world_to_camera
from l4p.data.synthetic.config import SceneConfig
from l4p.data.synthetic.raycast import RayHit, cast_rays, surface_poses
from l4p.data.synthetic.scene import Scene
from l4p.data.synthetic.transforms import rotate

OCCLUSION_RTOL = 1e-4  # a point is occluded if the first hit along its ray is closer by this fraction
MIN_DEPTH = 1e-3  # metres; points closer than this (or behind) are not visible


def cast_scene(scene: Scene, *, origin: torch.Tensor, direction: torch.Tensor, frame: torch.Tensor) -> RayHit:
    """Cast rays of shape (B, L, 3) in the scene as it is at frames ``frame`` (B, L) long."""
    b = torch.arange(frame.shape[0], device=frame.device)[:, None]
    return cast_rays(
        origin=origin,
        direction=direction,
        obj_rot=scene.obj_rot_btk33[b, frame],
        obj_pos=scene.obj_pos_btk3[b, frame],
        obj_size=scene.obj_size_bk3[:, None],
        obj_kind=scene.obj_kind_bk[:, None],
        obj_active=scene.obj_active_bk[:, None],
        room_min=scene.room_min_b3[:, None],
        room_max=scene.room_max_b3[:, None],
        with_normals=False,
    )


def _select_queries(scene: Scene, config: SceneConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pick N of the C candidate queries, favouring objects (Gumbel top-k weighted sampling).

    Returns:
        queries_bn3 (t, x, y), surface_bn (long) and point_local_bn3 of the chosen queries.
    """
    B, C = scene.track_t_bc.shape
    b = torch.arange(B, device=scene.track_t_bc.device)[:, None]
    frame = scene.track_t_bc
    origin, direction = pixel_rays(
        intrinsics=scene.intrinsics_bt33[b, frame],
        extrinsics=scene.extrinsics_bt44[b, frame],
        xy=scene.track_xy_bc2,
    )
    hit = cast_scene(scene, origin=origin, direction=direction, frame=frame)
    on_object = hit.surface > 0
    n_obj = on_object.sum(1, keepdim=True).clamp(min=1)
    n_bg = (~on_object).sum(1, keepdim=True).clamp(min=1)
    frac = config.track_object_fraction
    weight = torch.where(on_object, frac / n_obj, (1.0 - frac) / n_bg)
    chosen = (weight.log() + scene.track_key_bc).topk(config.num_tracks, dim=1).indices  # (B, N)
    queries = torch.cat(
        [frame.gather(1, chosen)[..., None].to(origin.dtype), scene.track_xy_bc2[b, chosen]], -1
    )
    return queries, hit.surface.gather(1, chosen), hit.point_local[b, chosen]


def render_tracks(scene: Scene, config: SceneConfig) -> dict[str, torch.Tensor]:
    """Ground-truth tracks of N points sampled on visible surfaces of their query frames.

    Args:
        scene: Batched scene (B clips).
        config: Its configuration (image size, number of tracks, object fraction).

    Returns:
        Dict with ``queries_bn3``, ``tracks_btn2``, ``tracks3d_cam_btn3``, ``tracks3d_world_btn3``
        and ``visibility_btn`` (layouts as in ``SyntheticClip``).
    """
    queries, surface, point = _select_queries(scene, config)
    B, T = scene.intrinsics_bt33.shape[:2]
    dev = point.device
    b = torch.arange(B, device=dev)[:, None, None]
    t = torch.arange(T, device=dev)[None, :, None]
    rot_all, pos_all = surface_poses(scene)
    rot = rot_all[b, t, surface[:, None]]  # (B, T, N, 3, 3)
    world = rotate(rot, point[:, None]) + pos_all[b, t, surface[:, None]]
    cam = world_to_camera(scene.extrinsics_bt44[:, :, None], world)
    uv = project(scene.intrinsics_bt33[:, :, None], cam)

    origin, direction = pixel_rays(
        intrinsics=scene.intrinsics_bt33[:, :, None], extrinsics=scene.extrinsics_bt44[:, :, None], xy=uv
    )
    frames = t.expand(B, T, 1).flatten(1)
    hit = cast_scene(
        scene,
        origin=origin.expand_as(direction).flatten(1, 2),
        direction=direction.flatten(1, 2),
        frame=frames.repeat_interleave(uv.shape[2], dim=1),
    )
    first_depth = hit.depth.reshape(uv.shape[:3])
    z = cam[..., 2]
    inside = (uv[..., 0] >= -0.5) & (uv[..., 0] <= config.width - 0.5)
    inside &= (uv[..., 1] >= -0.5) & (uv[..., 1] <= config.height - 0.5)
    visible = (z > MIN_DEPTH) & inside & (first_depth >= z * (1.0 - OCCLUSION_RTOL))
    return {
        "queries_bn3": queries,
        "tracks_btn2": uv,
        "tracks3d_cam_btn3": cam,
        "tracks3d_world_btn3": world,
        "visibility_btn": visible,
    }
