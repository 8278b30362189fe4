"""Predict many videos with `Trainer.predict`: one output folder per video, restartable.

Each video gets `<out>/<name>/` (see `l4p.export.stream_folder`), streamed through the model
by `l4p.predict_stream.run_video` (frames are decoded as they go; a killed run resumes);
every file is written atomically and a marker file `l4p_done.json` last (see
`l4p.export.run_record`), so a crash never leaves a half-written folder that looks done. A
rerun skips a folder only when its marker records the same source (path, size, mtime) and
the same settings (model, weights, mode, tasks, queries, max frames, dtype, files to write);
otherwise the folder's earlier outputs are cleared and the video is redone, with the reason
logged. With several GPUs or nodes, Lightning's
DDP strategy gives each process its share of the videos (run the `l4p` command itself, or
under `torchrun` / SLURM `srun` for several nodes). On a CPU it is a plain sequential loop.

::

    jobs = plan_jobs(["a.mp4", "b.mp4"], out_dir="out")
    results = predict_many(model, jobs, options=PredictOptions(tasks=("depth", "flow")))
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from l4p.export.run_record import DONE_MARKER, FAILED_MARKER, read_marker, write_failed_marker
from l4p.logging_context import per_video_warnings
from l4p.models.l4p import L4P
from l4p.predict_jobs import VideoJob, plan_jobs, todo_jobs
from l4p.predict_stream import PredictOptions, VideoResult, run_video
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


class VideoDataset(Dataset):
    """One job per item; the frames are decoded as they stream through the model (`predict_step`)."""

    def __init__(self, jobs: Sequence[VideoJob]) -> None:
        self.jobs = list(jobs)

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> dict:
        job = self.jobs[index]  # plain dict items: Lightning walks the batch and refuses frozen dataclasses
        return {"video": job.video, "out_dir": job.out_dir}


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
        job = VideoJob(batch["video"], batch["out_dir"])
        start = time.perf_counter()
        try:
            with per_video_warnings(Path(job.video).name):
                result = run_video(self.model, job, self.options, device=self.device, rank=self.global_rank)
            result.seconds = time.perf_counter() - start
            return result
        except Exception as err:  # a failed video must not stop the others
            if self.options.raise_errors:
                raise
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            with contextlib.suppress(OSError):  # a full disk or unwritable folder: say the error, not this
                Path(job.out_dir).mkdir(parents=True, exist_ok=True)
                write_failed_marker(job.out_dir, source=job.video, details=traceback.format_exc())
            logger.debug("%s failed: %s", job.video, message)  # the caller reports it once
            return VideoResult(job.video, job.out_dir, "failed", time.perf_counter() - start, error=message)


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
        num_workers: `DataLoader` processes handing out the jobs (the frames are decoded
            while they stream through the model, in the process running it).
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
        VideoDataset(todo), batch_size=1, shuffle=False, num_workers=num_workers,
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
