"""User-facing inference: `load_model` and the `L4PPredictor` facade.

The predictor checks the request and hands the video to the stream engine in
`l4p.inference` (source -> window feeder -> `WindowEngine` -> input-pixel chunks);
`predict` collects the stream into one `Prediction`, `stream` yields it chunk by chunk.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

import torch

from l4p.inference.emit import collect
from l4p.inference.engine import Mode
from l4p.inference.feed import IMAGENET_MEAN, IMAGENET_STD, StreamSetup
from l4p.inference.source import StreamSource
from l4p.inference.stream import VideoStream
from l4p.models.l4p import L4P, TASKS
from l4p.outputs import Prediction

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_TASKS", "IMAGENET_MEAN", "IMAGENET_STD", "L4PPredictor", "config_of", "load_model"]
DEFAULT_TASKS = ("depth", "flow", "motion", "camera")
Backend = Literal["torch", "onnxruntime"]
TASK_ALIASES = {
    "track": "tracks",
    "tracking": "tracks",
    "cameras": "camera",
    "pose": "camera",
    "dyn_mask": "motion",
}


class L4PPredictor:
    """Runs an `L4P` network on videos of any size and length.

    Args:
        model: The network (its weights are not copied).
        device: Where to run (default: the model's device).
        dtype: Autocast dtype (`torch.bfloat16`/`torch.float16`) or None for float32.
        mode: "default" (our improvements) or "released" (the released pipeline's behaviour).
        window_batch_size: Windows encoded together.
    """

    def __init__(
        self,
        model: L4P,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        mode: Mode = "default",
        window_batch_size: int = 1,
    ) -> None:
        self.model = model.eval()
        self.device = _check_device(device) if device is not None else next(model.parameters()).device
        self.model.to(self.device)
        self.dtype = dtype
        self.mode = _check_mode(mode)
        if window_batch_size < 1:
            raise ValueError(f"window_batch_size must be >= 1, got {window_batch_size}")
        self.window_batch_size = window_batch_size

    @property
    def tasks(self) -> tuple[str, ...]:
        """Tasks the loaded model can run."""
        return self.model.tasks

    def _check_tasks(self, tasks: Sequence[str] | str) -> tuple[str, ...]:
        names = (
            tuple(n.strip() for n in tasks.split(",") if n.strip())
            if isinstance(tasks, str)
            else tuple(tasks)
        )
        if not names:
            raise ValueError(f"no task requested; choose from {TASKS}")
        out = []
        for name in names:
            name = TASK_ALIASES.get(name, name)
            if name not in TASKS:
                raise ValueError(f"unknown task {name!r}; choose from {TASKS}")
            if name not in self.tasks:
                raise ValueError(f"the loaded model has no head for {name!r}; it can run {self.tasks}")
            out.append(name)
        return tuple(dict.fromkeys(out))

    def autocast(self):
        """The autocast context of the predictor's dtype (a no-op for float32)."""
        if self.dtype in (None, torch.float32):
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def stream(
        self,
        video: StreamSource,
        tasks: Sequence[str] | str = DEFAULT_TASKS,
        *,
        queries: torch.Tensor | Sequence | None = None,
        grid_size: int | None = None,
        grid_frame: int = 0,
        intrinsics: torch.Tensor | None = None,
        direction: str | None = None,
        mode: Mode | None = None,
        progress: bool = False,
        cache_dir: str | Path | None = None,
        state: dict | None = None,
    ) -> VideoStream:
        """Estimate the requested tasks frame chunk by frame chunk, in constant memory.

        `for chunk in model.stream(video, tasks=...)` decodes frames as it goes, runs each
        window as soon as it is full, carries every state across windows (stitching overlap,
        inverse-depth and Sim(3) alignment, camera chain, tracking memory), and yields each
        frame's final outputs at input resolution as soon as no later window can change them.

        Latency: frames come out a stride (8 frames) at a time, when the window after them is
        full: a frame leaves between one stride and one window minus one (8 to 15) frames
        after it arrived. Chunks are exactly what `predict` returns for those frames.

        Tracks: the forward pass runs window by window with the tracking memory (no frames
        are kept); the track fields need the whole video (the time-reversed pass of
        `direction="both"` and the per-video track-depth alignment), so they come in one last
        chunk (`kind="tracks"`, frames 0..T-1). The (T x N) track arrays stay in memory; for
        `direction="both"` the window-resolution frames, and in default mode with depth the
        window-resolution depth, are kept in a disk cache (`cache_dir`, default a temporary
        folder), not in RAM.

        Args:
            video: A path (mp4, gif, folder of frames), an in-memory video (see `predict`),
                or any iterator of frames: (H, W, 3) uint8 numpy frames, (3, H, W) tensors,
                or chunks of them (a camera, a robot). Every frame must have one size.
            tasks: Tasks, as for `predict` (a comma-separated string works too).
            queries: Track queries, as for `predict`.
            grid_size: A G x G grid of queries on `grid_frame`.
            grid_frame: Frame of the grid queries.
            intrinsics: Known K in input pixels, (3, 3), (B, 3, 3) or (B, T, 3, 3).
            direction: "both" or "forward" (see `predict`).
            mode: Override the predictor's mode.
            progress: A progress bar over frames with fps and ETA (off by default).
            cache_dir: Folder of the disk caches (kept when given, so that a resumed stream
                finds them; a temporary folder, removed at the end, otherwise).
            state: `VideoStream.state_dict()` of an interrupted stream over the same video
                and arguments: the stream continues after the last chunk it describes.

        Returns:
            An iterable `VideoStream` of `StreamChunk`s (start, stop, prediction, kind).
        """
        mode = _check_mode(mode or self.mode)
        tasks = self._check_tasks(tasks)
        direction = direction or ("forward" if mode == "released" else "both")
        if direction not in ("both", "forward"):
            raise ValueError(f"direction must be 'both' or 'forward', got {direction!r}")
        h_t, h_h, h_w = (int(x) for x in self.model.window)
        setup = StreamSetup(
            tasks=tasks, mode=mode, direction=direction, window=(h_t, h_h, h_w), model_tasks=self.tasks,
            queries_arg=queries, grid_size=grid_size, grid_frame=grid_frame, intrinsics_arg=intrinsics,
        )  # fmt: skip
        return VideoStream(self, video, setup, progress=progress, cache_dir=cache_dir, state=state)

    def predict(
        self,
        video: StreamSource,
        tasks: Sequence[str] | str = DEFAULT_TASKS,
        *,
        queries: torch.Tensor | Sequence | None = None,
        grid_size: int | None = None,
        grid_frame: int = 0,
        intrinsics: torch.Tensor | None = None,
        direction: str | None = None,
        mode: Mode | None = None,
        progress: bool = False,
    ) -> Prediction:
        """Estimate the requested tasks for a video (or a batch of equally sized videos).

        The same engine as `stream`, collected into one `Prediction`.

        Args:
            video: Path (mp4, gif, folder of frames), uint8 numpy (T, H, W, 3), or tensor
                (T, 3, H, W) / (B, T, 3, H, W), uint8 or float in [0, 1], or an iterator of
                frames (see `stream`).
            tasks: Any of "depth", "flow", "motion", "camera", "tracks" (a sequence, or one
                comma-separated string such as "depth,flow").
            queries: Track queries (N, 3) or (B, N, 3) as (t, x, y): frame index and input
                pixels, integer = pixel centre.
            grid_size: Instead of queries, a G x G grid of queries on frame `grid_frame`.
            grid_frame: Frame of the grid queries.
            intrinsics: Known K in input pixels, (3, 3), (B, 3, 3) or (B, T, 3, 3); used for
                cameras and 3D tracks instead of the estimate. Without it, 3D tracks use the
                camera head's K estimate (default mode: the camera head runs on the first
                window for that when cameras were not requested; released mode leaves
                `tracks_3d` empty then).
            direction: "both" tracks forward and backward from each query (every frame is
                filled); "forward" is the released behaviour (frames before a query are NaN).
                Default: "both", or "forward" in released mode.
            mode: Override the predictor's mode for this call.
            progress: Show a progress bar over frames.

        Returns:
            A `Prediction` on the CPU, float32, at the input's resolution and length. In
            default mode the world frame is frame 0's camera (its extrinsics are the
            identity); released mode keeps the released model's world.
        """
        return collect(
            self.stream(
                video,
                tasks,
                queries=queries,
                grid_size=grid_size,
                grid_frame=grid_frame,
                intrinsics=intrinsics,
                direction=direction,
                mode=mode,
                progress=progress,
            )  # fmt: skip
        )

    def save_pretrained(self, directory: str | Path) -> Path:
        """Save weights (`model.safetensors`) and the builder config (`config.json`)."""
        from l4p.checkpoints.own import save_pretrained

        return save_pretrained(self.model, directory)


def _check_mode(mode: str) -> Mode:
    if mode not in get_args(Mode):
        raise ValueError(f"mode must be 'default' or 'released', got {mode!r}")
    return mode  # type: ignore[return-value]


def _check_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was requested but CUDA is not available here; pass device='cpu'"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {str(device)!r} does not exist ({torch.cuda.device_count()} CUDA devices); pick another"
        )
    return dev


def load_model(
    name_or_dir: str | Path = "l4p_vitg14",
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    tasks: Sequence[str] | None = None,
    mode: Mode = "default",
    backend: Backend = "torch",
    **builder_overrides,
) -> L4PPredictor:
    """Build a model and wrap it in a predictor.

    Args:
        name_or_dir: A registered variant (`l4p.list_models()`) or a folder written by
            `save_pretrained`; with `backend="onnxruntime"`, a folder written by
            `l4p export onnx`.
        checkpoint: Released L4P `.ckpt`, or our `model.safetensors`; None keeps random
            weights (a warning says so). Not used by onnxruntime (the export holds the weights).
        device: Where to run; default CUDA when available, else CPU. With onnxruntime,
            "cuda" selects its CUDA execution provider.
        dtype: Weights stay float32; bf16/fp16 run under autocast (PyTorch only).
        tasks: Heads to build (default: those in the checkpoint, or all); onnxruntime runs
            the heads that were exported.
        mode: "default" or "released".
        backend: "torch" (PyTorch eager) or "onnxruntime" (the exported graphs; the windows,
            stitching and alignment still run in Python, so `predict` is unchanged).
        **builder_overrides: Keyword arguments of the variant's builder (e.g. reduced widths).
    """
    from l4p.checkpoints.own import build_and_load

    if backend == "onnxruntime":
        return _load_onnxruntime(name_or_dir, checkpoint, device, dtype, tasks, mode, builder_overrides)
    if backend != "torch":
        raise ValueError(f"unknown backend {backend!r}; use 'torch' or 'onnxruntime'")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_and_load(name_or_dir, checkpoint, tasks=tasks, **builder_overrides)
    return L4PPredictor(model, device=device, dtype=dtype, mode=mode)


def _load_onnxruntime(name_or_dir, checkpoint, device, dtype, tasks, mode, builder_overrides) -> L4PPredictor:
    """`load_model(..., backend="onnxruntime")`: an export folder run by onnxruntime sessions."""
    from l4p.deploy import load_onnx

    unused = {
        "checkpoint": checkpoint,
        "dtype": dtype,
        "tasks": tasks,
        **builder_overrides,
    }
    given = [name for name, value in unused.items() if value is not None]
    if given:
        raise ValueError(
            f"backend='onnxruntime' takes the weights, heads and precision from the export folder; "
            f"drop {', '.join(given)} (re-export with `l4p export onnx` to change them)"
        )
    if not Path(name_or_dir).is_dir():
        raise ValueError(
            f"backend='onnxruntime' needs an export folder, got {str(name_or_dir)!r}; "
            f"make one with `l4p export onnx --model NAME --out DIR`"
        )
    device_type = torch.device(device).type if device is not None else "cpu"
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"backend='onnxruntime' runs on 'cpu' or 'cuda', got device={device!r}")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device_type == "cuda" else None
    return load_onnx(name_or_dir, mode=_check_mode(mode), providers=providers)


def config_of(model: L4P) -> dict:
    """The builder config recorded on a model by `build_model`."""
    return json.loads(json.dumps(getattr(model, "build_config", {})))
