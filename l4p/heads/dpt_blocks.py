"""Building blocks of the 3D DPT decoder: reassembly, residual conv units, fusion blocks.

Every block works on spatio-temporal feature maps laid out `(B, C, T, H, W)`. Per-axis
factors are always given in the order (T, H, W).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Axes3 = tuple[int, int, int]


def make_resample(*, channels: int, exponents: Sequence[int]) -> nn.Module:
    """Build the resampling layer of one reassemble stage from per-axis power-of-two exponents.

    An exponent `s` on an axis scales that axis by `2**s`:

    * all zero: `nn.Identity` (no parameters);
    * every non-zero exponent positive: `ConvTranspose3d` with kernel = stride = `2**s`
      per axis (an axis with `s = 0` gets kernel 1, stride 1);
    * every non-zero exponent negative: `Conv3d` with stride `2**|s|`, kernel
      `2 * (stride // 2) + 1` and padding `stride // 2` per axis (kernel 3, padding 1 for a
      halving; kernel 1, padding 0 on an untouched axis). An axis of length `n` becomes
      `ceil(n / stride)`.

    Args:
        channels: Input and output channels.
        exponents: Three integers (T, H, W).

    Returns:
        The resampling module.

    Raises:
        ValueError: If up- and down-sampling are mixed across axes, or not three exponents.
    """
    exps = tuple(int(s) for s in exponents)
    if len(exps) != 3:
        raise ValueError(f"expected three per-axis exponents (T, H, W), got {exponents!r}")
    if all(s == 0 for s in exps):
        return nn.Identity()
    if all(s >= 0 for s in exps):
        size = tuple(2**s for s in exps)
        return nn.ConvTranspose3d(channels, channels, kernel_size=size, stride=size)
    if all(s <= 0 for s in exps):
        stride = tuple(2 ** (-s) for s in exps)
        kernel = tuple(2 * (st // 2) + 1 for st in stride)
        padding = tuple(st // 2 for st in stride)
        return nn.Conv3d(channels, channels, kernel_size=kernel, stride=stride, padding=padding)
    raise ValueError(f"cannot mix up- and down-sampling across axes: {exps}")


class Reassemble3D(nn.Module):
    """Token map of one encoder hook to a feature map: 1x1x1 conv then per-axis resampling.

    Args:
        token_dim: Channels of the incoming token map.
        out_dim: Channels after the 1x1x1 projection (the hook's `layer_dim`).
        exponents: Per-axis (T, H, W) power-of-two resampling exponents, see `make_resample`.
    """

    def __init__(self, *, token_dim: int, out_dim: int, exponents: Sequence[int]) -> None:
        super().__init__()
        self.conv = nn.Conv3d(token_dim, out_dim, kernel_size=1)
        self.resample = make_resample(channels=out_dim, exponents=exponents)

    def forward(self, tokens_bcthw: torch.Tensor) -> torch.Tensor:
        """Map `(B, token_dim, t, h, w)` to `(B, out_dim, t', h', w')` (resampled grid)."""
        return self.resample(self.conv(tokens_bcthw))


class ResidualConvUnit3D(nn.Module):
    """`x + conv2(relu(conv1(relu(x))))` with two 3x3x3 convolutions (with bias).

    The ReLUs are not in-place, so the input tensor is left untouched.

    Args:
        channels: Channels in and out.
    """

    def __init__(self, *, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """Map `(B, C, T, H, W)` to the same shape."""
        y = self.conv1(F.relu(x_bcthw))
        y = self.conv2(F.relu(y))
        return x_bcthw + y


def crop_to(x_bcthw: torch.Tensor, reference_bcthw: torch.Tensor) -> torch.Tensor:
    """Keep the leading `T, H, W` entries of `x` so that it matches `reference`'s grid.

    The released decoder crops only T and H (the first two spatial axes of its 2-D
    ancestor); cropping W too is identical whenever W already matches and makes odd widths
    work instead of failing.

    Raises:
        ValueError: If `x` is smaller than `reference` on some axis.
    """
    t, h, w = reference_bcthw.shape[-3:]
    if any(a < b for a, b in zip(x_bcthw.shape[-3:], (t, h, w), strict=True)):
        raise ValueError(f"cannot crop {tuple(x_bcthw.shape)} to grid {(t, h, w)}")
    return x_bcthw[..., :t, :h, :w]


class FusionBlock3D(nn.Module):
    """One DPT fusion (refinement) stage.

    `forward(path, skip)`: `path` is cropped to the skip's grid, then
    `y = path + rcu1(skip)`; `forward(path)` (the coarsest stage, built with
    `with_skip=False`, has no `rcu1`) uses `y = path`. Then `y = rcu2(y)`, trilinear upsampling
    (`align_corners=True`) by the integer per-axis `upsample` factors (the interpolation is
    performed even for factors (1, 1, 1), where it is an exact copy), and a 1x1x1 `out_conv`.

    Args:
        channels: Feature channels (the decoder's `feature_dim`).
        upsample: Per-axis (T, H, W) integer multipliers, e.g. (1, 2, 2).
        with_skip: Whether the stage merges a skip connection (all but the coarsest).
    """

    def __init__(self, *, channels: int, upsample: Sequence[int], with_skip: bool) -> None:
        super().__init__()
        factors = tuple(int(f) for f in upsample)
        if len(factors) != 3 or any(f < 1 for f in factors):
            raise ValueError(f"upsample must be three integers >= 1 (T, H, W), got {upsample!r}")
        self.upsample: Axes3 = (factors[0], factors[1], factors[2])
        if with_skip:
            self.rcu1 = ResidualConvUnit3D(channels=channels)
        self.rcu2 = ResidualConvUnit3D(channels=channels)
        self.out_conv = nn.Conv3d(channels, channels, kernel_size=1)

    def forward(self, path_bcthw: torch.Tensor, skip_bcthw: torch.Tensor | None = None) -> torch.Tensor:
        """Fuse and upsample.

        Args:
            path_bcthw: Output of the coarser stage (or the coarsest projected map), `(B, C, t, h, w)`.
            skip_bcthw: Projected map of this stage's hook, `(B, C, t', h', w')` with
                `t' <= t, h' <= h, w' <= w`; only for stages built with `with_skip=True`.

        Returns:
            `(B, C, f_t * t', f_h * h', f_w * w')` (or the path's grid times the factors
            for the coarsest stage).
        """
        if skip_bcthw is not None:
            path_bcthw = crop_to(path_bcthw, skip_bcthw) + self.rcu1(skip_bcthw)
        x = self.rcu2(path_bcthw)
        size = tuple(n * f for n, f in zip(x.shape[-3:], self.upsample, strict=True))
        x = F.interpolate(x, size=size, mode="trilinear", align_corners=True)
        return self.out_conv(x)

    def extra_repr(self) -> str:
        """Show the upsampling factors in the module's repr."""
        return f"upsample={self.upsample}"
