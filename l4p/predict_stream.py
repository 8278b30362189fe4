"""One video of `l4p predict`: streamed into a prediction store, resumed after a kill, then drawn.

`run_video` decodes the video as it goes and streams it through the model
(`l4p.inference.to_disk.stream_to_disk`): every chunk of frames is written to
`<folder>/prediction.zarr` as it comes, and the stream's state is saved beside it
(`prediction.zarr/.l4p_resume/`) at most every `save_every` seconds. Then it writes the
videos, PNGs and 3D files from the finished store (`l4p.export.stream_folder`) and, last,
the done marker.

Before the first frame it writes `l4p_run.json` (source and settings). A run killed at any
point (Ctrl-C: exit 130; SIGKILL; power loss) and started again with the same command finds
that record matching and continues after the last saved chunk; the result equals an
uninterrupted run. If anything the result depends on changed, the folder is cleared and the
video redone, with the reason logged.

Testing hook: `L4P_TEST_SIGNAL_AT="<frames>:<KILL|INT>"` sends that signal to the process
once a chunk ending at or after `<frames>` has been written (not yet recorded in the saved state).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from l4p.data.video import iter_frames, video_fps, video_frame_count
from l4p.export.run_record import (
    RUN_RECORD,
    STORE_NAME,
    clear_outputs,
    resume_reason,
    write_done_marker,
    write_run_record,
)
from l4p.inference.emit import StreamChunk

logger = logging.getLogger("l4p.predict_many")
SIGNAL_HOOK = "L4P_TEST_SIGNAL_AT"


@dataclass
class PredictOptions:
    """What to predict and write for every video (see `l4p.export.stream_folder` for the files)."""

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
    window_progress: bool = False  # a progress bar over frames (fps, ETA) on stderr
    raise_errors: bool = False
    save_every: float = 30.0  # seconds between saves of the resume state (0: after every chunk)
    settings: dict[str, Any] = field(default_factory=dict)  # see `run_record.run_settings`


@dataclass
class VideoResult:
    """What happened to one video: status "done", "skipped" or "failed"."""

    video: str
    out_dir: str
    status: str
    seconds: float = 0.0
    frames: int = 0
    error: str = ""


def run_video(
    model, job, opts: PredictOptions, *, device: torch.device | str = "cpu", rank: int = 0
) -> VideoResult:
    """Predict one video into its folder, continuing an interrupted run of the same settings.

    Args:
        model: The `L4P` network.
        job: The `VideoJob` (video, folder).
        opts: What to predict and write.
        device: Where the model runs.
        rank: The process's rank (recorded in the marker).

    Raises:
        StoreError: The folder cannot be written (full disk, no permission); what was written is kept.
        ValueError: The video cannot be decoded.
    """
    import time

    from l4p.api import L4PPredictor
    from l4p.export.stream_folder import write_from_store
    from l4p.inference.to_disk import stream_to_disk

    out_dir = Path(job.out_dir)
    reason = (
        "--overwrite" if opts.overwrite else resume_reason(out_dir, source=job.video, settings=opts.settings)
    )
    if reason is None:
        logger.info("%s: continuing the interrupted run in %s", job.video, out_dir)
    elif reason != "nothing to resume":
        logger.info("%s: redoing %s: %s", job.video, out_dir, reason)
    clear_outputs(out_dir, keep_store=reason is None)  # earlier runs' files must not outlive this one's
    out_dir.mkdir(parents=True, exist_ok=True)
    write_run_record(out_dir, source=job.video, settings=opts.settings)
    fps = video_fps(job.video)
    predictor = L4PPredictor(model, device=device, dtype=opts.dtype, mode=opts.mode)
    queries = None if opts.queries is None else torch.as_tensor(np.asarray(opts.queries, np.float32))
    on_chunk = _ChunkHook(job.video, opts)
    tic = time.perf_counter()
    with on_chunk, warnings.catch_warnings():
        # the resume folder lives inside the store; zarr notes it when it lists the arrays on resume
        warnings.filterwarnings("ignore", message=r".*\.l4p_resume is not recognized")
        store = stream_to_disk(
            predictor, iter_frames(job.video, chunk=16, max_frames=opts.max_frames), out_dir / STORE_NAME,
            opts.tasks, queries=queries, grid_size=opts.grid_size, mode=opts.mode, resume=reason is None,
            checkpoint_seconds=opts.save_every, attrs={"fps": fps, "source": str(job.video)}, on_chunk=on_chunk,
        )  # fmt: skip
    model_seconds = time.perf_counter() - tic
    files = [store] + write_from_store(
        out_dir, store=store, video=job.video, fps=fps or opts.fps, visualize=opts.visualize,
        suffix=opts.suffix, png16=opts.png16, export=opts.export_3d,
    )  # fmt: skip
    from l4p.inference.store import StoredPrediction

    frames = StoredPrediction(store).num_frames
    info = {"video": job.video, "tasks": list(opts.tasks), "frames": frames, "fps": fps,
            "model_seconds": round(model_seconds, 3), "resumed": reason is None, "rank": rank}  # fmt: skip
    write_done_marker(out_dir, source=job.video, settings=opts.settings, files=files, info=info)
    (out_dir / RUN_RECORD).unlink(missing_ok=True)
    return VideoResult(job.video, job.out_dir, "done", frames=frames)


class _ChunkHook:
    """Called with every written chunk: the progress bar over frames, and the testing signal hook."""

    def __init__(self, video: str, opts: PredictOptions) -> None:
        self.video, self.show = video, opts.window_progress
        total = video_frame_count(video)
        if total is not None and opts.max_frames is not None:
            total = min(total, opts.max_frames)
        self.total = total
        self.bar: Any = None
        hook = os.environ.get(SIGNAL_HOOK, "")
        self.signal_at: tuple[int, int] | None = None
        if hook:
            at, name = hook.split(":")
            self.signal_at = (int(at), getattr(signal, f"SIG{name}"))

    def __call__(self, chunk: StreamChunk) -> None:
        if chunk.kind != "frames":
            return
        if self.bar is None and self.show:
            self.bar = tqdm(total=self.total, initial=chunk.start, unit="frame", desc=Path(self.video).name,
                            file=sys.stderr, dynamic_ncols=True, smoothing=0.1)  # fmt: skip
        if self.bar is not None:
            self.bar.update(chunk.stop - self.bar.n)
        if self.signal_at is not None and chunk.stop >= self.signal_at[0]:
            os.kill(os.getpid(), self.signal_at[1])

    def __enter__(self) -> _ChunkHook:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
