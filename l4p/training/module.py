"""`L4PTask`: the Lightning task around a built `L4P` network.

It owns the losses (`l4p.training.objective`), the validation metrics
(`l4p.training.metrics`), the optimiser (AdamW, parameters with `requires_grad` only, no
weight decay on biases and norms) with linear warm-up and cosine annealing per step, and the
freezing (`l4p.training.freezing`). The network itself stays free of Lightning.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch

from l4p.models.l4p import L4P
from l4p.training.freezing import apply_freezing, trainable_prefixes, unused_prefixes
from l4p.training.metrics import batch_metrics
from l4p.training.objective import DEFAULT_LOSS_WEIGHTS, compute_losses, total_loss
from l4p.training.sample import Sample, first_tracks
from l4p.training.windows import WindowedOutputs, forward_windows

logger = logging.getLogger(__name__)


class WarmupCosine:
    """LR factor: linear warm-up over `warmup` steps, then cosine from 1 to `floor` at `total`."""

    def __init__(self, *, warmup: int, total: int, floor: float) -> None:
        self.warmup, self.total, self.floor = warmup, max(total, 1), floor

    def __call__(self, step: int) -> float:
        """LR multiplier at optimiser step `step` (0-based)."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class L4PTask(pl.LightningModule):
    """Train and evaluate an `L4P` network on windows of clips.

    Args:
        model: The built network (see `l4p.training.network.NetworkFactory`).
        tasks: Tasks to run and supervise (a subset of the model's heads).
        loss_weights: Weight per loss (`depth`, `flow`, `motion`, `camera`, `track_position`,
            `track_depth`, `visibility`, and the auxiliary `track_heatmap`, `track_match`);
            missing names take `DEFAULT_LOSS_WEIGHTS`.
        window: Frames per window (default: the model's window).
        stride: Frames between windows in multi-window clips (default: the model's stride).
        trainable_encoder_blocks: "all", or the number of last encoder blocks that train
            (0 freezes the encoder).
        trainable_heads: "all", or the heads that train (`tracks` = the tracking head). Parts
            that the tasks never use (other heads; without tracking, the tracker and the
            encoder blocks after the last dense hook) are frozen whatever this says.
        lr: Peak learning rate.
        weight_decay: AdamW weight decay (not applied to biases and norms).
        betas: AdamW betas.
        warmup_steps: Linear warm-up steps.
        min_lr_ratio: Final LR as a fraction of `lr` at the end of the cosine.
        grad_checkpointing: Recompute encoder block activations in the backward pass.
        silog_variance_focus: Lambda of the SILog depth loss.
        window_batch_size: Windows encoded together.
        head_tracks: Tracks per clip that the tracking head decodes: the first ones of the
            batch (valid tracks come first, in random order). The others only feed the
            `track_match` loss, which costs little per track. None: all of them.
    """

    def __init__(
        self,
        *,
        model: L4P,
        tasks: Sequence[str] = ("depth", "flow", "tracks"),
        loss_weights: dict[str, float] | None = None,
        window: int | None = None,
        stride: int | None = None,
        trainable_encoder_blocks: int | Literal["all"] = "all",
        trainable_heads: Sequence[str] | Literal["all"] = "all",
        lr: float = 5e-5,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        grad_checkpointing: bool = False,
        silog_variance_focus: float = 0.85,
        window_batch_size: int = 4,
        head_tracks: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        missing = [t for t in tasks if t not in model.tasks]
        if missing:
            raise ValueError(f"model has no head for {missing}; it has {model.tasks}")
        self.model = model
        self.tasks = tuple(tasks)
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
        self.head_tracks = head_tracks
        self.window = window or model.window[0]
        self.stride = stride or model.stride
        self.prefixes = trainable_prefixes(
            model, encoder_blocks=trainable_encoder_blocks, heads=trainable_heads
        )
        apply_freezing(model, self.prefixes, exclude=unused_prefixes(model, self.tasks))
        model.encoder.set_grad_checkpointing(grad_checkpointing)
        self._scores: dict[str, list[float]] = defaultdict(list)

    def setup(self, stage: str) -> None:
        """Freeze the tracking memory projections when every clip is a single window.

        They only act from a clip's second window on; left trainable without a gradient they
        would stall DDP's gradient buckets. Runs before DDP wraps the model.
        """
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        frames = getattr(datamodule, "num_frames", None)
        if stage != "fit" or "tracks" not in self.tasks or frames is None or frames > self.window:
            return
        memory = ("tracker.history_proj.", "tracker.track_feature_proj.")
        for name, param in self.model.named_parameters():
            if name.startswith(memory) and param.requires_grad:
                param.requires_grad_(False)
                logger.info("single-window clips: %s frozen (unused without a second window)", name)

    def on_fit_start(self) -> None:
        """Under bf16 autocast on a CPU, turn oneDNN off for the run (restored at the end).

        torch's oneDNN bf16 `Conv3d` weight gradient is intermittently non-finite when the input
        is smaller than the kernel (measured with torch 2.13: 3-6 % of calls for a 3x3x3 conv on a
        2x2x2 input, none at 4x4x4 or with oneDNN off). The DPT's coarsest level is that small for
        short, small clips (`configs/tiny.yaml`: 8 frames of 56 px -> 2x2x2), which made the first
        update NaN. CUDA runs cuDNN, never this kernel.
        """
        self._mkldnn_was = None
        precision = str(getattr(self.trainer, "precision", ""))
        if self.device.type == "cpu" and precision.startswith("bf16") and torch.backends.mkldnn.enabled:
            self._mkldnn_was = True
            torch.backends.mkldnn.enabled = False
            logger.warning("bf16 on CPU: oneDNN disabled for this run (its bf16 Conv3d gradient can be NaN)")

    def on_fit_end(self) -> None:
        """Restore the oneDNN setting changed by `on_fit_start`."""
        if getattr(self, "_mkldnn_was", None) is not None:
            torch.backends.mkldnn.enabled = self._mkldnn_was

    def on_before_optimizer_step(self, optimizer) -> None:
        """Skip the update (drop every gradient) when a gradient is not finite, with a warning.

        The loss check in `training_step` cannot see this case: a finite loss can still give a
        non-finite gradient. Under DDP every process holds the same reduced gradients, so all
        skip together.
        """
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if not grads or bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
            return
        bad = [
            n
            for n, p in self.model.named_parameters()
            if p.grad is not None and not torch.isfinite(p.grad).all()
        ]
        logger.warning("non-finite gradient at step %d in %s; step skipped", self.global_step, bad[:4])
        optimizer.zero_grad(set_to_none=True)

    def on_after_backward(self) -> None:
        """On the first step, refuse trainable parameters that got no gradient under DDP (warn otherwise)."""
        if self.global_step != 0:
            return
        missing = [n for n, p in self.model.named_parameters() if p.requires_grad and p.grad is None]
        if not missing:
            return
        message = f"{len(missing)} trainable parameters got no gradient (freeze them): {missing[:6]}"
        if self.trainer.world_size > 1:
            raise RuntimeError(message + "; DDP would not synchronise their gradient buckets")
        logger.warning(message)

    def head_batch(self, batch: Sample) -> Sample:
        """The batch with only the tracks that the tracking head decodes (see `head_tracks`)."""
        return batch if self.head_tracks is None else first_tracks(batch, self.head_tracks)

    def forward(self, batch: Sample) -> WindowedOutputs:
        """Run the network over every window of the batch's clips."""
        queries = self.head_batch(batch)["queries_n3"] if "tracks" in self.tasks else None
        return forward_windows(
            self.model,
            batch["rgb_tchw"],
            tasks=self.tasks,
            window=self.window,
            stride=self.stride,
            queries_bn3=queries,
            window_batch_size=self.hparams.window_batch_size,
        )

    def _step(self, batch: Sample, stage: str) -> tuple[torch.Tensor, WindowedOutputs]:
        out = self(batch)
        with torch.autocast(device_type=self.device.type, enabled=False):  # losses in float32
            losses = compute_losses(
                out,
                batch,
                patch=self.model.encoder.patch_embed.patch,
                variance_focus=self.hparams.silog_variance_focus,
            )
        loss = total_loss(losses, self.loss_weights)
        size = batch["rgb_tchw"].shape[0]
        train = stage == "train"
        for name, value in losses.items():
            self.log(
                f"{stage}/loss_{name}",
                value.mean(),
                batch_size=size,
                sync_dist=True,
                on_step=train,
                on_epoch=not train,
            )
        self.log(
            f"{stage}/loss",
            loss,
            batch_size=size,
            sync_dist=True,
            prog_bar=True,
            on_step=train,
            on_epoch=not train,
        )
        return loss, out

    def training_step(self, batch: Sample, batch_idx: int) -> torch.Tensor | None:
        """Weighted sum of the losses of one batch (a non-finite loss skips the step on one process)."""
        loss = self._step(batch, "train")[0]
        if torch.isfinite(loss):
            return loss
        if self.trainer.world_size > 1:
            raise FloatingPointError(f"non-finite training loss at step {self.global_step}")
        logger.warning("non-finite training loss at step %d; step skipped", self.global_step)
        return None

    def validation_step(self, batch: Sample, batch_idx: int) -> None:
        """Losses and per-clip metrics of one held-out batch."""
        self._eval_step(batch, "val")

    def test_step(self, batch: Sample, batch_idx: int) -> None:
        """Same as validation, logged under `test/`."""
        self._eval_step(batch, "test")

    def _eval_step(self, batch: Sample, stage: str) -> None:
        _, out = self._step(batch, stage)
        for name, values in batch_metrics(out, self.head_batch(batch)).items():
            self._scores[name] += values

    def _log_scores(self, stage: str) -> None:
        for name, values in self._scores.items():
            self.log(f"{stage}/{name}", float(np.mean(values)), sync_dist=True)
        self._scores.clear()

    def on_validation_epoch_end(self) -> None:
        """Log the mean of every metric over the held-out clips."""
        self._log_scores("val")

    def on_test_epoch_end(self) -> None:
        """Log the mean of every metric over the test clips."""
        self._log_scores("test")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store how to rebuild the network (`l4p.build_model(**config)`)."""
        checkpoint["l4p_build_config"] = getattr(self.model, "build_config", None)

    def configure_optimizers(self):
        """AdamW on the trainable parameters with warm-up + cosine annealing per step."""
        decay, no_decay = [], []
        for param in self.model.parameters():
            if param.requires_grad:
                (no_decay if param.ndim <= 1 else decay).append(param)
        hp = self.hparams
        groups = [
            {"params": decay, "weight_decay": hp.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=hp.lr, betas=tuple(hp.betas))
        total = float(self._trainer.estimated_stepping_batches) if self._trainer is not None else 1.0
        total = int(total) if math.isfinite(total) else 1_000_000
        schedule = WarmupCosine(warmup=hp.warmup_steps, total=total, floor=hp.min_lr_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
