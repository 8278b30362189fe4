"""3-D mask decoder of the tracking head: per-query heatmaps read out as position, visibility, depth.

Three learned output tokens ("xy", "vis", "depth") go through the two-way transformer together
with the prompt tokens. Each output token becomes, through its own hypernetwork MLP, a set of
weights that is dotted with the upscaled decoded video tokens to give one logit map per frame,
upsampled (trilinear, align_corners=False) to the window's pixels:

* xy: softmax over all H*W pixels of a frame, expected pixel centre -> position (x, y);
* vis: spatial mean of the map -> visibility logit;
* depth: exp of the spatial mean -> positive, scale-ambiguous depth.

Shape letters: m = queries folded with the batch, k = tokens, p = t*h*w video tokens,
c channels; (t, h, w) the token grid, (T, H, W) the window in frames and pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

from l4p.heads.tracking.transformer import TwoWayTransformer

NUM_OUTPUT_TOKENS = 3  # xy, vis, depth


class ChannelLayerNorm3d(nn.Module):
    """LayerNorm over the channel axis of a (B, C, T, H, W) tensor (biased variance, affine)."""

    def __init__(self, *, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """Normalise every voxel's channel vector; returns the input's shape."""
        mean = x_bcthw.mean(1, keepdim=True)
        var = (x_bcthw - mean).pow(2).mean(1, keepdim=True)
        x = (x_bcthw - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None, None] * x + self.bias[:, None, None, None]


class Upscaler3D(nn.Module):
    """Upsample decoded video tokens: x2 in t, h, w, then x2 in h, w (token grid -> 2t x 4h x 4w)."""

    def __init__(self, *, dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.deconv1 = nn.ConvTranspose3d(dim, hidden_dim, kernel_size=2, stride=2)
        self.norm = ChannelLayerNorm3d(channels=hidden_dim, eps=1e-6)
        self.deconv2 = nn.ConvTranspose3d(hidden_dim, out_dim, kernel_size=(1, 2, 2), stride=(1, 2, 2))

    def forward(self, x_bcthw: torch.Tensor) -> torch.Tensor:
        """(B, C, t, h, w) -> (B, out_dim, 2t, 4h, 4w)."""
        x = F.gelu(self.norm(self.deconv1(x_bcthw)))
        return F.gelu(self.deconv2(x))


class HyperMLP(nn.Module):
    """Three linear layers with ReLU between them (none after the last)."""

    def __init__(self, *, dim: int, out_dim: int, num_layers: int = 3) -> None:
        super().__init__()
        dims = [dim] * num_layers + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (..., dim) to (..., out_dim)."""
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


@dataclass
class DecodedQueries:
    """Raw per-query results of one window (queries folded into m).

    Attributes:
        traj: (M, T, 2) expected pixel position (x, y), +0.5 = pixel centre.
        vis: (M, T) visibility logits.
        depth: (M, T) depth, exp of the mean logit.
        xy_logits: (M, 2t, 4h, 4w) position logits before the resize to the window (what a
            heatmap loss supervises; `traj` is read from their resized softmax).
        tokens: (M, K, C) output and prompt tokens after the transformer.
        video_tokens: (M, P, C) decoded video tokens.
    """

    traj: torch.Tensor
    vis: torch.Tensor
    depth: torch.Tensor
    xy_logits: torch.Tensor
    tokens: torch.Tensor
    video_tokens: torch.Tensor


class MaskDecoder3D(nn.Module):
    """Output tokens + two-way transformer + upscaler + hypernetworks + readout.

    Args:
        transformer: The built two-way transformer.
        dim: Token channels C.
        out_dim_factor: Channels of the upscaled maps are C // out_dim_factor (8 released);
            the intermediate upscaler width is min(2 C // out_dim_factor, C).
    """

    def __init__(self, *, transformer: TwoWayTransformer, dim: int, out_dim_factor: int = 8) -> None:
        super().__init__()
        out_dim = dim // out_dim_factor
        self.transformer = transformer
        self.output_tokens = nn.Embedding(NUM_OUTPUT_TOKENS, dim)
        self.upscaler = Upscaler3D(dim=dim, hidden_dim=min(2 * dim // out_dim_factor, dim), out_dim=out_dim)
        self.hypernetworks = nn.ModuleList(
            HyperMLP(dim=dim, out_dim=out_dim) for _ in range(NUM_OUTPUT_TOKENS)
        )

    def forward(
        self,
        video_mpc: torch.Tensor,
        video_pe_pc: torch.Tensor,
        prompts_mkc: torch.Tensor,
        grid_thw: tuple[int, int, int],
        window_size: tuple[int, int, int],
    ) -> DecodedQueries:
        """Decode every query's heatmaps and read them out.

        Args:
            video_mpc: Video tokens per query (M, P, C), P = t*h*w in raster order.
            video_pe_pc: Positional encoding of the token grid (P, C).
            prompts_mkc: Prompt tokens (M, 3, C).
            grid_thw: Token grid (t, h, w).
            window_size: (T, H, W) of the window in frames and pixels.

        Returns:
            The readouts and the transformer's tokens.
        """
        out_tokens = self.output_tokens.weight.to(prompts_mkc.dtype).expand(prompts_mkc.shape[0], -1, -1)
        tokens, video = self.transformer(video_mpc, video_pe_pc, torch.cat([out_tokens, prompts_mkc], 1))

        t, h, w = grid_thw
        upscaled = self.upscaler(rearrange(video, "m (t h w) c -> m c t h w", t=t, h=h, w=w))
        hyper = torch.stack([mlp(tokens[:, i]) for i, mlp in enumerate(self.hypernetworks)], dim=1)
        coarse = torch.einsum("mkc,mcthw->mkthw", hyper, upscaled)
        logits = F.interpolate(coarse, size=window_size, mode="trilinear", align_corners=False)
        return DecodedQueries(
            traj=soft_argmax_2d(logits[:, 0]),
            vis=logits[:, 1].mean(dim=(-2, -1)),
            depth=torch.exp(logits[:, 2].mean(dim=(-2, -1))),
            xy_logits=coarse[:, 0],
            tokens=tokens,
            video_tokens=video,
        )


def soft_argmax_2d(logits_mthw: torch.Tensor) -> torch.Tensor:
    """Expected pixel centre under a per-frame softmax over all pixels (no temperature).

    The expectation is taken through the x and y marginals of the softmax. That is the same
    quantity as a dot product of the probabilities with the full (H*W, 2) grid, but cheaper, and
    in float32 about ten times more accurate on peaked maps (the long dot product accumulates
    rounding error).

    Args:
        logits_mthw: (M, T, H, W) logits.

    Returns:
        (M, T, 2) as (x, y) in pixels; pixel (col i, row j) has centre (i + 0.5, j + 0.5).
    """
    _, _, height, width = logits_mthw.shape
    prob = torch.softmax(rearrange(logits_mthw, "m t h w -> m t (h w)"), dim=-1)
    prob = rearrange(prob, "m t (h w) -> m t h w", h=height)
    dtype, device = logits_mthw.dtype, logits_mthw.device
    xs = torch.arange(width, dtype=dtype, device=device) + 0.5
    ys = torch.arange(height, dtype=dtype, device=device) + 0.5
    x = reduce(prob, "m t h w -> m t w", "sum") @ xs
    y = reduce(prob, "m t h w -> m t h", "sum") @ ys
    return torch.stack([x, y], dim=-1)
