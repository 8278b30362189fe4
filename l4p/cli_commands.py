"""What the `l4p` subcommands do once their arguments are parsed (see `l4p.cli`)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from l4p.cli_inputs import UsageError, check_out_dir, collect_videos, load_queries

__all__ = ["UsageError", "check_out_dir", "collect_videos", "load_queries"]  # re-exported for `l4p.cli`

logger = logging.getLogger("l4p")

DEFAULT_GRID = 10
TASK_NAMES = ("depth", "flow", "motion", "camera", "tracks")
TASK_ALIASES = {"track": "tracks", "tracking": "tracks", "cameras": "camera", "pose": "camera"}
RELEASED_CKPT = "l4p_depth_flow_2d3dtrack_camray_dynseg_v1.ckpt"
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": None}


def parse_tasks(text: str) -> tuple[str, ...]:
    """'depth,flow' -> ('depth', 'flow'); raises UsageError on unknown names."""
    names = [TASK_ALIASES.get(t.strip().lower(), t.strip().lower()) for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in TASK_NAMES]
    if bad or not names:
        raise UsageError(
            f"unknown task {bad[0]!r} in --tasks; choose from {','.join(TASK_NAMES)}"
            if bad
            else "--tasks is empty"
        )
    return tuple(dict.fromkeys(names))


def resolve_device(name: str | None) -> str:
    """The device to run on; raises UsageError for CUDA on a machine without it."""
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if not (name == "cpu" or name.startswith("cuda")):
        raise UsageError(f"--device must be cpu, cuda or cuda:N, got {name!r}")
    return name


def resolve_dtype(name: str):
    """Torch dtype of a --dtype choice (None for fp32)."""
    import torch

    return getattr(torch, DTYPES[name]) if DTYPES[name] else None


def check_model_args(model: str, checkpoint: Path | None) -> None:
    """Raise UsageError for a missing checkpoint file or an unknown model, before anything is built."""
    if checkpoint is not None and not checkpoint.is_file():
        raise UsageError(f"checkpoint {checkpoint} does not exist")
    if not Path(model).is_dir() and model not in _registry():
        raise UsageError(
            f"unknown model {model!r}; choose from {', '.join(_registry())} or a save_pretrained folder"
        )


def _ships_no_weights(model: str) -> bool:
    from l4p.weights import embedded_weights

    return embedded_weights(model) is None


def load_network(model: str, checkpoint: Path | None, *, tasks: tuple[str, ...] | None = None):
    """Build and load the network, turning input mistakes into UsageError (exit 2)."""
    from l4p.checkpoints.common import NotACheckpointError, StateDictMismatchError
    from l4p.checkpoints.own import build_and_load

    check_model_args(model, checkpoint)
    if checkpoint is None and not Path(model).is_dir() and _ships_no_weights(model):
        logger.warning("no --checkpoint: %s has RANDOM weights, so its outputs are meaningless. "
                       "Pass --checkpoint %s for real results.", model, RELEASED_CKPT)  # fmt: skip
    own_logger = logging.getLogger("l4p.checkpoints.own")
    level = own_logger.level
    own_logger.setLevel(logging.ERROR)  # its random-weights warning names the Python API; ours is above
    try:
        return build_and_load(model, checkpoint, tasks=tasks)
    except NotACheckpointError as err:
        raise UsageError(str(err)) from err
    except StateDictMismatchError as err:
        counts = ", ".join(f"{len(keys)} {what}" for what, keys in
                           (("missing", err.missing), ("mis-shaped", err.mis_shaped), ("unexpected", err.unexpected)) if keys)  # fmt: skip
        raise UsageError(
            f"checkpoint {checkpoint} does not fit model {model} ({counts} keys): it was saved from another "
            f"variant; pass that one with --model (one of {', '.join(_registry())}, or a save_pretrained "
            "folder); --debug lists the keys"
        ) from err
    except ValueError as err:
        if "has no head" in str(err):
            raise UsageError(str(err)) from err
        raise
    finally:
        own_logger.setLevel(level)


def _registry() -> list[str]:
    from l4p.build import list_models

    return list_models()


def network_tasks(tasks: tuple[str, ...], mode: str) -> tuple[str, ...]:
    """Heads to build for `tasks`: in default mode the camera task is chained through depth.

    Without the depth head, windows after the first would not be joined into one world frame,
    and the cameras would differ from the Python API's (which loads every head).
    """
    if "camera" in tasks and "depth" not in tasks and mode == "default":
        return ("depth", *tasks)
    return tasks


def cmd_predict(args: argparse.Namespace) -> int:
    """`l4p predict`: every video through `predict_many`, then a summary on stdout."""
    from l4p.export.run_record import run_settings

    tasks = parse_tasks(args.tasks)
    queries = load_queries(args.queries) if args.queries is not None else None
    if args.grid is not None and args.grid < 1:
        raise UsageError(f"--grid must be >= 1, got {args.grid}")
    if args.max_frames is not None and args.max_frames < 1:
        raise UsageError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.save_every < 0:
        raise UsageError(f"--save-every must be >= 0 seconds, got {args.save_every}")
    check_out_dir(args.out)
    if (queries is not None or args.grid) and "tracks" not in tasks:
        logger.info("--queries/--grid given: adding the tracks task")
        tasks = (*tasks, "tracks")
    if args.export_3d and "camera" not in tasks:
        raise UsageError(
            "--export-3d needs the camera task (point clouds, cameras and 3D tracks all need its intrinsics): "
            f"use --tasks {','.join((*tasks, 'camera'))}, or drop --export-3d"
        )
    grid = args.grid if queries is None else None
    if "tracks" in tasks and queries is None and grid is None:
        grid = DEFAULT_GRID
        logger.info(
            "tracking a %dx%d grid of the first frame (use --queries or --grid to choose)", grid, grid
        )
    videos = collect_videos(args.videos)
    device = resolve_device(args.device)
    devices = args.devices if args.devices == "auto" else _positive_int(args.devices, "--devices")
    check_model_args(args.model, args.checkpoint)
    check_writable(args.out)
    from l4p.predict_many import PredictOptions, plan_jobs, predict_many  # Lightning: import after checks

    outputs = {"visualize": not args.no_viz, "suffix": ".gif" if args.gif else ".mp4", "png16": args.png16,
               "export_3d": args.export_3d, "fps": args.fps}  # fmt: skip
    settings = run_settings(
        model=str(args.model), checkpoint=args.checkpoint, mode=args.mode, tasks=tasks, queries=queries, grid=grid,
        max_frames=args.max_frames, dtype=args.dtype, outputs=outputs,
    )  # fmt: skip
    options = PredictOptions(
        tasks=tasks, queries=queries, grid_size=grid, max_frames=args.max_frames, dtype=resolve_dtype(args.dtype),
        mode=args.mode, fps=args.fps, png16=args.png16, export_3d=args.export_3d, visualize=not args.no_viz,
        suffix=outputs["suffix"], overwrite=args.overwrite, window_progress=not args.quiet,
        raise_errors=args.debug, save_every=args.save_every, settings=settings,
    )  # fmt: skip
    accelerator = "cpu" if device == "cpu" else "gpu"
    if device.startswith("cuda:"):
        devices = [int(device.split(":")[1])]
    workers = args.workers if args.workers is not None else (0 if accelerator == "cpu" else 2)
    jobs = plan_jobs([str(v) for v in videos], out_dir=args.out)
    tic = time.perf_counter()
    results = predict_many(
        lambda: _build_for(args, tasks), jobs,
        options=options, accelerator=accelerator, devices=devices, num_nodes=args.num_nodes, num_workers=workers,
        progress=False,  # a bar over each video's frames instead (fps, ETA)
    )  # fmt: skip
    if not results:
        return 0  # a DDP process other than rank 0: rank 0 reports every video
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    if not args.quiet:
        for r in results:
            extra = f" ({r.frames} frames, {r.seconds:.1f} s)" if r.status == "done" else ""
            _out(f"{r.status:>7}  {r.video} -> {r.out_dir}{extra}")
        _out(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
             f"in {time.perf_counter() - tic:.1f} s")  # fmt: skip
    for r in results:
        if r.status == "failed":
            named = r.error if r.video in r.error else f"{r.video}: {r.error}"  # the video once
            sys.stderr.write(f"l4p: error: {named}\n")
    return 1 if counts["failed"] else 0


def check_writable(out: Path) -> None:
    """--out (or, until it exists, its nearest existing parent) must be writable: else one clear line, before any work."""
    import tempfile

    folder = out
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".l4p_probe_"):
            pass
    except OSError as err:
        raise UsageError(
            f"cannot write to --out {out}: {err.strerror or err}; pick a writable folder with free space"
        ) from err


def cmd_convert(args: argparse.Namespace) -> int:
    """`l4p convert`: a released .ckpt (or safetensors) into a save_pretrained folder."""
    from l4p.checkpoints.own import CONFIG_NAME, WEIGHTS_NAME, save_pretrained

    if not args.checkpoint.is_file():
        raise UsageError(f"checkpoint {args.checkpoint} does not exist")
    if (args.out / WEIGHTS_NAME).exists() and not args.overwrite:
        raise UsageError(f"{args.out / WEIGHTS_NAME} exists; pass --overwrite to replace it")
    tic = time.perf_counter()
    model = load_network(args.model, args.checkpoint)
    save_pretrained(model, args.out)
    if not args.quiet:
        params = sum(p.numel() for p in model.parameters())
        _out(f"wrote {args.out}/{{{CONFIG_NAME},{WEIGHTS_NAME}}}: {args.model}, tasks {','.join(model.tasks)}, "
             f"{params / 1e6:.1f} M parameters, {time.perf_counter() - tic:.1f} s")  # fmt: skip
        _out(
            f"load it with: l4p predict VIDEO --model {args.out} --out DIR   or   l4p.load_model('{args.out}')"
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """`l4p demo`: see `l4p.demo.run_demo`."""
    from l4p.demo import DEMO_MODEL, DEMO_SIZE, random_network, run_demo
    from l4p.weights import embedded_weights

    if args.random and args.checkpoint:
        raise UsageError("--random and --checkpoint exclude each other: random weights load no file")
    size = args.size or ("224x288" if args.checkpoint else DEMO_SIZE)
    try:
        height, width = (int(v) for v in size.lower().split("x"))
    except ValueError as err:
        raise UsageError(f"--size must be HxW in pixels, e.g. 144x192; got {size!r}") from err
    if min(height, width) < 16 or args.frames < 2 or args.grid < 1:
        raise UsageError("the demo needs --size of at least 16x16, --frames >= 2 and --grid >= 1")
    model_name = args.model or ("l4p_vitg14" if args.checkpoint else DEMO_MODEL)
    if args.random:
        check_model_args(model_name, None)
        network = random_network(model_name)
    else:
        network = load_network(model_name, args.checkpoint)
    shipped = not Path(model_name).is_dir() and embedded_weights(model_name) is not None
    lines = run_demo(
        network, out_dir=args.out, frames=args.frames, height=height, width=width, seed=args.seed, grid=args.grid,
        device=resolve_device(args.device), dtype=resolve_dtype(args.dtype), progress=not args.quiet,
        random_weights=args.random or (args.checkpoint is None and not Path(model_name).is_dir() and not shipped),
        model_name=model_name + (" (shipped weights)" if shipped and not args.random and args.checkpoint is None else ""),
    )  # fmt: skip
    for line in lines:
        _out(line)
    return 0


def _build_for(args: argparse.Namespace, tasks: tuple[str, ...]):
    """The network with the heads `tasks` need (see `network_tasks`), or just `tasks` if the file lacks them."""
    wanted = network_tasks(tasks, args.mode)
    try:
        return load_network(args.model, args.checkpoint, tasks=wanted)
    except UsageError as err:
        if wanted == tasks or "has no head for ['depth']" not in str(err):
            raise
    logger.warning("the checkpoint has no depth head, so camera windows are not chained into one world frame")
    return load_network(args.model, args.checkpoint, tasks=tasks)


def _positive_int(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{option} must be a positive integer or 'auto', got {text!r}")
    return value


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "predict": cmd_predict,
    "convert": cmd_convert,
    "demo": cmd_demo,
}
