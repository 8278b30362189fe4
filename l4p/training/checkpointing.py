"""A `ModelCheckpoint` whose `last.ckpt` always holds the state at the end of training.

Lightning's `ModelCheckpoint(save_last=True, every_n_train_steps=N)` writes `last.ckpt` only
with a periodic save. A run stopped between two saves (`trainer.max_time`, an early stop, a
callback setting `trainer.should_stop`) ends with a `last.ckpt` up to N - 1 steps old, and the
steps after it are lost: measured on `configs/synthetic_small.yaml` with a 25-minute limit,
`last.ckpt` stayed at step 1000 of about 1190. Every config under `configs/` uses this class.
"""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint as _LightningModelCheckpoint


class ModelCheckpoint(_LightningModelCheckpoint):
    """Lightning's `ModelCheckpoint`; with `save_last`, training's final state also goes to `last.ckpt`."""

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Save `last.ckpt` when steps were taken after the latest save, then Lightning's own end."""
        if (
            self.save_last
            and not trainer.sanity_checking
            and self._last_global_step_saved != trainer.global_step
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)
