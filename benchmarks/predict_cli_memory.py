"""Peak memory and time of `l4p predict` against video length (streaming: memory should not grow).

Runs the `l4p predict` command in a fresh process per length on a synthetic mp4 and records
the process's peak RSS and wall time; writes JSON to `benchmarks/results/`.

::

    python benchmarks/predict_cli_memory.py --frames 32 128 --model l4p_test
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from l4p.data.video import write_video

CHILD = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
    "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def measure(frames: int, size: tuple[int, int], model: str, tasks: str, extra: list[str]) -> dict:
    """Predict a `frames`-long synthetic video with the CLI; peak RSS (MB) and seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (1, *size, 3))
        video = np.clip(base + np.arange(frames)[:, None, None, None], 0, 255).astype(np.uint8)
        path = write_video(Path(tmp) / "v.mp4", video, fps=10)
        command = [str(Path(sys.executable).with_name("l4p")), "predict", str(path), "--model", model,
                   "--tasks", tasks, "--out", str(Path(tmp) / "out"), "--device", "cpu", "--quiet", *extra]  # fmt: skip
        tic = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, *command], check=True, capture_output=True, text=True
        )
        seconds = time.perf_counter() - tic
    return {
        "frames": frames,
        "peak_rss_mb": round(int(out.stdout.strip()) / 1024, 1),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    """Measure every length and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--size", default="64x80", help="HxW")
    parser.add_argument("--model", default="l4p_test")
    parser.add_argument("--tasks", default="depth,flow,motion,camera")
    parser.add_argument("--no-viz", action="store_true")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    extra = ["--no-viz"] if args.no_viz else []
    rows = [measure(t, size, args.model, args.tasks, extra) for t in args.frames]  # type: ignore[arg-type]
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    result = {"date": str(date.today()), "machine": platform.processor() or platform.machine(), "load_avg": load,
              "model": args.model, "tasks": args.tasks, "size": args.size, "viz": not args.no_viz, "rows": rows}  # fmt: skip
    out = Path(__file__).parent / "results" / f"{date.today()}-predict-cli-memory-{args.size}.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
