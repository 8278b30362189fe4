"""Frame sources for the stream: a path, an in-memory video, or any iterator of frames.

Every source yields float32 chunks (B, n, 3, H, W) in [0, 1]. A path is decoded as it goes
(`l4p.data.video.iter_frames`, which warns when a container ends before its declared frame
count); an iterator may yield single frames ((H, W, 3) uint8 numpy, (3, H, W) tensor) or
chunks of them ((n, H, W, 3) / (n, 3, H, W)); every frame must have the size of the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from l4p.inference.inputs import VideoLike, as_video_tensor

StreamSource = VideoLike | Iterable


class FrameSource:
    """Validated float chunks from any video source.

    Args:
        video: A path (mp4, gif, folder of frames), a numpy array or tensor (see
            `as_video_tensor`), or an iterable of frames or frame chunks (batch 1).
        chunk: Frames per chunk read from a path.

    Attributes:
        num_frames: T when known before reading (in-memory videos), else None.
        expected_frames: T as far as it can be told before reading (in-memory videos, the
            count a video file or folder declares), else None; for progress bars only (a
            truncated file may deliver fewer).
        fps: Frame rate of a video file, else None.
    """

    def __init__(self, video: StreamSource, *, chunk: int = 16) -> None:
        self.video = video
        self.chunk = chunk
        self.fps: float | None = None
        self.num_frames: int | None = None
        self.expected_frames: int | None = None
        self._tensor: torch.Tensor | None = None
        if isinstance(video, (np.ndarray, torch.Tensor)):
            self._tensor = as_video_tensor(video)
            self.num_frames = self.expected_frames = self._tensor.shape[1]
        elif isinstance(video, (str, Path)):
            from l4p.data.video import video_fps, video_frame_count

            if not Path(video).exists():
                raise FileNotFoundError(f"video {video} does not exist")
            self.fps = video_fps(video)
            self.expected_frames = video_frame_count(video)
        elif not isinstance(video, Iterable):
            raise TypeError(
                f"unsupported video type {type(video).__name__}; pass a path, a numpy array, a tensor "
                "or an iterator of frames"
            )

    def chunks(self, skip: int = 0) -> Iterator[torch.Tensor]:
        """Yield (B, n, 3, H, W) float chunks, leaving out the first `skip` frames.

        Raises:
            ValueError: A frame's size differs from the first frame's (names the index and both sizes).
        """
        if self._tensor is not None:
            for lo in range(skip, self._tensor.shape[1], self.chunk):
                yield self._tensor[:, lo : lo + self.chunk]
            return
        if isinstance(self.video, (str, Path)):
            from l4p.data.video import iter_frames

            items: Iterable = iter_frames(self.video, chunk=self.chunk)
        else:
            items = self.video
        first: tuple[int, int] | None = None
        seen = 0
        for item in items:
            frames = _as_chunk(item, seen)
            size = tuple(frames.shape[-2:])
            if first is None:
                first = size  # type: ignore[assignment]
            elif size != first:
                raise ValueError(
                    f"frame {seen} is {size[1]}x{size[0]} (WxH) but frame 0 is {first[1]}x{first[0]}; "
                    "every frame of a video must have one size (resize the frames first)"
                )
            n = frames.shape[1]
            if seen + n > skip:
                yield frames[:, max(skip - seen, 0) :]
            seen += n


def _as_chunk(item, index: int) -> torch.Tensor:
    """One iterator item as a (1, n, 3, H, W) float chunk."""
    if isinstance(item, np.ndarray) and item.ndim == 3 and item.shape[-1] in (1, 3, 4):
        item = item[None]
    elif isinstance(item, torch.Tensor) and item.ndim == 3:
        item = item[None]
    if not isinstance(item, (np.ndarray, torch.Tensor)) or item.ndim != 4:
        shape = getattr(item, "shape", None)
        raise ValueError(
            f"frame {index} of the iterator is {type(item).__name__} with shape {shape}; yield (H, W, 3) uint8 "
            "numpy frames, (3, H, W) tensors, or chunks (n, H, W, 3) / (n, 3, H, W)"
        )
    return as_video_tensor(item)
