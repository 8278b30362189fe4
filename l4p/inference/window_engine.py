"""The streaming engine: frames in, windows run as soon as they are full, final frames out.

`WindowEngine.push` takes normalised frames at the model's resolution; every window of
`model.window[0]` frames (stride `model.stride`) runs as soon as its frames are there, is
aligned to the stitched overlap with the previous window and stitched; the frames no later
window can change (those before the next window's start) come out as a `RawChunk`.
`finish` mirror-pads the end (as `mirror_indices`) and runs the last windows. All state lives
in an `EngineState`, which can be saved and restored (`state_dict` / `from_state_dict`).

The engine calls the network only through `L4P`'s public surface: `encode`, `decode_dense`,
`tracker` (called, `history_mask`, `history_from_decoded`), `tasks`, `window`, `stride`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass, field

import torch

from l4p.heads.tracking.driver import WindowRecord
from l4p.heads.tracking.memory import TrackMemory, init_memory
from l4p.inference.track_step import track_step
from l4p.inference.window_step import Mode, StepInfo, stitch_window_dense
from l4p.inference.windows import mirror_indices, padded_length
from l4p.models.l4p import DENSE_TASKS

logger = logging.getLogger(__name__)


@dataclass
class RawChunk:
    """Final outputs of frames [start, stop) at window resolution (None: not computed).

    Attributes:
        start: First frame. stop: One past the last frame.
        values: "depth" (B, n, h, w), "flow" (B, n, 2, h, w), "motion_logits" (B, n, h, w),
            "cam_to_world" (B, n, 4, 4), "intrinsics" (B, n, 3, 3) window pixels,
            "track_traj" (B, N, n, 2) (+0.5 = centre), "track_vis" (B, N, n), "track_depth" (B, N, n).
    """

    start: int
    stop: int
    values: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class EngineState:
    """Everything the engine carries from one window to the next (all tensors small).

    Attributes:
        frames_in: Frames pushed so far. next_start: First frame of the next window (every
            frame before it was emitted). windows_run: Windows run so far.
        frames: (B, n, 3, h, w) pushed frames from `next_start` on (at most a window).
        known_k / fallback_k: (B, n, 3, 3) per-frame K of those frames, or None.
        tail: Stitched values of frames [next_start, next_start + overlap) from the last window.
        k_grid_first: Window-0 intrinsics estimate (grid units), or None.
        memory: Tracking memory (its history tokens are the largest item), or None.
        sim3_fallback_windows: Windows whose robust Sim(3) chaining fell back (warned once,
            at the end of the video).
    """

    frames_in: int = 0
    next_start: int = 0
    windows_run: int = 0
    frames: torch.Tensor | None = None
    known_k: torch.Tensor | None = None
    fallback_k: torch.Tensor | None = None
    tail: dict[str, torch.Tensor] = field(default_factory=dict)
    k_grid_first: torch.Tensor | None = None
    memory: TrackMemory | None = None
    sim3_fallback_windows: list[int] = field(default_factory=list)


def _cat(old: torch.Tensor | None, new: torch.Tensor | None) -> torch.Tensor | None:
    if new is None:
        return old
    return new if old is None else torch.cat([old, new.to(old)], dim=1)


class WindowEngine:
    """Runs windows over a stream of frames, carrying alignment and tracking state.

    Args:
        model: The network (see the module docstring for what is called).
        tasks: Tasks to compute.
        queries_bn3: (B, N, 3) queries (t, x, y), window pixels, +0.5 = centre (tracks only).
        mode: "default" or "released" (see `l4p.inference.engine`).
        window_batch_size: Windows encoded together.
        point_map_stride: Pixel stride of the Sim(3) overlap point maps.
        estimate_k: Run the camera head on the first window only to estimate K (for 3D
            tracks when cameras were not requested); K is returned as "intrinsics".
        keep_records: Keep per-window rays, alignments and track records (`run_model`).
        state: Resume from this state.
    """

    def __init__(
        self, model, *, tasks: Collection[str], queries_bn3: torch.Tensor | None = None, mode: Mode = "default",
        window_batch_size: int = 1, point_map_stride: int = 4, estimate_k: bool = False,
        keep_records: bool = False, state: EngineState | None = None,
    ) -> None:  # fmt: skip
        self.model = model
        self.window, self.stride = int(model.window[0]), int(model.stride)
        self.mode, self.batch_windows, self.point_map_stride = mode, window_batch_size, point_map_stride
        self.dense = {t for t in tasks if t in DENSE_TASKS}
        self.chain = "camera" in self.dense
        if self.chain and mode == "default" and "depth" in model.tasks:
            self.dense.add("depth")  # default mode chains camera windows through depth
        self.tracks = "tracks" in tasks
        if self.tracks and (queries_bn3 is None or "tracks" not in model.tasks):
            raise ValueError("tracking needs queries and a model with a tracking head")
        self.estimate_k = estimate_k and not self.chain
        self.queries = queries_bn3
        self.keep_records = keep_records
        self.infos: list[StepInfo] = []
        self.records: list[WindowRecord] = []
        self.state = state or EngineState()

    def push(
        self,
        frames: torch.Tensor,
        known_k: torch.Tensor | None = None,
        fallback_k: torch.Tensor | None = None,
    ) -> list[RawChunk]:
        """Add frames (B, n, 3, h, w) (with their K, window pixels) and run every full window."""
        st = self.state
        st.frames, st.known_k = _cat(st.frames, frames), _cat(st.known_k, known_k)
        st.fallback_k = _cat(st.fallback_k, fallback_k)
        st.frames_in += frames.shape[1]
        chunks: list[RawChunk] = []
        while st.frames_in >= st.next_start + (self.batch_windows - 1) * self.stride + self.window:
            chunks += self._run_group(
                [st.next_start + i * self.stride for i in range(self.batch_windows)], st.frames_in
            )
        return chunks

    def finish(self, *, pad: bool = True) -> list[RawChunk]:
        """Mirror-pad the end, run the remaining windows and emit the last frames.

        Args:
            pad: Pad to a length the windows tile (False: the pushed frames must tile).
        """
        st = self.state
        real = st.frames_in
        if real == 0:
            return []
        total = padded_length(real, window=self.window, stride=self.stride) if pad else real
        if total > real:
            index = mirror_indices(real, total)[real:] - st.next_start
            if int(index.min()) < 0:
                raise RuntimeError("mirror padding reaches frames the engine no longer holds")
            st.frames = _pad(st.frames, index)
            st.known_k = _pad(st.known_k, index)
            st.fallback_k = _pad(st.fallback_k, index)
            st.frames_in = total
        starts = list(range(st.next_start, total - self.window + 1, self.stride))
        chunks: list[RawChunk] = []
        for g in range(0, len(starts), self.batch_windows):
            chunks += self._run_group(starts[g : g + self.batch_windows], real)
        if st.next_start < real and st.tail:
            stop = min(real, st.next_start + self.window - self.stride)
            chunks.append(
                RawChunk(
                    st.next_start,
                    stop,
                    {k: _frames(k, v, 0, stop - st.next_start) for k, v in st.tail.items()},
                )
            )
            st.next_start = stop
        st.frames_in = real
        if st.sim3_fallback_windows:
            logger.warning(
                "the robust Sim(3) fit that chains camera windows failed for %d of the %d windows after "
                "the first (windows %s); they were chained with plain Umeyama (the identity where that "
                "was degenerate too)",
                len(st.sim3_fallback_windows), max(st.windows_run - 1, 0),
                ", ".join(str(w) for w in st.sim3_fallback_windows),
            )  # fmt: skip
        return chunks

    def _run_group(self, starts: list[int], real: int) -> list[RawChunk]:
        """Encode a group of windows together, then stitch and emit them one by one."""
        st, win = self.state, self.window
        first = st.windows_run == 0
        dense_tasks = set(self.dense) | ({"camera"} if self.estimate_k and first else set())
        enc_tasks = dense_tasks | ({"tracks"} if self.tracks else set())
        assert st.frames is not None
        clips = torch.cat([st.frames[:, s - st.next_start : s - st.next_start + win] for s in starts])
        feats = self.model.encode(clips.transpose(1, 2), tasks=enc_tasks)
        dense = self.model.decode_dense(feats, tasks=dense_tasks)
        patch = (clips.shape[-2] // feats.grid[1], clips.shape[-1] // feats.grid[2])
        b = st.frames.shape[0]
        chunks = []
        for i, start in enumerate(starts):
            part, index = slice(i * b, (i + 1) * b), st.windows_run
            local = slice(start - st.next_start, start - st.next_start + win)
            if index == 1 and self.mode == "default" and self.chain and "depth" not in self.dense:
                logger.warning(
                    "the model has no depth head: camera windows are not chained into one world frame"
                )
            cams = {"k_grid_first": st.k_grid_first}
            step = stitch_window_dense(
                dense, part=part, index=index, tail=st.tail, cams_state=cams, patch=patch, mode=self.mode,
                intrinsics=None if st.known_k is None else st.known_k[:, local],
                fallback_intrinsics=None if st.fallback_k is None else st.fallback_k[:, local],
                point_map_stride=self.point_map_stride, chain_cameras=self.chain,
            )  # fmt: skip
            st.k_grid_first = cams["k_grid_first"]
            if step.info.sim3_fallbacks:
                st.sim3_fallback_windows.append(index)
            values = step.values
            if self.estimate_k and "intrinsics" not in values and st.k_grid_first is not None:
                from l4p.geometry.intrinsics import grid_to_pixels

                values["intrinsics"] = (
                    grid_to_pixels(st.k_grid_first, patch)[:, None].expand(-1, win, 3, 3).float()
                )
            if self.tracks:
                assert self.queries is not None and feats.final is not None
                if st.memory is None:
                    st.memory = init_memory(
                        self.queries, self.queries.new_ones(self.queries.shape[:2]),
                        mask_token_c=self.model.tracker.history_mask(), num_tokens=feats.final.shape[1],
                    )  # fmt: skip
                track_tail = {k: v for k, v in st.tail.items() if k.startswith("track_")}
                tr = track_step(
                    self.model.tracker, feats.final[part], st.memory, start=start, window_len=win,
                    stride=self.stride, grid_thw=tuple(feats.grid), tail=track_tail, keep_record=self.keep_records,
                )  # fmt: skip
                st.memory = tr.memory
                values.update(tr.values)
                if tr.record is not None:
                    self.records.append(tr.record)
            if self.keep_records:
                self.infos.append(step.info)
            stop = min(start + self.stride, real)
            chunks.append(
                RawChunk(start, stop, {k: _frames(k, v, 0, stop - start) for k, v in values.items()})
            )
            st.tail = {k: _frames(k, v, self.stride, win) for k, v in values.items()}
            st.windows_run += 1
            drop = start + self.stride - st.next_start
            st.next_start = start + self.stride
            st.frames = st.frames[:, drop:]
            st.known_k = None if st.known_k is None else st.known_k[:, drop:]
            st.fallback_k = None if st.fallback_k is None else st.fallback_k[:, drop:]
        return chunks

    def state_dict(self) -> dict:
        """The state as plain containers of tensors (for `torch.save`)."""
        out = asdict(self.state)
        out["memory"] = None if self.state.memory is None else asdict(self.state.memory)
        return out

    @staticmethod
    def state_from_dict(data: dict) -> EngineState:
        """Inverse of `state_dict`."""
        data = dict(data)
        if data.get("memory") is not None:
            data["memory"] = TrackMemory(**data["memory"])
        return EngineState(**data)


def _frames(name: str, value: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Frames [lo, hi) of a window value (time is axis 2 for tracks, 1 otherwise)."""
    return value[:, :, lo:hi] if name.startswith("track_") else value[:, lo:hi]


def _pad(x: torch.Tensor | None, index: torch.Tensor) -> torch.Tensor | None:
    return None if x is None else torch.cat([x, x[:, index]], dim=1)
