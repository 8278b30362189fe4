"""The ONNX input/output contract of an exported L4P model, and its manifest.

An export folder (written by `l4p.deploy.export_onnx` or `l4p export onnx`) holds:

* `l4p_onnx.json`: this manifest (window, stride, grids, tasks, files, normalisation);
* `encoder.onnx`: the VideoMAE encoder of one window;
* `head_<task>.onnx` for each exported dense task (`depth`, `flow`, `motion`, `camera`);
* `tracking.onnx` and `history_mask_token.npy` when `tracks` is exported;
* `<graph>.onnx.data` next to a graph whose weights exceed 2 GB (ONNX external data; keep
  it beside its `.onnx` file).

Every graph has a dynamic batch axis `B` (window clips, or videos x windows); the tracking
graph also a dynamic query axis `N`. All tensors are float32. `T, H, W` is the model's window
(16 x 224 x 224 for the released model; `l4p_test`: 16 x 112 x 112), `t, h, w` its token grid
(T / 2, H / patch, W / patch), `P = t * h * w`, `C` the encoder width.

encoder.onnx
    input `video` (B, 3, T, H, W): RGB in [0, 1], resized to H x W, then ImageNet-normalised
    per channel, (x - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225).
    outputs `feature_1` .. `feature_4` (B, C, t, h, w): raw outputs of the four encoder blocks
    the dense heads read (present when a dense task is exported); `tokens` (B, P, C): the
    final-normed last block in (t, h, w) raster order (present when `tracks` is exported).

head_depth.onnx, head_flow.onnx, head_motion.onnx, head_camera.onnx
    inputs `feature_1` .. `feature_4` as the encoder gives them.
    outputs: `depth` (B, T, H, W) positive, scale-ambiguous (one unknown scale per window);
    `flow` (B, T, 2, H, W) backward flow (frame k -> k - 1, channel 0 = x) in window pixels,
    frame 0 of a window meaningless; `motion` (B, T, H, W) logits (sigmoid = probability of
    independent motion); `camera_rays` (B, 6, T, h, w) Plücker rays per patch, in the frame of
    the window's first camera (direction 0-2, moment 3-5; `l4p.geometry.rays.rays_to_cameras`
    turns them into poses and intrinsics).

tracking.onnx (one window of the tracking head; the carried memory is explicit)
    inputs: `video_tokens` (B, P, C) the encoder's `tokens`; `queries` (B, N, 3) (t, x, y)
    with t in frames from the window start and x, y in window pixels, continuous convention
    (frame k spans [k, k + 1), pixel column i spans [i, i + 1): a pixel centre is i + 0.5);
    `point_labels` (B, N) 1 = user query, 2 = query re-seeded from the previous window,
    0 = inactive; `track_features` (B, N, C) carried track features (zeros in the first
    window); `track_feature_labels` (B, N) 1 = carried, 0 = none; `history` (B, N, P, C)
    history tokens added to every query's copy of the video tokens (the first window: the
    history mask token, `history_mask_token.npy` (C,), at every token).
    outputs: `traj` (B, N, T, 2) (x, y) in window pixels, continuous convention; `vis`
    (B, N, T) visibility logits; `depth` (B, N, T) positive, scale-ambiguous depth (its own
    scale per window); `track_feature` (B, N, C) to carry to the next window; `history_next`
    (B, N, P, C) projected decoded tokens; `xy_logits` (B, N, 2t, 4h, 4w) position logits
    before the resize to the window (kept for training losses; inference ignores them).
    Carrying over to a window that starts `s` frames later (s a multiple of the tubelet 2):
    the next `history` is `history_next` without its first `s / 2 * h * w` tokens, followed
    by as many mask tokens; the track feature of a query active in this window is replaced by
    `track_feature` with label 1; a query is re-seeded at the overlap frame of highest
    visibility (see `l4p.heads.tracking.memory`, which `predict` runs unchanged).

The windowing, stitching, alignment and memory carry stay in Python (`l4p.inference`), and
run unchanged on top of these graphs through `l4p.deploy.load_onnx`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT = "l4p-onnx"
FORMAT_VERSION = 1
MANIFEST = "l4p_onnx.json"
ENCODER_FILE = "encoder.onnx"
TRACKING_FILE = "tracking.onnx"
MASK_TOKEN_FILE = "history_mask_token.npy"
FEATURE_NAMES = ("feature_1", "feature_2", "feature_3", "feature_4")
TOKENS_NAME = "tokens"
DENSE_OUTPUT_NAMES = {"depth": "depth", "flow": "flow", "motion": "motion", "camera": "camera_rays"}
TRACKING_INPUTS = (
    "video_tokens",
    "queries",
    "point_labels",
    "track_features",
    "track_feature_labels",
    "history",
)
TRACKING_OUTPUTS = ("traj", "vis", "depth", "track_feature", "history_next")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXTERNAL_DATA_BYTES = 2 * 1024**3  # protobuf's limit for one file


def head_file(task: str) -> str:
    """File name of a dense task's graph."""
    return f"head_{task}.onnx"


@dataclass
class Manifest:
    """What `l4p_onnx.json` records about an export.

    Attributes:
        model: Registered variant name (or the source folder's variant).
        tasks: Exported tasks, in `l4p.models.l4p.TASKS` order.
        window: (T, H, W) frames and pixels of one window.
        stride: Frames between consecutive windows.
        patch_size: (tubelet, patch, patch) of one token.
        grid: Token grid (t, h, w) of one window.
        dim: Encoder width C.
        dense_hooks: Encoder blocks the dense heads read (1-based).
        max_queries: Queries the tracking head decodes at once.
        tracking_outputs: Output names of `tracking.onnx`, in order.
        opset: ONNX opset of the graphs.
        external_data: Graphs whose weights are in a `.onnx.data` file beside them.
        build_config: The builder config of the source model (`l4p.api.config_of`).
        torch_version: Torch version that exported the graphs.
        format: Always `l4p-onnx`.
        format_version: Version of this layout.
        normalisation: ImageNet mean and std the `video` input is normalised with.
    """

    model: str
    tasks: list[str]
    window: list[int]
    stride: int
    patch_size: list[int]
    grid: list[int]
    dim: int
    dense_hooks: list[int]
    max_queries: int
    tracking_outputs: list[str]
    opset: int
    external_data: list[str] = field(default_factory=list)
    build_config: dict = field(default_factory=dict)
    torch_version: str = ""
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    normalisation: dict = field(
        default_factory=lambda: {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    )

    def write(self, directory: Path) -> Path:
        """Write the manifest into `directory` atomically; returns its path."""
        path = directory / MANIFEST
        write_atomic(path, json.dumps(asdict(self), indent=1).encode())
        return path

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """Read and check `directory/l4p_onnx.json`."""
        path = directory / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(
                f"{directory} has no {MANIFEST}; export a model first with `l4p export onnx --out {directory}`"
            )
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT or data.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{path} is not an {FORMAT} v{FORMAT_VERSION} manifest (format {data.get('format')!r}, "
                f"version {data.get('format_version')}); re-export with this version of l4p"
            )
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to `path` through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
