"""Evidence that training learns: fit a small L4P on synthetic clips on the CPU, score held-out clips.

Trains `l4p_test` (all five heads) with `L4PTask` on pre-rendered synthetic clips (train seeds
[0, N), held-out seeds [1e6, 1e6 + M)), through the same sampler, mixture dataset, augmentation
and losses as `l4p fit`, and reports the held-out metrics of `L4PTask` before and after:
AbsRel, δ1 (depth), EPE (flow), AJ, δ_avg, OA (2D tracks), motion IoU. Writes
benchmarks/results/<date>-train-synthetic-cpu.json and prints a markdown table.

Usage: python benchmarks/train_synthetic.py [--minutes 6] [--steps 110] [--train-clips 48]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import platform
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, default_collate

from l4p.build import build_model
from l4p.training.augment import AugmentConfig
from l4p.training.datamodule import MixtureDataset
from l4p.training.datasets import SyntheticSource, scene_config
from l4p.training.module import L4PTask
from l4p.training.sampler import MixtureSampler

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("abs_rel", "delta1", "epe", "aj", "delta_avg", "oa", "motion_iou", "loss")
LOSSES = ("depth", "flow", "motion", "camera", "track_position", "track_depth", "visibility")
TASKS = ("depth", "flow", "motion", "camera", "tracks")


def render(config, seeds: tuple[int, int]) -> list:
    source = SyntheticSource(config, seeds=seeds)
    return [source[i] for i in range(len(source))]


def loader(clips: list, *, train: bool, args, steps: int = 0) -> DataLoader:
    augment = AugmentConfig(
        crop_scale=(0.85, 1.0), flip_prob=0.5, brightness=0.1, contrast=0.1, saturation=0.1
    )
    data = MixtureDataset(
        [clips], size=(args.size, args.size), num_tracks=args.tracks, augment=augment if train else None
    )
    sampler = MixtureSampler(lengths=[len(clips)], num_samples=steps * args.batch_size, shuffle=train, seed=0)
    return DataLoader(
        data, batch_size=args.batch_size, sampler=sampler, collate_fn=default_collate, drop_last=train
    )


def evaluate(trainer: pl.Trainer, task: L4PTask, val: DataLoader) -> dict[str, float]:
    (result,) = trainer.validate(task, dataloaders=val, verbose=False)
    names = [*METRICS, *(f"loss_{name}" for name in LOSSES)]
    return {m: float(result[f"val/{m}"]) for m in names if f"val/{m}" in result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=6.0, help="training time cap")
    parser.add_argument("--steps", type=int, default=110)
    parser.add_argument("--train-clips", type=int, default=48)
    parser.add_argument("--val-clips", type=int, default=12)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--tracks", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    pl.seed_everything(0)

    t0 = time.time()
    config = scene_config(num_frames=args.frames, height=args.size, width=args.size, num_tracks=2 * args.tracks,
                          overrides={"num_objects": (1, 3)})  # fmt: skip
    train_clips = render(config, (0, args.train_clips))
    val_clips = render(config, (1_000_000, 1_000_000 + args.val_clips))
    render_s = time.time() - t0

    task = L4PTask(model=build_model("l4p_test"), tasks=TASKS, window=args.frames, stride=args.frames // 2,
                   lr=args.lr, warmup_steps=10, min_lr_ratio=0.05, weight_decay=0.05)  # fmt: skip
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=args.steps, max_time={"seconds": int(args.minutes * 60)},
                         logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0)  # fmt: skip
    val = loader(val_clips, train=False, args=args)
    before = evaluate(trainer, task, val)
    t1 = time.time()
    trainer.fit(task, train_dataloaders=loader(train_clips, train=True, args=args, steps=args.steps))
    train_s = time.time() - t1
    after = evaluate(trainer, task, val)

    report = {
        "benchmark": "train_synthetic",
        "date": datetime.date.today().isoformat(),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": args.threads,
            "torch": torch.__version__,
        },
        "model": "l4p_test (all five heads, random init)",
        "setup": {
            **vars(args),
            "steps_done": int(trainer.global_step),
            "render_seconds": round(render_s, 1),
            "train_seconds": round(train_s, 1),
            "train_seeds": [0, args.train_clips],
            "heldout_seeds": [1_000_000, 1_000_000 + args.val_clips],
        },  # fmt: skip
        "heldout_before": before,
        "heldout_after": after,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{report['date']}-train-synthetic-cpu.json"
    path.write_text(json.dumps(report, indent=1))
    lines = ["| held-out metric | before | after | better |", "|---|---|---|---|"]
    for m in before:
        if m in after:
            better = "lower" if m in ("abs_rel", "epe") or m.startswith("loss") else "higher"
            lines.append(f"| {m} | {before[m]:.4f} | {after[m]:.4f} | {better} |")
    print(f"{trainer.global_step} steps in {train_s:.0f} s on {args.threads} CPU threads; wrote {path}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
