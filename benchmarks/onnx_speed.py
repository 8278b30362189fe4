"""PyTorch eager vs onnxruntime on one window: time and peak RSS, side by side.

One window is `encode` + every dense head (depth, flow, motion, camera rays) on a
16 x 224 x 224 clip, batch 1, float32, CPU. Each configuration runs in its own process (so
its peak RSS, `ru_maxrss`, weights and runtime included, is its own): first the export
(random weights, seed 0; speed does not depend on them), then PyTorch and onnxruntime with
the same number of threads. `median s` is the median over `--repeats` timed windows after
`--warmup` untimed ones.

    python benchmarks/onnx_speed.py --models l4p_vits16 --repeats 3
    python benchmarks/onnx_speed.py --models l4p_vitg14 --warmup 0 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import (
    REPO_ROOT,
    fmt,
    machine_name,
    markdown_table,
    read_json,
    run_metadata,
    write_json,
)
from l4p.bench.io import write_text

DENSE = ("depth", "flow", "motion", "camera")


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def child(cfg: dict) -> dict:
    """Run one configuration in this process and return its record."""
    import torch

    torch.set_num_threads(cfg["threads"])
    t0 = time.perf_counter()
    if cfg["runtime"] == "export":
        from l4p.build import build_model
        from l4p.deploy import export_onnx

        torch.manual_seed(0)
        export_onnx(build_model(cfg["model"], tasks=DENSE).eval(), cfg["dir"], overwrite=True)
        size = sum(p.stat().st_size for p in Path(cfg["dir"]).iterdir())
        return {"export_s": time.perf_counter() - t0, "export_gb": size / 1e9, "peak_rss_gb": _peak_rss_gb()}
    if cfg["runtime"] == "torch":
        from l4p.build import build_model

        torch.manual_seed(0)
        model = build_model(cfg["model"], tasks=DENSE).eval()
    else:
        from l4p.deploy import OnnxL4P

        model = OnnxL4P(cfg["dir"], threads=cfg["threads"], low_memory=cfg.get("low_memory", False))
    load_s = time.perf_counter() - t0
    video = torch.randn(1, 3, *model.window)
    times = []
    with torch.inference_mode():
        for i in range(cfg["warmup"] + cfg["repeats"]):
            t = time.perf_counter()
            out = model.decode_dense(model.encode(video, tasks=DENSE), tasks=DENSE)
            assert out.depth is not None and out.camera_rays is not None
            if i >= cfg["warmup"]:
                times.append(time.perf_counter() - t)
    return {
        "load_s": load_s,
        "times_s": times,
        "median_s": statistics.median(times),
        "peak_rss_gb": _peak_rss_gb(),
    }


def measure(cfg: dict) -> dict:
    """Run `child(cfg)` in a fresh process."""
    before = os.getloadavg()[0]
    cmd = [sys.executable, "-m", "benchmarks.onnx_speed", "--child", json.dumps(cfg)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{cfg['model']} {cfg['runtime']} failed:\n{proc.stderr[-3000:]}")
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        **cfg,
        **record,
        "load_average_1min_before": before,
        "load_average_1min_after": os.getloadavg()[0],
    }


def table(records: Sequence[dict]) -> str:
    """Markdown table: one row per model and onnxruntime setting, PyTorch beside it."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in records):
        mine = [r for r in records if r["model"] == model]
        pt = next((r for r in mine if r["runtime"] == "torch"), {})
        ex = next((r for r in mine if r["runtime"] == "export"), {})
        for ox in [r for r in mine if r["runtime"] == "onnxruntime"] or [{}]:
            name = f"{model} (onnxruntime low_memory)" if ox.get("low_memory") else model
            speedup = pt["median_s"] / ox["median_s"] if ox.get("median_s") and pt.get("median_s") else None
            rows.append([
                name, fmt(pt.get("median_s")), fmt(ox.get("median_s")), fmt(speedup),
                fmt(pt.get("peak_rss_gb")), fmt(ox.get("peak_rss_gb")), fmt(ex.get("export_s"), digits=0),
                fmt(ex.get("export_gb")), len(ox.get("times_s", [])), fmt(ox.get("load_average_1min_before"), digits=1),
            ])  # fmt: skip
    headers = ["model", "PyTorch s", "onnxruntime s", "speed-up", "PyTorch peak RSS GB",
               "onnxruntime peak RSS GB", "export s", "ONNX GB", "timed runs", "load before ORT"]  # fmt: skip
    return markdown_table(headers, rows)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["l4p_vits16"], help="registered variants")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of both runtimes")
    p.add_argument(
        "--out", type=Path, help="result JSON (default benchmarks/results/<date>-<machine>-onnx-speed.json)"
    )
    p.add_argument("--merge", action="store_true", help="add to the records already in --out")
    p.add_argument(
        "--export-dir", type=Path, help="keep the exports in DIR/<model> (default: a temporary folder)"
    )
    p.add_argument("--runtimes", nargs="+", default=["export", "torch", "onnxruntime"],
                   choices=("export", "torch", "onnxruntime"), help="steps (without export: reuse --export-dir)")  # fmt: skip
    p.add_argument(
        "--low-memory", action="store_true", help="onnxruntime without weight pre-packing or arena"
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict | None:
    """Run the benchmark and write JSON + markdown."""
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return None
    import datetime as dt

    out = (
        args.out
        or REPO_ROOT / "benchmarks" / "results" / f"{dt.date.today()}-{machine_name()}-onnx-speed.json"
    )
    records = read_json(out)["records"] if args.merge and out.is_file() else []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            base = {"model": model, "threads": args.threads, "warmup": args.warmup, "repeats": args.repeats}
            folder = str((args.export_dir or Path(tmp)) / model)
            for runtime in args.runtimes:
                cfg = {**base, "runtime": runtime, "dir": folder}
                if runtime == "onnxruntime":
                    cfg["low_memory"] = args.low_memory
                same = ("model", "runtime", "low_memory")
                records = [r for r in records if any(r.get(k) != cfg.get(k) for k in same)]
                records.append(measure(cfg))
                print(json.dumps(records[-1]), file=sys.stderr)
    doc = {
        "meta": {**run_metadata(argv), "note": "shared machine: see the load averages"},
        "records": records,
    }
    write_json(out, doc)
    header = f"# PyTorch eager vs onnxruntime, one 16x224x224 window (encoder + 4 dense heads)\n\n- date: `{doc['meta']['date']}`\n- machine: `{doc['meta']['machine']}` (shared; load averages in the JSON)\n\n"
    write_text(out.with_suffix(".md"), header + table(records))
    return doc


if __name__ == "__main__":
    main()
