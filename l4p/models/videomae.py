"""VideoMAE / VideoMAEv2 ViT video encoder, used as a feature pyramid.

Tokens come from tubelet-2 Conv3d patches, get a fixed 1-D sinusoid position table,
and run through pre-norm blocks (LayerNorm eps 1e-6, separate q/v biases, exact GELU,
optional layer scale). Token order is (t, h, w) row-major: id = t*h*w_ + h*w_ + w.

Presets (`ENCODER_PRESETS`): `vit_g14` is the released L4P encoder (VideoMAEv2 ViT-g/14:
1408 wide, 40 blocks, 16 heads, MLP ratio 48/11, patch 14); `vit_l16`, `vit_b16`, `vit_s16`
have the VideoMAE shapes; `vit_test` is a tiny model for tests.

Other clip sizes: any T that is a multiple of the tubelet and H, W that are multiples of
the patch run; the position table is resampled from the native grid (16 frames,
224x224 pixels) to the actual token grid by trilinear interpolation (see
`resample_pos_table`). The native grid uses the table exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from l4p.models.layers import Block, PatchEmbed3d, resample_pos_table, sinusoid_table


@dataclass
class EncoderFeatures:
    """Features returned by `VideoMAEEncoder.forward_intermediates`.

    Attributes:
        intermediates: One tensor per requested index, in request order: index 0 is the
            patch embedding plus position table, index i the raw output of block i (1-based).
            Layout (B, C, t, h, w) for `output_fmt="NCTHW"`, (B, P, C) for `"NLC"`.
        final: Output of the final LayerNorm applied to the last block, same layout, or
            None when it was not requested.
        grid: Token grid (t, h, w).
    """

    intermediates: list[torch.Tensor]
    final: torch.Tensor | None
    grid: tuple[int, int, int]


class VideoMAEEncoder(nn.Module):
    """ViT video encoder (VideoMAE/VideoMAEv2 layout).

    Args:
        dim: Token width C.
        depth: Number of blocks.
        num_heads: Attention heads.
        mlp_hidden_dim: MLP hidden width (VideoMAEv2-g: int(1408 * 48 / 11) = 6144).
        patch: Patch side in pixels.
        tubelet: Frames per token.
        num_frames: Native clip length of the position table.
        image_size: Native (H, W) of the position table.
        norm_eps: LayerNorm epsilon of every norm.
        layer_scale_init: Layer-scale initial value, or None for no layer scale.
        qv_bias: Separate q and v biases in attention.
        final_norm: Apply a final LayerNorm (`norm`); `False` makes it an identity
            (checkpoints that pool with `fc_norm` instead).
    """

    def __init__(
        self,
        *,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_hidden_dim: int,
        patch: int = 16,
        tubelet: int = 2,
        num_frames: int = 16,
        image_size: tuple[int, int] = (224, 224),
        norm_eps: float = 1e-6,
        layer_scale_init: float | None = None,
        qv_bias: bool = True,
        final_norm: bool = True,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.depth = depth
        self.patch_embed = PatchEmbed3d(dim=dim, tubelet=tubelet, patch=patch)
        self.native_grid = self.patch_embed.grid(num_frames, *image_size)
        self.blocks = nn.ModuleList(
            Block(
                dim=dim,
                num_heads=num_heads,
                mlp_hidden_dim=mlp_hidden_dim,
                norm_eps=norm_eps,
                layer_scale_init=layer_scale_init,
                qv_bias=qv_bias,
            )
            for _ in range(depth)
        )
        self.norm: nn.Module = nn.LayerNorm(dim, eps=norm_eps) if final_norm else nn.Identity()
        self.grad_checkpointing = False
        self._pos_cache: dict[tuple, torch.Tensor] = {}

    @property
    def patch_size(self) -> tuple[int, int, int]:
        """(tubelet, patch, patch)."""
        return self.patch_embed.tubelet, self.patch_embed.patch, self.patch_embed.patch

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute block activations in the backward pass to save memory."""
        self.grad_checkpointing = enable

    def pos_table(
        self, grid: tuple[int, int, int], *, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        """Position table (P, C) for a token grid, cached per grid, device and dtype."""
        key = (tuple(grid), device, dtype)
        if key not in self._pos_cache:
            t0, h0, w0 = self.native_grid
            table = sinusoid_table(t0 * h0 * w0, self.dim)
            table = resample_pos_table(table, native_grid=self.native_grid, grid=grid)
            self._pos_cache[key] = table.to(device=device, dtype=dtype)
        return self._pos_cache[key]

    def embed(self, video_bcthw: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Patch-embed a clip and add the position table: returns tokens (B, P, C) and the grid."""
        x = self.patch_embed(video_bcthw)
        grid = (x.shape[2], x.shape[3], x.shape[4])
        x = rearrange(x, "b c t h w -> b (t h w) c")
        return x + self.pos_table(grid, device=x.device, dtype=x.dtype), grid

    def _run_block(self, block: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def forward_intermediates(
        self,
        video_bcthw: torch.Tensor,
        indices: Sequence[int],
        *,
        return_final: bool = True,
        output_fmt: Literal["NCTHW", "NLC"] = "NCTHW",
    ) -> EncoderFeatures:
        """Run the encoder and return the requested intermediate features.

        Blocks after the last one needed are not run when `return_final` is False, and
        only the requested features are kept.

        Args:
            video_bcthw: (B, 3, T, H, W), normalised RGB.
            indices: Feature indices: 0 = embedding, i = raw output of block i (1-based).
            return_final: Also return the final-normed output of the last block.
            output_fmt: "NCTHW" for (B, C, t, h, w) maps, "NLC" for (B, P, C) tokens.

        Returns:
            EncoderFeatures.
        """
        bad = [i for i in indices if not 0 <= i <= self.depth]
        if bad:
            raise ValueError(
                f"feature indices {bad} are outside 0..{self.depth} for a {self.depth}-block encoder"
            )
        x, grid = self.embed(video_bcthw)
        wanted = set(indices)
        last = self.depth if return_final else max(indices, default=0)
        kept = {0: x} if 0 in wanted else {}
        for i, block in enumerate(self.blocks[:last], start=1):
            x = self._run_block(block, x)
            if i in wanted:
                kept[i] = x
        final = self.norm(x) if return_final else None

        def fmt(tokens: torch.Tensor) -> torch.Tensor:
            if output_fmt == "NLC":
                return tokens
            t, h, w = grid
            return rearrange(tokens, "b (t h w) c -> b c t h w", t=t, h=h, w=w)

        return EncoderFeatures(
            intermediates=[fmt(kept[i]) for i in indices],
            final=None if final is None else fmt(final),
            grid=grid,
        )

    def forward(self, video_bcthw: torch.Tensor) -> torch.Tensor:
        """Final-normed tokens (B, P, C) of a clip (B, 3, T, H, W)."""
        return self.forward_intermediates(video_bcthw, (), output_fmt="NLC").final  # type: ignore[return-value]


def vit_g14(**overrides) -> VideoMAEEncoder:
    """VideoMAEv2 ViT-g/14, the released L4P encoder (1.01 B parameters)."""
    kwargs = dict(dim=1408, depth=40, num_heads=16, mlp_hidden_dim=int(1408 * 48 / 11), patch=14)
    return VideoMAEEncoder(**{**kwargs, **overrides})


def vit_l16(**overrides) -> VideoMAEEncoder:
    """VideoMAE ViT-L/16."""
    return VideoMAEEncoder(
        **{**dict(dim=1024, depth=24, num_heads=16, mlp_hidden_dim=4096, patch=16), **overrides}
    )


def vit_b16(**overrides) -> VideoMAEEncoder:
    """VideoMAE ViT-B/16."""
    return VideoMAEEncoder(
        **{**dict(dim=768, depth=12, num_heads=12, mlp_hidden_dim=3072, patch=16), **overrides}
    )


def vit_s16(**overrides) -> VideoMAEEncoder:
    """VideoMAE ViT-S/16."""
    return VideoMAEEncoder(
        **{**dict(dim=384, depth=12, num_heads=6, mlp_hidden_dim=1536, patch=16), **overrides}
    )


def vit_test(**overrides) -> VideoMAEEncoder:
    """Tiny encoder for tests: 32 wide, 4 blocks, patch 14, native 16x224x224."""
    return VideoMAEEncoder(**{**dict(dim=32, depth=4, num_heads=2, mlp_hidden_dim=64, patch=14), **overrides})


ENCODER_PRESETS: dict[str, Callable[..., VideoMAEEncoder]] = {
    "vit_g14": vit_g14,
    "vit_l16": vit_l16,
    "vit_b16": vit_b16,
    "vit_s16": vit_s16,
    "vit_test": vit_test,
}


def build_encoder(name: str, **overrides) -> VideoMAEEncoder:
    """Build an encoder preset by name, with keyword overrides of its constructor arguments."""
    if name not in ENCODER_PRESETS:
        raise ValueError(f"unknown encoder preset {name!r}; choose one of {sorted(ENCODER_PRESETS)}")
    return ENCODER_PRESETS[name](**overrides)
