"""Predict many videos with `Trainer.predict`: one output folder per video, restartable.

Each video gets `<out>/<name>/` (see `l4p.export.folder`); every file is written atomically
and a marker file `l4p_done.json` last (see `l4p.export.run_record`), so a crash never leaves
a half-written folder that looks done. A rerun skips a folder only when its marker records the
same source (path, size, mtime) and the same settings (model, checkpoint, mode, tasks,
queries, max frames, dtype, files to write); otherwise the folder's earlier outputs are
cleared and the video is redone, with the reason logged. Videos are
decoded in `DataLoader` workers while the model runs; with several GPUs or nodes, Lightning's
DDP strategy gives each process its share of the videos (run the `l4p` command itself, or
under `torchrun` / SLURM `srun` for several nodes). On a CPU it is a plain sequential loop.

::

    jobs = plan_jobs(["a.mp4", "b.mp4"], out_dir="out")
    results = predict_many(model, jobs, options=PredictOptions(tasks=("depth", "flow")))
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from l4p.api import L4PPredictor
from l4p.data.video import read_video, video_fps
from l4p.export.run_record import (
    DONE_MARKER,
    FAILED_MARKER,
    clear_outputs,
    read_marker,
    write_done_marker,
    write_failed_marker,
)
from l4p.logging_context import per_video_warnings
from l4p.models.l4p import L4P
from l4p.predict_jobs import VideoJob, plan_jobs, todo_jobs
from l4p.predict_trainer import StderrProgressBar, predict_interruptible, quiet_lightning

logger = logging.getLogger(__name__)

__all__ = [
    "DONE_MARKER",
    "FAILED_MARKER",
    "PredictOptions",
    "VideoJob",
    "plan_jobs",
    "predict_many",
    "todo_jobs",
]


@dataclass
class PredictOptions:
    """What to predict and write for every video (see `l4p.export.folder` for the files)."""

    tasks: tuple[str, ...] = ("depth", "flow", "motion", "camera")
    queries: np.ndarray | None = None  # (N, 3) as (t, x, y), the same for every video
    grid_size: int | None = None
    max_frames: int | None = None
    dtype: torch.dtype | None = None
    mode: str = "default"
    fps: float | None = None  # output frame rate when the input has none
    png16: bool = False
    export_3d: bool = False
    visualize: bool = True
    suffix: str = ".mp4"
    overwrite: bool = False
    window_progress: bool = False
    raise_errors: bool = False
    settings: dict[str, Any] = field(
        default_factory=dict
    )  # see `run_record.run_settings`; a re-run compares it


@dataclass
class VideoResult:
    """What happened to one video: status "done", "skipped" or "failed"."""

    video: str
    out_dir: str
    status: str
    seconds: float = 0.0
    frames: int = 0
    error: str = ""


class VideoDataset(Dataset):
    """Decodes one video per item (in a `DataLoader` worker when there are workers)."""

    def __init__(self, jobs: Sequence[VideoJob], *, max_frames: int | None = None) -> None:
        self.jobs, self.max_frames = list(jobs), max_frames

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> dict:
        job = self.jobs[index]  # plain dict items: Lightning walks the batch and refuses frozen dataclasses
        item = {"video": job.video, "out_dir": job.out_dir, "frames": None, "fps": None, "error": ""}
        try:
            item["frames"] = read_video(job.video, max_frames=self.max_frames).frames
            item["fps"] = video_fps(job.video)
        except (OSError, ValueError) as err:
            item["error"] = str(err) or type(err).__name__
        return item


def _single(batch: list[dict]) -> dict:
    return batch[0]


class VideoPredictionTask(pl.LightningModule):
    """`predict_step` runs one video through `L4PPredictor` and writes its folder."""

    def __init__(self, model: L4P, options: PredictOptions) -> None:
        super().__init__()
        self.model = model
        self.options = options

    def on_predict_end(self) -> None:
        """Wait for every process, so that all folders are final when `predict` returns."""
        self.trainer.strategy.barrier("l4p_predict_many_end")

    def predict_step(self, batch: dict, batch_idx: int = 0) -> VideoResult:
        """Predict and write one video; errors are recorded, not raised (unless asked)."""
        job, opts = VideoJob(batch["video"], batch["out_dir"]), self.options
        start = time.perf_counter()
        try:
            clear_outputs(job.out_dir)  # earlier runs' files must not outlive this one's
            if batch["error"]:
                raise ValueError(batch["error"])
            frames, fps = batch["frames"], batch["fps"] or opts.fps
            with per_video_warnings(Path(job.video).name):
                result = self._run(job, frames, fps)
            result.seconds = time.perf_counter() - start
            return result
        except Exception as err:  # a failed video must not stop the others
            if opts.raise_errors:
                raise
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            Path(job.out_dir).mkdir(parents=True, exist_ok=True)
            write_failed_marker(job.out_dir, source=job.video, details=traceback.format_exc())
            logger.debug("%s failed: %s", job.video, message)  # the caller reports it once
            return VideoResult(job.video, job.out_dir, "failed", time.perf_counter() - start, error=message)

    def _run(self, job: VideoJob, frames: np.ndarray, fps: float | None) -> VideoResult:
        from l4p.export.folder import write_prediction_folder

        opts = self.options
        out_dir = Path(job.out_dir)
        predictor = L4PPredictor(self.model, device=self.device, dtype=opts.dtype, mode=opts.mode)
        tic = time.perf_counter()
        pred = predictor.predict(
            frames, opts.tasks, queries=opts.queries, grid_size=opts.grid_size, progress=opts.window_progress
        )
        model_seconds = time.perf_counter() - tic
        files = write_prediction_folder(
            out_dir, frames=frames, pred=pred, fps=fps or opts.fps, source=job.video, visualize=opts.visualize,
            png16=opts.png16, export=opts.export_3d, suffix=opts.suffix,
        )  # fmt: skip
        info = {
            "video": job.video, "tasks": list(opts.tasks), "frames": int(frames.shape[0]),
            "height": int(frames.shape[1]), "width": int(frames.shape[2]), "fps": fps,
            "model_seconds": round(model_seconds, 3), "rank": self.global_rank,
        }  # fmt: skip
        write_done_marker(out_dir, source=job.video, settings=opts.settings, files=files, info=info)
        return VideoResult(job.video, job.out_dir, "done", frames=int(frames.shape[0]))


def predict_many(
    model: L4P | Callable[[], L4P],
    jobs: Sequence[VideoJob],
    *,
    options: PredictOptions,
    accelerator: str = "auto",
    devices: int | str = 1,
    num_nodes: int = 1,
    num_workers: int = 0,
    progress: bool = False,
) -> list[VideoResult]:
    """Run every job through `Trainer.predict` and return this process's results.

    Args:
        model: The network (moved to each process's device by Lightning), or a function
            building it, called only when some video is not done yet.
        jobs: Videos and their output folders; finished ones are skipped before decoding.
        options: Tasks, queries and what to write.
        accelerator: "cpu", "gpu"/"cuda" or "auto".
        devices: Devices per node (an int, or "auto" for all visible); on a CPU, processes.
            More than one device (or node) runs Lightning's DDP strategy.
        num_nodes: Nodes (launch with torchrun or SLURM for more than one).
        num_workers: `DataLoader` processes decoding videos ahead of the model.
        progress: Show a progress bar over videos.

    Returns:
        One `VideoResult` per job this process handled, skipped ones included.
    """
    todo, done = todo_jobs(jobs, settings=options.settings, overwrite=options.overwrite)
    results = [VideoResult(j.video, j.out_dir, "skipped") for j in done]
    for r in results:
        logger.info("%s: already done in %s, skipped", r.video, r.out_dir)
    if not todo:
        return results
    if not isinstance(model, L4P):
        model = model()
    accelerator = "gpu" if accelerator == "cuda" else accelerator
    loader = DataLoader(
        VideoDataset(todo, max_frames=options.max_frames), batch_size=1, shuffle=False, num_workers=num_workers,
        collate_fn=_single, persistent_workers=False,
    )  # fmt: skip
    with quiet_lightning():
        trainer = pl.Trainer(
            accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy="auto",
            logger=False, enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=progress,
            inference_mode=True, precision="32-true", callbacks=[StderrProgressBar()] if progress else None,
        )  # fmt: skip
        out = predict_interruptible(trainer, VideoPredictionTask(model, options), loader)
    if trainer.world_size == 1:
        return results + [r for r in (out or []) if isinstance(r, VideoResult)]
    if trainer.global_rank != 0:
        return []
    return results + [result_from_disk(j) for j in todo]


def result_from_disk(job: VideoJob) -> VideoResult:
    """A job's result read back from its folder (how rank 0 reports the videos of every process)."""
    folder = Path(job.out_dir)
    marker = read_marker(folder)
    if marker is not None:
        return VideoResult(
            job.video, job.out_dir, "done", marker.get("model_seconds", 0.0), marker.get("frames", 0)
        )
    error = "no output (the process handling it stopped)"
    if (folder / FAILED_MARKER).is_file():
        lines = (folder / FAILED_MARKER).read_text().strip().splitlines()
        error = lines[-1] if lines else error
    return VideoResult(job.video, job.out_dir, "failed", error=error)
