"""Tubelet patch embedding for video."""

from __future__ import annotations

import torch
from torch import nn


class PatchEmbed3d(nn.Module):
    """Conv3d with kernel = stride = (tubelet, patch, patch), with bias.

    Args:
        in_channels: Input channels (3 for RGB).
        dim: Token width C.
        tubelet: Frames per token.
        patch: Pixels per token side.
    """

    def __init__(self, *, in_channels: int = 3, dim: int, tubelet: int = 2, patch: int = 16) -> None:
        super().__init__()
        self.tubelet = tubelet
        self.patch = patch
        size = (tubelet, patch, patch)
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=size, stride=size)

    def grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Token grid (t, h, w) for a clip of `frames` x `height` x `width` pixels."""
        return frames // self.tubelet, height // self.patch, width // self.patch

    def forward(self, video_bcthw: torch.Tensor) -> torch.Tensor:
        """Embed a clip.

        Args:
            video_bcthw: (B, 3, T, H, W) with T a multiple of the tubelet and H, W of the patch.

        Returns:
            Token map (B, C, t, h, w).
        """
        _, _, t, h, w = video_bcthw.shape
        if t % self.tubelet or h % self.patch or w % self.patch:
            raise ValueError(
                f"clip of {t}x{h}x{w} (frames x height x width) is not a multiple of the token size "
                f"{self.tubelet}x{self.patch}x{self.patch}; pad or resize it first "
                "(L4PPredictor does this for you)"
            )
        return self.proj(video_bcthw)
