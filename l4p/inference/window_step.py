"""One window's dense results: cameras, alignment to the previous window, and stitching.

Everything here is in *window pixels* and works on one window plus the stitched values of
its overlap with the previous window (the "tail"), so that a stream never holds more than
a window. The modes are described in `l4p.inference.engine`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from l4p.geometry.align import overlap_point_maps, sim3_threshold_from_depth
from l4p.geometry.align_depth import apply_inverse_depth_affine, fit_inverse_depth_affine
from l4p.geometry.align_sim3 import apply_sim3_to_depth, apply_sim3_to_poses
from l4p.geometry.align_sim3_robust import fit_sim3
from l4p.geometry.intrinsics import grid_to_pixels, pixels_to_grid
from l4p.geometry.rays import rays_to_cameras

Mode = Literal["default", "released"]
DENSE_FIELDS = ("depth", "flow", "motion_logits", "cam_to_world", "intrinsics")


@dataclass
class StepInfo:
    """What one window adds besides its stitched values (kept by `run_model`).

    Attributes:
        rays: (B, 6, t, h', w') camera-ray map, or None.
        depth_alignment: (scale, shift) of the inverse-depth fit, or None.
        sim3_fallbacks: Videos of the batch whose robust Sim(3) fit failed in this window
            (chained with plain Umeyama, or the identity).
    """

    rays: torch.Tensor | None = None
    depth_alignment: tuple[torch.Tensor, torch.Tensor] | None = None
    sim3_fallbacks: int = 0


@dataclass
class WindowDense:
    """One window's stitched dense values (B, t, ...) in window pixels, float32.

    Attributes:
        values: By field name (`DENSE_FIELDS`); only the fields that ran.
        info: Rays and alignment of the window.
    """

    values: dict[str, torch.Tensor] = field(default_factory=dict)
    info: StepInfo = field(default_factory=StepInfo)


def window_cameras(
    rays: torch.Tensor,
    *,
    index: int,
    k_grid_first: torch.Tensor | None,
    patch: tuple[int, int],
    mode: Mode,
    intrinsics: torch.Tensor | None,
    fallback_intrinsics: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Camera-to-world poses (B, t, 4, 4), K in window pixels (B, t, 3, 3), and the window-0 K.

    Args:
        rays: (B, 6, t, h', w') the window's camera-ray map.
        index: Window number (0 estimates K unless `intrinsics` is given).
        k_grid_first: The window-0 K estimate in grid units (None before window 0 ran).
        patch: Window pixels per token (y, x).
        mode: "default" or "released".
        intrinsics: Known K of the window's frames (B, t, 3, 3), window pixels, or None.
        fallback_intrinsics: Released mode: K of the window's frames for windows after the first.
    """
    t = rays.shape[2]
    if intrinsics is not None:  # given K: rotations and output both use it
        cams = rays_to_cameras(rays, intrinsics_grid_b33=pixels_to_grid(intrinsics, patch))
        return cams.camera_to_world, intrinsics.float(), k_grid_first
    if index == 0:
        cams = rays_to_cameras(rays, intrinsics_method="released" if mode == "released" else "dlt")
        k_grid_first = cams.intrinsics_grid
    elif mode == "released" and fallback_intrinsics is not None:
        cams = rays_to_cameras(rays, intrinsics_grid_b33=pixels_to_grid(fallback_intrinsics, patch))
    else:
        cams = rays_to_cameras(rays, intrinsics_grid_b33=k_grid_first)
    assert k_grid_first is not None
    k_pix = grid_to_pixels(k_grid_first, patch)[:, None].expand(-1, t, 3, 3)
    return cams.camera_to_world, k_pix, k_grid_first


def stitch_window_dense(
    dense,
    *,
    part: slice,
    index: int,
    tail: dict[str, torch.Tensor],
    cams_state: dict[str, torch.Tensor | None],
    patch: tuple[int, int],
    mode: Mode,
    intrinsics: torch.Tensor | None,
    fallback_intrinsics: torch.Tensor | None,
    point_map_stride: int,
    chain_cameras: bool = True,
) -> WindowDense:
    """Align one window's dense outputs to the stitched overlap (`tail`) and stitch them.

    A window overwrites the whole overlap (the later window wins), except backward flow,
    whose first frame keeps the previous window's value (it has no previous frame there).

    Args:
        dense: The model's `DenseOutputs` for a group of windows.
        part: This window's rows of the group's batch.
        index: Window number (0 = first: nothing to align to).
        tail: Stitched values of the overlap frames (the first `t - stride` of this window).
        cams_state: {"k_grid_first": ...}, updated in place.
        patch: Window pixels per token.
        mode: "default" or "released".
        intrinsics: Known K (B, t, 3, 3) of the window's frames, or None.
        fallback_intrinsics: Released mode's K for later windows (B, t, 3, 3), or None.
        point_map_stride: Pixel stride of the overlap point maps of the Sim(3) fit.
        chain_cameras: False when the camera head ran only to estimate K (window 0): the
            cameras are then not used for alignment.

    Returns:
        The window's stitched values (B, t, ...) and what it adds.
    """
    res = WindowDense()
    if dense.flow is not None:
        flow = dense.flow[part].float()
        if index > 0:
            flow = torch.cat([tail["flow"][:, :1], flow[:, 1:]], dim=1)
        res.values["flow"] = flow
    if dense.motion is not None:
        res.values["motion_logits"] = dense.motion[part].float()
    depth = dense.depth[part].float() if dense.depth is not None else None
    aligned = index > 0
    if dense.camera_rays is not None:
        rays = dense.camera_rays[part]
        res.info.rays = rays
        c2w, k_pix, cams_state["k_grid_first"] = window_cameras(
            rays, index=index, k_grid_first=cams_state.get("k_grid_first"), patch=patch, mode=mode,
            intrinsics=intrinsics, fallback_intrinsics=fallback_intrinsics,
        )  # fmt: skip
        if depth is not None and aligned and chain_cameras:
            n_ov = tail["depth"].shape[1]
            src = overlap_point_maps(
                depth[:, :n_ov], k_pix[:, :n_ov], c2w[:, :n_ov], pixel_stride=point_map_stride
            )
            dst = overlap_point_maps(
                tail["depth"], tail["intrinsics"], tail["cam_to_world"], pixel_stride=point_map_stride
            )
            sim3 = fit_sim3(
                src, dst, threshold=sim3_threshold_from_depth(depth[:, :n_ov]), method="robust", warn=False
            )
            res.info.sim3_fallbacks = int((~sim3.success).sum())
            c2w = apply_sim3_to_poses(c2w, sim3)
            depth = apply_sim3_to_depth(depth, sim3)
        if chain_cameras:
            res.values["cam_to_world"] = c2w.float()
        res.values["intrinsics"] = k_pix.float()
        if not chain_cameras:
            res.info.rays = None
    if depth is not None and aligned and "cam_to_world" not in res.values:
        scale, shift = fit_inverse_depth_affine(
            depth[:, : tail["depth"].shape[1]], tail["depth"], robust=mode == "default"
        )
        res.info.depth_alignment = (scale, shift)
        depth = apply_inverse_depth_affine(depth, scale, shift)
    if depth is not None:
        res.values["depth"] = depth
    return res
