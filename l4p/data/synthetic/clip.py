"""``SyntheticClip``: a batch of rendered clips with their exact ground truth."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch


def _unbatched_key(name: str) -> str:
    """Field name of one sample: drop the batch letter from the layout suffix (``rgb_btchw`` -> ``rgb_tchw``)."""
    stem, _, layout = name.rpartition("_")
    return f"{stem}_{layout[1:]}" if len(layout) > 1 else stem


@dataclass
class SyntheticClip:
    """Batched synthetic clips; see the package docstring for conventions.

    Attributes:
        rgb_btchw: (B, T, 3, H, W) float in [0, 1].
        depth_bthw: (B, T, H, W) camera-frame z of the first hit, metres (> 0 everywhere).
        flow_fwd_bt2hw: (B, T, 2, H, W) forward flow t -> t+1, pixels (dx, dy); 0 where invalid.
        flow_bwd_bt2hw: (B, T, 2, H, W) backward flow t -> t-1, pixels; 0 where invalid.
        flow_fwd_valid_bthw: (B, T, H, W) bool; False in the last frame and where the point is
            behind camera t+1. Occlusion at t+1 does not invalidate flow.
        flow_bwd_valid_bthw: (B, T, H, W) bool; False in frame 0 and behind camera t-1.
        depth_fwd_bthw: (B, T, H, W) camera-frame z in frame t+1 of each pixel's surface point
            (after it moved), metres; 0 where forward flow is invalid.
        depth_bwd_bthw: (B, T, H, W) the same for frame t-1.
        motion_bthw: (B, T, H, W) bool; the pixel's surface point moves in the world between t and
            t-1 or t+1 (it belongs to an object whose pose changes there).
        instance_bthw: (B, T, H, W) long; 0 room, k >= 1 object slot k - 1.
        tracks_btn2: (B, T, N, 2) projected track positions (x, y), pixels, integer = pixel centre.
        tracks3d_cam_btn3: (B, T, N, 3) track points in camera t coordinates, metres.
        tracks3d_world_btn3: (B, T, N, 3) track points in world coordinates, metres.
        visibility_btn: (B, T, N) bool; in front of the camera, inside the image and not occluded.
        queries_bn3: (B, N, 3) float (t, x, y): query frame index and pixel position.
        intrinsics_bt33: (B, T, 3, 3) pixels, integer = pixel centre.
        extrinsics_bt44: (B, T, 4, 4) world-to-camera, OpenCV axes.
        seed_b: (B,) long seed of each clip.
    """

    rgb_btchw: torch.Tensor
    depth_bthw: torch.Tensor
    flow_fwd_bt2hw: torch.Tensor
    flow_bwd_bt2hw: torch.Tensor
    flow_fwd_valid_bthw: torch.Tensor
    flow_bwd_valid_bthw: torch.Tensor
    depth_fwd_bthw: torch.Tensor
    depth_bwd_bthw: torch.Tensor
    motion_bthw: torch.Tensor
    instance_bthw: torch.Tensor
    tracks_btn2: torch.Tensor
    tracks3d_cam_btn3: torch.Tensor
    tracks3d_world_btn3: torch.Tensor
    visibility_btn: torch.Tensor
    queries_bn3: torch.Tensor
    intrinsics_bt33: torch.Tensor
    extrinsics_bt44: torch.Tensor
    seed_b: torch.Tensor

    def __len__(self) -> int:
        return self.rgb_btchw.shape[0]

    def __getitem__(self, index: int | slice | torch.Tensor) -> SyntheticClip:
        """Select samples along the batch axis; an integer keeps a batch axis of size 1."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return SyntheticClip(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device: torch.device | str) -> SyntheticClip:
        """Return a copy with every tensor on ``device``."""
        return SyntheticClip(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def sample(self, index: int) -> dict[str, torch.Tensor]:
        """One sample without the batch axis, as a dict keyed ``rgb_tchw``, ``depth_thw``, ... .

        This is the item format of ``SyntheticDataset``; ``torch.utils.data.default_collate`` on a
        list of them gives a dict accepted by ``SyntheticClip.from_collated``.
        """
        return {_unbatched_key(f.name): getattr(self, f.name)[index] for f in fields(self)}

    @staticmethod
    def from_collated(batch: dict[str, Any]) -> SyntheticClip:
        """Build a clip from a default-collated dict of ``sample()`` items (adds back the batch letter)."""
        names = {_unbatched_key(f.name): f.name for f in fields(SyntheticClip)}
        return SyntheticClip(**{names[key]: torch.as_tensor(value) for key, value in batch.items()})
