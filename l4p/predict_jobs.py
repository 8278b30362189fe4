"""Jobs of `l4p.predict_many`: which folder each video goes to, and which are still to do.

See `l4p.export.run_record` for the done marker these decisions read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l4p.export.run_record import owner, read_marker, stale_reason

logger = logging.getLogger("l4p.predict_many")


@dataclass(frozen=True)
class VideoJob:
    """One video and the folder its outputs go to."""

    video: str
    out_dir: str


def todo_jobs(
    jobs: Sequence[VideoJob], *, settings: dict[str, Any], overwrite: bool = False
) -> tuple[list[VideoJob], list[VideoJob]]:
    """Split jobs into (to do, done): done means the marker matches this source and `settings`.

    Logs, for every folder that holds an older result, why it is redone.
    """
    todo, done = [], []
    for job in jobs:
        reason = (
            "--overwrite" if overwrite else stale_reason(job.out_dir, source=job.video, settings=settings)
        )
        if reason is None:
            done.append(job)
            continue
        if reason != "not finished" and read_marker(job.out_dir) is not None:
            logger.info("%s: redoing %s: %s", job.video, job.out_dir, reason)
        todo.append(job)
    return todo, done


def plan_jobs(videos: Sequence[str | Path], *, out_dir: str | Path) -> list[VideoJob]:
    """One job per video, in a folder named by its stem, never shared by two sources.

    A folder that already holds (by its markers) the result of another source is not reused:
    the video gets `<stem>-2`, `<stem>-3`, ... (the first such folder it owns, else the first
    free one), also when two videos of one run share a stem (`alley.mp4`, `alley.gif`).
    """
    out_dir = Path(out_dir)
    sources = [str(Path(v).resolve()) for v in videos]
    stems = [Path(v).stem if Path(v).is_file() else Path(v).resolve().name for v in videos]

    def candidates(stem: str) -> Iterator[str]:
        yield stem
        k = 2
        while True:
            yield f"{stem}-{k}"
            k += 1

    chosen: dict[int, str] = {}
    for i, (stem, source) in enumerate(zip(stems, sources)):  # first: folders a video already owns
        for name in candidates(stem):
            found = owner(out_dir / name)
            if found is None and not (out_dir / name).exists():
                break
            if found == source and name not in chosen.values():
                chosen[i] = name
                break
    for i, (stem, source) in enumerate(zip(stems, sources)):
        if i not in chosen:
            chosen[i] = next(
                n
                for n in candidates(stem)
                if n not in chosen.values() and owner(out_dir / n) in (None, source)
            )
    return [VideoJob(video=str(v), out_dir=str(out_dir / chosen[i])) for i, v in enumerate(videos)]
