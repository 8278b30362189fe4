"""`l4p export onnx`: the command's arguments and what it does (registered by `l4p.cli`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger("l4p")

EXPORT_EPILOG = """writes DIR/: l4p_onnx.json (manifest), encoder.onnx, head_<task>.onnx per dense task,
tracking.onnx + history_mask_token.npy with tracks, <graph>.onnx.data beside graphs over 2 GB.
Run it with:  l4p.deploy.load_onnx(DIR).predict(video, tasks=...)
Contract (inputs, outputs, shapes, normalisation): README "Deploy: ONNX and onnxruntime"."""


def add_export_parser(sub, common: argparse.ArgumentParser) -> None:
    """Add `export` (with its `onnx` format) to the `l4p` subcommands."""
    e = sub.add_parser("export", parents=[common], help="export the network for deployment (ONNX)",
                       description="Export the single-window network for deployment.")  # fmt: skip
    formats = e.add_subparsers(dest="format", metavar="FORMAT", required=True)
    o = formats.add_parser("onnx", parents=[common], help="ONNX graphs for onnxruntime / TensorRT",
                           description="Export encoder, dense heads and tracking head to ONNX (dynamic batch).",
                           epilog=EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    o.add_argument("--model", default="l4p_vitg14", help="registered variant or a save_pretrained folder")
    o.add_argument("--checkpoint", type=Path, help="weights: the released .ckpt or model.safetensors")
    o.add_argument("--tasks", help="comma-separated tasks to export (default: every head of the model)")
    o.add_argument("--out", required=True, type=Path, metavar="DIR", help="export folder")
    o.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    o.add_argument("--overwrite", action="store_true", help="replace an existing export folder")
    o.add_argument(
        "--no-check", action="store_true", help="skip the onnxruntime check of the exported graphs"
    )
    e.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Export the model; with onnxruntime installed, check one window against PyTorch."""
    from l4p.cli_commands import UsageError, load_network, parse_tasks

    out: Path = args.out
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not args.overwrite)):
        raise UsageError(f"--out {out} exists and is not an empty folder; pass --overwrite to replace it")
    tasks = parse_tasks(args.tasks) if args.tasks else None
    model = load_network(args.model, args.checkpoint, tasks=tasks)
    from l4p.deploy.export import export_onnx

    export_onnx(model, out, tasks=tasks, opset=args.opset, overwrite=args.overwrite)
    if not args.no_check:
        from l4p.deploy.check import check_export

        worst = check_export(model, out)
        logger.info("onnxruntime vs PyTorch on one random window: largest difference %.2e", worst)
    return 0
