"""Prompt encoder of the tracking head: 3-D random-Fourier positions, label and track-feature prompts.

Coordinates are (t, x, y) in the released *continuous* convention: frame k spans [k, k+1) and
pixel column i spans [i, i+1), so k + 0.5 / i + 0.5 are centres. They are normalised by the
window size (T_win, W, H) of the actual window, so other window and image sizes work; the
released model always used (16, 224, 224).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn


class FourierPositionEncoding3D(nn.Module):
    """Random-Fourier-feature encoding of normalised (t, x, y) coordinates.

    u in [0, 1]^3 is mapped to v = (2u - 1) @ G with a fixed Gaussian matrix G (3, C/2), and
    encoded as concat(sin(2 pi v), cos(2 pi v)) (C channels). G is a persistent buffer: it is part
    of the checkpoint and must be loaded, never drawn again. The encoding is computed in float32
    (as the released code does) and returned in float32.
    """

    gaussian_matrix: torch.Tensor

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"dim must be even, got {dim}")
        self.register_buffer("gaussian_matrix", torch.randn(3, dim // 2))

    def encode(self, coords_unit: torch.Tensor) -> torch.Tensor:
        """Encode coordinates already normalised to [0, 1].

        Args:
            coords_unit: (..., 3) normalised (t, x, y).

        Returns:
            (..., C) float32 encoding.
        """
        coords = 2 * coords_unit.float() - 1
        coords = coords @ self.gaussian_matrix.float()
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def points(self, coords_tyx: torch.Tensor, window_size: tuple[int, int, int]) -> torch.Tensor:
        """Encode continuous window coordinates.

        Args:
            coords_tyx: (..., 3) as (t, x, y): frames from the window start and pixels, +0.5 = centre.
            window_size: (T_win, H, W) of the window in frames and pixels.

        Returns:
            (..., C) float32 encoding.
        """
        t_win, height, width = window_size
        scale = coords_tyx.new_tensor([t_win, width, height], dtype=torch.float32)
        return self.encode(coords_tyx.float() / scale)

    def grid(self, grid_thw: tuple[int, int, int], *, device: torch.device | None = None) -> torch.Tensor:
        """Encode the centres of a token grid.

        Args:
            grid_thw: Token grid (t, h, w).
            device: Device of the result.

        Returns:
            (t*h*w, C) float32, tokens in (t, h, w) raster order.
        """
        t, h, w = grid_thw
        axes = [(torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n for n in (t, h, w)]
        tt, hh, ww = torch.meshgrid(*axes, indexing="ij")
        coords = torch.stack([tt, ww, hh], dim=-1)  # (t, x, y) order
        return rearrange(self.encode(coords), "t h w c -> (t h w) c")


class PromptEncoder(nn.Module):
    """Builds the three prompt tokens of every query: point, padding point, track feature.

    * point: Fourier encoding of the query plus a label embedding: label 0 -> embedding 0,
      label 1 (user query) -> embedding 1, label 2 (re-seeded from the previous window) -> none;
    * padding point: a learned embedding alone (SAM's "no box" padding, label -1);
    * track feature: the feature carried from the previous window (zeros if none) plus
      embedding 0 (no feature yet) or 1 (carried).

    Args:
        dim: Token channels C.
    """

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.pe = FourierPositionEncoding3D(dim=dim)
        self.point_label_embed = nn.Embedding(2, dim)
        self.padding_embed = nn.Embedding(1, dim)
        self.feature_label_embed = nn.Embedding(2, dim)

    def forward(
        self,
        queries_bn3: torch.Tensor,
        point_labels_bn: torch.Tensor,
        track_features_bnc: torch.Tensor,
        track_feature_labels_bn: torch.Tensor,
        window_size: tuple[int, int, int],
    ) -> torch.Tensor:
        """Encode the prompts.

        Args:
            queries_bn3: (B, N, 3) query (t, x, y), t from the window start, continuous convention.
            point_labels_bn: (B, N) point labels in {0, 1, 2} (any numeric dtype).
            track_features_bnc: (B, N, C) carried track features (zeros where none).
            track_feature_labels_bn: (B, N) 0 = no feature yet, 1 = carried.
            window_size: (T_win, H, W) in frames and pixels.

        Returns:
            (B, N, 3, C) prompt tokens in the dtype of `track_features_bnc`.
        """
        dtype = track_features_bnc.dtype
        point = self.pe.points(queries_bn3, window_size).to(dtype)
        label_embed = self.point_label_embed.weight.to(dtype)
        point = torch.where((point_labels_bn == 0)[..., None], point + label_embed[0], point)
        point = torch.where((point_labels_bn == 1)[..., None], point + label_embed[1], point)

        padding = self.padding_embed.weight.to(dtype).expand_as(point)

        feature_embed = self.feature_label_embed.weight.to(dtype)
        carried = (track_feature_labels_bn == 1)[..., None]
        feature = track_features_bnc + torch.where(carried, feature_embed[1], feature_embed[0])
        return torch.stack([point, padding, feature], dim=2)
