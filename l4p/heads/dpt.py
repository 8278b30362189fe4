"""Shared 3D DPT decoder: four encoder token maps to one dense spatio-temporal map.

This is the DPT decoder (reassemble, project, fuse, head) with every 2-D operation replaced
by its 3-D counterpart, as used by all dense L4P heads. Parameter names are ours; see
`l4p.checkpoints.released_dense.convert_released_dpt` for the mapping from the released ones.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from l4p.heads.dpt_blocks import FusionBlock3D, Reassemble3D

NUM_LEVELS = 4


class DPT3D(nn.Module):
    """3D DPT decoder.

    Level 0 is the finest (earliest hook), level 3 the coarsest. For a token grid
    `(t, h, w)` and the released factors (reassemble exponents
    `((1,2,2), (1,1,1), (0,0,0), (-1,-1,-1))`, fusion multipliers
    `((1,2,2), (1,2,2), (2,2,2), (2,2,2))`) the levels are
    `(2t, 4h, 4w)`, `(2t, 2h, 2w)`, `(t, h, w)` and `(ceil(t/2), ceil(h/2), ceil(w/2))`, and
    the decoder output before the final resize is `(2t, 8h, 8w)`. Any token grid works
    (e.g. 8x16x20 tokens for a 16x224x280 clip, or 4x16x16 tokens for 8 frames): the coarsest
    stage's upsampled output is cropped to the next level's grid (odd sizes) and the last
    resize goes to whatever `output_size` is asked for.

    Computation: `level_i = project_i(reassemble_i(features_i))`; then
    `path = fusion_3(level_3)`, `path = fusion_i(path, level_i)` for i = 2, 1, 0;
    `x = head1(path)` (3x3x3 conv, no activation); trilinear resize (`align_corners=True`)
    to `output_size` unless already that size; `head2` = 3x3x3 conv, ReLU, 1x1x1 conv.

    Args:
        token_dim: Channels of each incoming token map (the encoder width).
        layer_dims: Channels after each level's 1x1x1 reassemble conv (4 values).
        feature_dim: Channels of the projected levels and of every fusion stage.
        last_dim: Channels after `head1` and inside `head2`.
        out_channels: Channels of the output map.
        reassemble_exponents: Per level, per-axis (T, H, W) power-of-two exponents of the
            reassemble resampling (positive: transposed conv up, negative: strided conv
            down, zero: untouched axis; all zero: identity).
        fusion_upsample: Per level, per-axis (T, H, W) integer upsampling factors of the
            fusion stage (index 0 = finest stage, which runs last).
    """

    def __init__(
        self,
        *,
        token_dim: int,
        layer_dims: Sequence[int],
        feature_dim: int,
        last_dim: int,
        out_channels: int,
        reassemble_exponents: Sequence[Sequence[int]],
        fusion_upsample: Sequence[Sequence[int]],
    ) -> None:
        super().__init__()
        if not len(layer_dims) == len(reassemble_exponents) == len(fusion_upsample) == NUM_LEVELS:
            raise ValueError(
                f"layer_dims, reassemble_exponents and fusion_upsample need {NUM_LEVELS} entries each"
            )
        self.reassemble = nn.ModuleList(
            Reassemble3D(token_dim=token_dim, out_dim=dim, exponents=exps)
            for dim, exps in zip(layer_dims, reassemble_exponents, strict=True)
        )
        self.project = nn.ModuleList(
            nn.Conv3d(dim, feature_dim, kernel_size=3, padding=1, bias=False) for dim in layer_dims
        )
        self.fusion = nn.ModuleList(
            FusionBlock3D(channels=feature_dim, upsample=factors, with_skip=level < NUM_LEVELS - 1)
            for level, factors in enumerate(fusion_upsample)
        )
        self.head1 = nn.Conv3d(feature_dim, last_dim, kernel_size=3, padding=1)
        self.head2 = nn.Sequential(
            OrderedDict(
                conv=nn.Conv3d(last_dim, last_dim, kernel_size=3, padding=1),
                relu=nn.ReLU(),
                out=nn.Conv3d(last_dim, out_channels, kernel_size=1),
            )
        )

    def forward(self, features: Sequence[torch.Tensor], output_size: tuple[int, int, int]) -> torch.Tensor:
        """Decode.

        Args:
            features: Four token maps `(B, token_dim, t, h, w)`, finest hook first (the caller
                reshapes `(B, t*h*w, C)` tokens, ordered t-major then h then w, to maps).
            output_size: Output grid `(T, H, W)` (frames, pixels).

        Returns:
            `(B, out_channels, T, H, W)` in the features' dtype and device.
        """
        if len(features) != NUM_LEVELS:
            raise ValueError(f"expected {NUM_LEVELS} feature maps, got {len(features)}")
        levels = [
            project(reassemble(tokens))
            for tokens, reassemble, project in zip(features, self.reassemble, self.project, strict=True)
        ]
        path = self.fusion[-1](levels[-1])
        for level in range(NUM_LEVELS - 2, -1, -1):
            path = self.fusion[level](path, levels[level])
        x = self.head1(path)
        size = tuple(int(n) for n in output_size)
        if tuple(x.shape[-3:]) != size:
            x = F.interpolate(x, size=size, mode="trilinear", align_corners=True)
        return self.head2(x)
