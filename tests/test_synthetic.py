"""Self-consistency of the procedural renderer `l4p.data.synthetic` (exact 4D ground truth)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch.utils.data import DataLoader

from l4p.data.synthetic import (
    SceneConfig,
    SyntheticClip,
    SyntheticDataset,
    collate_clips,
    render_batch,
    render_scene,
    sample_scene,
)

H = W = 64
CONFIG = SceneConfig(
    height=H,
    width=W,
    num_frames=10,
    num_objects=(3, 5),
    num_tracks=96,
    shading=False,
    texture_scale=0.3,  # textures scale with metres; at 64 px keep them smooth for bilinear sampling
    camera_rotation_deg=25.0,
)
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def clip() -> SyntheticClip:
    return render_batch(CONFIG, SEEDS)


def _sample(img_nchw: torch.Tensor, xy: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample (N, C, H, W) at pixel positions xy (N, ..., 2) (integer = pixel centre) -> (N, C, ...)."""
    h, w = img_nchw.shape[-2:]
    grid = torch.stack([2 * xy[..., 0] / (w - 1) - 1, 2 * xy[..., 1] / (h - 1) - 1], dim=-1)
    flat = grid.reshape(grid.shape[0], -1, 1, 2)
    out = F.grid_sample(img_nchw, flat, mode=mode, align_corners=True, padding_mode="border")
    return out.reshape(*img_nchw.shape[:2], *xy.shape[1:-1])


def _pixel_xy(h: int, w: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    return torch.stack([xs, ys], dim=-1)  # (h, w, 2)


def _corners(xy: torch.Tensor, h: int, w: int) -> list[torch.Tensor]:
    """The 4 pixel centres around positions xy (..., 2), clamped to the image."""
    return [
        torch.stack(
            [(xy[..., 0].floor() + ox).clamp(0, w - 1), (xy[..., 1].floor() + oy).clamp(0, h - 1)], -1
        )
        for ox in (0, 1)
        for oy in (0, 1)
    ]


def _same_instance_around(
    instance_nhw: torch.Tensor, xy: torch.Tensor, reference: torch.Tensor
) -> torch.Tensor:
    """True where all 4 pixels around xy (N, ..., 2) have instance == reference (N, ...)."""
    same = torch.ones_like(reference, dtype=torch.bool)
    for corner in _corners(xy, *instance_nhw.shape[-2:]):
        same &= _sample(instance_nhw[:, None].float(), corner, mode="nearest")[:, 0] == reference
    return same


def _smooth_around(depth_nhw: torch.Tensor, xy: torch.Tensor, rtol: float = 2e-3) -> torch.Tensor:
    """True where inverse depth is nearly affine (one smooth surface) on the 4x4 pixels around xy (N, ..., 2).

    Inverse depth is exactly affine in pixels on a plane, so its second differences vanish there;
    they are large across depth edges and at the creases of the room and of boxes, where bilinear
    interpolation of depth or flow is not meaningful.
    """
    inv = 1.0 / depth_nhw[:, None]
    stencils = torch.tensor(
        [
            [[0, 0, 0], [1, -2, 1], [0, 0, 0]],
            [[0, 1, 0], [0, -2, 0], [0, 1, 0]],
            [[0.25, 0, -0.25], [0, 0, 0], [-0.25, 0, 0.25]],
        ]
    )[:, None]
    curvature = F.conv2d(F.pad(inv, (1, 1, 1, 1), mode="replicate"), stencils).abs().amax(1, keepdim=True)
    relative = curvature / inv
    ok = torch.ones(xy.shape[:-1], dtype=torch.bool)
    for corner in _corners(xy, *depth_nhw.shape[-2:]):
        ok &= _sample(relative, corner, mode="nearest")[:, 0] < rtol
    return ok


def _inside(xy: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return (xy[..., 0] >= 0) & (xy[..., 0] <= w - 1) & (xy[..., 1] >= 0) & (xy[..., 1] <= h - 1)


def test_shapes_dtypes_and_ranges(clip: SyntheticClip) -> None:
    B, T, N = len(SEEDS), CONFIG.num_frames, CONFIG.num_tracks
    assert clip.rgb_btchw.shape == (B, T, 3, H, W)
    assert clip.flow_fwd_bt2hw.shape == clip.flow_bwd_bt2hw.shape == (B, T, 2, H, W)
    for name in ("depth_bthw", "flow_fwd_valid_bthw", "flow_bwd_valid_bthw", "motion_bthw", "instance_bthw"):
        assert getattr(clip, name).shape == (B, T, H, W), name
    assert clip.tracks_btn2.shape == (B, T, N, 2)
    assert clip.tracks3d_cam_btn3.shape == clip.tracks3d_world_btn3.shape == (B, T, N, 3)
    assert clip.visibility_btn.shape == (B, T, N) and clip.visibility_btn.dtype == torch.bool
    assert clip.queries_bn3.shape == (B, N, 3)
    assert clip.intrinsics_bt33.shape == (B, T, 3, 3) and clip.extrinsics_bt44.shape == (B, T, 4, 4)
    assert clip.motion_bthw.dtype == torch.bool
    assert 0 <= clip.rgb_btchw.min() and clip.rgb_btchw.max() <= 1
    assert (clip.depth_bthw > 0).all()
    for name, value in vars(clip).items():
        if value.is_floating_point():
            assert torch.isfinite(value).all(), name
    # undefined flows: last forward, first backward
    assert not clip.flow_fwd_valid_bthw[:, -1].any() and not clip.flow_bwd_valid_bthw[:, 0].any()
    assert clip.flow_fwd_valid_bthw[:, :-1].float().mean() > 0.99
    assert (clip.flow_fwd_bt2hw[:, -1] == 0).all() and (clip.flow_bwd_bt2hw[:, 0] == 0).all()
    # the clips are not trivial: objects, motion, occlusions and out-of-view tracks all occur
    assert (clip.instance_bthw > 0).float().mean() > 0.03
    assert clip.motion_bthw.any() and (~clip.visibility_btn).any()
    assert clip.flow_bwd_bt2hw.norm(dim=2).mean() > 0.3


def _backward_warp_errors(clip: SyntheticClip) -> tuple[torch.Tensor, torch.Tensor]:
    """Photometric error of frame t against frame t-1 sampled at p + flow_bwd, where visible in t-1.

    Returns:
        errors (M,) mean absolute RGB error per checked pixel, and whether each is on a moving object.
    """
    B, T, _, h, w = clip.rgb_btchw.shape
    xy = _pixel_xy(h, w)
    errors, moving = [], []
    for t in range(1, T):
        target = xy + rearrange(clip.flow_bwd_bt2hw[:, t], "b c h w -> b h w c")
        warped = _sample(clip.rgb_btchw[:, t - 1], target)
        # visible in t-1: the moved point's depth matches the depth map there (inverse depth is
        # affine in pixels on planes, so interpolate it); no object boundary around the target
        depth_prev = 1.0 / _sample(1.0 / clip.depth_bthw[:, t - 1, None], target)[:, 0]
        unoccluded = (clip.depth_bwd_bthw[:, t] - depth_prev).abs() < 1e-3 * depth_prev
        same = _same_instance_around(clip.instance_bthw[:, t - 1], target, clip.instance_bthw[:, t])
        mask = clip.flow_bwd_valid_bthw[:, t] & _inside(target, h, w) & unoccluded & same
        errors.append((warped - clip.rgb_btchw[:, t]).abs().mean(1)[mask])
        moving.append(clip.motion_bthw[:, t][mask])
    return torch.cat(errors), torch.cat(moving)


def test_backward_flow_warps_photometrically(clip: SyntheticClip) -> None:
    err, on_moving = _backward_warp_errors(clip)
    assert err.numel() > 0.5 * len(SEEDS) * (CONFIG.num_frames - 1) * H * W
    assert err.median() < 1e-2 and err.quantile(0.95) < 3e-2
    # moving objects are a minority of pixels: check them on their own
    assert on_moving.sum() > 1000
    assert err[on_moving].median() < 1e-2 and err[on_moving].quantile(0.95) < 3e-2


def test_tracks_follow_forward_flow(clip: SyntheticClip) -> None:
    B, T, N = clip.visibility_btn.shape
    errors = []
    for t in range(T - 1):
        pos, nxt = clip.tracks_btn2[:, t], clip.tracks_btn2[:, t + 1]
        flow = rearrange(_sample(clip.flow_fwd_bt2hw[:, t], pos), "b c n -> b n c")
        inst = _sample(clip.instance_bthw[:, t, None].float(), pos.round(), mode="nearest")[:, 0]
        mask = clip.visibility_btn[:, t] & clip.visibility_btn[:, t + 1] & _inside(pos, H, W)
        mask &= _same_instance_around(clip.instance_bthw[:, t], pos, inst)
        mask &= _smooth_around(clip.depth_bthw[:, t], pos)
        errors.append((pos + flow - nxt).norm(dim=-1)[mask])
    err = torch.cat(errors)
    assert err.numel() > 0.4 * B * (T - 1) * N
    # bilinear interpolation of the (smooth, non-linear) flow field is the only error source
    assert err.median() < 2e-3 and err.max() < 0.05


def test_tracks_3d_project_and_match_depth(clip: SyntheticClip) -> None:
    cam = clip.tracks3d_cam_btn3
    in_front = cam[..., 2] > 1e-3
    uvw = torch.einsum("btij,btnj->btni", clip.intrinsics_bt33, cam)
    uv = uvw[..., :2] / uvw[..., 2:]
    torch.testing.assert_close(uv[in_front], clip.tracks_btn2[in_front], atol=1e-3, rtol=0)

    world_h = torch.cat([clip.tracks3d_world_btn3, torch.ones_like(cam[..., :1])], dim=-1)
    cam_from_world = torch.einsum("btij,btnj->btni", clip.extrinsics_bt44, world_h)[..., :3]
    torch.testing.assert_close(cam_from_world, cam, atol=1e-4, rtol=1e-5)
    world_from_cam = torch.einsum(
        "btij,btnj->btni",
        torch.linalg.inv(clip.extrinsics_bt44),
        torch.cat([cam, torch.ones_like(cam[..., :1])], -1),
    )[..., :3]
    torch.testing.assert_close(world_from_cam, clip.tracks3d_world_btn3, atol=1e-4, rtol=1e-5)
    _assert_track_depth_matches_depth_map(clip)


def _assert_track_depth_matches_depth_map(clip: SyntheticClip) -> None:
    """Depth of a visible track = depth map at its pixel (interpolating inverse depth inside one surface)."""
    cam = clip.tracks3d_cam_btn3
    vis = clip.visibility_btn
    pos = rearrange(clip.tracks_btn2, "b t n c -> (b t) n c")
    depth = 1.0 / _sample(1.0 / rearrange(clip.depth_bthw, "b t h w -> (b t) 1 h w"), pos)[:, 0]
    inst = _sample(rearrange(clip.instance_bthw, "b t h w -> (b t) 1 h w").float(), pos.round(), "nearest")[
        :, 0
    ]
    same = _same_instance_around(rearrange(clip.instance_bthw, "b t h w -> (b t) h w"), pos, inst)
    same &= _smooth_around(rearrange(clip.depth_bthw, "b t h w -> (b t) h w"), pos)
    mask = rearrange(vis, "b t n -> (b t) n") & same
    z = rearrange(cam[..., 2], "b t n -> (b t) n")
    assert mask.sum() > 0.4 * vis.sum()
    torch.testing.assert_close(z[mask], depth[mask], rtol=2e-3, atol=0)


def test_queries_are_visible_track_points(clip: SyntheticClip) -> None:
    t_q = clip.queries_bn3[..., 0].long()
    assert (clip.queries_bn3[..., 0] == t_q).all() and t_q.min() >= 0 and t_q.max() < CONFIG.num_frames
    assert len(t_q.unique()) > 1  # query_frames="random"
    b = torch.arange(len(SEEDS))[:, None]
    n = torch.arange(CONFIG.num_tracks)[None]
    assert clip.visibility_btn[b, t_q, n].all()
    torch.testing.assert_close(clip.tracks_btn2[b, t_q, n], clip.queries_bn3[..., 1:], atol=1e-3, rtol=0)
    # about track_object_fraction of the queries start on objects
    x, y = clip.queries_bn3[..., 1:].round().long().unbind(-1)
    on_object = clip.instance_bthw[b, t_q, y, x] > 0
    assert 0.35 < on_object.float().mean() < 0.65


def test_visibility_matches_independent_depth_test(clip: SyntheticClip) -> None:
    vis = rearrange(clip.visibility_btn, "b t n -> (b t) n")
    pos = rearrange(clip.tracks_btn2, "b t n c -> (b t) n c")
    z = rearrange(clip.tracks3d_cam_btn3[..., 2], "b t n -> (b t) n")
    depth_maps = rearrange(clip.depth_bthw, "b t h w -> (b t) 1 h w")
    in_view = (z > 1e-3) & (pos[..., 0] >= -0.5) & (pos[..., 0] <= W - 0.5)
    in_view &= (pos[..., 1] >= -0.5) & (pos[..., 1] <= H - 0.5)
    assert (~in_view).any() and not vis[~in_view].any()

    depth_at = 1.0 / _sample(1.0 / depth_maps, pos)[:, 0]
    inst = _sample(rearrange(clip.instance_bthw, "b t h w -> (b t) 1 h w").float(), pos.round(), "nearest")[
        :, 0
    ]
    smooth = _same_instance_around(rearrange(clip.instance_bthw, "b t h w -> (b t) h w"), pos, inst)
    smooth &= _smooth_around(depth_maps[:, 0], pos)
    deepest = _sample(F.max_pool2d(depth_maps, 3, stride=1, padding=1), pos.round(), "nearest")[:, 0]
    nearest = -_sample(F.max_pool2d(-depth_maps, 3, stride=1, padding=1), pos.round(), "nearest")[:, 0]
    on_surface = in_view & smooth & ((z - depth_at).abs() < 1e-3 * z)  # the first hit is the point itself
    # every surface around its pixel is well in front of it (margin: the depth range around it,
    # which covers steep surfaces seen at grazing angles)
    behind = in_view & (z > 1.01 * deepest + (deepest - nearest))
    assert vis[on_surface].all()
    assert not vis[behind].any()
    # the decisive cases are plentiful (the rest sit on depth edges or creases)
    assert behind.sum() > 30 and on_surface.sum() > 0.4 * in_view.sum()


def _world_motion(clip: SyntheticClip, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """World displacement (B, T, H, W) of each pixel's point to frame t + step, from flow + depth + cameras."""
    flow, depth, valid = (
        (clip.flow_fwd_bt2hw, clip.depth_fwd_bthw, clip.flow_fwd_valid_bthw)
        if step == 1
        else (clip.flow_bwd_bt2hw, clip.depth_bwd_bthw, clip.flow_bwd_valid_bthw)
    )
    T, h, w = clip.depth_bthw.shape[1:]
    xy = _pixel_xy(h, w)
    other = (torch.arange(T) + step).clamp(0, T - 1)

    def to_world(pix: torch.Tensor, z: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        homog = torch.cat([pix, torch.ones_like(pix[..., :1])], dim=-1)
        k_inv = torch.linalg.inv(clip.intrinsics_bt33[:, frames])
        cam = torch.einsum("btij,bthwj->bthwi", k_inv, homog) * z[..., None]
        c2w = torch.linalg.inv(clip.extrinsics_bt44[:, frames])
        return torch.einsum("btij,bthwj->bthwi", c2w[..., :3, :3], cam) + c2w[:, :, None, None, :3, 3]

    now = to_world(xy.expand(*depth.shape, 2), clip.depth_bthw, torch.arange(T))
    moved = to_world(xy + rearrange(flow, "b t c h w -> b t h w c"), depth, other)
    return (moved - now).norm(dim=-1), valid


def _assert_motion_exact(clip: SyntheticClip) -> None:
    fwd, fwd_valid = _world_motion(clip, +1)
    bwd, bwd_valid = _world_motion(clip, -1)
    moves = (fwd_valid & (fwd > 1e-3)) | (bwd_valid & (bwd > 1e-3))
    still = (~fwd_valid | (fwd < 1e-4)) & (~bwd_valid | (bwd < 1e-4))
    assert (moves | still).all(), "displacements must be clearly zero or clearly non-zero"
    assert torch.equal(clip.motion_bthw, moves)
    assert clip.motion_bthw.any() and (~clip.motion_bthw).any()


def test_motion_mask_static_camera_one_static_one_moving_object() -> None:
    config = dataclasses.replace(
        CONFIG, static_camera=True, num_objects=(2, 2), moving_object_prob=1.0, rotating_object_prob=0.0
    )
    scene = sample_scene(config, seed=3)
    scene.obj_rot_btk33[:, :, 0] = scene.obj_rot_btk33[:, :1, 0]  # freeze object 0
    scene.obj_pos_btk3[:, :, 0] = scene.obj_pos_btk3[:, :1, 0]
    clip = render_scene(scene, config)
    assert torch.equal(clip.extrinsics_bt44, clip.extrinsics_bt44[:, :1].expand_as(clip.extrinsics_bt44))
    assert (clip.instance_bthw == 1).any() and (clip.instance_bthw == 2).any()
    assert torch.equal(clip.motion_bthw, clip.instance_bthw == 2)
    _assert_motion_exact(clip)


def test_motion_mask_moving_camera() -> None:
    config = dataclasses.replace(CONFIG, num_frames=6, moving_object_prob=0.5, rotating_object_prob=0.0)
    clip = render_batch(config, [4, 5])
    _assert_motion_exact(clip)


def test_deterministic_per_seed() -> None:
    config = dataclasses.replace(CONFIG, num_frames=4, num_tracks=16)
    first, again, other = render_batch(config, [7]), render_batch(config, [7]), render_batch(config, [8])
    for name, value in vars(first).items():
        assert torch.equal(value, getattr(again, name)), name
    assert not torch.equal(first.rgb_btchw, other.rgb_btchw)
    assert not torch.equal(first.intrinsics_bt33, other.intrinsics_bt33)
    assert not torch.equal(first.tracks_btn2, other.tracks_btn2)


def test_batch_equals_single_renders_and_indexing(clip: SyntheticClip) -> None:
    config = dataclasses.replace(CONFIG, num_frames=4, num_tracks=16)
    pair = render_batch(config, [11, 12])
    assert len(pair) == 2 and len(pair[0]) == 1
    for i, seed in enumerate([11, 12]):
        single = render_batch(config, [seed])
        for name, value in vars(single).items():
            got = getattr(pair[i], name)
            if value.is_floating_point():
                torch.testing.assert_close(got, value, atol=1e-4, rtol=1e-5, msg=name)
            else:
                assert torch.equal(got, value), name
    assert torch.equal(pair[1:].rgb_btchw, pair.rgb_btchw[1:])


def test_dataset_items_match_render_batch_and_collate() -> None:
    config = dataclasses.replace(CONFIG, num_frames=4, num_tracks=16)
    dataset = SyntheticDataset(config, length=3, seed_offset=100)
    assert len(dataset) == 3
    item = dataset[1]
    reference = render_batch(config, [101])
    assert item["rgb_tchw"].shape == (4, 3, H, W) and item["queries_n3"].shape == (16, 3)
    assert int(item["seed"]) == 101
    for key, value in reference.sample(0).items():
        assert torch.equal(item[key], value), key
    batch = next(iter(DataLoader(dataset, batch_size=2, collate_fn=collate_clips)))
    assert isinstance(batch, SyntheticClip)
    batched = render_batch(config, [100, 101])
    for name, value in vars(batched).items():
        torch.testing.assert_close(getattr(batch, name), value, atol=1e-4, rtol=1e-5, msg=name)
    with pytest.raises(IndexError):
        dataset[3]


def test_static_camera_and_to_device() -> None:
    config = dataclasses.replace(CONFIG, num_frames=3, num_tracks=8, static_camera=True, shading=True)
    clip = render_batch(config, [9], device="cpu")
    assert clip.rgb_btchw.device.type == "cpu"
    assert torch.equal(clip.extrinsics_bt44[:, 1:], clip.extrinsics_bt44[:, :1].expand(-1, 2, -1, -1))
    moved = clip.to("cpu")
    assert torch.equal(moved.depth_bthw, clip.depth_bthw)


def test_non_square_image_is_consistent() -> None:
    config = dataclasses.replace(CONFIG, height=40, width=72, num_frames=5, num_tracks=48)
    clip = render_batch(config, [31])
    assert clip.rgb_btchw.shape == (1, 5, 3, 40, 72) and clip.depth_bthw.shape == (1, 5, 40, 72)
    _assert_track_depth_matches_depth_map(clip)
    err, _ = _backward_warp_errors(clip)
    assert err.numel() > 0.5 * 4 * 40 * 72 and err.median() < 1e-2


def test_empty_scene_and_no_tracks() -> None:
    config = dataclasses.replace(CONFIG, num_frames=2, num_objects=(0, 0), num_tracks=0, shading=True)
    clip = render_batch(config, [0, 1])
    assert not clip.motion_bthw.any() and (clip.instance_bthw == 0).all()
    assert clip.tracks_btn2.shape == (2, 2, 0, 2) and clip.queries_bn3.shape == (2, 0, 3)
    assert torch.isfinite(clip.rgb_btchw).all() and (clip.depth_bthw > 0).all()


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        SceneConfig(num_frames=1)
    with pytest.raises(ValueError):
        SceneConfig(num_objects=(3, 2))
    with pytest.raises(ValueError):
        SceneConfig(textures=("marble",))  # type: ignore[arg-type]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    config = dataclasses.replace(CONFIG, num_frames=4, num_tracks=16)
    cpu = render_batch(config, [21, 22])
    gpu = render_batch(config, [21, 22], device="cuda").to("cpu")
    torch.testing.assert_close(gpu.depth_bthw, cpu.depth_bthw, atol=1e-3, rtol=1e-4)
    assert (gpu.instance_bthw == cpu.instance_bthw).float().mean() > 0.999
    assert (gpu.rgb_btchw - cpu.rgb_btchw).abs().median() < 1e-4
    assert (gpu.visibility_btn == cpu.visibility_btn).float().mean() > 0.99
