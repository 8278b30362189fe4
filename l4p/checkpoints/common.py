"""Helpers shared by the checkpoint filters."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn


class StateDictMismatchError(RuntimeError):
    """A state dict does not fit a module: lists every missing, unexpected and mis-shaped key."""

    def __init__(
        self,
        *,
        missing: Sequence[str],
        unexpected: Sequence[str],
        mis_shaped: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]],
        source: str = "checkpoint",
    ) -> None:
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mis_shaped = list(mis_shaped)
        lines = [f"{source} does not match the model:"]
        if self.missing:
            lines.append(f"  missing keys ({len(self.missing)}): {_short(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected keys ({len(self.unexpected)}): {_short(self.unexpected)}")
        if self.mis_shaped:
            shown = [f"{k}: file {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mis_shaped]
            lines.append(f"  mis-shaped keys ({len(shown)}): {_short(shown)}")
        lines.append(
            "  Fix: build the variant the file was saved from (see l4p.list_models()), "
            "or pass the right checkpoint format."
        )
        super().__init__("\n".join(lines))


class NotACheckpointError(ValueError):
    """A file that is not an L4P/VideoMAE checkpoint (corrupt, truncated, or something else)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path} is not an L4P/VideoMAE checkpoint ({reason})")


def _short(items: Sequence[str], limit: int = 20) -> str:
    head = ", ".join(items[:limit])
    more = f", ... (+{len(items) - limit} more; all on the exception's attributes)"
    return head + (more if len(items) > limit else "")


def rename_keys(
    state_dict: Mapping[str, torch.Tensor], rules: Iterable[tuple[str, str]]
) -> dict[str, torch.Tensor]:
    """Apply regex substitution rules, in order, to every key.

    Args:
        state_dict: Source tensors by name.
        rules: `(pattern, replacement)` pairs for `re.sub`, applied one after another.

    Returns:
        A new dict with renamed keys (tensors are not copied).
    """
    compiled = [(re.compile(p), r) for p, r in rules]
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for pattern, repl in compiled:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


def load_state_dict_strict(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str = "checkpoint",
    assign: bool = False,
) -> None:
    """Load `state_dict` into `module`, every key consumed and every shape equal.

    By default tensors are copied into the module's existing parameters, so their dtype and
    device are kept (cast the module beforehand to change them). With `assign=True` the
    module takes the given tensors themselves (for a module built on the `meta` device:
    no second copy of the weights is ever made).

    Raises:
        StateDictMismatchError: listing all missing, unexpected and mis-shaped keys.
    """
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mis_shaped = [
        (k, tuple(state_dict[k].shape), tuple(own[k].shape))
        for k in sorted(set(own) & set(state_dict))
        if tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mis_shaped:
        raise StateDictMismatchError(
            missing=missing, unexpected=unexpected, mis_shaped=mis_shaped, source=source
        )
    module.load_state_dict(dict(state_dict), strict=True, assign=assign)
