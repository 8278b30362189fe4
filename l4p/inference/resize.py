"""Resizing inputs to the model's window and outputs back to the input's pixels.

Pixel convention: integer coordinates are pixel centres. Resizing width W_a -> W_b maps
x_b = (x_a + 0.5) * W_b / W_a - 0.5; focal lengths scale by W_b / W_a; flow vectors
(displacements) scale by W_b / W_a per axis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange


def resize_frames(video_btchw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (B, T, C, H, W) frames to `size` = (h, w) (bilinear, antialiased when shrinking)."""
    b, t = video_btchw.shape[:2]
    if tuple(video_btchw.shape[-2:]) == tuple(size):
        return video_btchw
    x = rearrange(video_btchw, "b t c h w -> (b t) c h w")
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return rearrange(x, "(b t) c h w -> b t c h w", b=b, t=t)


def resize_maps(maps_bthw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (B, T, H, W) scalar maps (depth, probabilities) bilinearly to `size`."""
    return resize_frames(maps_bthw.unsqueeze(2), size).squeeze(2)


def resize_flow(flow_bt2hw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize backward flow (B, T, 2, h, w) to `size` = (H, W) and rescale its vectors."""
    h, w = flow_bt2hw.shape[-2:]
    scale = flow_bt2hw.new_tensor([size[1] / w, size[0] / h]).view(1, 1, 2, 1, 1)
    return resize_frames(flow_bt2hw, size) * scale


def scale_intrinsics(k_bt33: torch.Tensor, *, src: tuple[int, int], dst: tuple[int, int]) -> torch.Tensor:
    """Rescale pixel intrinsics from an image of size `src` = (h, w) to `dst` = (H, W)."""
    sx, sy = dst[1] / src[1], dst[0] / src[0]
    k = k_bt33.clone()
    k[..., 0, :] *= sx
    k[..., 1, :] *= sy
    k[..., 0, 2] += 0.5 * sx - 0.5
    k[..., 1, 2] += 0.5 * sy - 0.5
    return k


def scale_points(xy: torch.Tensor, *, src: tuple[int, int], dst: tuple[int, int]) -> torch.Tensor:
    """Map pixel positions (..., 2) as (x, y) from an image of size `src` = (h, w) to `dst`."""
    scale = xy.new_tensor([dst[1] / src[1], dst[0] / src[0]])
    return (xy + 0.5) * scale - 0.5
