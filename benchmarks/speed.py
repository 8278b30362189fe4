"""Latency, frames per second and peak memory of the encoder or of full ``predict`` calls.

Each configuration (variant x tasks x T x device) runs in its own subprocess, so its peak
memory is its own: peak RSS of the process (``ru_maxrss``, weights included) and, on CUDA,
``torch.cuda.max_memory_allocated`` over the timed calls (weights included). Each
configuration does ``--warmup`` untimed calls, then ``--repeats`` timed ones; the median is
reported. CUDA runs under bf16 autocast by default (``--dtype auto``), CPU in float32.
Writes JSON and a markdown table to ``benchmarks/results/<date>-<machine>-speed-<what>.{json,md}``
(or ``--out``); the machine and date are also inside the files.

    python benchmarks/speed.py --what encoder --variants vit_g14 --frames 16 --repeats 3
    python benchmarks/speed.py --what predict --variants l4p_vitg14 --frames 16,48,96 \\
        --tasks depth,flow,motion,camera,tracks,all --device cuda
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import fmt, markdown_table, resolve_dtype, run_metadata, setup_logging, write_json  # noqa: E402

logger = logging.getLogger("benchmarks.speed")

ALL_TASKS = ("depth", "flow", "motion", "camera", "tracks")
RESULTS = Path(__file__).resolve().parent / "results"


def _peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def _timed(fn, *, warmup: int, repeats: int, device: str) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (CUDA synchronised)."""
    import torch

    cuda = device.startswith("cuda")
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def run_encoder(cfg: dict) -> dict:
    """One encoder forward per call on a (1, 3, T, size, size) clip, weights in the run dtype."""
    import torch

    from l4p.models.videomae import build_encoder

    torch_dtype = resolve_dtype(cfg["dtype"], cfg["device"]) or torch.float32
    enc = build_encoder(cfg["variant"]).eval().to(device=cfg["device"], dtype=torch_dtype)
    video = torch.randn(
        1, 3, cfg["frames"], cfg["size"], cfg["size"], device=cfg["device"], dtype=torch_dtype
    )
    with torch.inference_mode():
        return {
            "times_s": _timed(
                lambda: enc(video), warmup=cfg["warmup"], repeats=cfg["repeats"], device=cfg["device"]
            )
        }


def run_predict(cfg: dict) -> dict:
    """``predict`` on a random uint8 (T, H, W, 3) video: resize, windows, heads, outputs to CPU."""
    import numpy as np

    from l4p.api import load_model

    tasks = ALL_TASKS if cfg["tasks"] == "all" else tuple(cfg["tasks"].split("+"))
    dtype = resolve_dtype(cfg["dtype"], cfg["device"])
    # Cameras are stitched with the depth head in the default mode: build it too (the engine runs it for the cameras).
    heads = tuple(dict.fromkeys([*tasks, *(["depth"] if "camera" in tasks else [])]))
    predictor = load_model(
        cfg["variant"], cfg.get("checkpoint"), device=cfg["device"], dtype=dtype, tasks=heads
    )
    height, width = cfg["resolution"]
    video = np.random.default_rng(0).integers(0, 256, (cfg["frames"], height, width, 3), dtype=np.uint8)
    kwargs = {"grid_size": cfg["grid_size"]} if "tracks" in tasks else {}
    times = _timed(
        lambda: predictor.predict(video, tasks=tasks, **kwargs),
        warmup=cfg["warmup"],
        repeats=cfg["repeats"],
        device=cfg["device"],
    )
    return {
        "times_s": times,
        "heads": list(heads),
        "num_queries": cfg["grid_size"] ** 2 if "tracks" in tasks else 0,
    }


def child(cfg: dict) -> dict:
    """Run one configuration in this process and return its record."""
    import torch

    record = dict(cfg)
    record["load_average_1min_before"] = os.getloadavg()[0]
    record.update(run_encoder(cfg) if cfg["what"] == "encoder" else run_predict(cfg))
    record["median_s"] = statistics.median(record["times_s"])
    record["frames_per_s"] = cfg["frames"] / record["median_s"]
    record["threads"] = torch.get_num_threads()
    record["peak_rss_gb"] = _peak_rss_gb()
    if cfg["device"].startswith("cuda"):
        record["peak_cuda_gb"] = torch.cuda.max_memory_allocated() / 1024**3
        record["gpu"] = torch.cuda.get_device_name()
    return record


def _dtype_name(name: str, device: str) -> str:
    """``auto`` resolved: bf16 on CUDA, fp32 elsewhere."""
    if name != "auto":
        return name
    return "bf16" if device.startswith("cuda") else "fp32"


def configs(args: argparse.Namespace) -> list[dict]:
    """Every configuration to measure."""
    default_variant = "vit_g14" if args.what == "encoder" else "l4p_vitg14"
    height, width = (int(v) for v in args.resolution.lower().split("x"))
    base = {"what": args.what, "warmup": args.warmup, "repeats": args.repeats}
    base.update(
        size=args.size, resolution=[height, width], grid_size=args.grid_size, checkpoint=args.checkpoint
    )
    task_sets = ["-"] if args.what == "encoder" else args.tasks.split(",")
    return [
        {
            **base,
            "variant": v,
            "tasks": tasks,
            "frames": int(t),
            "device": dev,
            "dtype": _dtype_name(args.dtype, dev),
        }
        for dev in args.device.split(",")
        for v in (args.variants or default_variant).split(",")
        for tasks in task_sets
        for t in args.frames.split(",")
    ]


def measure(cfg: dict, timeout: float | None) -> dict:
    """Run ``cfg`` in a subprocess; a failure (e.g. out of memory) is recorded, not raised."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_one", json.dumps(cfg)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**cfg, "error": f"timed out after {timeout} s"}
    if proc.returncode != 0:
        logger.error("configuration %s failed:\n%s", cfg, proc.stderr[-2000:])
        return {**cfg, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(records: Sequence[dict]) -> str:
    """Markdown table of the records."""
    head = ["what", "variant", "tasks", "queries", "T", "input", "device", "dtype", "median s", "frames/s"]
    rows = []
    for r in records:
        shape = f"{r['size']}x{r['size']}" if r["what"] == "encoder" else "x".join(map(str, r["resolution"]))
        rows.append(
            [r["what"], r["variant"], r["tasks"], r.get("num_queries", "-"), r["frames"], shape, r["device"]]
            + [
                r["dtype"],
                fmt(r.get("median_s"), 1, 3),
                fmt(r.get("frames_per_s"), 1, 1),
                fmt(r.get("peak_rss_gb")),
            ]
            + [fmt(r.get("peak_cuda_gb")) if "peak_cuda_gb" in r else r.get("error", "-")]
        )
    return markdown_table([*head, "peak RSS GB", "peak CUDA GB / error"], rows)


def write_markdown(path: Path, doc: dict) -> Path:
    """The markdown report of a results document (``{"meta": ..., "records": [...]}``)."""
    meta, what = doc["meta"], doc["records"][0]["what"] if doc["records"] else "-"
    gpu = f", {meta['gpu']}" if "gpu" in meta else ""
    md = (
        f"# speed ({what})\n\n- date: `{meta['date']}`\n- machine: `{meta['machine']}` ({meta['processor']}, "
    )
    md += f"{meta['cpu_count']} CPUs{gpu}; 1-min load average {fmt(meta.get('load_average_1min'))})\n"
    md += f"- command: `{meta['command']}`\n\n" + table(doc["records"])
    path.write_text(md)
    return path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--what", choices=["encoder", "predict"], default="encoder")
    parser.add_argument("--variants", default=None, help="default: vit_g14 (encoder) / l4p_vitg14 (predict)")
    parser.add_argument("--frames", default="16", help="comma-separated T values, e.g. 16,48,96")
    parser.add_argument(
        "--tasks", default="all", help="predict: comma-separated configs; 'all' or a+b for sets"
    )
    parser.add_argument("--size", type=int, default=224, help="encoder: square clip side")
    parser.add_argument("--resolution", default="480x854", help="predict: input video HxW")
    parser.add_argument("--grid_size", type=int, default=16, help="predict: G x G track queries")
    parser.add_argument(
        "--checkpoint", default=None, help="predict: weights (default random; speed is the same)"
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="comma-separated, e.g. cpu,cuda")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--timeout", type=float, default=None, help="seconds per configuration")
    parser.add_argument("--out", default=None, help="JSON file to write (a .md table is written beside it)")
    parser.add_argument("--_one", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict | None:
    """Entry point; returns the written document (None in a child process)."""
    args = parse_args(argv)
    if args._one:  # child process: one configuration, its record as the last stdout line
        print(json.dumps(child(json.loads(args._one))))
        return None
    setup_logging()
    records = [measure(cfg, args.timeout) for cfg in tqdm(configs(args), desc="speed", unit="config")]
    meta = run_metadata(argv)
    stem = f"{dt.date.today().isoformat()}-{meta['machine']}-speed-{args.what}"
    out = Path(args.out) if args.out else RESULTS / f"{stem}.json"
    doc = {"meta": meta, "records": records}
    write_json(out, doc)
    md = write_markdown(out.with_suffix(".md"), doc)
    logger.info("wrote %s and %s\n%s", out, md, table(records))
    return doc


if __name__ == "__main__":
    main()
