"""The L4P point-tracking head: a stateless forward over one window.

Cross-window state (carried track features, history tokens, re-seeded queries) lives in
`l4p.heads.tracking.memory`; this module only maps one window's inputs to its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from l4p.heads.tracking.mask_decoder import NUM_OUTPUT_TOKENS, MaskDecoder3D
from l4p.heads.tracking.prompt_encoder import PromptEncoder
from l4p.heads.tracking.transformer import TwoWayTransformer

# Token order in the transformer: 3 output tokens, then point, padding point, track feature.
TRACK_FEATURE_TOKEN = NUM_OUTPUT_TOKENS + 2


@dataclass
class TrackWindowOutput:
    """Outputs of the tracking head for one window.

    Attributes:
        traj: (B, N, T, 2) position (x, y) in window pixels, +0.5 = pixel centre.
        vis: (B, N, T) visibility logits.
        depth: (B, N, T) positive, scale-ambiguous depth.
        xy_logits: (B, N, T', H', W') position logits on the upscaled token grid, before the
            resize to the window (for heatmap losses).
        track_feature: (B, N, C) feature to prompt the next window with.
        decoded_tokens: (B, N, P, C) decoded video tokens before the history projection
            (see `TrackingHead.history_from_decoded`).
    """

    traj: torch.Tensor
    vis: torch.Tensor
    depth: torch.Tensor
    xy_logits: torch.Tensor
    track_feature: torch.Tensor
    decoded_tokens: torch.Tensor


class TrackingHead(nn.Module):
    """SAM-style point-tracking head over the encoder's final-normed video tokens.

    Every query is decoded independently: its own copy of the window's video tokens (plus its
    history tokens) attends with six tokens (three output tokens, the query point, a padding
    point and the carried track feature) through a two-way transformer; the decoded tokens
    are upscaled into per-frame heatmaps read out as position, visibility and depth.

    Args:
        dim: Token channels C of the encoder (1408 released).
        num_heads: Attention heads of the two-way transformer (8).
        mlp_dim: Hidden width of the transformer MLPs (2048).
        depth: Number of two-way blocks (2).
        attention_downsample_rate: Channel reduction inside the cross-attentions (2).
        out_dim_factor: Heatmap feature channels are C // out_dim_factor (8).
        window_size: Default window (T, H, W) in frames and pixels, (16, 224, 224).
        patch_size: Tubelet/patch (t, h, w) of one token, (2, 14, 14).
        max_queries: Queries decoded at once; more are processed in chunks. It bounds memory;
            results do not depend on it beyond float rounding of batch-size-dependent kernels.
    """

    def __init__(
        self,
        *,
        dim: int = 1408,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        depth: int = 2,
        attention_downsample_rate: int = 2,
        out_dim_factor: int = 8,
        window_size: tuple[int, int, int] = (16, 224, 224),
        patch_size: tuple[int, int, int] = (2, 14, 14),
        max_queries: int = 128,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.patch_size = patch_size
        self.max_queries = max_queries
        self.prompt_encoder = PromptEncoder(dim=dim)
        transformer = TwoWayTransformer(
            dim=dim,
            depth=depth,
            num_heads=num_heads,
            mlp_dim=mlp_dim,
            downsample_rate=attention_downsample_rate,
        )
        self.mask_decoder = MaskDecoder3D(transformer=transformer, dim=dim, out_dim_factor=out_dim_factor)
        self.track_feature_proj = nn.Linear(dim, dim)
        self.history_mask_token = nn.Embedding(1, dim)
        self.history_proj = nn.Linear(dim, dim)

    @property
    def default_grid(self) -> tuple[int, int, int]:
        """Token grid (t, h, w) of the default window."""
        (t, h, w), (pt, ph, pw) = self.window_size, self.patch_size
        return t // pt, h // ph, w // pw

    def window_size_for(self, grid_thw: tuple[int, int, int]) -> tuple[int, int, int]:
        """Window (T, H, W) in frames and pixels covered by a token grid."""
        (t, h, w), (pt, ph, pw) = grid_thw, self.patch_size
        return t * pt, h * ph, w * pw

    def forward(
        self,
        video_tokens_bpc: torch.Tensor,
        *,
        grid_thw: tuple[int, int, int],
        queries_bn3: torch.Tensor,
        point_labels_bn: torch.Tensor,
        track_features_bnc: torch.Tensor,
        track_feature_labels_bn: torch.Tensor,
        history_bnpc: torch.Tensor,
    ) -> TrackWindowOutput:
        """Track every query through one window.

        The window in pixels is `grid_thw * patch_size`; the query encoding is normalised and
        the soft-argmax grid is laid out in that window (the released model: 16 x 224 x 224).

        Args:
            video_tokens_bpc: (B, P, C) final-normed encoder tokens, P = t*h*w in raster order.
            grid_thw: Token grid (t, h, w) of `video_tokens_bpc`.
            queries_bn3: (B, N, 3) (t, x, y) continuous coordinates (frame k spans [k, k+1),
                pixel column i spans [i, i+1)), t counted from the window start.
            point_labels_bn: (B, N) 1 = user query, 2 = re-seeded from the previous window,
                0 = unused/invalid.
            track_features_bnc: (B, N, C) carried track features, zeros where none.
            track_feature_labels_bn: (B, N) 0 = no feature yet, 1 = carried.
            history_bnpc: (B, N, P, C) history tokens added per query to the video tokens (the
                history mask token everywhere in a first window; an expanded view is fine).

        Returns:
            The window's outputs (see `TrackWindowOutput`).
        """
        b, n = queries_bn3.shape[:2]
        window_size = self.window_size_for(grid_thw)
        video_pe = self.prompt_encoder.pe.grid(grid_thw, device=video_tokens_bpc.device)
        video_pe = video_pe.to(video_tokens_bpc.dtype)
        prompts = self.prompt_encoder(
            queries_bn3, point_labels_bn, track_features_bnc, track_feature_labels_bn, window_size
        )
        prompts = rearrange(prompts, "b n k c -> (b n) k c")

        chunks = []
        if b * n <= self.max_queries:  # one pass, no gather: the path `l4p.deploy` exports to ONNX
            video = rearrange(video_tokens_bpc[:, None] + history_bnpc, "b n p c -> (b n) p c")
            chunks.append(self.mask_decoder(video, video_pe, prompts, grid_thw, window_size))
        for start in range(0, 0 if chunks else b * n, self.max_queries):
            index = torch.arange(start, min(start + self.max_queries, b * n), device=queries_bn3.device)
            bi, ni = index // n, index % n
            # Gather per chunk so that a full (B*N, P, C) copy never exists at once.
            video = video_tokens_bpc[bi] + history_bnpc[bi, ni]
            chunks.append(self.mask_decoder(video, video_pe, prompts[index], grid_thw, window_size))

        def gather(name: str) -> torch.Tensor:
            return rearrange(torch.cat([getattr(c, name) for c in chunks]), "(b n) ... -> b n ...", b=b)

        tokens = gather("tokens")
        return TrackWindowOutput(
            traj=gather("traj"),
            vis=gather("vis"),
            depth=gather("depth"),
            xy_logits=gather("xy_logits"),
            track_feature=self.track_feature_proj(tokens[:, :, TRACK_FEATURE_TOKEN]),
            decoded_tokens=gather("video_tokens"),
        )

    def history_from_decoded(self, decoded_tokens: torch.Tensor) -> torch.Tensor:
        """Project decoded video tokens into history tokens for the next window.

        Args:
            decoded_tokens: (..., C) any subset of `TrackWindowOutput.decoded_tokens`
                (the projection is per token).

        Returns:
            (..., C) history tokens.
        """
        return self.history_proj(decoded_tokens)

    def history_mask(self) -> torch.Tensor:
        """The history token of frames that have no history yet, (C,)."""
        return self.history_mask_token.weight[0]
