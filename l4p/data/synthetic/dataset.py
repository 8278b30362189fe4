"""``SyntheticDataset``: a map-style dataset of procedural clips, item ``i`` = clip of seed ``seed_offset + i``."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset, default_collate

from l4p.data.synthetic.clip import SyntheticClip
from l4p.data.synthetic.config import SceneConfig
from l4p.data.synthetic.render import render_batch


class SyntheticDataset(Dataset):
    """Infinite-variety synthetic clips as a finite map-style dataset.

    Items are single, unbatched samples: a ``dict[str, Tensor]`` keyed like the ``SyntheticClip``
    fields with the batch letter removed from the layout suffix (``rgb_tchw`` (T, 3, H, W),
    ``depth_thw``, ``flow_bwd_t2hw``, ``tracks_tn2``, ``queries_n3``, ``intrinsics_t33``,
    ``extrinsics_t44``, ``seed``, ...). Dicts collate with ``torch.utils.data.default_collate``;
    ``collate_clips`` collates straight into a ``SyntheticClip``.

    Rendering happens in ``__getitem__`` on ``device`` (default CPU, the right choice inside
    DataLoader workers); for training on an accelerator prefer ``render_batch(config, seeds,
    device=...)`` with the accelerator's device.

    Args:
        config: Scene configuration shared by all items.
        length: Number of items.
        seed_offset: Item ``i`` is the clip of seed ``seed_offset + i`` (use disjoint ranges for
            train / validation / test).
        device: Device to render on.
    """

    def __init__(
        self, config: SceneConfig, *, length: int, seed_offset: int = 0, device: torch.device | str = "cpu"
    ) -> None:
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.config = config
        self.length = length
        self.seed_offset = seed_offset
        self.device = device

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for length {self.length}")
        seed = self.seed_offset + (index % self.length)
        return render_batch(self.config, [seed], device=self.device).sample(0)


def collate_clips(items: list[dict[str, Any]]) -> SyntheticClip:
    """``collate_fn`` for ``SyntheticDataset``: default-collate the items into a ``SyntheticClip``."""
    return SyntheticClip.from_collated(default_collate(items))
