"""Shared plumbing of the benchmark scripts.

- Model arguments (``--model``, ``--checkpoint``, ``--device``, ``--dtype``, ``--mode``) and
  ``load_predictor`` building an ``L4PPredictor`` from them.
- Result files (``ResultStore``, ``run_metadata``, ``write_summary``, ...) live in
  ``l4p.bench.io`` (the installed ``l4p bench`` command uses them) and are re-exported here.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from l4p.bench.io import (
    ResultStore,
    check_run_config,
    fmt,
    machine_name,
    markdown_table,
    read_json,
    run_metadata,
    to_jsonable,
    write_json,
    write_summary,
)

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DTYPES = ("fp32", "bf16", "fp16")


def setup_logging(verbose: bool = False) -> None:
    """Log INFO (or DEBUG) messages of the scripts and the library to stderr."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """Add the arguments that choose and configure the model."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", default="l4p_vitg14", help="registered variant or save_pretrained folder")
    group.add_argument(
        "--checkpoint",
        default=None,
        help="released L4P .ckpt or our model.safetensors (none: random weights)",
    )
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    group.add_argument(
        "--dtype", default="auto", choices=("auto", *DTYPES), help="auto: bf16 autocast on CUDA, fp32 on CPU"
    )
    group.add_argument("--mode", default="default", choices=("default", "released"))


def resolve_dtype(name: str, device: str):
    """The torch autocast dtype for a ``--dtype`` value (``None`` = float32)."""
    import torch

    if name == "auto":
        name = "bf16" if str(device).startswith("cuda") else "fp32"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def load_predictor(args: argparse.Namespace, tasks: Sequence[str] | None = None):
    """Build the ``L4PPredictor`` the model arguments describe.

    Args:
        args: Parsed arguments holding those of ``add_model_args``.
        tasks: Heads to build (None: those of the checkpoint, or all).
    """
    import torch

    from l4p.api import load_model

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = resolve_dtype(args.dtype, device)
    logger.info("loading %s (checkpoint %s) on %s, dtype %s", args.model, args.checkpoint, device, dtype)
    return load_model(args.model, args.checkpoint, device=device, dtype=dtype, tasks=tasks, mode=args.mode)


__all__ = [
    "DTYPES",
    "REPO_ROOT",
    "ResultStore",
    "add_model_args",
    "check_run_config",
    "fmt",
    "load_predictor",
    "machine_name",
    "markdown_table",
    "read_json",
    "resolve_dtype",
    "run_metadata",
    "setup_logging",
    "to_jsonable",
    "write_json",
    "write_summary",
]
