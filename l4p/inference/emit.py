"""Map the engine's window-resolution chunks back to the input's pixels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from l4p.inference.resize import resize_flow, resize_maps, scale_intrinsics
from l4p.inference.window_engine import RawChunk
from l4p.outputs import Prediction


@dataclass
class StreamChunk:
    """Final outputs of frames [start, stop) of the video, at input resolution, on the CPU.

    `prediction` holds the fields of those frames only (its T axis is stop - start). Dense
    and camera fields come in consecutive chunks; track fields come in one last chunk that
    spans the whole video (start 0) once the stream has ended (see `L4PPredictor.stream`).

    Attributes:
        start: First frame. stop: One past the last frame.
        prediction: The fields of these frames.
        kind: "frames" (dense and camera fields) or "tracks" (the track fields).
    """

    start: int
    stop: int
    prediction: Prediction
    kind: str = "frames"


def to_input_pixels(
    raw: RawChunk,
    *,
    size_in: tuple[int, int],
    size_win: tuple[int, int],
    tasks: tuple[str, ...],
    world_from_first: torch.Tensor | None,
) -> Prediction:
    """The dense and camera fields of a chunk at input resolution.

    Args:
        raw: The engine's chunk.
        size_in: Input (H, W).
        size_win: Window (h, w).
        tasks: Requested tasks (fields of other tasks that ran internally are left out).
        world_from_first: (B, 4, 4) frame 0's camera-to-world pose: extrinsics are re-expressed
            with frame 0's camera as the world (default mode), or None to keep the raw world.
    """
    v, pred = raw.values, Prediction()
    if "depth" in tasks and "depth" in v:
        pred.depth = resize_maps(v["depth"], size_in).cpu()
    if "flow" in v:
        flow = resize_flow(v["flow"], size_in).cpu()
        if raw.start == 0:
            flow[:, 0] = float("nan")
        pred.flow = flow
    if "motion_logits" in v:
        pred.motion = torch.sigmoid(resize_maps(v["motion_logits"], size_in)).cpu()
    if "camera" in tasks and "cam_to_world" in v:
        # On the CPU: the run's state (world_from_first) is kept there, whatever the device.
        world_to_cam = torch.linalg.inv(v["cam_to_world"].detach().cpu().double())
        if world_from_first is not None:
            world_to_cam = world_to_cam @ world_from_first.cpu().double()[:, None]
        pred.extrinsics = world_to_cam.float()
    if "intrinsics" in v:
        pred.intrinsics = scale_intrinsics(v["intrinsics"], src=size_win, dst=size_in).cpu()
    return pred


def collect(chunks: Iterable[StreamChunk]) -> Prediction:
    """Gather a stream's chunks into one `Prediction` (what `predict` returns)."""
    out, parts = Prediction(), {}  # type: ignore[var-annotated]
    for chunk in chunks:
        for name, value in chunk.prediction.tensors().items():
            if chunk.kind == "tracks":
                setattr(out, name, value)
            else:
                parts.setdefault(name, []).append(value)
    for name, values in parts.items():
        setattr(out, name, torch.cat(values, dim=1))
    return out
