"""What `l4p predict` writes besides its prediction store, read back from the store lazily.

Layout of `<out>/<video-stem>/` (see also `l4p.inference.store` for `prediction.zarr`):

- `prediction.zarr/`: every predicted field, batch first (`l4p.load_prediction` opens it
  lazily), written chunk by chunk while the video streams through the model;
- `depth.mp4`, `flow.mp4`, `motion.mp4`, `tracks.mp4`, `mosaic.mp4` (see
  `l4p.viz.visualize_prediction`), at the input frame rate;
- `depth_png16/frame_00000.png`, ... (with `png16`): 16-bit depth, `depth = value * scale`;
- 3D files (with `export_3d`): `pointclouds/`, `cameras.ply`, `cameras.json`,
  `trajectory_tum.txt`, `tracks_3d.npz` (see `l4p.export.export_3d`).

Everything here is derived from the finished store in one pass over the input frames, which
are decoded a second time, `CHUNK` frames at a time: memory stays bounded in the video's
length. Why after the stream rather than while it runs: the colour ranges of depth and flow
are those of the whole video, tracks (bidirectional) exist only once the stream ended, and a
run that was killed and resumed writes exactly the same files as one that was not (an mp4
cannot be appended to after a kill).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from l4p.data.video import iter_frames
from l4p.export.folder import write_depth_png16
from l4p.export.pointcloud import write_point_clouds
from l4p.export.scene import export_cameras_and_tracks
from l4p.inference.store import StoredPrediction
from l4p.outputs import Prediction

logger = logging.getLogger(__name__)

CHUNK = 32
TRACKS_NPZ_VIDEO_BYTES = 512 * 2**20  # tracks_3d.npz holds video and depth only below this size
SMALL_FIELDS = ("extrinsics", "intrinsics", "tracks", "visibility", "visibility_prob", "track_depth",
                "tracks_3d", "tracks_world", "queries")  # fmt: skip


class FirstVideo:
    """Video 0 of a batch-first array, sliced lazily: `FirstVideo(a)[s:e]` reads `a[0, s:e]`."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.shape = tuple(array.shape[1:])

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.asarray(self.array[0, index])


def write_from_store(
    out_dir: str | Path,
    *,
    store: str | Path,
    video: str | Path,
    fps: float | None,
    visualize: bool = True,
    suffix: str = ".mp4",
    png16: bool = False,
    export: bool = False,
) -> list[Path]:
    """Write the visualisations, 16-bit PNG depth and 3D files of a finished prediction store.

    Args:
        out_dir: The video's folder.
        store: Its prediction store.
        video: The input video (decoded again, as far as the store goes).
        fps: Input frame rate (None: unknown; videos are then written at 10 fps).
        visualize: Write the videos.
        suffix: ".mp4" or ".gif".
        png16: Write 16-bit PNG depth frames.
        export: Write point clouds, cameras and 3D tracks.

    Returns:
        Paths written (folders for frame sequences).
    """
    from l4p.viz.writer import visualize_fields

    out_dir, pred = Path(out_dir), StoredPrediction(store)
    fields = {name: getattr(pred, name) for name in pred.fields()}
    written: list[Path] = []
    if png16 and "depth" in fields:
        written.append(write_depth_png16(out_dir / "depth_png16", FirstVideo(fields["depth"])))
    if not (visualize or export):
        return written
    small = _small_prediction(fields, pred.depth_kind)
    size = _frame_size(video)
    keep = export and small.tracks_3d is not None and _npz_fits(pred.num_frames, size)
    kept: list[np.ndarray] = []
    clouds = export and "depth" in fields and small.intrinsics is not None
    chunks = _input_chunks(video, pred.num_frames)

    def frames_with_side_effects() -> Iterator[np.ndarray]:
        start = 0
        for frames in chunks:
            stop = start + len(frames)
            if clouds:
                ext = None if small.extrinsics is None else small.extrinsics[0, start:stop].numpy()
                write_point_clouds(
                    out_dir / "pointclouds", frames=frames, depth=np.asarray(fields["depth"][0, start:stop]),
                    intrinsics=small.intrinsics[0, start:stop].numpy(), extrinsics=ext, start=start,  # type: ignore[index]
                )  # fmt: skip
            if keep:
                kept.append(frames)
            start = stop
            yield frames

    if visualize:
        written += visualize_fields(
            frames_with_side_effects(), fields, out_dir, fps=fps or 10.0, suffix=suffix
        ).values()
    else:
        for _ in frames_with_side_effects():
            pass
    if export:
        if clouds:
            written.append(out_dir / "pointclouds")
        if keep and "depth" in fields:
            small.depth = torch.from_numpy(np.asarray(fields["depth"][...]))
        elif small.tracks_3d is not None:
            logger.info("tracks_3d.npz without video and depths (over %d MB; both are in prediction.zarr "
                        "and the input)", TRACKS_NPZ_VIDEO_BYTES >> 20)  # fmt: skip
        files = export_cameras_and_tracks(out_dir, small, frames=np.concatenate(kept) if kept else None,
                                          fps=fps, height=size[0], width=size[1])  # fmt: skip
        written += files.values()
        if not files and not clouds:
            logger.warning(
                "nothing 3D to export: point clouds, cameras and 3D tracks all need the 'camera' task"
            )
    return written


def _small_prediction(fields: dict[str, Any], depth_kind: str) -> Prediction:
    """The (T x N) and (T x 4 x 4) fields read whole: they are small."""
    pred = Prediction(depth_kind=depth_kind)
    for name in SMALL_FIELDS:
        if name in fields:
            setattr(pred, name, torch.from_numpy(np.asarray(fields[name][...])))
    return pred


def _npz_fits(frames: int, size: tuple[int, int]) -> bool:
    return frames * size[0] * size[1] * 4 * 4 <= TRACKS_NPZ_VIDEO_BYTES  # float32 video (3) + depth (1)


def _frame_size(video: str | Path) -> tuple[int, int]:
    with _quiet_reader():
        first = next(iter_frames(video, chunk=1, max_frames=1))
    return int(first.shape[1]), int(first.shape[2])


def _input_chunks(video: str | Path, frames: int) -> Iterator[np.ndarray]:
    """The first `frames` input frames again, in chunks (the reader's warnings were said the first time)."""
    with _quiet_reader():
        yield from iter_frames(video, chunk=CHUNK, max_frames=frames)


@contextlib.contextmanager
def _quiet_reader() -> Iterator[None]:
    reader = logging.getLogger("l4p.data.video")
    level = reader.level
    reader.setLevel(logging.ERROR)
    try:
        yield
    finally:
        reader.setLevel(level)
