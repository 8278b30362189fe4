"""Reading and writing videos: mp4 (PyAV), gif (imageio) and folders of frames."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


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
    import imageio.v3 as iio

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video {path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)[:max_frames]
        if not files:
            raise ValueError(f"folder {path} has no frames ({', '.join(FRAME_SUFFIXES)})")
        frames = np.stack([_rgb(iio.imread(p)) for p in files])
        return Video(frames=frames, fps=None)
    try:
        if path.suffix.lower() == ".gif":
            frames = iio.imread(path, index=None)
            meta = iio.immeta(path)
            fps = 1000.0 / meta["duration"] if meta.get("duration") else None
            frames = frames[None] if frames.ndim == 3 else frames
        else:
            frames, fps = _read_av(path, max_frames)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"could not decode {path} as a video ({err}); pass an mp4, gif or a folder of frames"
        ) from err
    frames = np.stack([_rgb(f) for f in frames[:max_frames]]) if len(frames) else frames
    if len(frames) == 0:
        raise ValueError(f"video {path} has no frames")
    return Video(frames=frames, fps=fps)


def _read_av(path: Path, max_frames: int | None) -> tuple[np.ndarray, float | None]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else None
        frames = []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    return (np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)), fps


def _rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    return np.ascontiguousarray(frame[..., :3]).astype(np.uint8)


def write_video(path: str | Path, frames: np.ndarray, *, fps: float = 10.0) -> Path:
    """Write (T, H, W, 3) uint8 frames as mp4 (H.264 via PyAV) or gif (by suffix)."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        iio.imwrite(path, frames, duration=1000.0 / fps, loop=0)
        return path
    import av

    h, w = frames.shape[1:3]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            packet = stream.encode(
                av.VideoFrame.from_ndarray(frame[: h - h % 2, : w - w % 2], format="rgb24")
            )
            container.mux(packet)
        container.mux(stream.encode())
    return path
