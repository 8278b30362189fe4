"""Stream a video's predictions into a zarr store, resuming an interrupted run.

`stream_to_disk` writes every chunk as it comes (`PredictionWriter`) and, after each chunk
that closes a step of the engine, saves the stream's state atomically (temp file + rename)
to `<out>/.l4p_resume/state.pt`. A run killed at any point (SIGINT, SIGKILL, power loss)
and started again with the same arguments reopens the store, cuts it back to the frames
the state describes, skips those frames of the source, and continues; the result equals an
uninterrupted run. When the store is complete the resume folder is removed.

The state file holds: the request (to refuse resuming a different one), the frames written,
and the stream state (`VideoStream.state_dict`): the engine's frame buffer (up to a window of
frames at the model's resolution), the stitched overlap of the last window (8 frames of the
dense outputs at window resolution), the tracking memory (history tokens (B, N, P, C), the
largest item: P x C = 2048 x 1408 float32 per query for the full-size `l4p_vitg14`, 11.5 MB
per query, so 1.15 GB for a 10 x 10 grid; `l4p_vits16`: 1568 x 384, 2.4 MB per query), the
(T x N) track arrays and (T x 4 x 4) cameras so far. Without tracks the state is about 16 MB
at full size (a window of 224 x 224 frames and 8 frames of stitched dense outputs). The disk caches of bidirectional tracking
(frames) and default-mode track depth (depth) live beside it in `<out>/.l4p_resume/cache/`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from l4p.inference.source import StreamSource
from l4p.inference.store import PredictionWriter

logger = logging.getLogger(__name__)
RESUME_DIR = ".l4p_resume"


def _request_key(video: StreamSource, tasks, **kwargs) -> str:
    """A description of the request; a resumed run must match it."""
    src = str(video) if isinstance(video, (str, Path)) else type(video).__name__
    if isinstance(video, torch.Tensor):
        src += str(tuple(video.shape))
    plain = {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()}
    return json.dumps({"video": src, "tasks": tasks, **plain}, sort_keys=True, default=str)


def _save_state(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def stream_to_disk(
    predictor,
    video: StreamSource,
    out: str | Path,
    tasks: Sequence[str] | str = ("depth", "flow", "motion", "camera"),
    *,
    queries: torch.Tensor | Sequence | None = None,
    grid_size: int | None = None,
    grid_frame: int = 0,
    intrinsics: torch.Tensor | None = None,
    direction: str | None = None,
    mode: str | None = None,
    progress: bool = False,
    resume: bool = True,
    checkpoint_seconds: float = 0.0,
    attrs: dict | None = None,
    on_chunk=None,
) -> Path:
    """Predict a video of any length into a zarr store at `out`, resuming an interrupted run.

    Args:
        predictor: An `L4PPredictor`.
        video: A path, an in-memory video, or an iterator of frames (an iterator cannot be
            rewound: a resumed run must be given one that starts at the first frame again).
        out: The store's folder (see `l4p.inference.store` for the layout).
        tasks: Tasks, as for `predict`.
        queries: As for `predict`.
        grid_size: As for `predict`.
        grid_frame: As for `predict`.
        intrinsics: As for `predict`.
        direction: As for `predict`.
        mode: As for `predict`.
        progress: A progress bar over frames (fps, ETA).
        resume: Continue an interrupted run found at `out` (False: start over).
        checkpoint_seconds: Save the state after a chunk only when this many seconds passed
            since the last save (0: after every chunk). With many tracks on the full-size
            model the state is large (see the module docstring): 30 to 60 s suits long runs.
        attrs: Extra attributes stored with the predictions.
        on_chunk: Called with each written `StreamChunk` (e.g. to feed viz writers).

    Returns:
        `out`. Read it with `l4p.load_prediction(out)`.

    Raises:
        ValueError: `out` holds an unfinished run of a different request.
        StoreError: The store cannot be written (what was written is kept).
    """
    out = Path(out)
    resume_dir = out / RESUME_DIR
    state_file = resume_dir / "state.pt"
    key = _request_key(video, tasks, queries=queries, grid_size=grid_size, grid_frame=grid_frame,
                       intrinsics=intrinsics, direction=direction, mode=mode or predictor.mode)  # fmt: skip
    state = None
    if resume and state_file.exists():
        state = torch.load(state_file, weights_only=False)
        if state["request"] != key:
            raise ValueError(
                f"{out} holds an unfinished run of another request ({state['request']}); rerun that "
                "command, pass resume=False to start over, or choose another output folder"
            )
        logger.info("resuming %s after frame %d", out, state["written"])
    elif resume and _complete(out, key):
        logger.info("%s is complete; nothing to do", out)
        return out
    elif resume_dir.exists():
        shutil.rmtree(resume_dir)
    stream = predictor.stream(
        video, tasks, queries=queries, grid_size=grid_size, grid_frame=grid_frame, intrinsics=intrinsics,
        direction=direction, mode=mode, progress=progress, cache_dir=resume_dir / "cache",
        state=None if state is None else state["stream"],
    )  # fmt: skip
    info = {"fps": stream.fps, "request": key, **(attrs or {})}
    writer = PredictionWriter(out, frames=0 if state is None else state["written"], attrs=info)
    resume_dir.mkdir(parents=True, exist_ok=True)
    last_save = time.monotonic()
    for chunk in stream:
        writer.write(chunk)
        if on_chunk is not None:
            on_chunk(chunk)
        if chunk.kind == "frames" and stream.resumable:
            if time.monotonic() - last_save >= checkpoint_seconds or stream.phase == "tracks":
                last_save = time.monotonic()
                _save_state(
                    state_file, {"request": key, "written": writer.frames, "stream": stream.state_dict()}
                )
    writer.finish()
    shutil.rmtree(resume_dir, ignore_errors=True)
    return out


def _complete(out: Path, key: str) -> bool:
    """The store at `out` is a finished run of this request."""
    if not (out / "zarr.json").exists():
        return False
    try:
        attrs = json.loads((out / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False
    return bool(attrs.get("complete")) and attrs.get("request") == key
