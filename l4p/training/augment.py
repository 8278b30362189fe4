"""Geometric and photometric augmentation of training samples, consistent across every field.

Pixel convention: integer coordinates are pixel centres. Cropping the box (x0, y0, w, h) and
resizing it to (W, H) maps a point x to `(x - x0 + 0.5) * W / w - 0.5` (likewise y), scales
focal lengths by `W / w`, moves the principal point like a point, and scales flow vectors
by `W / w`. Dense maps are resampled with nearest-exact sampling (no blending across depth
or motion edges); rgb is resampled bilinearly (antialiased when shrinking).

A horizontal flip maps x to `W - 1 - x` and mirrors the 3D scene (camera and world X
negated): `cx -> W - 1 - cx`, flow x negated, 3D track X negated, and the extrinsics become
`F E F` with `F = diag(-1, 1, 1, 1)` (still a rotation). Projecting the flipped 3D tracks
with the flipped intrinsics gives the flipped 2D tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from l4p.inference.resize import scale_intrinsics, scale_points
from l4p.training.sample import Sample, in_image


@dataclass
class AugmentConfig:
    """Random augmentation parameters.

    Attributes:
        crop_scale: Range of the crop side as a fraction of the largest crop with the output's
            aspect ratio (1 = no zoom).
        flip_prob: Probability of a horizontal flip.
        brightness: Max relative brightness change (per clip).
        contrast: Max relative contrast change (per clip).
        saturation: Max relative saturation change (per clip).
    """

    crop_scale: tuple[float, float] = (0.7, 1.0)
    flip_prob: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2


def _resample(x_nchw: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x_nchw.shape[-2:]) == tuple(size):
        return x_nchw
    if mode == "bilinear":
        return F.interpolate(x_nchw, size=size, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(x_nchw, size=size, mode="nearest-exact")


def crop_resize_sample(sample: Sample, *, box: tuple[int, int, int, int], size: tuple[int, int]) -> Sample:
    """Crop the pixel box (x0, y0, w, h) of every frame and resize it to `size` = (H, W).

    Tracks leaving the image become invisible; queries are left to `choose_queries`.
    """
    x0, y0, w, h = box
    height, width = size
    sx, sy = width / w, height / h
    out = dict(sample)

    def crop(x: torch.Tensor) -> torch.Tensor:
        return x[..., y0 : y0 + h, x0 : x0 + w]

    out["rgb_tchw"] = _resample(crop(sample["rgb_tchw"]), size, "bilinear").clamp(0, 1)
    for key in ("depth_thw", "motion_thw"):
        out[key] = _resample(crop(sample[key])[:, None], size, "nearest")[:, 0]
    for key in ("depth_valid_thw", "flow_bwd_valid_thw"):
        out[key] = _resample(crop(sample[key]).float()[:, None], size, "nearest")[:, 0] > 0.5
    flow = _resample(crop(sample["flow_bwd_t2hw"]), size, "nearest")
    out["flow_bwd_t2hw"] = flow * flow.new_tensor([sx, sy])[None, :, None, None]

    shift = torch.tensor([float(x0), float(y0)])
    tracks = scale_points(sample["tracks_tn2"] - shift, src=(h, w), dst=size)
    out["tracks_tn2"] = tracks
    out["visibility_tn"] = sample["visibility_tn"] & in_image(tracks, height, width)
    queries = sample["queries_n3"].clone()
    queries[:, 1:] = scale_points(queries[:, 1:] - shift, src=(h, w), dst=size)
    out["queries_n3"] = queries
    k = sample["intrinsics_t33"].clone()
    k[..., 0, 2] -= x0
    k[..., 1, 2] -= y0
    out["intrinsics_t33"] = scale_intrinsics(k, src=(h, w), dst=size)
    return out


def hflip_sample(sample: Sample) -> Sample:
    """Mirror every field left-right (see the module docstring for the 3D convention)."""
    width = sample["rgb_tchw"].shape[-1]
    out = dict(sample)
    for key in (
        "rgb_tchw",
        "depth_thw",
        "depth_valid_thw",
        "flow_bwd_t2hw",
        "flow_bwd_valid_thw",
        "motion_thw",
    ):
        out[key] = sample[key].flip(-1)
    out["flow_bwd_t2hw"] = out["flow_bwd_t2hw"] * torch.tensor([-1.0, 1.0])[None, :, None, None]
    tracks = sample["tracks_tn2"].clone()
    tracks[..., 0] = width - 1 - tracks[..., 0]
    out["tracks_tn2"] = tracks
    queries = sample["queries_n3"].clone()
    queries[:, 1] = width - 1 - queries[:, 1]
    out["queries_n3"] = queries
    points = sample["tracks3d_tn3"].clone()
    points[..., 0] = -points[..., 0]
    out["tracks3d_tn3"] = points
    k = sample["intrinsics_t33"].clone()
    k[..., 0, 2] = width - 1 - k[..., 0, 2]
    out["intrinsics_t33"] = k
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    out["extrinsics_t44"] = mirror @ sample["extrinsics_t44"] @ mirror
    return out


def random_box(
    in_size: tuple[int, int],
    out_size: tuple[int, int],
    scale: tuple[float, float],
    generator: torch.Generator,
) -> tuple[int, int, int, int]:
    """A random crop box (x0, y0, w, h) with the output's aspect ratio, inside the input."""
    (h_in, w_in), (h_out, w_out) = in_size, out_size
    fit = min(h_in / h_out, w_in / w_out)  # largest crop with the output's aspect ratio
    s = scale[0] + (scale[1] - scale[0]) * float(torch.rand((), generator=generator))
    w = max(1, min(w_in, round(w_out * fit * s)))
    h = max(1, min(h_in, round(h_out * fit * s)))
    x0 = int(torch.randint(0, w_in - w + 1, (), generator=generator))
    y0 = int(torch.randint(0, h_in - h + 1, (), generator=generator))
    return x0, y0, w, h


def center_box(in_size: tuple[int, int], out_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest centred crop box (x0, y0, w, h) with the output's aspect ratio."""
    (h_in, w_in), (h_out, w_out) = in_size, out_size
    fit = min(h_in / h_out, w_in / w_out)
    w, h = min(w_in, round(w_out * fit)), min(h_in, round(h_out * fit))
    return (w_in - w) // 2, (h_in - h) // 2, w, h


def color_jitter(rgb_tchw: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Per-clip brightness, contrast and saturation changes, result clamped to [0, 1]."""

    def factor(amount: float) -> float:
        return 1.0 + amount * (2.0 * float(torch.rand((), generator=generator)) - 1.0)

    x = rgb_tchw * factor(config.brightness)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor(config.contrast) + mean
    gray = (x * x.new_tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(1, keepdim=True)
    x = (x - gray) * factor(config.saturation) + gray
    return x.clamp(0, 1)


def augment_sample(
    sample: Sample, *, size: tuple[int, int], config: AugmentConfig | None, generator: torch.Generator
) -> Sample:
    """Random crop + resize to `size` = (H, W), flip and colour jitter; a centre crop when `config` is None."""
    in_size = tuple(sample["rgb_tchw"].shape[-2:])
    if config is None:
        box = center_box(in_size, size)  # type: ignore[arg-type]
        return crop_resize_sample(sample, box=box, size=size)
    box = random_box(in_size, size, config.crop_scale, generator)  # type: ignore[arg-type]
    out = crop_resize_sample(sample, box=box, size=size)
    if float(torch.rand((), generator=generator)) < config.flip_prob:
        out = hflip_sample(out)
    out["rgb_tchw"] = color_jitter(out["rgb_tchw"], config, generator)
    return out
