"""Throughput of `l4p.data.synthetic.render_batch` (all ground truth), JSON on stdout.

Usage: python benchmarks/synthetic_speed.py [--device cpu] [--batch-size 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from l4p.data.synthetic import SceneConfig, render_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--height", type=int, default=224)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--tracks", type=int, default=64)
    parser.add_argument("--no-shading", action="store_true")
    args = parser.parse_args()

    config = SceneConfig(
        height=args.height,
        width=args.width,
        num_frames=args.frames,
        num_tracks=args.tracks,
        shading=not args.no_shading,
    )
    device = torch.device(args.device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    render_batch(config, list(range(args.batch_size)), device=device)  # warm-up
    sync()
    seconds = []
    for rep in range(args.repeats):
        seeds = [1000 + rep * args.batch_size + i for i in range(args.batch_size)]
        start = time.perf_counter()
        render_batch(config, seeds, device=device)
        sync()
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    result = {
        "benchmark": "synthetic_render_batch",
        "config": {
            "height": args.height,
            "width": args.width,
            "frames": args.frames,
            "tracks": args.tracks,
            "shading": config.shading,
            "num_objects": list(config.num_objects),
        },
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "batch_size": args.batch_size,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "seconds_per_batch": seconds,
        "median_seconds_per_batch": median,
        "clips_per_second": args.batch_size / median,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
