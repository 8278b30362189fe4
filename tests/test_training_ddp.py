"""Two-process DDP on CPU (gloo, spawned) reproduces the single-process step on the same global batch."""

import csv
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from l4p.training.cli import run_cli

REPO = Path(__file__).resolve().parents[1]
COMMON = ["--config", str(REPO / "configs" / "tiny.yaml"), "--data.height", "28", "--data.width", "28",
          "--data.samples_per_epoch", "2", "--trainer.limit_val_batches", "0", "--model.tasks", "[depth, flow, tracks]"]  # fmt: skip


class GradDump(pl.Callback):
    """Save the (all-reduced) gradients of the first optimiser step on rank 0."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step == 0 and trainer.global_rank == 0:
            grads = {
                n: p.grad.detach().clone() for n, p in pl_module.named_parameters() if p.grad is not None
            }
            torch.save(grads, self.path)


def _fit(args: list[str], root: Path) -> tuple[float, dict[str, torch.Tensor]]:
    cli = run_cli([*COMMON, *args, "--trainer.default_root_dir", str(root)], run=False)
    cli.trainer.callbacks.append(GradDump(root / "grads.pt"))
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    (path,) = root.glob("logs/version_0/csv/metrics.csv")
    with open(path) as f:
        loss = float(next(r["train/loss"] for r in csv.DictReader(f) if r.get("train/loss")))
    return loss, torch.load(root / "grads.pt")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_two_process_ddp_matches_single_process(tmp_path):
    loss_one, grads_one = _fit(["--data.batch_size", "2"], tmp_path / "single")
    loss_two, grads_two = _fit(
        ["--data.batch_size", "1", "--trainer.devices", "2", "--trainer.strategy", "ddp_spawn"],
        tmp_path / "ddp",
    )
    assert loss_two == pytest.approx(loss_one, rel=1e-5)
    assert grads_one.keys() == grads_two.keys() and len(grads_one) > 50
    for name, grad in grads_one.items():  # all-reduced DDP gradient = single-process gradient
        assert (grads_two[name] - grad).abs().max() <= 1e-4 * grad.abs().max() + 1e-8, name
