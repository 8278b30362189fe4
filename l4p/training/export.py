"""Turn a training checkpoint into shippable weights: float16 safetensors with provenance.

Used for the weights embedded in the package (`l4p/weights/`)::

    python -m l4p.training.export runs/.../checkpoints/last.ckpt l4p/weights/l4p_synthetic_s.safetensors

Stage-1 runs (single-window clips) never train the tracking memory (`history_proj`,
`track_feature_proj`, the "carried feature" label embedding). Left random they would add noise
to every window after the first, so `neutral_memory` sets them to act as in a first window:
history tokens = the history mask token, carried features = 0 with the "no feature" label.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from l4p.export.atomic import atomic_path
from l4p.training.network import read_lightning_checkpoint

logger = logging.getLogger(__name__)


def neutralise_memory(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Make the untrained cross-window memory weights of a tracker neutral (see the module docstring)."""
    out = dict(state)
    mask = state["tracker.history_mask_token.weight"][0]
    out["tracker.history_proj.weight"] = torch.zeros_like(state["tracker.history_proj.weight"])
    out["tracker.history_proj.bias"] = mask.clone()
    out["tracker.track_feature_proj.weight"] = torch.zeros_like(state["tracker.track_feature_proj.weight"])
    out["tracker.track_feature_proj.bias"] = torch.zeros_like(state["tracker.track_feature_proj.bias"])
    labels = state["tracker.prompt_encoder.feature_label_embed.weight"].clone()
    labels[1] = labels[0]
    out["tracker.prompt_encoder.feature_label_embed.weight"] = labels
    return out


def export_weights(
    checkpoint: str | Path,
    out: str | Path,
    *,
    dtype: torch.dtype = torch.float16,
    neutral_memory: bool = True,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write the network weights of an `L4PTask` checkpoint as safetensors (atomically).

    Args:
        checkpoint: Lightning checkpoint of `l4p fit`.
        out: Destination `.safetensors`.
        dtype: Floating-point dtype of the file (buffers and weights alike).
        neutral_memory: Apply `neutralise_memory` (for single-window runs).
        metadata: Extra string metadata (e.g. steps, licence).
    """
    from safetensors.torch import save_file

    state = read_lightning_checkpoint(checkpoint)
    if state is None:
        raise ValueError(
            f"{checkpoint} is not an l4p fit checkpoint (no l4p_build_config); pass last.ckpt of a run"
        )
    raw = torch.load(str(checkpoint), map_location="cpu", weights_only=False, mmap=True)
    config = raw.get("l4p_build_config") or {}
    if neutral_memory and "tracker.history_proj.weight" in state:
        state = neutralise_memory(state)
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    info = {"format": "pt", "l4p_variant": str(config.get("name", "")), "global_step": str(raw.get("global_step", "")),
            "build_config": json.dumps(config), **(metadata or {})}  # fmt: skip
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata=info)
    logger.info("wrote %s (%d tensors, %s)", out, len(tensors), dtype)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m l4p.training.export CKPT OUT [--license Apache-2.0]`."""
    parser = argparse.ArgumentParser(description="Export l4p fit weights as float16 safetensors.")
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--license", default="Apache-2.0")
    parser.add_argument("--float32", action="store_true", help="keep float32")
    parser.add_argument(
        "--keep-memory", action="store_true", help="do not neutralise untrained memory weights"
    )
    args = parser.parse_args(argv)
    export_weights(args.checkpoint, args.out, dtype=torch.float32 if args.float32 else torch.float16,
                   neutral_memory=not args.keep_memory, metadata={"license": args.license})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
