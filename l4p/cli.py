"""The `l4p` command: predict, demo, convert, and fit/validate/test (training).

Exit codes: 0 success; 1 a runtime failure (a video that could not be processed, an
unexpected error); 2 a usage error (bad option, missing file, unknown task, unreadable
queries file); 130 interrupted. Errors are one line on stderr; `--debug` shows tracebacks.
Run `l4p <command> --help` for each command's options.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from l4p import __version__
from l4p.cli_commands import DTYPES, RELEASED_CKPT, TASK_NAMES, UsageError

logger = logging.getLogger("l4p")

TRAINING_COMMANDS = ("fit", "validate", "test")
PASSTHROUGH_COMMANDS = (*TRAINING_COMMANDS, "bench")  # parse their own arguments
EXIT_CODES = "exit codes: 0 ok, 1 runtime failure (e.g. a video failed), 2 usage error, 130 interrupted"
PREDICT_EPILOG = f"""outputs in DIR/<video-stem>/ (videos of any length: frames are decoded and predicted as they go):
  prediction.zarr/ every predicted field, batch axis of 1, written chunk by chunk (zarr; read it lazily
                   with l4p.load_prediction(path): slicing reads only what is asked): depth (1,T,H,W),
                   flow (1,T,2,H,W) backward (frame 0 NaN), motion (1,T,H,W), extrinsics (1,T,4,4)
                   world-to-camera, intrinsics (1,T,3,3), tracks (1,T,N,2), visibility (1,T,N),
                   visibility_prob, track_depth (1,T,N), tracks_3d / tracks_world (1,T,N,3), queries (1,N,3);
                   attributes: fps, source, depth_kind, units and conventions per field. No .npz: for an
                   in-memory copy use l4p.load_prediction(path).to_prediction() (and .save("x.npz"))
  depth.mp4 flow.mp4 motion.mp4 tracks.mp4 mosaic.mp4   at the input frame rate, drawn from the
                   finished store (the input is decoded a second time)
  depth_png16/     with --png16: 16-bit PNGs, depth = value * scale (scale.json)
  pointclouds/ cameras.ply cameras.json trajectory_tum.txt tracks_3d.npz   with --export-3d
  l4p_done.json    written last (every file is written atomically); a re-run skips a video only when
                   its marker records the same source file (path, size, mtime) and the same model (and
                   weights: checkpoint, save_pretrained folder or the shipped ones), mode, tasks,
                   queries/grid, --max-frames, --dtype and output options; otherwise (or with --overwrite)
                   the folder's earlier l4p files are removed and the video is redone. Two sources never
                   share a folder (alley.gif after alley.mp4 -> alley-2/)
resuming: a run that is stopped (Ctrl-C exits 130, kill, power loss) and started again with the same
  command continues each unfinished video after its last saved chunk (l4p_run.json and
  prediction.zarr/.l4p_resume/ hold what it needs; the state is saved at most every --save-every
  seconds); the result equals an uninterrupted run. Changed settings: the folder is redone instead.
{EXIT_CODES}"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _globals(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--quiet", action="store_true", default=default, help="only warnings and errors")
    parser.add_argument("--debug", action="store_true", default=default, help="debug logs, full tracebacks")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `l4p` command."""
    parser = _Parser(prog="l4p", description="Unified low-level 4D perception from monocular video.",
                     epilog=EXIT_CODES)  # fmt: skip
    parser.add_argument("--version", action="version", version=f"l4p {__version__}")
    _globals(parser, False)
    common = argparse.ArgumentParser(add_help=False)
    _globals(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("predict", parents=[common], help="predict videos; write zarr, videos, 3D files",
                       description="Predict every video; write DIR/<video-stem>/ (prediction.zarr, videos, ...).",
                       epilog=PREDICT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (mp4, gif, ...), folders of videos, or folders of frames")  # fmt: skip
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument(
        "--tasks",
        default="depth,flow,motion,camera",
        help=f"comma-separated from {','.join(TASK_NAMES)} (default: %(default)s)",
    )
    p.add_argument(
        "--model",
        default="l4p_vitg14",
        help="registered variant or a save_pretrained folder (default: %(default)s)",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        help=f"weights: the released {RELEASED_CKPT} or model.safetensors. "
        "WITHOUT IT THE MODEL HAS RANDOM WEIGHTS and its outputs are meaningless",
    )
    q = p.add_mutually_exclusive_group()
    q.add_argument(
        "--queries", type=Path, metavar="FILE", help="track queries (t, x, y) per row: .npy, .txt or .csv"
    )
    q.add_argument("--grid", type=int, metavar="N", help="track an N x N grid of points of the first frame")
    _run_options(p)
    p.add_argument(
        "--mode", choices=("default", "released"), default="default", help="released: the released pipeline"
    )
    p.add_argument("--max-frames", type=int, metavar="N", help="use only the first N frames")
    p.add_argument(
        "--fps", type=float, help="frame rate of the output videos when the input has none (default 10)"
    )
    p.add_argument("--png16", action="store_true", help="also write 16-bit PNG depth frames")
    p.add_argument(
        "--export-3d",
        action="store_true",
        help="also write point clouds, cameras (PLY) and 3D tracks (npz); needs the camera task",
    )
    p.add_argument("--no-viz", action="store_true", help="write prediction.zarr only, no videos")
    p.add_argument(
        "--save-every", type=float, default=30.0, metavar="SECONDS",
        help="save the resume state at most this often (default 30; 0: after every chunk of 8 frames)",
    )  # fmt: skip
    p.add_argument("--gif", action="store_true", help="write the visualisations as gif instead of mp4")
    p.add_argument("--overwrite", action="store_true", help="redo videos that are already done")
    p.add_argument(
        "--devices", default="1", help="GPUs per node (CPU: processes), int or 'auto'; > 1 runs DDP"
    )
    p.add_argument("--num-nodes", type=int, default=1, help="nodes (launch under torchrun or SLURM)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="DataLoader processes handing out videos (frames are decoded as they stream; default 0 on CPU, 2 on GPU)",
    )

    d = sub.add_parser("demo", parents=[common], help="render a synthetic clip, predict everything, score it",
                       description="Render a synthetic clip with ground truth, run all tasks, write videos and scores.")  # fmt: skip
    d.add_argument(
        "--out", type=Path, default=Path("l4p_demo"), metavar="DIR", help="output folder (default l4p_demo)"
    )
    d.add_argument(
        "--checkpoint", type=Path, help=f"weights, e.g. {RELEASED_CKPT} (default: the shipped ones)"
    )
    d.add_argument(
        "--model", help="variant (default: l4p_synthetic_s, shipped weights; l4p_vitg14 with --checkpoint)"
    )
    d.add_argument("--random", action="store_true", help="random weights (seeded) instead of trained ones")
    d.add_argument("--frames", type=int, default=16, help="clip length (default 16)")
    d.add_argument(
        "--size", metavar="HxW", help="clip size in pixels (default 64x64; 224x288 with a checkpoint)"
    )
    d.add_argument("--seed", type=int, default=0, help="scene seed")
    d.add_argument("--grid", type=int, default=6, help="track an N x N grid (default 6)")
    _run_options(d)

    c = sub.add_parser("convert", parents=[common], help="convert the released checkpoint to a safetensors folder",
                       description="Convert a released L4P .ckpt (or our safetensors) into a save_pretrained folder.")  # fmt: skip
    c.add_argument("checkpoint", type=Path, metavar="RELEASED.ckpt")
    c.add_argument("out", type=Path, metavar="OUTDIR")
    c.add_argument(
        "--model", default="l4p_vitg14", help="variant the checkpoint belongs to (default l4p_vitg14)"
    )
    c.add_argument("--overwrite", action="store_true", help="replace an existing folder's files")
    from l4p.deploy.cli import add_export_parser

    add_export_parser(sub, common)
    for name in TRAINING_COMMANDS:
        sub.add_parser(
            name, parents=[common], add_help=False, help=f"training: {name} (LightningCLI; l4p {name} --help)"
        )
    sub.add_parser("bench", parents=[common], add_help=False,
                   help="benchmarks of the L4P paper and its peers (l4p bench --list, l4p bench --help)")  # fmt: skip
    return parser


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="fp32", help="compute precision (autocast)")


def _setup_logging(quiet: bool, debug: bool) -> Callable[[], None]:
    """Send log records to stderr at the chosen level; returns a function restoring the old setup."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = [handler]
    root.setLevel(level)

    def restore() -> None:
        root.handlers, _ = saved
        root.setLevel(saved[1])

    return restore


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return text if record.levelno == logging.INFO else f"l4p: {record.levelname.lower()}: {text}"


def _training(command: str, rest: list[str]) -> int:
    try:
        from l4p.training.cli import main as training_main
    except ImportError as err:
        raise UsageError(f"'l4p {command}' needs l4p.training.cli, which is not available ({err})") from err
    argv = [command, *rest]
    # LightningCLI warns when given args that are also sys.argv; let it read sys.argv then.
    result = training_main(None if argv == sys.argv[1:] else argv)
    return int(result or 0)


def user_message(err: BaseException) -> str:
    """One line for a person: the message alone for expected errors, the class too for internal ones."""
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, (ValueError, OSError, RuntimeError)) and first_line:
        return first_line
    return f"internal error ({type(err).__name__}: {first_line})" if first_line else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `l4p` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    training = first is not None and argv[first] in PASSTHROUGH_COMMANDS
    flags = argv[:first] if training else argv
    args = None if training else build_parser().parse_args(argv)
    child = os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"
    quiet = child or (args.quiet if args else "--quiet" in flags)  # DDP processes other than rank 0
    debug = args.debug if args else "--debug" in flags
    restore = _setup_logging(quiet, debug)
    try:
        if training and argv[first] == "bench":
            from l4p.bench.cli import main as bench_main

            return bench_main(argv[first + 1 :])
        if training:
            return _training(argv[first], argv[first + 1 :])
        from l4p.cli_commands import COMMANDS

        return int((getattr(args, "handler", None) or COMMANDS[args.command])(args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write("l4p: interrupted\n")
        return 130
    except (UsageError, FileNotFoundError) as err:
        if debug:
            raise
        sys.stderr.write(f"l4p: error: {err}\n")
        return 2
    except Exception as err:
        if debug:
            raise
        sys.stderr.write(f"l4p: error: {user_message(err)} (run with --debug for details)\n")
        return 1
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
