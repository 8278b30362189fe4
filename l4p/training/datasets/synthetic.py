"""Procedural synthetic clips (`l4p.data.synthetic`) as a training source."""

from __future__ import annotations

from dataclasses import replace

from torch.utils.data import Dataset

from l4p.data.synthetic import SceneConfig, SyntheticDataset
from l4p.training.sample import Sample, from_synthetic


class SyntheticSource(Dataset):
    """Item i = the synthetic clip of seed `seeds[0] + i`, as a training sample.

    Args:
        config: Scene configuration (size, length, number of tracks, ...).
        seeds: Seed range [start, stop); use disjoint ranges for training and validation.
    """

    def __init__(self, config: SceneConfig, *, seeds: tuple[int, int]) -> None:
        start, stop = seeds
        if stop <= start:
            raise ValueError(f"empty seed range {seeds}")
        self.config = config
        self.clips = SyntheticDataset(config, length=stop - start, seed_offset=start)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> Sample:
        return from_synthetic(self.clips[index])


def scene_config(
    *, num_frames: int, height: int, width: int, num_tracks: int, overrides: dict | None = None
) -> SceneConfig:
    """A `SceneConfig` of the given clip size with field overrides (lists become tuples)."""
    base = SceneConfig(height=height, width=width, num_frames=num_frames, num_tracks=num_tracks)
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in (overrides or {}).items()}
    return replace(base, **fixed)
