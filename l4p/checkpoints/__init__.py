"""Checkpoint filters: one function per foreign format, mapping its keys onto ours.

Every filter returns a state dict in *our* names; `load_state_dict_strict` then loads it
and raises `StateDictMismatchError` listing missing, unexpected and mis-shaped keys.
"""

from l4p.checkpoints.common import (
    NotACheckpointError,
    StateDictMismatchError,
    load_state_dict_strict,
    rename_keys,
)

__all__ = ["NotACheckpointError", "StateDictMismatchError", "load_state_dict_strict", "rename_keys"]
