"""Deterministic, rank-aware sampling of a weighted mixture of sources.

The sampler yields keys `(source, item, augmentation seed)`; the sequence of keys of an epoch
is a function of `(seed, epoch)` only, so that a run resumed at an epoch boundary sees the same
data as an uninterrupted one. With several processes, rank r takes keys r, r + R, r + 2R, ...
of the global sequence: the global batch k of R ranks with batch size b is exactly the batch k
of one process with batch size R * b.

It subclasses `DistributedSampler` so that Lightning neither replaces nor wraps it (and calls
`set_epoch` on it every epoch).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DistributedSampler

Key = tuple[int, int, int]


class MixtureSampler(DistributedSampler):
    """Keys of a weighted mixture of sources, deterministic per epoch, sharded by rank.

    Args:
        lengths: Number of items of every source.
        weights: Relative sampling weight of every source (training); ignored when not shuffling.
        num_samples: Keys per epoch over all ranks (training; rounded down to a multiple of the
            number of ranks). When not shuffling, every item of every source once, in order.
        shuffle: Random mixture (training) or every item in order (evaluation).
        seed: Base seed.
        num_replicas: Number of processes.
        rank: This process.
    """

    def __init__(
        self,
        *,
        lengths: Sequence[int],
        weights: Sequence[float] | None = None,
        num_samples: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if not lengths or min(lengths) <= 0:
            raise ValueError(f"every source needs at least one item, got lengths {list(lengths)}")
        self.lengths = list(lengths)
        self.weights = torch.tensor(
            list(weights) if weights is not None else [1.0] * len(lengths), dtype=torch.double
        )
        if (
            self.weights.shape[0] != len(self.lengths)
            or bool((self.weights < 0).any())
            or float(self.weights.sum()) <= 0
        ):
            raise ValueError("need one non-negative weight per source, not all zero")
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        total = num_samples if (shuffle and num_samples) else sum(self.lengths)
        self.total = total - total % num_replicas if shuffle else total

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose key sequence `__iter__` yields."""
        self.epoch = epoch

    def global_keys(self) -> list[Key]:
        """Every key of the current epoch, all ranks together."""
        if not self.shuffle:
            return [(s, i, i) for s, n in enumerate(self.lengths) for i in range(n)]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        sources = torch.multinomial(self.weights, self.total, replacement=True, generator=g)
        lengths = torch.tensor(self.lengths, dtype=torch.double)
        items = (torch.rand(self.total, generator=g, dtype=torch.double) * lengths[sources]).long()
        seeds = torch.randint(0, 2**31 - 1, (self.total,), generator=g)
        return list(zip(sources.tolist(), items.tolist(), seeds.tolist()))

    def __iter__(self) -> Iterator[Key]:  # type: ignore[override]
        return iter(self.global_keys()[self.rank :: self.num_replicas])

    def __len__(self) -> int:
        return len(range(self.rank, self.total, self.num_replicas))
