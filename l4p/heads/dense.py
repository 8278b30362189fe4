"""Dense task heads: thin wrappers that give a built `DPT3D` decoder its task's meaning.

Every head has the same call: `head(features, output_size)` with `features` four token maps
`(B, C, t, h, w)` (finest hook first) and `output_size = (T, H, W)`, the clip's frames and
pixels at the model's input resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from l4p.heads.dpt import DPT3D

DenseHeadKind = Literal["depth", "flow", "motion", "camera_ray"]

# Released per-level factors, finest level first. Reassemble: power-of-two exponents per
# axis (T, H, W); fusion: integer upsampling multipliers per axis.
_PIXEL_REASSEMBLE = ((1, 2, 2), (1, 1, 1), (0, 0, 0), (-1, -1, -1))
_PIXEL_FUSION = ((1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2))
_RAY_REASSEMBLE = ((1, 0, 0), (1, 0, 0), (0, 0, 0), (-1, -1, -1))
_RAY_FUSION = ((1, 1, 1), (1, 1, 1), (2, 1, 1), (2, 2, 2))


class _DenseHead(nn.Module):
    """A task's meaning on top of a built `DPT3D` decoder (the raw output by default)."""

    def __init__(self, *, dpt: DPT3D) -> None:
        super().__init__()
        self.dpt = dpt

    def forward(self, features: Sequence[torch.Tensor], output_size: tuple[int, int, int]) -> torch.Tensor:
        """Decode four token maps `(B, C, t, h, w)` to `(B, C_out, T, H, W)` at `output_size`."""
        return self.dpt(features, output_size)


class DepthHead(_DenseHead):
    """Relative depth: `exp` of a one-channel decoder output (`out_channels=1`)."""

    def forward(self, features: Sequence[torch.Tensor], output_size: tuple[int, int, int]) -> torch.Tensor:
        """Return depth `(B, 1, T, H, W)`, positive and scale-ambiguous (one unknown scale per clip)."""
        return torch.exp(self.dpt(features, output_size))


class FlowHead(_DenseHead):
    """Backward optical flow, the raw two-channel decoder output (`out_channels=2`).

    Output `(B, 2, T, H, W)` in pixels of the model input, channel 0 = x, 1 = y: the value at
    frame t is the displacement of a frame-t pixel to its position in frame t - 1; frame 0
    of a clip has no valid backward flow.
    """


class MotionHead(_DenseHead):
    """Dynamic-motion logits `(B, 1, T, H, W)` (`out_channels=1`; sigmoid for a probability).

    Positive where the scene point moves independently of the camera.
    """


class CameraRayHead(_DenseHead):
    """Plücker camera rays, one per encoder patch and frame (`out_channels=6`)."""

    def forward(self, features: Sequence[torch.Tensor], output_size: tuple[int, int, int]) -> torch.Tensor:
        """Return rays `(B, 6, T, h, w)` on the patch grid.

        Args:
            features: Four token maps `(B, C, t, h, w)`.
            output_size: The clip's `(T, H, W)`; only `T` is used, the spatial grid is the
                token grid `(h, w)` of the features (one ray per patch).

        Returns:
            Channels 0-2: ray direction (world frame = the clip's first camera, not
            necessarily unit length); 3-5: moment. Convert with
            `l4p.geometry.rays.rays_to_cameras`.
        """
        grid = (int(output_size[0]), int(features[0].shape[-2]), int(features[0].shape[-1]))
        return self.dpt(features, grid)


_HEADS: dict[str, tuple[type[nn.Module], int, tuple, tuple]] = {
    "depth": (DepthHead, 1, _PIXEL_REASSEMBLE, _PIXEL_FUSION),
    "flow": (FlowHead, 2, _PIXEL_REASSEMBLE, _PIXEL_FUSION),
    "motion": (MotionHead, 1, _PIXEL_REASSEMBLE, _PIXEL_FUSION),
    "camera_ray": (CameraRayHead, 6, _RAY_REASSEMBLE, _RAY_FUSION),
}


def build_dense_head(
    kind: DenseHeadKind,
    *,
    token_dim: int,
    layer_dims: Sequence[int],
    feature_dim: int,
    last_dim: int,
) -> nn.Module:
    """Build one dense head with the released per-level factors.

    The released model (`vit_g14`) uses `token_dim=1408, layer_dims=(256, 512, 1024, 1024),
    feature_dim=256, last_dim=128`.

    Args:
        kind: `depth`, `flow`, `motion` or `camera_ray`.
        token_dim: Encoder width.
        layer_dims: Channels of the four reassembled levels.
        feature_dim: Fusion width.
        last_dim: Width of the output convolutions.

    Returns:
        The head (`DepthHead`, `FlowHead`, `MotionHead` or `CameraRayHead`); its decoder is `.dpt`.
    """
    if kind not in _HEADS:
        raise ValueError(f"unknown dense head {kind!r}; choose one of {sorted(_HEADS)}")
    cls, out_channels, reassemble, fusion = _HEADS[kind]
    dpt = DPT3D(
        token_dim=token_dim,
        layer_dims=layer_dims,
        feature_dim=feature_dim,
        last_dim=last_dim,
        out_channels=out_channels,
        reassemble_exponents=reassemble,
        fusion_upsample=fusion,
    )
    return cls(dpt=dpt)
