"""The stream: source -> window feeder -> `WindowEngine` -> input-pixel chunks (+ tracks).

`VideoStream` is what `L4PPredictor.stream` returns and what `predict` collects. It reads a
chunk of frames, resizes it to the window and normalises it, pushes it through the engine,
and yields every frame the engine finalised, mapped back to the input's pixels. Latency:
frames come out one stride (8 frames) at a time, once the window after them is full, i.e.
a frame leaves between `stride` and `window - 1` frames after it arrived. Track fields come
once at the end (see `StreamChunk`).

The whole state (`state_dict`) is small: the engine state (a window of frames, the overlap
of the last window, the tracking memory), the (T x N) track arrays and (T x 4 x 4) cameras
collected for the final track fields, and the lengths of the disk caches.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm.auto import tqdm

from l4p.heads.tracking.driver import TrackingResult
from l4p.inference.emit import StreamChunk, to_input_pixels
from l4p.inference.engine import collect_raw
from l4p.inference.feed import StreamSetup, normalise
from l4p.inference.frame_cache import FrameCache
from l4p.inference.resize import resize_frames, resize_maps
from l4p.inference.source import FrameSource, StreamSource
from l4p.inference.tracks import sample_depth_map, track_fields
from l4p.inference.window_engine import RawChunk, WindowEngine

logger = logging.getLogger(__name__)
TRACK_KEYS = ("track_traj", "track_vis", "track_depth")


class VideoStream:
    """Iterate over `StreamChunk`s of a video (see `L4PPredictor.stream` for the arguments).

    Args:
        predictor: The `L4PPredictor` (model, device, dtype, window batch size).
        video: A path, an in-memory video, or an iterator of frames.
        setup: The checked request (tasks, queries, intrinsics, direction, mode).
        progress: Show a progress bar over frames (fps and ETA).
        cache_dir: Folder of the disk caches (default: a temporary folder, removed at the end).
        state: A `state_dict` of an interrupted stream over the same video and request.
    """

    def __init__(
        self, predictor, video: StreamSource, setup: StreamSetup, *, progress: bool = False,
        cache_dir: str | Path | None = None, state: dict | None = None,
    ) -> None:  # fmt: skip
        self.predictor, self.model, self.setup = predictor, predictor.model, setup
        self.source = FrameSource(video)
        self.progress = progress
        self.own_cache = cache_dir is None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.pending = 0
        self._resume = state
        self.s: dict = {}

    @property
    def fps(self) -> float | None:
        """Frame rate of a video file, else None."""
        return self.source.fps

    @property
    def phase(self) -> str:
        """Either "frames" while frames are read, or "tracks" once every frame chunk came out."""
        return self.s.get("phase", "frames")

    @property
    def resumable(self) -> bool:
        """True between chunks when `state_dict` describes exactly the chunks yielded so far."""
        return self.pending == 0 and bool(self.s)

    def state_dict(self) -> dict:
        """The stream's state (tensors on the CPU); pass it as `state` to continue."""
        out = {k: v for k, v in self.s.items() if k not in ("engine", "frames_cache", "depth_cache")}
        out["engine"] = self.s["engine"].state_dict()
        for name in ("frames_cache", "depth_cache"):
            out[name] = None if self.s[name] is None else self.s[name].length
        return _to_cpu(out)

    def __iter__(self) -> Iterator[StreamChunk]:
        try:
            yield from self._frames()
            if self.setup.want_tracks:
                yield self._tracks()
        finally:
            if self.own_cache and self.cache_dir is not None:
                shutil.rmtree(self.cache_dir, ignore_errors=True)

    def _start(self, batch: int, size_in: tuple[int, int]) -> None:
        """Set up the engine and caches once the first frames give the batch and input size."""
        setup, prior = self.setup, self._resume or {}
        setup.bind(batch, size_in, self.source.num_frames)
        engine = WindowEngine(
            self.model, tasks=setup.engine_tasks, queries_bn3=setup.queries_win(self.predictor.device),
            mode=setup.mode, window_batch_size=self.predictor.window_batch_size, estimate_k=setup.estimate_k,
        )  # fmt: skip
        if prior:
            engine.state = WindowEngine.state_from_dict(_to(prior["engine"], self.predictor.device))
        if (setup.cache_frames or setup.cache_depth) and self.cache_dir is None:
            self.cache_dir = Path(tempfile.mkdtemp(prefix="l4p_stream_"))
        cache = self.cache_dir
        self.s = {
            "batch": batch,
            "size_in": size_in,
            "consumed": prior.get("consumed", 0),
            "phase": prior.get("phase", "frames"),
            "engine": engine,
            "world_from_first": prior.get("world_from_first"),
            "collected": prior.get("collected", {}),
            "frames_cache": FrameCache(cache / "frames.f32", keep=prior.get("frames_cache") or 0)
            if setup.cache_frames and cache is not None else None,
            "depth_cache": FrameCache(cache / "depth.f32", keep=prior.get("depth_cache") or 0)
            if setup.cache_depth and cache is not None else None,
        }  # fmt: skip

    def _frames(self) -> Iterator[StreamChunk]:
        skip = (self._resume or {}).get("consumed", 0)
        if self._resume:
            self._start(self._resume["batch"], tuple(self._resume["size_in"]))  # type: ignore[arg-type]
        bar = tqdm(
            total=self.source.expected_frames,
            initial=skip,
            unit="frame",
            desc="l4p",
            disable=not self.progress,
        )
        try:
            for chunk in self.source.chunks(skip=skip):
                if not self.s:
                    self._start(chunk.shape[0], (chunk.shape[-2], chunk.shape[-1]))
                if self.s["phase"] != "frames":
                    break
                clip = normalise(resize_frames(chunk, self.setup.size_win).to(self.predictor.device))
                lo, hi = self.s["consumed"], self.s["consumed"] + chunk.shape[1]
                if self.s["frames_cache"] is not None:
                    self.s["frames_cache"].append(clip)
                k_win, fallback = self.setup.intrinsics_win(lo, hi, self.predictor.device)
                with self.predictor.autocast(), torch.inference_mode():
                    raws = self.s["engine"].push(clip, k_win, fallback)
                self.s["consumed"] = hi
                yield from self._emit(raws, bar)
            if not self.s:
                raise ValueError("the video has no frames")
            if self.s["phase"] == "frames":
                with self.predictor.autocast(), torch.inference_mode():
                    raws = self.s["engine"].finish()
                self.s["phase"] = "tracks"
                self.setup.check_length(self.s["consumed"])
                yield from self._emit(raws, bar)
        finally:
            bar.close()

    def _emit(self, raws: list[RawChunk], bar) -> Iterator[StreamChunk]:
        self.pending = len(raws)
        for raw in raws:
            self.pending -= 1
            yield self._chunk(raw)
            bar.update(raw.stop - raw.start)

    def _chunk(self, raw: RawChunk) -> StreamChunk:
        """Map one engine chunk to input pixels and keep what the track fields need."""
        setup, s = self.setup, self.s
        if raw.start == 0 and setup.mode == "default" and "cam_to_world" in raw.values:
            s["world_from_first"] = raw.values["cam_to_world"][:, 0].detach().cpu()
        pred = to_input_pixels(
            raw, size_in=setup.size_in, size_win=setup.size_win, tasks=setup.engine_tasks,
            world_from_first=s["world_from_first"],
        )  # fmt: skip
        if setup.want_tracks:
            keep = {k: raw.values[k].cpu() for k in TRACK_KEYS}
            if pred.intrinsics is not None:
                keep["intrinsics"] = pred.intrinsics
            if pred.extrinsics is not None:
                keep["extrinsics"] = pred.extrinsics
            for k, v in keep.items():
                axis = 2 if k.startswith("track_") else 1
                s["collected"][k] = v if k not in s["collected"] else torch.cat([s["collected"][k], v], axis)
            if s["depth_cache"] is not None:
                s["depth_cache"].append(raw.values["depth"])
        if "camera" not in setup.tasks:
            pred.intrinsics = None
        return StreamChunk(raw.start, raw.stop, pred)

    def _tracks(self) -> StreamChunk:
        """Run the time-reversed pass (when bidirectional) and build the track fields."""
        setup, s, t = self.setup, self.s, self.s["consumed"]
        got = s["collected"]
        forward = TrackingResult(traj=got["track_traj"], vis=got["track_vis"], depth=got["track_depth"])
        backward = self._backward(t) if setup.cache_frames else None
        sample = None
        if s["depth_cache"] is not None:
            cache = s["depth_cache"]

            def sample(tracks_btn2: torch.Tensor) -> torch.Tensor:
                parts = []
                for lo in range(0, t, 64):
                    hi = min(lo + 64, t)
                    depth = resize_maps(cache.read(lo, hi), setup.size_in)
                    parts.append(sample_depth_map(depth, tracks_btn2[:, lo:hi]))
                return torch.cat(parts, dim=1)

        k = setup.intrinsics_in(t) if setup.k_in is not None else got.get("intrinsics")
        pred = track_fields(
            forward, backward, t=t, size_in=setup.size_in, size_win=setup.size_win, queries=setup.queries,
            intrinsics=k, extrinsics=got.get("extrinsics"), stride=self.model.stride, sample_depth=sample,
        )  # fmt: skip
        return StreamChunk(0, t, pred, kind="tracks")

    def _backward(self, t: int) -> TrackingResult:
        """Track on the time-reversed video read back from the disk cache."""
        cache = self.s["frames_cache"]
        engine = WindowEngine(
            self.model, tasks=("tracks",), queries_bn3=self.setup.queries_win(self.predictor.device, reverse=t),
            mode=self.setup.mode, window_batch_size=self.predictor.window_batch_size,
        )  # fmt: skip
        chunks: list[RawChunk] = []
        step = self.model.stride
        with self.predictor.autocast(), torch.inference_mode():
            for lo in range(0, t, step):
                hi = min(lo + step, t)
                chunks += engine.push(cache.read(t - hi, t - lo).flip(1).to(self.predictor.device))
            chunks += engine.finish()
        values = {k: v.cpu() for k, v in collect_raw(chunks).items()}  # the forward pass is kept on the CPU
        return TrackingResult(traj=values["track_traj"], vis=values["track_vis"], depth=values["track_depth"])


def _to_cpu(x):
    return _to(x, "cpu")


def _to(x, device):
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    return x
