"""Peak memory and throughput on long videos: streaming to disk vs the old in-memory predict.

Measures the library function behind `l4p predict` on long videos,
`l4p.stream_to_disk` (decode-free: frames are generated on the fly, 480 x 854, a smooth
pattern drifting over a noise texture), against the pre-streaming in-memory `predict` run
from a `git worktree` of an older commit (`--old-tree`, e.g. made with
`git worktree add /tmp/l4p_old 4005a99`), which needs the whole video as one array.

Every run is its own subprocess; its peak RSS is `VmHWM` of that process (weights included);
throughput is frames finished per second of wall time. `--time-limit` stops a run after that
many seconds: the stream's store then tells how many frames were finished, and peak RSS and
throughput refer to those frames (the run is marked `stopped`). An old-path run whose video
would not fit in `--max-old-gb` of RAM (uint8 frames plus the float copies the old path
makes and the full-resolution outputs, about 31 bytes per pixel) is skipped and marked so.

    python benchmarks/long_video.py --runs l4p_test:250,l4p_test:2500:600,l4p_test:10000:420 \\
        --runs l4p_vits16:250:600,l4p_vits16:2500:300 --old-tree /tmp/l4p_old \\
        --old-runs l4p_test:250,l4p_test:2500,l4p_vits16:250:600 --time-limit 900
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO_ROOT, fmt, markdown_table, run_metadata, write_json  # noqa: E402

logger = logging.getLogger("benchmarks.long_video")
HEIGHT, WIDTH = 480, 854
TASKS = ("depth", "flow", "motion", "camera", "tracks")
GRID = 10

CHILD = """
import json, sys, time, numpy as np, torch
import l4p
kind, variant, frames, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
h, w = {h}, {w}
torch.manual_seed(0)
model = l4p.load_model(variant, device="cpu")
rng = np.random.default_rng(0)
texture = rng.integers(0, 256, size=(h, w + 2 * frames // 4 + 8, 3), dtype=np.uint8)
def frame(i):
    x = (i // 4) % (texture.shape[1] - w)
    return np.ascontiguousarray(texture[:, x : x + w])
tasks = {tasks}
start = time.perf_counter()
if kind == "stream":
    l4p.stream_to_disk(model, (frame(i) for i in range(frames)), out, tasks, grid_size={grid}, resume=False)
else:
    video = np.stack([frame(i) for i in range(frames)])
    pred = model.predict(video, tasks, grid_size={grid})
    pred.save(out)
print("SECONDS", time.perf_counter() - start)
"""


def _peak_rss_gb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        return None
    return None


def run_one(kind: str, variant: str, frames: int, tree: Path, time_limit: float) -> dict:
    """Run one configuration in a subprocess and measure it."""
    out = Path(tempfile.mkdtemp(prefix="l4p_long_")) / ("pred" if kind == "stream" else "pred.npz")
    code = CHILD.format(h=HEIGHT, w=WIDTH, tasks=TASKS, grid=GRID)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, kind, variant, str(frames), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    peak, stopped = 0.0, False
    while proc.poll() is None:
        peak = max(peak, _peak_rss_gb(proc.pid) or 0.0)
        if time.perf_counter() - start > time_limit:
            peak = max(peak, _peak_rss_gb(proc.pid) or 0.0)
            proc.kill()
            stopped = True
            break
        time.sleep(0.5)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    done = frames
    if stopped:
        done = 0
        meta = out / "zarr.json"
        if kind == "stream" and meta.exists():
            done = int(json.loads(meta.read_text())["attributes"].get("frames", 0))
    elif proc.returncode != 0:
        logger.error("%s %s %d failed: %s", kind, variant, frames, stderr[-2000:])
    seconds = next((float(x.split()[1]) for x in stdout.splitlines() if x.startswith("SECONDS")), wall)
    return {
        "path": kind, "model": variant, "frames": frames, "frames_done": done, "stopped": stopped,
        "returncode": proc.returncode, "peak_rss_gb": round(peak, 3), "seconds": round(seconds, 1),
        "fps": round(done / seconds, 3) if done else None, "loadavg_before": load_before,
        "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Run the configurations and write JSON and a markdown table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", action="append", default=[], help="variant:frames[:seconds][,...] for the stream"
    )
    parser.add_argument("--old-tree", type=Path, default=None, help="worktree of the pre-streaming code")
    parser.add_argument(
        "--old-runs", action="append", default=[], help="variant:frames[:seconds] for the old path"
    )
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--max-old-gb", type=float, default=12.0, help="skip old-path runs needing more RAM")
    parser.add_argument("--old-first", action="store_true", help="run the old path's configurations first")
    parser.add_argument(
        "--merge", type=Path, default=None, help="JSON list of results of an earlier invocation"
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = json.loads(args.merge.read_text()) if args.merge else []
    stream_specs = [s for s in ",".join(args.runs).split(",") if s]
    old_specs = [s for s in ",".join(args.old_runs).split(",") if s] if args.old_tree else []
    jobs = [("stream", s) for s in stream_specs] + [("in-memory", s) for s in old_specs]
    if args.old_first:
        jobs = [("in-memory", s) for s in old_specs] + [("stream", s) for s in stream_specs]
    for kind, spec in jobs:
        variant, frames, limit = (spec + ":").split(":")[:3]
        need = int(frames) * HEIGHT * WIDTH * 31 / 2**30
        if kind == "in-memory" and need > args.max_old_gb:
            results.append(
                {"path": kind, "model": variant, "frames": int(frames), "skipped": f"needs ~{need:.0f} GB"}
            )
        else:
            tree = REPO_ROOT if kind == "stream" else args.old_tree
            results.append(run_one(kind, variant, int(frames), tree, float(limit or args.time_limit)))
        logger.info("%s", json.dumps(results[-1]))
    stamp = dt.date.today().isoformat()
    meta = run_metadata(argv)
    write_json(args.out / f"{stamp}-long-video.json", {"meta": meta, "size": [HEIGHT, WIDTH], "tasks": TASKS,
                                                       "grid": GRID, "results": results})  # fmt: skip
    rows = [
        [r["path"], r["model"], r["frames"], r.get("frames_done", "-"), fmt(r.get("peak_rss_gb")),
         fmt(r.get("fps"), digits=3), r.get("skipped") or ("stopped at time limit" if r.get("stopped") else "")]
        for r in results
    ]  # fmt: skip
    table = markdown_table(["path", "model", "T", "frames done", "peak RSS (GB)", "frames/s", "note"], rows)
    (args.out / f"{stamp}-long-video.md").write_text(table + "\n")
    print(table)  # noqa: T201


if __name__ == "__main__":
    main()
