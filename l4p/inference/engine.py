"""Windowed inference at the model's resolution.

Each window is encoded once, the heads run on it, and the results are stitched, aligned and
the tracking memory carried over.

Inputs and outputs here are in *window pixels* (the model's input size) and the released
continuous track convention (+0.5 = pixel/frame centre); `l4p.api` converts from and to the
user's video.

Modes:
* `"released"` reproduces the released pipeline: overwrite stitching, plain least-squares
  inverse-depth alignment, intrinsics from window 0 with OpenCV, and (when no intrinsics
  are given) later windows' rotations recovered with the fallback intrinsics (the release
  uses the demo's dummy K there); camera alone is not chained across windows.
* `"default"`: the same network outputs, with robust (IRLS) depth alignment, the window-0
  intrinsics estimate used in every window, K estimated on the device, and the camera task
  always chained through depth (the depth head runs internally when needed).
Both modes chain depth+camera windows with a deterministic robust Sim(3) fit (the release's
unseeded scikit-image RANSAC cannot be reproduced; it also raises when it finds no inliers,
ours falls back and warns).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

import torch
from tqdm.auto import tqdm

from l4p.geometry.align import overlap_point_maps, sim3_threshold_from_depth
from l4p.geometry.align_depth import apply_inverse_depth_affine, fit_inverse_depth_affine
from l4p.geometry.align_sim3 import apply_sim3_to_depth, apply_sim3_to_poses
from l4p.geometry.align_sim3_robust import fit_sim3
from l4p.geometry.intrinsics import grid_to_pixels, pixels_to_grid
from l4p.geometry.rays import rays_to_cameras
from l4p.heads.tracking.driver import TrackingResult, run_windows
from l4p.inference.windows import stitch_dense, window_starts
from l4p.models.l4p import DENSE_TASKS, L4P

logger = logging.getLogger(__name__)
Mode = Literal["default", "released"]


@dataclass
class RawOutputs:
    """Stitched outputs over the padded video, at window resolution.

    Attributes:
        depth: (B, T, h, w). flow: (B, T, 2, h, w). motion_logits: (B, T, h, w).
        cam_to_world: (B, T, 4, 4). intrinsics: (B, T, 3, 3) in window pixels.
        tracks: Tracking result (window pixels, +0.5 convention), or None.
        depth_alignment: Per window after the first, the (scale, shift) of the inverse-depth
            fit (depth without camera), each (B,).
        rays: Per window, the (B, 6, t, h', w') camera-ray map.
        window_starts: First frame of every window.
    """

    depth: torch.Tensor | None = None
    flow: torch.Tensor | None = None
    motion_logits: torch.Tensor | None = None
    cam_to_world: torch.Tensor | None = None
    intrinsics: torch.Tensor | None = None
    tracks: TrackingResult | None = None
    depth_alignment: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    rays: list[torch.Tensor] = field(default_factory=list)
    window_starts: list[int] = field(default_factory=list)


@dataclass
class _Cameras:
    """Per-window camera state: the window-0 K estimate in grid units."""

    k_grid_first: torch.Tensor | None = None


def _window_cameras(
    rays: torch.Tensor,
    *,
    index: int,
    start: int,
    state: _Cameras,
    patch: tuple[int, int],
    mode: Mode,
    intrinsics: torch.Tensor | None,
    fallback_intrinsics: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-to-world poses (B, t, 4, 4) and K in window pixels (B, t, 3, 3) of one window."""
    t = rays.shape[2]
    span = slice(start, start + t)
    if intrinsics is not None:  # given K: rotations and output both use it
        k_grid = pixels_to_grid(intrinsics[:, span], patch)
        cams = rays_to_cameras(rays, intrinsics_grid_b33=k_grid)
        return cams.camera_to_world, intrinsics[:, span].float()
    if index == 0:
        cams = rays_to_cameras(rays, intrinsics_method="released" if mode == "released" else "dlt")
        state.k_grid_first = cams.intrinsics_grid
    elif mode == "released" and fallback_intrinsics is not None:
        cams = rays_to_cameras(rays, intrinsics_grid_b33=pixels_to_grid(fallback_intrinsics[:, span], patch))
    else:
        cams = rays_to_cameras(rays, intrinsics_grid_b33=state.k_grid_first)
    assert state.k_grid_first is not None
    k_pix = grid_to_pixels(state.k_grid_first, patch)[:, None].expand(-1, t, 3, 3)
    return cams.camera_to_world, k_pix


def run_model(
    model: L4P,
    video_bcthw: torch.Tensor,
    *,
    tasks: Collection[str],
    queries_bn3: torch.Tensor | None = None,
    intrinsics_bt33: torch.Tensor | None = None,
    fallback_intrinsics_bt33: torch.Tensor | None = None,
    mode: Mode = "default",
    window_batch_size: int = 1,
    point_map_stride: int = 4,
    progress: bool = False,
) -> RawOutputs:
    """Run the model over every window of a normalised, padded video.

    Args:
        model: The network.
        video_bcthw: (B, 3, T, h, w) ImageNet-normalised, h x w the model's window size,
            T tiled by the windows.
        tasks: Tasks to return (subset of `model.tasks`).
        queries_bn3: (B, N, 3) track queries (t, x, y), +0.5 = centre, window pixels.
        intrinsics_bt33: Known K per frame in window pixels, or None to estimate it.
        fallback_intrinsics_bt33: Released mode only: K for windows after the first.
        mode: "default" or "released" (see the module docstring).
        window_batch_size: Windows encoded together (GPU throughput).
        point_map_stride: Pixel stride of the overlap point maps of the Sim(3) fit.
        progress: Show a progress bar over windows.
    """
    b, _, num_frames, h, w = video_bcthw.shape
    win = model.window[0]
    starts = window_starts(num_frames, window=win, stride=model.stride)
    run_dense = {t for t in tasks if t in DENSE_TASKS}
    if "camera" in run_dense and mode == "default" and len(starts) > 1:
        if "depth" in model.heads:
            run_dense.add("depth")
        else:
            logger.warning("the model has no depth head: camera windows are not chained into one world frame")
    enc_tasks = run_dense | ({"tracks"} if "tracks" in tasks else set())
    patch = (model.encoder.patch_embed.patch,) * 2
    out = RawOutputs(window_starts=starts)
    cams = _Cameras()
    finals: list[torch.Tensor] = []
    grid = None
    bar = tqdm(total=len(starts), desc="windows", disable=not progress, leave=False)
    for g0 in range(0, len(starts), window_batch_size):
        group = starts[g0 : g0 + window_batch_size]
        clips = torch.cat([video_bcthw[:, :, s : s + win] for s in group])
        feats = model.encode(clips, tasks=enc_tasks)
        dense = model.decode_dense(feats, tasks=run_dense)
        grid = feats.grid
        for i, start in enumerate(group):
            part = slice(i * b, (i + 1) * b)
            index = g0 + i
            if feats.final is not None:
                finals.append(feats.final[part])
            _stitch_window(
                out, dense, part=part, index=index, start=start, overlap_len=win - model.stride, num_frames=num_frames,
                cams=cams, patch=patch, mode=mode, intrinsics=intrinsics_bt33,
                fallback_intrinsics=fallback_intrinsics_bt33, point_map_stride=point_map_stride,
            )  # fmt: skip
            bar.update(1)
    bar.close()
    if "tracks" in tasks:
        if queries_bn3 is None or model.tracker is None:
            raise ValueError("tracking needs queries and a model with a tracking head")
        out.tracks = run_windows(
            model.tracker, finals, queries_bn3, window_starts=starts, num_frames=num_frames, grid_thw=grid
        )
    if "depth" not in tasks:
        out.depth = None
    return out


def _alloc(
    out: RawOutputs, name: str, like: torch.Tensor, num_frames: int, fill: float = float("nan")
) -> torch.Tensor:
    buf = getattr(out, name)
    if buf is None:
        buf = like.new_full((like.shape[0], num_frames, *like.shape[2:]), fill, dtype=torch.float32)
        setattr(out, name, buf)
    return buf


def _stitch_window(
    out: RawOutputs, dense, *, part: slice, index: int, start: int, overlap_len: int, num_frames: int,
    cams: _Cameras, patch: tuple[int, int], mode: Mode, intrinsics, fallback_intrinsics, point_map_stride: int,
) -> None:  # fmt: skip
    """Align one window's dense outputs to what is stitched so far and write them in."""
    if dense.flow is not None:
        flow = dense.flow[part].float()
        stitch_dense(_alloc(out, "flow", flow, num_frames), flow, start=start, keep_first=True)
    if dense.motion is not None:
        motion = dense.motion[part].float()
        stitch_dense(_alloc(out, "motion_logits", motion, num_frames), motion, start=start)
    depth = dense.depth[part].float() if dense.depth is not None else None
    overlap = slice(start, start + overlap_len) if index > 0 else None
    if dense.camera_rays is not None:
        rays = dense.camera_rays[part]
        out.rays.append(rays)
        c2w, k_pix = _window_cameras(
            rays, index=index, start=start, state=cams, patch=patch, mode=mode,
            intrinsics=intrinsics, fallback_intrinsics=fallback_intrinsics,
        )  # fmt: skip
        if depth is not None and overlap is not None:
            assert out.depth is not None and out.intrinsics is not None and out.cam_to_world is not None
            n_ov = overlap.stop - overlap.start
            src = overlap_point_maps(
                depth[:, :n_ov], k_pix[:, :n_ov], c2w[:, :n_ov], pixel_stride=point_map_stride
            )
            dst = overlap_point_maps(
                out.depth[:, overlap], out.intrinsics[:, overlap], out.cam_to_world[:, overlap],
                pixel_stride=point_map_stride,
            )  # fmt: skip
            sim3 = fit_sim3(src, dst, threshold=sim3_threshold_from_depth(depth[:, :n_ov]), method="robust")
            c2w = apply_sim3_to_poses(c2w, sim3)
            depth = apply_sim3_to_depth(depth, sim3)
        stitch_dense(_alloc(out, "cam_to_world", c2w, num_frames), c2w, start=start)
        stitch_dense(_alloc(out, "intrinsics", k_pix, num_frames), k_pix, start=start)
    elif depth is not None and overlap is not None:
        assert out.depth is not None
        n_ov = overlap.stop - overlap.start
        scale, shift = fit_inverse_depth_affine(
            depth[:, :n_ov], out.depth[:, overlap], robust=mode == "default"
        )
        out.depth_alignment.append((scale, shift))
        depth = apply_inverse_depth_affine(depth, scale, shift)
    if depth is not None:
        stitch_dense(_alloc(out, "depth", depth, num_frames), depth, start=start)
