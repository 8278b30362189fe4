"""Pre-norm transformer block with optional layer scale."""

from __future__ import annotations

import torch
from torch import nn

from l4p.models.layers.attention import Attention
from l4p.models.layers.mlp import Mlp


class LayerScale(nn.Module):
    """Per-channel learnable scale (`gamma`), initialised to `init_value`."""

    def __init__(self, *, dim: int, init_value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale the last axis."""
        return x * self.gamma


class Block(nn.Module):
    """x += ls1(attn(norm1(x))); x += ls2(mlp(norm2(x))).

    Args:
        dim: Token width C.
        num_heads: Attention heads.
        mlp_hidden_dim: Hidden width of the MLP.
        norm_eps: LayerNorm epsilon (1e-6 in VideoMAEv2).
        layer_scale_init: Initial layer-scale value; `None` disables layer scale.
        qv_bias: Whether attention has separate q and v biases.
    """

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        mlp_hidden_dim: int,
        norm_eps: float = 1e-6,
        layer_scale_init: float | None = None,
        qv_bias: bool = True,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim=dim, num_heads=num_heads, qv_bias=qv_bias)
        self.ls1: nn.Module = (
            LayerScale(dim=dim, init_value=layer_scale_init) if layer_scale_init else nn.Identity()
        )
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim=dim, hidden_dim=mlp_hidden_dim)
        self.ls2: nn.Module = (
            LayerScale(dim=dim, init_value=layer_scale_init) if layer_scale_init else nn.Identity()
        )

    def forward(self, x_bpc: torch.Tensor) -> torch.Tensor:
        """Tokens (B, P, C) -> (B, P, C)."""
        x_bpc = x_bpc + self.ls1(self.attn(self.norm1(x_bpc)))
        return x_bpc + self.ls2(self.mlp(self.norm2(x_bpc)))
