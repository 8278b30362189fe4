"""Export an `L4P` model's single-window network to ONNX (see `l4p.deploy.contract`).

The graphs are written into a temporary folder beside the target and renamed into place
once all of them and the manifest exist, so a failed export never leaves a half folder.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from l4p.deploy.contract import (
    DENSE_OUTPUT_NAMES,
    ENCODER_FILE,
    EXTERNAL_DATA_BYTES,
    FEATURE_NAMES,
    MASK_TOKEN_FILE,
    TOKENS_NAME,
    TRACKING_FILE,
    TRACKING_INPUTS,
    Manifest,
    head_file,
)
from l4p.deploy.graphs import DenseHeadGraph, EncoderGraph, TrackingGraph, model_grid
from l4p.models.l4p import DENSE_TASKS, L4P, TASKS

logger = logging.getLogger(__name__)
DEFAULT_OPSET = 18
_EXAMPLE_BATCH, _EXAMPLE_QUERIES = 2, 3  # > 1, so the exporter keeps these axes symbolic


def export_onnx(
    model: L4P,
    out_dir: str | Path,
    *,
    tasks: Sequence[str] | None = None,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
) -> Path:
    """Export the encoder, the requested dense heads and the tracking head to ONNX.

    Args:
        model: The network (float32; it is put in eval mode for the export and restored).
        out_dir: Folder to create; see `l4p.deploy.contract` for what it holds.
        tasks: Tasks to export (default: every head the model has).
        opset: ONNX opset (18 is what torch's exporter targets natively).
        overwrite: Replace an existing export folder.

    Returns:
        The export folder.
    """
    out_dir = Path(out_dir)
    tasks = _check_tasks(model, tasks)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out_dir} exists and is not empty; pass overwrite=True (--overwrite) to replace it"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        with _eval_float(model):
            manifest = _export_all(model, tmp, tasks=tasks, opset=opset)
        manifest.write(tmp)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("exported %s (%s) to %s", manifest.model, ", ".join(tasks), out_dir)
    return out_dir


def _check_tasks(model: L4P, tasks: Sequence[str] | None) -> list[str]:
    wanted = list(model.tasks) if tasks is None else list(dict.fromkeys(tasks))
    for task in wanted:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
        if task not in model.tasks:
            raise ValueError(f"the model has no head for {task!r}; it has {model.tasks}")
    if not wanted:
        raise ValueError(f"no task to export; choose from {model.tasks}")
    return [t for t in TASKS if t in wanted]


@contextlib.contextmanager
def _eval_float(model: L4P) -> Iterator[None]:
    if any(p.dtype != torch.float32 for p in model.parameters()):
        raise ValueError("export a float32 model (call model.float() first); ONNX graphs are float32")
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


def _export_all(model: L4P, folder: Path, *, tasks: list[str], opset: int) -> Manifest:
    dense = [t for t in tasks if t in DENSE_TASKS]
    track = "tracks" in tasks
    grid = model_grid(model)
    device = next(model.parameters()).device
    video = torch.randn(_EXAMPLE_BATCH, 3, *model.window, device=device)
    batch = torch.export.Dim("batch", min=1)
    external: list[str] = []

    encoder = EncoderGraph(model, dense=bool(dense), tokens=track)
    enc_out = [*(FEATURE_NAMES if dense else ()), *((TOKENS_NAME,) if track else ())]
    _export(encoder, (video,), folder / ENCODER_FILE, ["video"], enc_out, ({0: batch},), opset, external)
    with torch.no_grad():
        outs = encoder(video)
    feats = outs[: len(FEATURE_NAMES)] if dense else ()
    tokens = outs[-1] if track else None

    for task in dense:
        graph = DenseHeadGraph(model, task)
        shapes = tuple({0: batch} for _ in FEATURE_NAMES)
        names = [DENSE_OUTPUT_NAMES[task]]
        _export(
            graph, tuple(feats), folder / head_file(task), list(FEATURE_NAMES), names, shapes, opset, external
        )

    tracking_outputs: list[str] = []
    max_queries = 0
    if track:
        assert model.tracker is not None and tokens is not None
        head = model.tracker
        max_queries = head.max_queries
        tracker = TrackingGraph(head, grid)
        tracking_outputs = list(tracker.output_names)
        queries = torch.export.Dim("queries", min=1)
        per_query = {0: batch, 1: queries}
        example = _tracking_example(head.history_mask(), tokens, model.window)
        shapes = ({0: batch}, *(per_query for _ in TRACKING_INPUTS[1:]))
        head.max_queries = 1 << 30  # one pass over all queries: the traceable path
        try:
            _export(tracker, example, folder / TRACKING_FILE, list(TRACKING_INPUTS), tracking_outputs, shapes,
                    opset, external)  # fmt: skip
        finally:
            head.max_queries = max_queries
        np.save(folder / MASK_TOKEN_FILE, head.history_mask().detach().float().cpu().numpy())

    config = getattr(model, "build_config", {}) or {}
    return Manifest(
        model=str(config.get("name", type(model).__name__)),
        tasks=tasks,
        window=list(model.window),
        stride=int(model.stride),
        patch_size=list(model.encoder.patch_size),
        grid=list(grid),
        dim=int(model.encoder.dim),
        dense_hooks=list(model.dense_hooks),
        max_queries=int(max_queries),
        tracking_outputs=tracking_outputs,
        opset=opset,
        external_data=external,
        build_config=config,
        torch_version=torch.__version__,
    )


def _tracking_example(
    mask_token: torch.Tensor, tokens: torch.Tensor, window: Sequence[int]
) -> tuple[torch.Tensor, ...]:
    b, n = _EXAMPLE_BATCH, _EXAMPLE_QUERIES
    p, c = tokens.shape[1:]
    scale = tokens.new_tensor(window)[[0, 2, 1]]  # (t, x, y) spans (T, W, H)
    return (
        tokens,
        torch.rand(b, n, 3, device=tokens.device) * scale,
        tokens.new_ones(b, n),
        torch.zeros(b, n, c, device=tokens.device),
        tokens.new_zeros(b, n),
        mask_token.detach().expand(b, n, p, c).contiguous(),
    )


def _export(
    graph: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic_shapes: tuple,
    opset: int,
    external: list[str],
) -> None:
    graph.eval()  # the wrapper itself; the model's modules are already in eval mode
    with _exporter_quiet():
        program = torch.onnx.export(
            graph,
            args,
            dynamo=True,
            input_names=inputs,
            output_names=outputs,
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            verbose=False,
        )
    assert program is not None
    size = sum(v.const_value.nbytes for v in program.model.graph.initializers.values() if v.const_value)
    use_external = size > 0.9 * EXTERNAL_DATA_BYTES
    logger.info(
        "writing %s (%.1f MB of weights%s)", path.name, size / 1e6, ", external data" if use_external else ""
    )
    program.save(str(path), external_data=use_external)
    if use_external:
        external.append(path.name)


@contextlib.contextmanager
def _exporter_quiet() -> Iterator[None]:
    """Silence the exporter's and optimizer's notices that do not concern our users."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*axis name.*will not be used", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            # the encoder caches its position table on first use: a constant in the graph
            warnings.filterwarnings(
                "ignore", message=".*_pos_cache.*was assigned during export", category=UserWarning
            )
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def _replace_dir(new: Path, target: Path) -> None:
    """Rename `new` to `target`, replacing an existing `target` only after the rename."""
    if not target.exists():
        new.rename(target)
        return
    old = target.with_name(f".{target.name}.old-{new.name[-8:]}")
    target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)
