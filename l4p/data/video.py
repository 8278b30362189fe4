"""Reading and writing videos: mp4/mov/avi/webm (PyAV), gif (imageio) and folders of frames.

Frames are uint8 RGB, (T, H, W, 3). `read_video` decodes a whole clip; `iter_frames` yields
it in chunks so that long videos never sit in memory at once; `VideoWriter` appends frames to
an mp4 (H.264, yuv420p) or gif as they come. H.264 in yuv420p needs even sizes, so an odd
height or width loses its last row or column in mp4 files (gifs keep every pixel).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v", ".gif")


class FrameSizeError(ValueError):
    """The frames of a folder do not all have the same size."""


@dataclass
class Video:
    """Decoded frames (T, H, W, 3) uint8 RGB and the frame rate (None when unknown)."""

    frames: np.ndarray
    fps: float | None


def read_video(path: str | Path, *, max_frames: int | None = None) -> Video:
    """Read a video file (mp4/mov/avi/webm/gif) or a folder of frames sorted by name.

    Raises:
        FileNotFoundError: The path does not exist.
        ValueError: The file has no decodable frames or is not a video.
    """
    chunks = list(iter_frames(path, chunk=256, max_frames=max_frames))
    if not chunks:
        raise ValueError(f"video {path} has no frames")
    return Video(frames=np.concatenate(chunks), fps=video_fps(path))


def iter_frames(path: str | Path, *, chunk: int = 64, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield a video's frames in chunks, decoding only one chunk ahead.

    Args:
        path: Video file or folder of frames.
        chunk: Frames per yielded array (the last one may be shorter).
        max_frames: Stop after this many frames (None: all).

    Yields:
        uint8 arrays (t, H, W, 3) with 1 <= t <= chunk.

    Raises:
        FileNotFoundError: The path does not exist.
        ValueError: The path is not a decodable video or frame folder.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video {path} does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"video {path}: the file is empty (0 bytes)")
    buffer: list[np.ndarray] = []
    count = 0
    try:
        for frame in _frames(path):
            buffer.append(_rgb(frame))
            count += 1
            if len(buffer) == chunk:
                yield np.stack(buffer)
                buffer = []
            if max_frames is not None and count >= max_frames:
                break
    except (OSError, ValueError, RuntimeError) as err:
        if isinstance(err, (FileNotFoundError, FrameSizeError)):
            raise
        reason = getattr(err, "strerror", None) or str(err)  # PyAV's str() repeats the path
        raise ValueError(
            f"could not decode {path} as a video ({reason}); pass an mp4, gif or a folder of frames"
        ) from err
    if buffer:
        yield np.stack(buffer)


def _frames(path: Path) -> Iterator[np.ndarray]:
    import imageio.v3 as iio

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not files:
            raise ValueError(f"folder {path} has no frames ({', '.join(FRAME_SUFFIXES)})")
        first = None
        for file in files:
            frame = iio.imread(file)
            if first is None:
                first = (file.name, frame.shape[:2])
            elif frame.shape[:2] != first[1]:
                (h0, w0), (h, w) = first[1], frame.shape[:2]
                raise FrameSizeError(
                    f"frame {path / file.name} is {w}x{h} but {first[0]} is {w0}x{h0}; "
                    "all frames of a folder must have one size"
                )
            yield frame
    elif path.suffix.lower() == ".gif":
        yield from iio.imiter(path)
    else:
        import av

        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            declared, decoded = int(stream.frames or 0), 0
            try:
                for frame in container.decode(stream):
                    decoded += 1
                    yield frame.to_ndarray(format="rgb24")
            except (OSError, ValueError) as err:  # a damaged tail: keep the frames decoded so far
                if decoded == 0:
                    raise
                if not declared:
                    logger.warning("decoding %s failed after %d frames (%s); using those", path, decoded, err)
            if declared and decoded < declared:
                logger.warning(
                    "%s declares %d frames but only %d could be decoded (truncated or damaged file?); "
                    "using the %d decoded frames", path, declared, decoded, decoded,
                )  # fmt: skip


def video_fps(path: str | Path) -> float | None:
    """Frame rate of a video file (None for frame folders or when unknown)."""
    path = Path(path)
    if path.is_dir():
        return None
    try:
        if path.suffix.lower() == ".gif":
            import imageio.v3 as iio

            duration = iio.immeta(path).get("duration")
            return 1000.0 / duration if duration else None
        import av

        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate if container.streams.video else None
            return float(rate) if rate else None
    except (OSError, ValueError, IndexError) as err:
        logger.debug("no frame rate for %s: %s", path, err)
        return None


def video_frame_count(path: str | Path) -> int | None:
    """Frames a video declares (its container's count; a gif's or folder's frames), None when unknown."""
    path = Path(path)
    try:
        if path.is_dir():
            return sum(p.suffix.lower() in FRAME_SUFFIXES for p in path.iterdir()) or None
        if path.suffix.lower() == ".gif":
            from PIL import Image

            with Image.open(path) as image:
                return int(getattr(image, "n_frames", 1))
        import av

        with av.open(str(path)) as container:
            return int(container.streams.video[0].frames or 0) or None if container.streams.video else None
    except (OSError, ValueError, IndexError) as err:
        logger.debug("no frame count for %s: %s", path, err)
        return None


def is_video_path(path: str | Path) -> bool:
    """Whether `path` is a video file (by suffix) or a folder holding frames."""
    path = Path(path)
    if path.is_dir():
        return any(p.suffix.lower() in FRAME_SUFFIXES for p in path.iterdir())
    return path.suffix.lower() in VIDEO_SUFFIXES


def _rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    if frame.dtype == np.uint16:
        frame = (frame // 257).astype(np.uint8)
    return np.ascontiguousarray(frame[..., :3]).astype(np.uint8)


class VideoWriter:
    """Append frames to an mp4 (H.264 via PyAV) or gif (by suffix); use as a context manager.

    Frames go to a hidden temporary file beside `path`, renamed to `path` by `close()`, so
    an interrupted run never leaves a truncated video under the final name; `abort()` (or
    leaving the `with` block by an exception) removes the temporary file instead.

    Args:
        path: Output file; its folder is created.
        fps: Frame rate (fractional rates such as 29.97 are kept in mp4 files).
    """

    def __init__(self, path: str | Path, *, fps: float = 10.0) -> None:
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        from l4p.export.atomic import temp_name

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_name(self.path)
        self.fps = float(fps)
        self.count = 0
        self._gif = self.path.suffix.lower() == ".gif"
        self._container: Any = None
        self._stream: Any = None
        self._gif_frames: list[np.ndarray] = []

    def write(self, frames: np.ndarray) -> None:
        """Append one frame (H, W, 3) or several (T, H, W, 3), uint8 RGB."""
        frames = np.asarray(frames)
        frames = frames[None] if frames.ndim == 3 else frames
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
        if self._gif:
            self._gif_frames.extend(frames)
            self.count += len(frames)
            return
        import av

        h, w = frames.shape[1] - frames.shape[1] % 2, frames.shape[2] - frames.shape[2] % 2
        if self._stream is None:
            rate = Fraction(self.fps).limit_denominator(1001)
            self._container = av.open(str(self._tmp), mode="w")
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = w, h
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.time_base = 1 / rate
        if (h, w) != (self._stream.height, self._stream.width):
            raise ValueError(
                f"frame size {(h, w)} differs from the video's {(self._stream.height, self._stream.width)}"
            )
        for frame in frames:
            av_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:h, :w]), format="rgb24")
            av_frame.pts = self.count
            self._container.mux(self._stream.encode(av_frame))
            self.count += 1

    def close(self) -> None:
        """Flush, close and move the file into place (a writer that got no frames writes nothing)."""
        try:
            if self._gif and self._gif_frames:
                import imageio.v3 as iio

                iio.imwrite(self._tmp, np.stack(self._gif_frames), duration=1000.0 / self.fps, loop=0)
                self._gif_frames = []
            if self._container is not None:
                self._container.mux(self._stream.encode())
                self._container.close()
                self._container = None
            if self._tmp.exists():
                os.replace(self._tmp, self.path)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop what was written so far: the final file is left as it was."""
        self._gif_frames = []
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write_video(path: str | Path, frames: np.ndarray, *, fps: float = 10.0) -> Path:
    """Write (T, H, W, 3) uint8 frames as mp4 (H.264 via PyAV) or gif (by suffix)."""
    with VideoWriter(path, fps=fps) as writer:
        writer.write(frames)
    return Path(path)
