"""Filter: the released L4P tracking head (`track_2d`) -> `l4p.heads.tracking.TrackingHead`.

Input keys are the released ones with the prefix `l4p_model.task_heads.track_2d.` removed
(a full-prefix key is accepted too). Differences to our names:

| released                                           | ours                                       |
|----------------------------------------------------|--------------------------------------------|
| `prompt_encoder.pe_layer.positional_encoding_gaussian_matrix` | `prompt_encoder.pe.gaussian_matrix` (buffer, kept) |
| `prompt_encoder.point_embeddings.{0,1}.weight` (1, C) each | `prompt_encoder.point_label_embed.weight` (2, C) |
| `prompt_encoder.not_a_point_embed.weight`          | `prompt_encoder.padding_embed.weight`      |
| `prompt_encoder.prompt_feature_embeddings.{0,1}.weight` | `prompt_encoder.feature_label_embed.weight` (2, C) |
| `mask_decoder.transformer.layers.i.mlp.lin{1,2}`   | `mask_decoder.transformer.layers.i.mlp.fc{1,2}` |
| `mask_decoder.transformer.norm_final_attn`         | `mask_decoder.transformer.norm_final`      |
| `mask_decoder.mask_tokens.weight`                  | `mask_decoder.output_tokens.weight`        |
| `mask_decoder.output_upscaling.{0,1,3}`            | `mask_decoder.upscaler.{deconv1,norm,deconv2}` |
| `mask_decoder.output_hypernetworks_mlps.i`         | `mask_decoder.hypernetworks.i`             |
| `prompt_feature_linear_layer`                      | `track_feature_proj`                       |
| `processed_video_mask_token.weight`                | `history_mask_token.weight`                |
| `processed_video_features_proj`                    | `history_proj`                             |

Dropped on purpose: `mask_decoder.iou_token.weight` and `prompt_encoder.no_mask_embed.weight`
exist in the released checkpoint (inherited from SAM) but the released forward never reads
them (no IoU prediction, no dense mask prompt), so our head does not have them.
The remaining keys (attention projections, norms) keep their names.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from l4p.checkpoints.common import rename_keys

RELEASED_PREFIX = "l4p_model.task_heads.track_2d."

UNUSED_RELEASED_KEYS = ("mask_decoder.iou_token.weight", "prompt_encoder.no_mask_embed.weight")

_STACKED = {
    "prompt_encoder.point_label_embed.weight": "prompt_encoder.point_embeddings.{}.weight",
    "prompt_encoder.feature_label_embed.weight": "prompt_encoder.prompt_feature_embeddings.{}.weight",
}

_RULES = (
    (r"^prompt_encoder\.pe_layer\.positional_encoding_gaussian_matrix$", "prompt_encoder.pe.gaussian_matrix"),
    (r"^prompt_encoder\.not_a_point_embed\.", "prompt_encoder.padding_embed."),
    (r"^(mask_decoder\.transformer\.layers\.\d+\.mlp)\.lin(\d)\.", r"\1.fc\2."),
    (r"^mask_decoder\.transformer\.norm_final_attn\.", "mask_decoder.transformer.norm_final."),
    (r"^mask_decoder\.mask_tokens\.", "mask_decoder.output_tokens."),
    (r"^mask_decoder\.output_upscaling\.0\.", "mask_decoder.upscaler.deconv1."),
    (r"^mask_decoder\.output_upscaling\.1\.", "mask_decoder.upscaler.norm."),
    (r"^mask_decoder\.output_upscaling\.3\.", "mask_decoder.upscaler.deconv2."),
    (r"^mask_decoder\.output_hypernetworks_mlps\.", "mask_decoder.hypernetworks."),
    (r"^prompt_feature_linear_layer\.", "track_feature_proj."),
    (r"^processed_video_mask_token\.", "history_mask_token."),
    (r"^processed_video_features_proj\.", "history_proj."),
)


def convert_released_tracking(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a released tracking-head state dict onto `TrackingHead`'s keys.

    Args:
        state_dict: Released tensors by name, prefix `l4p_model.task_heads.track_2d.` removed
            (or present: it is stripped).

    Returns:
        Tensors under our names; unknown keys pass through unchanged so that a strict load
        reports them.
    """
    sd = {k.removeprefix(RELEASED_PREFIX): v for k, v in state_dict.items()}
    for key in UNUSED_RELEASED_KEYS:
        sd.pop(key, None)
    for ours, pattern in _STACKED.items():
        parts = [sd.pop(pattern.format(i)) for i in range(2) if pattern.format(i) in sd]
        if parts:
            sd[ours] = torch.cat(parts, dim=0)
    return rename_keys(sd, _RULES)
