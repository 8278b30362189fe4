"""Lightning's `Trainer.predict` made fit for a command: Ctrl-C, stderr progress, no banners."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import warnings
from collections.abc import Iterator

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm
from torch.utils.data import DataLoader

logger = logging.getLogger("l4p.predict_many")


def predict_interruptible(trainer: pl.Trainer, task: pl.LightningModule, loader: DataLoader) -> list | None:
    """`trainer.predict`, with Ctrl-C raised as KeyboardInterrupt (Lightning turns it into exit 1)."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        return trainer.predict(task, dataloaders=loader, return_predictions=True)
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after an interrupt


class StderrProgressBar(TQDMProgressBar):
    """Lightning's progress bar, on stderr (stdout carries only the results)."""

    def init_predict_tqdm(self) -> Tqdm:  # noqa: D102
        return Tqdm(desc=self.predict_description, position=2 * self.process_position, disable=self.is_disabled,
                    leave=True, dynamic_ncols=True, file=sys.stderr, smoothing=0, bar_format=self.BAR_FORMAT)  # fmt: skip


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Hide Lightning's banner lines and tips unless debug logging is on (restored afterwards)."""
    names = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    if not logger.isEnabledFor(logging.DEBUG):
        for lg in loggers:
            lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*treespec.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
