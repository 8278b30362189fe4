"""Multi-head self-attention with VideoMAEv2's separate q/v biases (k has none)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class Attention(nn.Module):
    """Self-attention over tokens through `scaled_dot_product_attention`.

    The qkv projection has no bias of its own; `q_bias` and `v_bias` are separate
    parameters and the key bias is fixed at zero, as in VideoMAE/VideoMAEv2.
    On CUDA, SDPA picks the fused flash/memory-efficient kernels.
    """

    def __init__(self, *, dim: int, num_heads: int, qv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qv_bias else None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x_bpc: torch.Tensor) -> torch.Tensor:
        """Attend over all tokens.

        Args:
            x_bpc: Tokens (B, P, C).

        Returns:
            (B, P, C).
        """
        bias = None
        if self.q_bias is not None and self.v_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x_bpc, self.qkv.weight, bias)
        q, k, v = rearrange(qkv, "b p (three h d) -> three b h p d", three=3, h=self.num_heads)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.head_dim**-0.5)
        return self.proj(rearrange(out, "b h p d -> b p (h d)"))
