"""Training sources: synthetic scenes and real data sets in their published on-disk layouts.

Each real loader documents the exact layout it reads in its module docstring:
`kubric` (MOVi-E/F point-tracking exports), `pointodyssey`, `dynamic_replica`, `tartanair`.
All yield `l4p.training.sample` dicts at native resolution.
"""

from l4p.training.datasets.base import ClipDataset, SequenceInfo
from l4p.training.datasets.dynamic_replica import DynamicReplicaDataset
from l4p.training.datasets.kubric import KubricDataset
from l4p.training.datasets.pointodyssey import PointOdysseyDataset
from l4p.training.datasets.synthetic import SyntheticSource, scene_config
from l4p.training.datasets.tartanair import TartanAirDataset

REAL_DATASETS: dict[str, type[ClipDataset]] = {
    "kubric": KubricDataset,
    "pointodyssey": PointOdysseyDataset,
    "dynamic_replica": DynamicReplicaDataset,
    "tartanair": TartanAirDataset,
}

__all__ = [
    "REAL_DATASETS",
    "ClipDataset",
    "DynamicReplicaDataset",
    "KubricDataset",
    "PointOdysseyDataset",
    "SequenceInfo",
    "SyntheticSource",
    "TartanAirDataset",
    "scene_config",
]
