"""User-facing inference: `load_model` and `L4PPredictor.predict`.

The predictor owns everything around the network: converting inputs, resizing to the
model's window, mirror-padding the length, normalising, running windows (see
`l4p.inference.engine`), and mapping every output back to the input's pixels and length.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from l4p.inference.engine import Mode, RawOutputs, run_model
from l4p.inference.inputs import VideoLike, as_video_tensor
from l4p.inference.queries import grid_queries, validate_queries
from l4p.inference.resize import resize_flow, resize_frames, resize_maps, scale_intrinsics, scale_points
from l4p.inference.windows import mirror_indices, padded_length
from l4p.models.l4p import L4P, TASKS
from l4p.outputs import Prediction

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_TASKS = ("depth", "flow", "motion", "camera")
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
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model.to(self.device)
        self.dtype = dtype
        self.mode = mode
        self.window_batch_size = window_batch_size

    @property
    def tasks(self) -> tuple[str, ...]:
        """Tasks the loaded model can run."""
        return self.model.tasks

    def _check_tasks(self, tasks: Sequence[str] | str) -> tuple[str, ...]:
        names = (tasks,) if isinstance(tasks, str) else tuple(tasks)
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

    def _autocast(self):
        if self.dtype in (None, torch.float32):
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    @torch.inference_mode()
    def predict(
        self,
        video: VideoLike,
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

        Args:
            video: Path (mp4, gif, folder of frames), uint8 numpy (T, H, W, 3), or tensor
                (T, 3, H, W) / (B, T, 3, H, W), uint8 or float in [0, 1].
            tasks: Any of "depth", "flow", "motion", "camera", "tracks".
            queries: Track queries (N, 3) or (B, N, 3) as (t, x, y): frame index and input
                pixels, integer = pixel centre.
            grid_size: Instead of queries, a G x G grid of queries on frame `grid_frame`.
            grid_frame: Frame of the grid queries.
            intrinsics: Known K in input pixels, (3, 3), (B, 3, 3) or (B, T, 3, 3); used for
                cameras and 3D tracks instead of the estimate.
            direction: "both" tracks forward and backward from each query (every frame is
                filled); "forward" is the released behaviour (frames before a query are NaN).
                Default: "both", or "forward" in released mode.
            mode: Override the predictor's mode for this call.
            progress: Show a progress bar over windows.

        Returns:
            A `Prediction` on the CPU, float32, at the input's resolution and length.
        """
        mode = mode or self.mode
        tasks = self._check_tasks(tasks)
        direction = direction or ("forward" if mode == "released" else "both")
        if direction not in ("both", "forward"):
            raise ValueError(f"direction must be 'both' or 'forward', got {direction!r}")
        frames = as_video_tensor(video)
        b, t, _, h_in, w_in = frames.shape
        queries_bn3 = None
        if "tracks" in tasks:
            if queries is None and grid_size is None:
                raise ValueError("tracks need queries=(N, 3) as (t, x, y) or grid_size=G")
            if queries is None:
                assert grid_size is not None
                queries = grid_queries(grid_size, frame=grid_frame, height=h_in, width=w_in, num_frames=t)
            queries_bn3 = validate_queries(queries, batch=b, num_frames=t, height=h_in, width=w_in)
        k_in = _intrinsics_bt33(intrinsics, b, t) if intrinsics is not None else None

        _, h_win, w_win = self.model.window
        size_in, size_win = (h_in, w_in), (h_win, w_win)
        t_pad = padded_length(t, window=self.model.window[0], stride=self.model.stride)
        clip = resize_frames(frames, size_win)[:, mirror_indices(t, t_pad)].to(self.device)
        clip = _normalise(clip)
        k_win = None if k_in is None else scale_intrinsics(k_in, src=size_in, dst=size_win)
        if k_win is not None:
            k_win = k_win[:, mirror_indices(t, t_pad)].to(self.device)
        fallback = (
            _demo_intrinsics(b, t_pad, size_in, size_win).to(self.device) if mode == "released" else None
        )
        q_win = None
        if queries_bn3 is not None:
            q_win = queries_bn3.clone()
            q_win[..., 0] += 0.5
            q_win[..., 1:] = scale_points(q_win[..., 1:], src=size_in, dst=size_win) + 0.5
            q_win = q_win.to(self.device)

        with self._autocast():
            raw = run_model(
                self.model, clip.transpose(1, 2), tasks=tasks, queries_bn3=q_win, intrinsics_bt33=k_win,
                fallback_intrinsics_bt33=fallback, mode=mode, window_batch_size=self.window_batch_size,
                progress=progress,
            )  # fmt: skip
            backward = None
            if q_win is not None and direction == "both":
                backward = self._track_backward(clip, q_win, t, t_pad, mode)
        return _to_prediction(
            raw, backward, t=t, size_in=size_in, size_win=size_win, k_in=k_in, queries=queries_bn3,
            stride=self.model.stride, align_track_depth=mode == "default",
        )  # fmt: skip

    def _track_backward(
        self, clip: torch.Tensor, q_win: torch.Tensor, t: int, t_pad: int, mode: Mode
    ) -> RawOutputs:
        """Track on the time-reversed video (queries mirrored in time)."""
        reverse = torch.arange(t - 1, -1, -1)
        clip_rev = clip[:, reverse][:, mirror_indices(t, t_pad)]
        q_rev = q_win.clone()
        q_rev[..., 0] = t - q_win[..., 0]  # frame k + 0.5 -> (t - 1 - k) + 0.5
        return run_model(
            self.model, clip_rev.transpose(1, 2), tasks=("tracks",), queries_bn3=q_rev, mode=mode,
            window_batch_size=self.window_batch_size,
        )  # fmt: skip

    def save_pretrained(self, directory: str | Path) -> Path:
        """Save weights (`model.safetensors`) and the builder config (`config.json`)."""
        from l4p.checkpoints.own import save_pretrained

        return save_pretrained(self.model, directory)


def _normalise(clip_btchw: torch.Tensor) -> torch.Tensor:
    mean = clip_btchw.new_tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1)
    std = clip_btchw.new_tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
    return (clip_btchw - mean) / std


def _intrinsics_bt33(k: torch.Tensor, b: int, t: int) -> torch.Tensor:
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.shape[-2:] != (3, 3) or k.ndim > 4:
        raise ValueError(
            f"intrinsics must be (3, 3), (B, 3, 3) or (B, T, 3, 3) in input pixels, got {tuple(k.shape)}"
        )
    if k.ndim == 2:
        k = k[None]
    if k.ndim == 3:
        k = k[:, None]
    return k.expand(b, t, 3, 3).clone()


def _demo_intrinsics(b: int, t: int, size_in: tuple[int, int], size_win: tuple[int, int]) -> torch.Tensor:
    """The released demo's K for an unknown camera: f = min(H, W), c = (W/2, H/2), then resized."""
    h, w = size_in
    k = torch.tensor([[min(h, w), 0.0, w / 2], [0.0, min(h, w), h / 2], [0.0, 0.0, 1.0]])
    return scale_intrinsics(k, src=size_in, dst=size_win).expand(b, t, 3, 3)


def _to_prediction(
    raw: RawOutputs,
    backward: RawOutputs | None,
    *,
    t: int,
    size_in: tuple[int, int],
    size_win: tuple[int, int],
    k_in: torch.Tensor | None,
    queries: torch.Tensor | None,
    stride: int = 8,
    align_track_depth: bool = False,
) -> Prediction:
    """Crop padding, map window outputs back to input pixels, and fill a `Prediction`."""
    pred = Prediction()
    if raw.depth is not None:
        pred.depth = resize_maps(raw.depth[:, :t], size_in).cpu()
    if raw.flow is not None:
        flow = resize_flow(raw.flow[:, :t], size_in).cpu()
        flow[:, 0] = float("nan")
        pred.flow = flow
    if raw.motion_logits is not None:
        pred.motion = torch.sigmoid(resize_maps(raw.motion_logits[:, :t], size_in)).cpu()
    if raw.cam_to_world is not None and raw.intrinsics is not None:
        pred.extrinsics = torch.linalg.inv(raw.cam_to_world[:, :t].double()).float().cpu()
        pred.intrinsics = scale_intrinsics(raw.intrinsics[:, :t], src=size_win, dst=size_in).cpu()
    if raw.tracks is not None and queries is not None:
        from l4p.inference.tracks import fill_tracks

        fill_tracks(pred, raw.tracks, None if backward is None else backward.tracks, t=t, size_in=size_in,
                    size_win=size_win, k_in=k_in, queries=queries, stride=stride,
                    align_depth=align_track_depth)  # fmt: skip
    return pred


def load_model(
    name_or_dir: str | Path = "l4p_vitg14",
    checkpoint: str | Path | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    tasks: Sequence[str] | None = None,
    mode: Mode = "default",
    **builder_overrides,
) -> L4PPredictor:
    """Build a model and wrap it in a predictor.

    Args:
        name_or_dir: A registered variant (`l4p.list_models()`) or a folder written by
            `save_pretrained`.
        checkpoint: Released L4P `.ckpt`, or our `model.safetensors`; None keeps random
            weights (a warning says so).
        device: Where to run; default CUDA when available, else CPU.
        dtype: Weights stay float32; bf16/fp16 run under autocast.
        tasks: Heads to build (default: those in the checkpoint, or all).
        mode: "default" or "released".
        **builder_overrides: Keyword arguments of the variant's builder (e.g. reduced widths).
    """
    from l4p.checkpoints.own import build_and_load

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_and_load(name_or_dir, checkpoint, tasks=tasks, **builder_overrides)
    return L4PPredictor(model, device=device, dtype=dtype, mode=mode)


def config_of(model: L4P) -> dict:
    """The builder config recorded on a model by `build_model`."""
    return json.loads(json.dumps(getattr(model, "build_config", {})))
