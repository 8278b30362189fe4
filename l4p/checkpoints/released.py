"""Filter for the released L4P checkpoint and our own saved format.

Released file: `l4p_depth_flow_2d3dtrack_camray_dynseg_v1.ckpt`, a Lightning checkpoint whose
`state_dict` has 916 keys under `l4p_model.`. Mapping onto `l4p.models.L4P`:

| released prefix                                   | ours              |
|---------------------------------------------------|-------------------|
| `l4p_model.video_encoder.`                         | `encoder.`        |
| `l4p_model.task_heads.depth.task_head.dpt.`        | `heads.depth.dpt.`  |
| `l4p_model.task_heads.flow_2d_backward.task_head.dpt.` | `heads.flow.dpt.` |
| `l4p_model.task_heads.dyn_mask.task_head.dpt.`     | `heads.motion.dpt.` |
| `l4p_model.task_heads.camray.task_head.dpt.`       | `heads.camera.dpt.` |
| `l4p_model.task_heads.track_2d.`                   | `tracker.`        |

Explicitly ignored (never read by the released forward): the 16 alias keys
`scratch.layer_rn.{0..3}.weight` (checked equal to their originals), each DPT head's
`scratch.refinenet4.resConfUnit1.*` (the coarsest fusion stage has no skip input),
`mask_decoder.iou_token.weight` and `prompt_encoder.no_mask_embed.weight`. Everything else
must be consumed: a key that no rule maps stays under its released name and the strict
load reports it as unexpected.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from l4p.checkpoints.released_dense import convert_released_dpt, released_dpt_prefix
from l4p.checkpoints.released_tracking import convert_released_tracking
from l4p.checkpoints.videomae import RELEASED_ENCODER_PREFIX, unwrap_state_dict

RELEASED_PREFIX = "l4p_model."
RELEASED_TRACKING_PREFIX = "l4p_model.task_heads.track_2d."
# released task key -> our task name
RELEASED_DENSE_TASKS = {
    "depth": "depth",
    "flow_2d_backward": "flow",
    "dyn_mask": "motion",
    "camray": "camera",
}


def is_released_l4p(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict uses the released L4P key names."""
    return any(k.startswith(RELEASED_PREFIX) for k in state_dict)


def released_tasks(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, ...]:
    """Our task names whose heads a released-format state dict contains."""
    tasks = [
        ours
        for rel, ours in RELEASED_DENSE_TASKS.items()
        if any(k.startswith(released_dpt_prefix(rel)) for k in state_dict)
    ]
    if any(k.startswith(RELEASED_TRACKING_PREFIX) for k in state_dict):
        tasks.append("tracks")
    return tuple(tasks)


def convert_released_l4p(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Released L4P checkpoint (or its `state_dict`) -> `L4P` state dict in our names."""
    sd = unwrap_state_dict(state_dict)
    out: dict[str, torch.Tensor] = {}
    consumed: set[str] = set()

    def take(prefix: str) -> dict[str, torch.Tensor]:
        part = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
        consumed.update(prefix + k for k in part)
        return part

    out.update({"encoder." + k: v for k, v in take(RELEASED_ENCODER_PREFIX).items()})
    for released, ours in RELEASED_DENSE_TASKS.items():
        part = take(released_dpt_prefix(released))
        if part:
            out.update({f"heads.{ours}.dpt.{k}": v for k, v in convert_released_dpt(part).items()})
    tracking = take(RELEASED_TRACKING_PREFIX)
    if tracking:
        out.update({"tracker." + k: v for k, v in convert_released_tracking(tracking).items()})
    out.update({k: v for k, v in sd.items() if k not in consumed})  # reported as unexpected
    return out
