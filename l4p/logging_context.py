"""Warnings that name the video they are about, each said once per video.

Library code deep inside inference (e.g. the robust Sim(3) fit falling back, once per
window) does not know which video it is working on. While `per_video_warnings(name)` is
active, every warning-or-worse record of the `l4p` loggers that reaches the root handlers
is prefixed with the video's name, repeats of the same message are held back, and on exit
one line says how many times each repeated warning occurred.

::

    with per_video_warnings("alley.mp4"):
        predictor.predict(frames, tasks)
    # l4p: warning: alley.mp4: robust Sim(3) fit failed for 1 item(s); falling back to Umeyama/identity
    # l4p: warning: alley.mp4: the warning above occurred 7 times in all
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator

logger = logging.getLogger("l4p")


class _PerVideoFilter(logging.Filter):
    """Prefix `l4p.*` warnings with the video's name and drop repeats (counted)."""

    def __init__(self, video: str) -> None:
        super().__init__()
        self.video = video
        self.counts: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith("l4p"):
            return True
        if getattr(record, "_l4p_video", None) == self.video:  # already handled by another handler
            return record._l4p_first  # type: ignore[attr-defined]
        text = record.getMessage()
        self.counts[text] += 1
        record._l4p_video = self.video  # type: ignore[attr-defined]
        record._l4p_first = self.counts[text] == 1  # type: ignore[attr-defined]
        record.msg, record.args = f"{self.video}: {text}", None
        return record._l4p_first  # type: ignore[attr-defined]


@contextlib.contextmanager
def per_video_warnings(video: str) -> Iterator[None]:
    """Within the block, `l4p` warnings name `video` and each distinct one is shown once."""
    flt = _PerVideoFilter(video)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(flt)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(flt)
        for text, count in flt.counts.items():
            if count > 1:
                logger.warning("%s: the warning %r occurred %d times in all", video, text[:80], count)
