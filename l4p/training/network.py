"""Building the network a training run starts from: a registered variant plus optional weights."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from l4p.build import ALL_TASKS, build_model
from l4p.models.l4p import L4P

logger = logging.getLogger(__name__)


class NetworkFactory:
    """Describes the `L4P` network of a run; `build()` makes it.

    Args:
        variant: Registered variant name (`l4p.build.list_models()`), e.g. `l4p_vitg14`, `l4p_test`.
        tasks: Heads to build (default: all five).
        encoder_checkpoint: VideoMAEv2 / Hugging Face VideoMAE / released L4P file whose encoder
            weights initialise the encoder (`l4p.checkpoints.videomae.load_encoder_weights`).
        checkpoint: Full L4P checkpoint: an `L4PTask` Lightning checkpoint (e.g. stage 1's
            `last.ckpt`), the released `.ckpt`, our `model.safetensors` or a `save_pretrained`
            folder (`l4p.checkpoints.own.build_and_load`); every weight of `tasks` must be in
            it except those of `new_heads`.
        new_heads: Heads of `tasks` that the full checkpoint lacks and that start random
            (adding a head, e.g. `motion`).
        tracker_init: "default", or "localising" to start a fresh tracking head from
            `l4p.training.tracker_init.localising_init` (needed to learn tracking from scratch;
            applied to a network built without a full checkpoint, or to a new `tracks` head).
    """

    def __init__(
        self,
        *,
        variant: str = "l4p_test",
        tasks: Sequence[str] = ALL_TASKS,
        encoder_checkpoint: str | None = None,
        checkpoint: str | None = None,
        new_heads: Sequence[str] = (),
        tracker_init: Literal["default", "localising"] = "default",
    ) -> None:
        if encoder_checkpoint and checkpoint:
            raise ValueError("give either an encoder checkpoint or a full checkpoint, not both")
        self.variant = variant
        self.tasks = tuple(tasks)
        self.encoder_checkpoint = encoder_checkpoint
        self.checkpoint = checkpoint
        self.new_heads = tuple(new_heads)
        self.tracker_init = tracker_init

    def build(self) -> L4P:
        """Build the network and load the requested weights."""
        model = self._build()
        fresh = self.checkpoint is None or "tracks" in self.new_heads
        if self.tracker_init == "localising" and fresh and model.tracker is not None:
            from l4p.training.tracker_init import localising_init

            localising_init(model)
            logger.info("tracking head: localising initialisation")
        return model

    def _build(self) -> L4P:
        if self.checkpoint is None:
            model = build_model(self.variant, tasks=self.tasks)
            if self.encoder_checkpoint:
                from l4p.checkpoints.videomae import load_encoder_weights

                load_encoder_weights(model.encoder, self.encoder_checkpoint)
                logger.info("encoder initialised from %s", self.encoder_checkpoint)
            return model
        from l4p.checkpoints.common import load_state_dict_strict
        from l4p.checkpoints.own import build_and_load

        loaded_tasks = tuple(t for t in self.tasks if t not in self.new_heads)
        state = read_lightning_checkpoint(self.checkpoint)
        if state is None:
            loaded = build_and_load(self.variant, self.checkpoint, tasks=loaded_tasks)
            if not self.new_heads:
                return loaded
            state = loaded.state_dict()
        model = build_model(self.variant, tasks=self.tasks)
        fresh = tuple("tracker." if h == "tracks" else f"heads.{h}." for h in self.new_heads)
        merged = {k: v if k.startswith(fresh) else state.get(k, v) for k, v in model.state_dict().items()}
        missing = [k for k in merged if not k.startswith(fresh) and k not in state]
        if missing:
            raise ValueError(f"checkpoint {self.checkpoint} lacks {len(missing)} weights, e.g. {missing[:4]}")
        load_state_dict_strict(model, merged, source=f"checkpoint {self.checkpoint}")
        logger.info("loaded %s; new random heads: %s", self.checkpoint, self.new_heads or "none")
        return model


def read_lightning_checkpoint(path: str | Path) -> dict[str, torch.Tensor] | None:
    """The network weights of an `L4PTask` Lightning checkpoint (keys without `model.`), else None."""
    if Path(path).suffix != ".ckpt":
        return None
    obj = torch.load(str(path), map_location="cpu", weights_only=False, mmap=True)
    if not isinstance(obj, dict) or "l4p_build_config" not in obj:
        return None
    return {k[len("model.") :]: v for k, v in obj["state_dict"].items() if k.startswith("model.")}
