"""Windowed inference at the model's resolution over a whole (padded) clip.

Each window is encoded once, the heads run on it, and the results are stitched, aligned and
the tracking memory carried over. The work is done by the streaming `WindowEngine`
(`l4p.inference.window_engine`); `run_model` pushes a whole clip through it and collects.

Inputs and outputs here are in *window pixels* (the model's input size) and the released
continuous track convention (+0.5 = pixel/frame centre); `l4p.inference.stream` converts from
and to the user's video.

Modes:
* `"released"` reproduces the released pipeline: overwrite stitching, plain least-squares
  inverse-depth alignment, intrinsics from window 0 with OpenCV, and (when no intrinsics
  are given) later windows' rotations recovered with the fallback intrinsics (the release
  uses the demo's dummy K there); camera alone is not chained across windows.
* `"default"`: the same network outputs, with robust (IRLS) depth alignment, the window-0
  intrinsics estimate used in every window, K estimated on the device, and the camera task
  always chained through depth (the depth head runs internally when needed).
Both modes chain depth+camera windows with a deterministic robust Sim(3) fit (the release's
unseeded scikit-image RANSAC cannot be reproduced; it also raises when it finds no inliers,
ours falls back and warns).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import torch
from einops import rearrange
from tqdm.auto import tqdm

from l4p.heads.tracking.driver import TrackingResult
from l4p.inference.window_engine import RawChunk, WindowEngine
from l4p.inference.window_step import Mode
from l4p.inference.windows import window_starts

__all__ = ["Mode", "RawOutputs", "collect_raw", "run_model"]


@dataclass
class RawOutputs:
    """Stitched outputs over the padded video, at window resolution.

    Attributes:
        depth: (B, T, h, w). flow: (B, T, 2, h, w). motion_logits: (B, T, h, w).
        cam_to_world: (B, T, 4, 4). intrinsics: (B, T, 3, 3) in window pixels.
        tracks: Tracking result (window pixels, +0.5 convention), or None.
        depth_alignment: Per window after the first, the (scale, shift) of the inverse-depth
            fit (depth without camera), each (B,).
        rays: Per window, the (B, 6, t, h', w') camera-ray map.
        window_starts: First frame of every window.
    """

    depth: torch.Tensor | None = None
    flow: torch.Tensor | None = None
    motion_logits: torch.Tensor | None = None
    cam_to_world: torch.Tensor | None = None
    intrinsics: torch.Tensor | None = None
    tracks: TrackingResult | None = None
    depth_alignment: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    rays: list[torch.Tensor] = field(default_factory=list)
    window_starts: list[int] = field(default_factory=list)


def collect_raw(chunks: list[RawChunk]) -> dict[str, torch.Tensor]:
    """Concatenate consecutive chunks' values along time."""
    out: dict[str, torch.Tensor] = {}
    for name in chunks[0].values if chunks else ():
        axis = 2 if name.startswith("track_") else 1
        out[name] = torch.cat([c.values[name] for c in chunks], dim=axis)
    return out


def run_model(
    model,
    video_bcthw: torch.Tensor,
    *,
    tasks: Collection[str],
    queries_bn3: torch.Tensor | None = None,
    intrinsics_bt33: torch.Tensor | None = None,
    fallback_intrinsics_bt33: torch.Tensor | None = None,
    mode: Mode = "default",
    window_batch_size: int = 1,
    point_map_stride: int = 4,
    progress: bool = False,
) -> RawOutputs:
    """Run the model over every window of a normalised, padded video.

    Args:
        model: The network.
        video_bcthw: (B, 3, T, h, w) ImageNet-normalised, h x w the model's window size,
            T tiled by the windows.
        tasks: Tasks to return (subset of `model.tasks`).
        queries_bn3: (B, N, 3) track queries (t, x, y), +0.5 = centre, window pixels.
        intrinsics_bt33: Known K per frame in window pixels, or None to estimate it.
        fallback_intrinsics_bt33: Released mode only: K for windows after the first.
        mode: "default" or "released" (see the module docstring).
        window_batch_size: Windows encoded together (GPU throughput).
        point_map_stride: Pixel stride of the overlap point maps of the Sim(3) fit.
        progress: Show a progress bar over windows.
    """
    num_frames = video_bcthw.shape[2]
    starts = window_starts(num_frames, window=model.window[0], stride=model.stride)
    engine = WindowEngine(
        model, tasks=tasks, queries_bn3=queries_bn3, mode=mode, window_batch_size=window_batch_size,
        point_map_stride=point_map_stride, keep_records=True,
    )  # fmt: skip
    frames = rearrange(video_bcthw, "b c t h w -> b t c h w")
    chunks: list[RawChunk] = []
    step = model.stride
    for lo in tqdm(range(0, num_frames, step), desc="frames", disable=not progress, leave=False):
        hi = min(lo + step, num_frames)
        chunks += engine.push(
            frames[:, lo:hi],
            None if intrinsics_bt33 is None else intrinsics_bt33[:, lo:hi],
            None if fallback_intrinsics_bt33 is None else fallback_intrinsics_bt33[:, lo:hi],
        )
    chunks += engine.finish(pad=False)
    values = collect_raw(chunks)
    out = RawOutputs(window_starts=starts)
    for name in ("depth", "flow", "motion_logits", "cam_to_world", "intrinsics"):
        setattr(out, name, values.get(name))
    if "depth" not in tasks:
        out.depth = None
    if "camera" not in tasks:
        out.cam_to_world = out.intrinsics = None
    out.rays = [i.rays for i in engine.infos if i.rays is not None]
    out.depth_alignment = [i.depth_alignment for i in engine.infos if i.depth_alignment is not None]
    if "tracks" in tasks:
        out.tracks = TrackingResult(
            traj=values["track_traj"],
            vis=values["track_vis"],
            depth=values["track_depth"],
            windows=engine.records,
        )
    return out
