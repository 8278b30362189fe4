"""Cost of the full-size tracking head per window and per query (random weights).

The encoder cost is shared with the dense heads (see speed.py); this measures what
tracking adds: the `l4p_vitg14` tracking head on one window of 2048 tokens x 1408 channels,
for several query counts, plus the encoder-free cost of carrying the memory to the next
window. Prints a markdown table; `--out` writes JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from l4p.heads.tracking.driver import run_windows
from l4p.heads.tracking.head import TrackingHead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", default="1,8,32")
    parser.add_argument(
        "--windows", type=int, default=2, help="windows per run (memory carried between them)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    head = TrackingHead().eval().to(args.device)  # released widths: 1408, 8 heads, MLP 2048
    tokens = [torch.randn(1, 2048, 1408, device=args.device) for _ in range(args.windows)]
    starts = [8 * w for w in range(args.windows)]
    num_frames = starts[-1] + 16
    rows = []
    for n in (int(q) for q in args.queries.split(",")):
        queries = torch.stack([torch.full((n,), 0.5), torch.rand(n) * 224, torch.rand(n) * 224], dim=-1)[
            None
        ].to(args.device)
        times = []
        with torch.inference_mode():
            for _ in range(args.repeats):
                start = time.perf_counter()
                run_windows(head, tokens, queries, window_starts=starts, num_frames=num_frames)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        med = statistics.median(times)
        rows.append({"queries": n, "windows": args.windows, "median_s": med, "per_window_s": med / args.windows,
                     "per_window_per_query_s": med / args.windows / n, "times_s": times})  # fmt: skip
    meta = {"date": dt.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
            "device": args.device, "threads": torch.get_num_threads()}  # fmt: skip
    print("| queries | s per window | s per window per query |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['queries']} | {r['per_window_s']:.2f} | {r['per_window_per_query_s']:.3f} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "records": rows}, indent=1))


if __name__ == "__main__":
    main()
