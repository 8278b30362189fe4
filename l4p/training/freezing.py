"""Which parameters train: the encoder's last k blocks and a chosen set of heads.

Stage 1 trains everything; stage 2 trains the encoder's last three blocks (with its final
norm) and the tracking head; adding a head trains only that head on a frozen encoder.
Frozen parameters get `requires_grad = False` and are left out of the optimiser, so they stay
bit-identical.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from torch import nn

from l4p.models.l4p import L4P

logger = logging.getLogger(__name__)

HeadName = Literal["depth", "flow", "motion", "camera", "tracks"]


def trainable_prefixes(
    model: L4P, *, encoder_blocks: int | Literal["all"] = "all", heads: Sequence[str] | Literal["all"] = "all"
) -> list[str]:
    """Parameter-name prefixes that stay trainable.

    Args:
        model: The network.
        encoder_blocks: "all" (whole encoder), or k >= 0: the last k blocks plus the final norm
            (0 freezes the whole encoder).
        heads: "all", or task names among `depth`, `flow`, `motion`, `camera`, `tracks`.
    """
    prefixes: list[str] = []
    if encoder_blocks == "all":
        prefixes.append("encoder.")
    elif encoder_blocks > 0:
        depth = len(model.encoder.blocks)
        prefixes += [f"encoder.blocks.{i}." for i in range(max(0, depth - encoder_blocks), depth)]
        prefixes.append("encoder.norm.")
    names = list(model.heads) + (["tracks"] if model.tracker is not None else [])
    chosen = names if heads == "all" else list(heads)
    unknown = [h for h in chosen if h not in names]
    if unknown:
        raise ValueError(f"model has no head for {unknown}; it has {names}")
    prefixes += ["tracker." if h == "tracks" else f"heads.{h}." for h in chosen]
    return prefixes


def unused_prefixes(model: L4P, tasks: Sequence[str]) -> list[str]:
    """Prefixes of parameters that the tasks never use (they would get no gradient).

    Heads of other tasks; without tracking, the tracker, the encoder's final norm and the
    blocks after the last dense hook (the encoder does not run them).
    """
    out = [f"heads.{h}." for h in model.heads if h not in tasks]
    if "tracks" not in tasks:
        out.append("tracker.")
        out.append("encoder.norm.")
        last_hook = max(model.dense_hooks) if any(t in model.heads for t in tasks) else 0
        out += [f"encoder.blocks.{i}." for i in range(last_hook, len(model.encoder.blocks))]
    return out


def apply_freezing(model: nn.Module, prefixes: Sequence[str], exclude: Sequence[str] = ()) -> tuple[int, int]:
    """Train parameters matching `prefixes` but not `exclude`; returns (trainable, frozen) counts."""
    trainable = frozen = 0
    for name, param in model.named_parameters():
        keep = any(name.startswith(p) for p in prefixes) and not any(name.startswith(p) for p in exclude)
        param.requires_grad_(keep)
        if keep:
            trainable += param.numel()
        else:
            frozen += param.numel()
    logger.info("trainable parameters: %d, frozen: %d", trainable, frozen)
    if trainable == 0:
        raise ValueError(f"no parameter matches the trainable prefixes {list(prefixes)}")
    return trainable, frozen
