"""``l4p bench``: run a benchmark protocol, list them, or convert/submit Spring files.

Usage::

    l4p bench --list
    l4p bench NAME --data ROOT --out DIR [--checkpoint CKPT] [--model l4p_vitg14] [--limit N]
              [--only a,b] [--set KEY=VALUE ...] [--overwrite] [--device cuda] [--dtype bf16]
    l4p bench NAME --layout                      # print the on-disk layout NAME reads
    l4p bench spring-convert SPRING_SPLIT OUT.hdf5 [--scenes 3:131,19:111] [--set random=40,40,40]
    l4p bench spring-submission PRED_ROOT OUT.hdf5 [same options]
    l4p bench spring-score SUBMISSION.hdf5 EVAL.hdf5

Results: ``DIR/per_sequence/<item>.json`` (a rerun skips finished items), ``DIR/summary.json``
and ``DIR/summary.md`` (with the paper's L4P numbers beside ours when ``--checkpoint`` is the
released file). Exit codes: 0 ok, 1 runtime failure, 2 usage error (bad option, missing data).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from l4p.bench.registry import PROTOCOLS, get_protocol
from l4p.bench.runner import BenchContext
from l4p.cli_commands import UsageError

logger = logging.getLogger(__name__)

SPRING_TOOLS = ("spring-convert", "spring-submission", "spring-score")
_DTYPES = {"fp32": None, "bf16": "bfloat16", "fp16": "float16"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``l4p bench``."""
    p = _Parser(prog="l4p bench", description="Run a benchmark protocol of the L4P paper or its peers.",
                epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("name", nargs="?", metavar="NAME", help="protocol (see --list)")
    p.add_argument("paths", nargs="*", metavar="PATH", help=argparse.SUPPRESS)
    p.add_argument("--list", action="store_true", help="list the protocols and exit")
    p.add_argument("--layout", action="store_true", help="print the layout NAME reads and exit")
    p.add_argument("--data", type=Path, metavar="ROOT", help="dataset root (layout: --layout)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder")
    p.add_argument("--model", default="l4p_vitg14", help="registered variant or save_pretrained folder")
    p.add_argument("--checkpoint", help="weights (released .ckpt or model.safetensors); none: random")
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda when available)")
    p.add_argument("--dtype", choices=tuple(_DTYPES), default="fp32", help="autocast precision")
    p.add_argument("--mode", choices=("default", "released"), default="default")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N items")
    p.add_argument("--only", metavar="A,B", help="only these items (comma-separated names)")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="protocol option (see --layout); repeatable")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="redo finished items")
    p.add_argument("--quiet", action="store_true", help="only warnings and errors")
    p.add_argument("--debug", action="store_true", help="debug logs (put it before 'bench' for tracebacks)")
    return p


def _options(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set needs KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _predictor_factory(args: argparse.Namespace):
    def make():
        import torch

        from l4p.api import load_model

        dtype = _DTYPES[args.dtype]
        return load_model(args.model, args.checkpoint, device=args.device,
                          dtype=getattr(torch, dtype) if dtype else None, mode=args.mode)  # fmt: skip

    return make


def list_text() -> str:
    """The ``--list`` text."""
    width = max(len(n) for n in PROTOCOLS)
    lines = [f"{p.name:<{width}}  {'[paper] ' if p.in_paper else ''}{p.summary}" for p in PROTOCOLS.values()]
    lines += [f"{t:<{width}}  Spring server layout tool (see l4p bench --help)" for t in SPRING_TOOLS]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``l4p bench`` (also callable on its own); returns the exit code."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.quiet or args.debug:
        logging.getLogger().setLevel(logging.DEBUG if args.debug else logging.WARNING)
    if args.list:
        sys.stdout.write(list_text())
        return 0
    if not args.name:
        raise UsageError("name a protocol (l4p bench --list) or pass --list")
    if args.name in SPRING_TOOLS:
        from l4p.bench.spring_server import run_tool

        if len(args.paths) != 2:
            raise UsageError(f"{args.name} needs two paths (see l4p bench --help)")
        return run_tool(args.name, Path(args.paths[0]), Path(args.paths[1]), _options(args.options))
    try:
        protocol = get_protocol(args.name)
    except KeyError as err:
        raise UsageError(str(err.args[0])) from None
    if args.layout:
        sys.stdout.write(protocol.doc() + "\n")
        return 0
    if args.paths:
        raise UsageError(f"unexpected arguments {args.paths}")
    if args.data is None or args.out is None:
        raise UsageError("--data ROOT and --out DIR are required")
    if not args.data.exists():
        raise FileNotFoundError(f"--data {args.data} does not exist")
    ctx = BenchContext(
        data=args.data, out=args.out, make_predictor=_predictor_factory(args), model=args.model,
        checkpoint=args.checkpoint, overwrite=args.overwrite, limit=args.limit,
        only=args.only.split(",") if args.only else None, options=_options(args.options),
        settings={"mode": args.mode, "dtype": args.dtype},
    )  # fmt: skip
    summary = protocol.load()(ctx)
    logger.info(
        "%s: %s", protocol.name, {k: v for k, v in summary["scores"].items() if not isinstance(v, dict)}
    )
    logger.info("results in %s", args.out)
    return 0
