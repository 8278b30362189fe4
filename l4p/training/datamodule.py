"""`L4PDataModule`: weighted mixtures of training sources, held-out synthetic clips by default.

Every source yields native-resolution samples (`l4p.training.sample`); `MixtureDataset`
crops/resizes them to the training size (random crop, flip and colour jitter for training,
a centre crop for evaluation), picks each track's query frame among its visible frames
(before `max_query_frame`), and keeps `num_tracks` tracks. All randomness of an item comes
from the augmentation seed of its sampler key, so data are deterministic whatever the number
of workers. Train and validation splits of the synthetic source are disjoint seed ranges.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from l4p.training.augment import AugmentConfig, augment_sample
from l4p.training.datasets import REAL_DATASETS, SyntheticSource, scene_config
from l4p.training.sample import Sample, choose_queries, subsample_tracks
from l4p.training.sampler import Key, MixtureSampler

logger = logging.getLogger(__name__)

SourceKind = Literal["synthetic", "kubric", "pointodyssey", "dynamic_replica", "tartanair"]
VAL_SEEDS = (1_000_000, 1_000_016)


@dataclass
class SourceConfig:
    """One data source of a mixture.

    Attributes:
        kind: `synthetic` or a real data set (`kubric`, `pointodyssey`, `dynamic_replica`, `tartanair`).
        weight: Relative sampling weight in the training mixture.
        root: Data set root (real data sets).
        split: Split of a real data set.
        seeds: Seed range [start, stop) of synthetic clips.
        scene: `SceneConfig` overrides of synthetic clips (size and length come from the data module).
        frame_stride: Temporal subsampling of real sequences.
    """

    kind: SourceKind = "synthetic"
    weight: float = 1.0
    root: str | None = None
    split: str = "train"
    seeds: tuple[int, int] = (0, 1_000_000)
    scene: dict[str, Any] = field(default_factory=dict)
    frame_stride: int = 1


class MixtureDataset(Dataset):
    """Samples of several sources at one size, addressed by `(source, item, seed)` keys.

    Args:
        sources: Datasets of native-resolution samples.
        size: Output (H, W).
        num_tracks: Tracks per sample (padding flagged invalid).
        augment: Random augmentation, or None for a centre crop.
        max_query_frame: Query frames are < this (None: any frame).
        first_query_prob: Share of tracks queried at their first visible frame (the others at a
            random visible frame).
        max_retries: Items tried (item, item + 1, ...) before an unreadable key is an error.
    """

    def __init__(
        self,
        sources: list[Dataset],
        *,
        size: tuple[int, int],
        num_tracks: int,
        augment: AugmentConfig | None,
        max_query_frame: int | None = None,
        first_query_prob: float = 0.0,
        max_retries: int = 8,
    ) -> None:
        self.sources = sources
        self.size = size
        self.num_tracks = num_tracks
        self.augment = augment
        self.max_query_frame = max_query_frame
        self.first_query_prob = first_query_prob
        self.max_retries = max_retries

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)  # type: ignore[arg-type]

    def _load(self, source: int, item: int) -> Sample:
        dataset = self.sources[source]
        for attempt in range(self.max_retries):
            index = (item + attempt) % len(dataset)  # type: ignore[arg-type]
            try:
                return dataset[index]
            except Exception as err:  # noqa: BLE001 - a bad sample must not kill a run
                logger.warning("skipping unreadable item %d of %s: %s", index, type(dataset).__name__, err)
        raise RuntimeError(
            f"{self.max_retries} consecutive unreadable items in {type(dataset).__name__} from {item}"
        )

    def __getitem__(self, key: Key) -> Sample:
        source, item, seed = key
        generator = torch.Generator().manual_seed(int(seed))
        sample = augment_sample(
            self._load(source, item), size=self.size, config=self.augment, generator=generator
        )
        sample = choose_queries(
            sample,
            generator=generator,
            max_query_frame=self.max_query_frame,
            first_prob=self.first_query_prob,
        )
        return subsample_tracks(sample, self.num_tracks, generator=generator)


class L4PDataModule(pl.LightningDataModule):
    """Training mixture and held-out clips for `L4PTask`.

    Args:
        train_sources: Training mixture (default: synthetic seeds [0, 1e6)).
        val_sources: Held-out sources (default: 16 synthetic clips, seeds [1e6, 1e6 + 16)).
        test_sources: Test sources (default: the validation sources).
        num_frames: Frames per clip (one window in stage 1; e.g. 40 in stage 2).
        height: Clip height in pixels (a multiple of the patch size).
        width: Clip width in pixels.
        num_tracks: Tracks per clip.
        max_query_frame: Query frames are < this (stage 2: 20), None for any.
        first_query_prob: Share of tracks queried at their first visible frame, the rest at a
            random visible frame (0: all random). Training clips only: validation clips keep
            random query frames, so the curves of runs with different shares stay comparable.
        batch_size: Clips per process and step.
        val_batch_size: Clips per evaluation step (default: `batch_size`).
        samples_per_epoch: Training clips per epoch over all processes.
        num_workers: DataLoader workers per process.
        augment: Training augmentation (None: centre crop only).
        candidate_tracks: Synthetic tracks rendered per requested track (query selection may drop some).
        seed: Seed of the training key sequence.
    """

    def __init__(
        self,
        *,
        train_sources: list[SourceConfig] | None = None,
        val_sources: list[SourceConfig] | None = None,
        test_sources: list[SourceConfig] | None = None,
        num_frames: int = 16,
        height: int = 112,
        width: int = 112,
        num_tracks: int = 16,
        max_query_frame: int | None = None,
        first_query_prob: float = 0.0,
        batch_size: int = 2,
        val_batch_size: int | None = None,
        samples_per_epoch: int = 1000,
        num_workers: int = 0,
        augment: AugmentConfig | None = None,
        candidate_tracks: float = 2.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.train_sources = train_sources or [SourceConfig()]
        self.val_sources = val_sources or [SourceConfig(seeds=VAL_SEEDS)]
        self.test_sources = test_sources or self.val_sources
        self.num_frames, self.size = num_frames, (height, width)
        self.num_tracks, self.max_query_frame = num_tracks, max_query_frame
        if not 0.0 <= first_query_prob <= 1.0:
            raise ValueError(f"first_query_prob must be in [0, 1], got {first_query_prob}")
        self.first_query_prob = first_query_prob
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.samples_per_epoch, self.num_workers = samples_per_epoch, num_workers
        self.augment, self.candidate_tracks, self.seed = augment, candidate_tracks, seed

    def build_source(self, config: SourceConfig, *, train: bool) -> Dataset:
        """The dataset of one source config."""
        if config.kind == "synthetic":
            scene = scene_config(
                num_frames=self.num_frames,
                height=self.size[0],
                width=self.size[1],
                num_tracks=max(1, round(self.num_tracks * self.candidate_tracks)),
                overrides=config.scene,
            )
            return SyntheticSource(scene, seeds=tuple(config.seeds))  # type: ignore[arg-type]
        if config.root is None:
            raise ValueError(f"source {config.kind} needs a root folder")
        cls = REAL_DATASETS[config.kind]
        return cls(
            config.root, split=config.split, num_frames=self.num_frames, frame_stride=config.frame_stride
        )

    def _mixture(self, configs: list[SourceConfig], *, train: bool) -> MixtureDataset:
        return MixtureDataset(
            [self.build_source(c, train=train) for c in configs],
            size=self.size,
            num_tracks=self.num_tracks,
            augment=self.augment if train else None,
            max_query_frame=self.max_query_frame,
            first_query_prob=self.first_query_prob if train else 0.0,
        )

    def _ranks(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _loader(self, configs: list[SourceConfig], *, train: bool) -> DataLoader:
        dataset = self._mixture(configs, train=train)
        for config, source in zip(configs, dataset.sources):
            if len(source) == 0:  # type: ignore[arg-type]
                raise ValueError(
                    f"source {config.kind} (root {config.root}, split {config.split}) has no clip"
                )
        world, rank = self._ranks()
        sampler = MixtureSampler(
            lengths=[len(s) for s in dataset.sources],  # type: ignore[arg-type]
            weights=[c.weight for c in configs],
            num_samples=self.samples_per_epoch,
            shuffle=train,
            seed=self.seed,
            num_replicas=world,
            rank=rank,
        )
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.val_batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=default_collate,
            drop_last=train,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Weighted training mixture, deterministic per (seed, epoch)."""
        return self._loader(self.train_sources, train=True)

    def val_dataloader(self) -> DataLoader:
        """Every held-out item once, sharded across processes."""
        return self._loader(self.val_sources, train=False)

    def test_dataloader(self) -> DataLoader:
        """Every test item once, sharded across processes."""
        return self._loader(self.test_sources, train=False)
