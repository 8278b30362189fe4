"""The checked request of a stream, and what it feeds the engine at window resolution.

`StreamSetup` holds what the user asked (tasks, mode, queries, intrinsics, direction) and,
once the first frames give the batch and input size (`bind`), converts queries and
intrinsics to window pixels (+0.5 continuous convention for queries) chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from l4p.inference.queries import grid_queries, validate_queries
from l4p.inference.resize import scale_intrinsics, scale_points
from l4p.inference.window_step import Mode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
UNKNOWN_LENGTH = 2**31


def normalise(clip_btchw: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalise (B, T, 3, H, W) frames in [0, 1]."""
    mean = clip_btchw.new_tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1)
    std = clip_btchw.new_tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
    return (clip_btchw - mean) / std


@dataclass
class StreamSetup:
    """A checked request.

    Attributes:
        tasks: Requested tasks. mode: "default" or "released". direction: "both" or "forward".
        window: The model's window (T, h, w). model_tasks: Tasks the model can run.
        queries_arg / grid_size / grid_frame / intrinsics_arg: As passed to `stream`.
    """

    tasks: tuple[str, ...]
    mode: Mode
    direction: str
    window: tuple[int, int, int]
    model_tasks: tuple[str, ...]
    queries_arg: torch.Tensor | Sequence | None = None
    grid_size: int | None = None
    grid_frame: int = 0
    intrinsics_arg: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.want_tracks and self.queries_arg is None and self.grid_size is None:
            raise ValueError("tracks need queries=(N, 3) as (t, x, y) or grid_size=G")
        self.size_in: tuple[int, int] = (0, 0)
        self.batch = 0
        self.queries: torch.Tensor = torch.empty(0)
        self.k_in: torch.Tensor | None = None

    @property
    def size_win(self) -> tuple[int, int]:
        """Window (h, w)."""
        return (int(self.window[1]), int(self.window[2]))

    @property
    def want_tracks(self) -> bool:
        """Tracks were requested."""
        return "tracks" in self.tasks

    @property
    def cache_frames(self) -> bool:
        """The time-reversed pass needs the frames again (disk cache)."""
        return self.want_tracks and self.direction == "both"

    @property
    def cache_depth(self) -> bool:
        """Default-mode track depth is aligned to the depth map (disk cache)."""
        return self.want_tracks and self.mode == "default" and "depth" in self.tasks

    @property
    def estimate_k(self) -> bool:
        """3D tracks without given K or cameras: the camera head estimates K (default mode)."""
        return (
            self.want_tracks and self.intrinsics_arg is None and "camera" not in self.tasks
            and "camera" in self.model_tasks and self.mode == "default"
        )  # fmt: skip

    @property
    def engine_tasks(self) -> tuple[str, ...]:
        """Tasks the engine runs."""
        return self.tasks

    def bind(self, batch: int, size_in: tuple[int, int], num_frames: int | None) -> None:
        """Check queries and intrinsics against the video (T may be unknown until the end)."""
        self.batch, self.size_in = batch, size_in
        h, w = size_in
        t = num_frames or UNKNOWN_LENGTH
        if self.want_tracks:
            q = self.queries_arg
            if q is None:
                assert self.grid_size is not None
                q = grid_queries(self.grid_size, frame=self.grid_frame, height=h, width=w, num_frames=t)
            self.queries = validate_queries(q, batch=batch, num_frames=t, height=h, width=w)
        if self.intrinsics_arg is not None:
            k = torch.as_tensor(self.intrinsics_arg, dtype=torch.float32)
            if k.shape[-2:] != (3, 3) or k.ndim > 4:
                raise ValueError(
                    f"intrinsics must be (3, 3), (B, 3, 3) or (B, T, 3, 3) in input pixels, got {tuple(k.shape)}"
                )
            k = k.reshape(-1, *k.shape[-3:]) if k.ndim == 4 else k.reshape(-1, 1, 3, 3)
            if k.shape[0] not in (1, batch):
                raise ValueError(f"intrinsics have batch {k.shape[0]} but the video has batch {batch}")
            self.k_in = k.expand(batch, -1, 3, 3).clone()
            if num_frames is not None:
                self.check_intrinsics_length(num_frames)

    def check_intrinsics_length(self, t: int) -> None:
        """Per-frame intrinsics must cover every frame."""
        if self.k_in is not None and self.k_in.shape[1] not in (1, t):
            raise ValueError(
                f"intrinsics have {self.k_in.shape[1]} frames but the video has {t}; pass one K per frame or one K"
            )

    def check_length(self, t: int) -> None:
        """Checks that needed the video's length (raised at the end of an unbounded stream)."""
        self.check_intrinsics_length(t)
        if self.want_tracks:
            validate_queries(
                self.queries, batch=self.batch, num_frames=t, height=self.size_in[0], width=self.size_in[1]
            )

    def queries_win(self, device: torch.device, reverse: int | None = None) -> torch.Tensor | None:
        """Queries in window pixels, +0.5 convention; `reverse=T` mirrors them in time."""
        if not self.want_tracks:
            return None
        q = self.queries.clone()
        q[..., 0] += 0.5
        q[..., 1:] = scale_points(q[..., 1:], src=self.size_in, dst=self.size_win) + 0.5
        if reverse is not None:
            q[..., 0] = reverse - q[..., 0]  # frame k + 0.5 -> (T - 1 - k) + 0.5
        return q.to(device)

    def intrinsics_in(self, t: int) -> torch.Tensor:
        """Given K (B, t, 3, 3) in input pixels."""
        assert self.k_in is not None
        return self.k_in.expand(-1, t, 3, 3) if self.k_in.shape[1] == 1 else self.k_in[:, :t]

    def intrinsics_win(
        self, lo: int, hi: int, device: torch.device
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Given K and released mode's fallback K of frames [lo, hi) in window pixels."""
        known = fallback = None
        if self.k_in is not None:
            k = self.k_in.expand(-1, hi - lo, 3, 3) if self.k_in.shape[1] == 1 else self.k_in[:, lo:hi]
            if k.shape[1] != hi - lo:
                raise ValueError(f"intrinsics have {self.k_in.shape[1]} frames but the video has more ({hi})")
            known = scale_intrinsics(k, src=self.size_in, dst=self.size_win).to(device)
        if self.mode == "released":
            h, w = self.size_in  # the released demo's K for an unknown camera: f = min(H, W), c = (W/2, H/2)
            demo = torch.tensor([[min(h, w), 0.0, w / 2], [0.0, min(h, w), h / 2], [0.0, 0.0, 1.0]])
            fallback = scale_intrinsics(demo, src=self.size_in, dst=self.size_win).expand(
                self.batch, hi - lo, 3, 3
            )
            fallback = fallback.to(device)
        return known, fallback
