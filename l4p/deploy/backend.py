"""An `L4P` look-alike whose window computations run in onnxruntime sessions.

`OnnxL4P` offers what `l4p.inference` and `L4PPredictor` use of an `L4P` module (`encode`,
`decode_dense`, `tasks`, `heads`, `tracker`, `encoder.patch_embed.patch`, `window`, `stride`,
`eval`/`to`/`parameters`), so windowing, stitching, alignment and the tracking memory run
unchanged in PyTorch on top of the exported graphs. Tensors cross to numpy on the CPU;
results come back on the module's device (where its empty anchor parameter lives).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from l4p.deploy.contract import (
    DENSE_OUTPUT_NAMES,
    ENCODER_FILE,
    FEATURE_NAMES,
    MASK_TOKEN_FILE,
    TOKENS_NAME,
    TRACKING_FILE,
    Manifest,
    head_file,
)
from l4p.deploy.session import make_session
from l4p.heads.tracking.head import TrackWindowOutput
from l4p.models.l4p import DENSE_TASKS, TASKS, DenseOutputs, WindowFeatures


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


class OnnxTrackingHead(nn.Module):
    """The tracking head's single-window call and memory helpers, on `tracking.onnx`.

    `TrackWindowOutput.decoded_tokens` holds the graph's `history_next`, the decoded tokens
    already projected, so `history_from_decoded` is the identity here.
    """

    history_mask_token: torch.Tensor

    def __init__(self, session, manifest: Manifest, mask_token: np.ndarray) -> None:
        super().__init__()
        self.session = session
        self.dim = manifest.dim
        self.window_size = tuple(manifest.window)
        self.patch_size = tuple(manifest.patch_size)
        self.max_queries = manifest.max_queries
        self.output_names = list(manifest.tracking_outputs)
        self.default_grid: tuple[int, int, int] = tuple(manifest.grid)  # type: ignore[assignment]
        self.register_buffer("history_mask_token", torch.from_numpy(mask_token).float(), persistent=False)

    def window_size_for(self, grid_thw: tuple[int, int, int]) -> tuple[int, int, int]:
        """Window (T, H, W) covered by a token grid."""
        return tuple(g * p for g, p in zip(grid_thw, self.patch_size))  # type: ignore[return-value]

    def forward(
        self,
        video_tokens_bpc: torch.Tensor,
        *,
        grid_thw: tuple[int, int, int],
        queries_bn3: torch.Tensor,
        point_labels_bn: torch.Tensor,
        track_features_bnc: torch.Tensor,
        track_feature_labels_bn: torch.Tensor,
        history_bnpc: torch.Tensor,
    ) -> TrackWindowOutput:
        """Track every query through one window (arguments as `TrackingHead.forward`)."""
        if tuple(grid_thw) != self.default_grid:
            raise ValueError(
                f"the ONNX tracking head was exported for grid {self.default_grid}, got {grid_thw}"
            )
        b, n = queries_bn3.shape[:2]
        per_query = (queries_bn3, point_labels_bn, track_features_bnc, track_feature_labels_bn, history_bnpc)
        tokens = _np(video_tokens_bpc)
        step = max(1, self.max_queries // max(b, 1))
        names = [i.name for i in self.session.get_inputs()]
        chunks = []
        for start in range(0, max(n, 1), step):
            part = [_np(x[:, start : start + step]) for x in per_query]
            if n == 0:  # run one dummy query for the output shapes, then keep none of it
                part = [np.zeros((b, 1, *p.shape[2:]), np.float32) for p in part]
            chunks.append(self.session.run(self.output_names, dict(zip(names, [tokens, *part]))))
        device = self.history_mask_token.device
        outs = {
            name: torch.from_numpy(np.concatenate([c[i] for c in chunks], axis=1)[:, :n]).to(device)
            for i, name in enumerate(self.output_names)
        }
        outs["decoded_tokens"] = outs.pop("history_next")
        missing = [f.name for f in fields(TrackWindowOutput) if f.name not in outs]
        if missing:
            raise ValueError(
                f"tracking.onnx lacks outputs {missing} this version of l4p needs; re-export the model"
            )
        return TrackWindowOutput(**{f.name: outs[f.name] for f in fields(TrackWindowOutput)})

    def history_from_decoded(self, decoded_tokens: torch.Tensor) -> torch.Tensor:
        """Identity: the graph's decoded tokens are already projected (see the class docstring)."""
        return decoded_tokens

    def history_mask(self) -> torch.Tensor:
        """The history token of frames that have no history yet, (C,)."""
        return self.history_mask_token


class OnnxL4P(nn.Module):
    """An exported L4P network behind the `L4P` interface the inference engine uses.

    Args:
        directory: Export folder (see `l4p.deploy.contract`).
        providers: onnxruntime execution providers (default: CPU).
        threads: Intra-op threads per session (default: onnxruntime's choice).
        low_memory: Trade speed for memory (see `l4p.deploy.session.make_session`).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        low_memory: bool = False,
    ) -> None:
        super().__init__()
        directory = Path(directory)
        manifest = Manifest.read(directory)
        self.manifest = manifest
        self.window = tuple(manifest.window)
        self.stride = manifest.stride
        self.dense_hooks = tuple(manifest.dense_hooks)
        tubelet, patch, _ = manifest.patch_size
        self.encoder = SimpleNamespace(
            dim=manifest.dim,
            patch_size=tuple(manifest.patch_size),
            patch_embed=SimpleNamespace(patch=patch, tubelet=tubelet),
        )

        def load(name: str):
            return make_session(directory / name, providers=providers, threads=threads, low_memory=low_memory)

        self.encoder_session = load(ENCODER_FILE)
        self.heads = {t: load(head_file(t)) for t in manifest.tasks if t in DENSE_TASKS}
        self.tracker = None
        if "tracks" in manifest.tasks:
            mask = np.load(directory / MASK_TOKEN_FILE)
            self.tracker = OnnxTrackingHead(load(TRACKING_FILE), manifest, mask)
        self._anchor = nn.Parameter(torch.empty(0), requires_grad=False)  # device for the predictor

    @property
    def tasks(self) -> tuple[str, ...]:
        """Exported tasks."""
        return tuple(t for t in TASKS if t in self.manifest.tasks)

    def encode(self, video_bcthw: torch.Tensor, *, tasks: Collection[str]) -> WindowFeatures:
        """Run `encoder.onnx` once, keeping the features the requested heads read."""
        need_dense = any(t in DENSE_TASKS for t in tasks)
        names = [*(FEATURE_NAMES if need_dense else ()), *((TOKENS_NAME,) if "tracks" in tasks else ())]
        unknown = [t for t in tasks if t not in self.tasks]
        if unknown:
            raise ValueError(f"tasks {unknown} were not exported; this export has {self.tasks}")
        device = self._anchor.device
        outs = [
            torch.from_numpy(o).to(device)
            for o in self.encoder_session.run(names, {"video": _np(video_bcthw)})
        ]
        grid = tuple(int(g) for g in self.manifest.grid)
        size = tuple(int(s) for s in video_bcthw.shape[2:])
        dense = outs[: len(FEATURE_NAMES)] if need_dense else []
        final = outs[-1] if "tracks" in tasks else None
        return WindowFeatures(dense=dense, final=final, grid=grid, size=size)  # type: ignore[arg-type]

    def decode_dense(self, features: WindowFeatures, *, tasks: Collection[str]) -> DenseOutputs:
        """Run the requested `head_<task>.onnx` graphs on one window's features."""
        feeds = {name: _np(f) for name, f in zip(FEATURE_NAMES, features.dense)}
        out = DenseOutputs()
        for task in (t for t in DENSE_TASKS if t in tasks):
            if task not in self.heads:
                raise ValueError(f"task {task!r} was not exported; this export has {self.tasks}")
            (result,) = self.heads[task].run([DENSE_OUTPUT_NAMES[task]], feeds)
            setattr(out, DENSE_OUTPUT_NAMES[task], torch.from_numpy(result).to(self._anchor.device))
        return out

    def forward(self, video_bcthw: torch.Tensor, tasks: Collection[str] = DENSE_TASKS) -> DenseOutputs:
        """Dense outputs of one window (as `L4P.forward`)."""
        tasks = [t for t in tasks if t in self.heads]
        return self.decode_dense(self.encode(video_bcthw, tasks=tasks), tasks=tasks)
