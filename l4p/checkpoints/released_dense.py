"""Filter: one released L4P DPT head's state dict to `l4p.heads.dpt.DPT3D` names.

Released names (below the head prefix `l4p_model.task_heads.<task>.task_head.dpt.`) to ours:

| released | ours |
|---|---|
| `act_postprocess.{i}.0` (1x1x1 conv) | `reassemble.{i}.conv` |
| `act_postprocess.{i}.1` (resampling; absent when identity) | `reassemble.{i}.resample` |
| `scratch.layer{i+1}_rn` | `project.{i}` |
| `scratch.layer_rn.{i}` (alias of `layer{i+1}_rn`) | dropped after an equality check |
| `scratch.refinenet{i+1}.resConfUnit{1,2}.conv{1,2}` | `fusion.{i}.rcu{1,2}.conv{1,2}` |
| `scratch.refinenet4.resConfUnit1.*` (never used by the released forward) | dropped |
| `scratch.refinenet{i+1}.out_conv` | `fusion.{i}.out_conv` |
| `head1.0` / `head2.0` / `head2.2` | `head1` / `head2.conv` / `head2.out` |

`refinenet4` is the coarsest stage: it consumes `layer4_rn` (hook 3) and has no skip, so
its first residual unit exists in the released module but is never called.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import torch

logger = logging.getLogger(__name__)

#: Our dense-head kinds to the released task keys (`l4p_model.task_heads.<task>`).
RELEASED_DENSE_TASKS: dict[str, str] = {
    "depth": "depth",
    "flow": "flow_2d_backward",
    "motion": "dyn_mask",
    "camera_ray": "camray",
}

_NUM_LEVELS = 4
_ALIAS = re.compile(r"^scratch\.layer_rn\.(\d)\.weight$")
_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), repl)
    for pattern, repl in (
        (r"^act_postprocess\.(\d)\.0\.(weight|bias)$", r"reassemble.\1.conv.\2"),
        (r"^act_postprocess\.(\d)\.1\.(weight|bias)$", r"reassemble.\1.resample.\2"),
        (r"^scratch\.layer(\d)_rn\.weight$", "project.{L}.weight"),
        (
            r"^scratch\.refinenet(\d)\.resConfUnit([12])\.conv([12])\.(weight|bias)$",
            r"fusion.{L}.rcu\2.conv\3.\4",
        ),
        (r"^scratch\.refinenet(\d)\.out_conv\.(weight|bias)$", r"fusion.{L}.out_conv.\2"),
        (r"^head1\.0\.(weight|bias)$", r"head1.\1"),
        (r"^head2\.0\.(weight|bias)$", r"head2.conv.\1"),
        (r"^head2\.2\.(weight|bias)$", r"head2.out.\1"),
    )
)
_UNUSED = re.compile(rf"^scratch\.refinenet{_NUM_LEVELS}\.resConfUnit1\.")


def released_dpt_prefix(task: str) -> str:
    """Key prefix of one released DPT head, e.g. `released_dpt_prefix("camray")`.

    Args:
        task: Released task key (`depth`, `flow_2d_backward`, `dyn_mask`, `camray`).
    """
    return f"l4p_model.task_heads.{task}.task_head.dpt."


def convert_released_dpt(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename one released DPT head's tensors to `DPT3D` parameter names.

    Args:
        sd: The head's tensors with the prefix `l4p_model.task_heads.<task>.task_head.dpt.`
            already stripped (see `released_dpt_prefix`).

    Returns:
        Tensors under our names (not copied), ready for `load_state_dict_strict(dpt, ...)`.

    Raises:
        ValueError: If an alias `scratch.layer_rn.{i}.weight` differs from
            `scratch.layer{i+1}_rn.weight` (or lacks it), or a key is not a released DPT key.
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    dropped_unused = 0
    for key, value in sd.items():
        alias = _ALIAS.match(key)
        if alias is not None:
            original = f"scratch.layer{int(alias.group(1)) + 1}_rn.weight"
            if original not in sd or not torch.equal(sd[original], value):
                raise ValueError(f"alias {key!r} does not equal {original!r}")
            continue
        if _UNUSED.match(key):
            dropped_unused += 1
            continue
        for pattern, repl in _RULES:
            match = pattern.match(key)
            if match is None:
                continue
            new_key = pattern.sub(repl, key)
            if "{L}" in repl:
                new_key = new_key.replace("{L}", str(int(match.group(1)) - 1))
            out[new_key] = value
            break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"not released DPT keys: {unknown}")
    logger.debug("converted %d DPT tensors, dropped %d unused ones", len(out), dropped_unused)
    return out
