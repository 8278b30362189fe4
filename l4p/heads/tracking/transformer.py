"""Two-way transformer of the tracking head: prompt tokens and video tokens attend to each other.

The layout follows the SAM mask decoder's transformer (Kirillov et al., 2023), extended to
video tokens: a few prompt/output tokens per query and all P video tokens of the window,
updated alternately. Every query is an independent batch element (no attention across
queries), so callers fold queries into the batch axis.

Shape letters: m = batch of queries (B*N folded), k = prompt/output tokens (6 for L4P),
p = video tokens (t*h*w), c = embedding channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class TokenAttention(nn.Module):
    """Multi-head attention with separate q/k/v projections and an optional inner down-projection.

    The projections map `dim` to `dim // downsample_rate` channels, split into `num_heads`
    heads; the output projection maps back to `dim`. Scores use the usual 1/sqrt(head_dim).
    """

    def __init__(self, *, dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        inner = dim // downsample_rate
        if inner % num_heads:
            raise ValueError(f"inner dim {inner} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = inner // num_heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(dim, inner)
        self.v_proj = nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def forward(self, q_mqc: torch.Tensor, k_mkc: torch.Tensor, v_mkc: torch.Tensor) -> torch.Tensor:
        """Attend from `q` to `k`/`v`.

        Args:
            q_mqc: Queries (M, Lq, C).
            k_mkc: Keys (M, Lk, C).
            v_mkc: Values (M, Lk, C).

        Returns:
            (M, Lq, C).
        """
        q = rearrange(self.q_proj(q_mqc), "m l (h d) -> m h l d", h=self.num_heads)
        k = rearrange(self.k_proj(k_mkc), "m l (h d) -> m h l d", h=self.num_heads)
        v = rearrange(self.v_proj(v_mkc), "m l (h d) -> m h l d", h=self.num_heads)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.head_dim**-0.5)
        return self.out_proj(rearrange(out, "m h l d -> m l (h d)"))


class FeedForward(nn.Module):
    """Two linear layers with a ReLU in between (the two-way block's MLP)."""

    def __init__(self, *, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply fc2(relu(fc1(x))) on the last axis."""
        return self.fc2(F.relu(self.fc1(x)))


class TwoWayBlock(nn.Module):
    """One two-way layer: token self-attention, token->video, MLP, video->token.

    Every step is post-norm (residual, then LayerNorm with PyTorch's default eps 1e-5).
    Positional encodings are added to queries and keys of every attention, never to values.
    """

    def __init__(self, *, dim: int, num_heads: int, mlp_dim: int, downsample_rate: int) -> None:
        super().__init__()
        self.self_attn = TokenAttention(dim=dim, num_heads=num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = TokenAttention(
            dim=dim, num_heads=num_heads, downsample_rate=downsample_rate
        )
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim=dim, hidden_dim=mlp_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = TokenAttention(
            dim=dim, num_heads=num_heads, downsample_rate=downsample_rate
        )

    def _self_attention(self, tokens_mkc: torch.Tensor, token_pe_mkc: torch.Tensor) -> torch.Tensor:
        """Residual self-attention with the token encodings added to queries and keys."""
        q = tokens_mkc + token_pe_mkc
        return tokens_mkc + self.self_attn(q, q, tokens_mkc)

    def forward(
        self,
        tokens_mkc: torch.Tensor,
        video_mpc: torch.Tensor,
        token_pe_mkc: torch.Tensor,
        video_pe_mpc: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Update both token sets.

        Args:
            tokens_mkc: Prompt/output tokens (M, K, C).
            video_mpc: Video tokens (M, P, C).
            token_pe_mkc: Initial tokens, used as their positional encoding (M, K, C).
            video_pe_mpc: Positional encoding of the video tokens (M or 1, P, C).

        Returns:
            Updated tokens (M, K, C) and video tokens (M, P, C).
        """
        tokens_mkc = self.norm1(self._self_attention(tokens_mkc, token_pe_mkc))

        q = tokens_mkc + token_pe_mkc
        k = video_mpc + video_pe_mpc
        tokens_mkc = self.norm2(tokens_mkc + self.cross_attn_token_to_image(q, k, video_mpc))

        tokens_mkc = self.norm3(tokens_mkc + self.mlp(tokens_mkc))

        q = tokens_mkc + token_pe_mkc
        video_mpc = self.norm4(video_mpc + self.cross_attn_image_to_token(k, q, tokens_mkc))
        return tokens_mkc, video_mpc


class FirstTwoWayBlock(TwoWayBlock):
    """The first two-way layer: its self-attention *replaces* the tokens (no residual, no encoding).

    At the first layer the tokens still equal their encodings, so SAM skips both there.
    """

    def _self_attention(self, tokens_mkc: torch.Tensor, token_pe_mkc: torch.Tensor) -> torch.Tensor:
        return self.self_attn(tokens_mkc, tokens_mkc, tokens_mkc)


class TwoWayTransformer(nn.Module):
    """A stack of two-way blocks followed by a last token->video attention.

    Args:
        dim: Token channels C (1408 for the released model).
        depth: Number of two-way blocks (2 released).
        num_heads: Attention heads (8 released).
        mlp_dim: Hidden width of each block's MLP (2048 released).
        downsample_rate: Channel reduction inside the cross-attentions (2 released).
    """

    def __init__(
        self, *, dim: int, depth: int = 2, num_heads: int = 8, mlp_dim: int = 2048, downsample_rate: int = 2
    ) -> None:
        super().__init__()
        kwargs = dict(dim=dim, num_heads=num_heads, mlp_dim=mlp_dim, downsample_rate=downsample_rate)
        blocks = [FirstTwoWayBlock(**kwargs)] + [TwoWayBlock(**kwargs) for _ in range(depth - 1)]
        self.layers = nn.ModuleList(blocks)
        self.final_attn_token_to_image = TokenAttention(
            dim=dim, num_heads=num_heads, downsample_rate=downsample_rate
        )
        self.norm_final = nn.LayerNorm(dim)

    def forward(
        self, video_mpc: torch.Tensor, video_pe_pc: torch.Tensor, tokens_mkc: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the two-way attention.

        Args:
            video_mpc: Video tokens per query (M, P, C).
            video_pe_pc: Positional encoding of the video tokens (P, C), shared by all queries.
            tokens_mkc: Initial prompt/output tokens (M, K, C); they also serve as their own encoding.

        Returns:
            The updated tokens (M, K, C) and the decoded video tokens (M, P, C).
        """
        video_pe = video_pe_pc[None]
        queries, keys = tokens_mkc, video_mpc
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens_mkc, video_pe)
        q = queries + tokens_mkc
        k = keys + video_pe
        queries = self.norm_final(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
