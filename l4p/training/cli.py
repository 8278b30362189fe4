"""`l4p fit | validate | test`: LightningCLI over `L4PTask` and `L4PDataModule`.

The network comes from the `network` group (`NetworkFactory`): a registered variant, optionally
initialised from a VideoMAEv2 encoder checkpoint (`--network.encoder_checkpoint`) or a full
L4P checkpoint (`--network.checkpoint`, with `--network.new_heads` for heads it lacks). The
built network is handed to `L4PTask` (`model.model` is linked, not configured)::

    l4p fit --config configs/stage1.yaml --network.encoder_checkpoint vit_g_hybrid_pt_1200e.pth
    l4p fit --config configs/stage2.yaml --network.checkpoint runs/stage1/logs/version_0/checkpoints/last.ckpt
    l4p fit --config configs/stage1.yaml --ckpt_path runs/stage1/version_0/checkpoints/last.ckpt  # resume
    l4p validate --config configs/stage1.yaml --ckpt_path last.ckpt
    python -m l4p.training.cli fit --config configs/tiny.yaml       # a few CPU steps

`--ckpt_path` resumes a run exactly (weights, optimiser, schedule, epoch); the training data
of an epoch is a function of (seed, epoch), so a run resumed from an epoch-end checkpoint sees
the same data as an uninterrupted one. A new stage starts from the previous stage's Lightning
checkpoint given as `--network.checkpoint` (network weights only; fresh optimiser and
schedule); `--ckpt_path` is for continuing the same stage.

Precision and memory: `--trainer.precision bf16-mixed` (autocast; weights stay float32),
`--model.grad_checkpointing true` (recompute encoder blocks in the backward pass).

One node, several GPUs (DDP)::

    l4p fit --config configs/stage1.yaml --trainer.accelerator gpu --trainer.devices 8 \
        --trainer.strategy ddp
    # or: torchrun --nproc_per_node 8 -m l4p.training.cli fit --config ... --trainer.devices 8

Several nodes: with torchrun on every node (`--nnodes N --node_rank i --master_addr HOST
--master_port 29500 --nproc_per_node 8 -m l4p.training.cli fit ... --trainer.num_nodes N
--trainer.devices 8`), or under SLURM with one task per GPU (`#SBATCH --nodes N
--ntasks-per-node 8 --gpus-per-node 8`, then `srun l4p fit ... --trainer.num_nodes N
--trainer.devices 8`; Lightning reads the SLURM environment). `--data.batch_size` is per
process: the global batch is batch_size x devices x num_nodes (paper: 8).

FSDP (shard parameters, gradients and optimiser state; for the 1.4 B ViT-g model on smaller
GPUs), wrapping and checkpointing per encoder block::

    l4p fit --config configs/stage1.yaml \
        --trainer.strategy=pytorch_lightning.strategies.FSDPStrategy \
        --trainer.strategy.init_args.sharding_strategy FULL_SHARD \
        --trainer.strategy.init_args.auto_wrap_policy '[l4p.models.layers.block.Block]' \
        --trainer.strategy.init_args.activation_checkpointing '[l4p.models.layers.block.Block]'

Lightning's FSDP keeps `use_orig_params=True`, which frozen parameters (stage 2, add-a-head)
need. In Python: `FSDPStrategy(auto_wrap_policy={Block}, activation_checkpointing={Block})`.
(Parsed and documented here; not exercised by the CPU tests.)

Every sampler is rank-aware (`l4p.training.sampler`); keep Lightning's
`use_distributed_sampler` at its default, the samplers are left as they are.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from l4p.models.l4p import L4P
from l4p.training.datamodule import L4PDataModule
from l4p.training.module import L4PTask
from l4p.training.network import NetworkFactory

logger = logging.getLogger(__name__)


def _build(factory: NetworkFactory) -> L4P:
    return factory.build()


class L4PCLI(LightningCLI):
    """LightningCLI with a `network` group whose built `L4P` becomes `L4PTask(model=...)`."""

    def add_arguments_to_parser(self, parser) -> None:
        """Add the `network` group and link it to the task's `model` argument."""
        parser.add_class_arguments(NetworkFactory, "network")
        parser.link_arguments("network", "model.model", compute_fn=_build, apply_on="instantiate")

    def instantiate_trainer(self, **kwargs):
        """Default loggers: TensorBoard and CSV under `<default_root_dir>/logs/version_N`."""
        config = self._get(self.config_init, "trainer", default={})
        if config.get("logger") in (None, True) and "logger" not in kwargs:
            root = config.get("default_root_dir") or os.getcwd()
            tensorboard = TensorBoardLogger(root, name="logs")
            csv = CSVLogger(root, name="logs", version=f"version_{tensorboard.version}/csv")
            kwargs["logger"] = [tensorboard, csv]
        return super().instantiate_trainer(**kwargs)


def run_cli(argv: Sequence[str] | None = None, *, run: bool = True) -> L4PCLI:
    """Run the CLI on `argv` (default: `sys.argv[1:]`) and return it (trainer, model, datamodule)."""
    return L4PCLI(
        L4PTask,
        L4PDataModule,
        args=None if argv is None else list(argv),
        run=run,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"default_env": False},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `l4p fit|validate|test ...`; returns 0 (errors raise or exit)."""
    run_cli(argv)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
