"""fp32 vs bf16 autocast on the CPU: time, peak RSS and output differences of one window, every task.

Each dtype runs in its own subprocess (its peak RSS is its own) on the same model (the same
seeded random weights, or ``--checkpoint``) and the same 16x224x224 synthetic clip, all five
tasks with a ``--grid`` x ``--grid`` query grid. The parent compares the outputs:
depth relative error, flow end-point error, motion probability, tracks in pixels, K, and the
rotation angle between the two runs' camera poses. It also records whether oneDNN is used for
bf16 convolutions (``ONEDNN_VERBOSE`` on a small Conv3d), since the DPT heads are 3D convs.

    python benchmarks/bf16_cpu.py --variant l4p_vitg14 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import markdown_table, run_metadata, write_json  # noqa: E402

TASKS = ("depth", "flow", "motion", "camera", "tracks")
RESULTS = Path(__file__).resolve().parent / "results"


def child(cfg: dict) -> dict:
    """Build the model, predict the clip ``repeats`` times in ``cfg['dtype']``, save the outputs."""
    import resource

    import numpy as np
    import torch

    import l4p
    from l4p.data.synthetic import SceneConfig, render_batch

    torch.manual_seed(0)
    dtype = torch.bfloat16 if cfg["dtype"] == "bf16" else None
    predictor = l4p.load_model(cfg["variant"], cfg.get("checkpoint"), device="cpu", dtype=dtype)
    scene = render_batch(SceneConfig(num_frames=16, height=224, width=224), seeds=[7], device="cpu")
    video = scene.rgb_btchw[0]  # (T, 3, H, W) in [0, 1]
    times = []
    for _ in range(cfg["repeats"]):
        start = time.perf_counter()
        pred = predictor.predict(video, tasks=TASKS, grid_size=cfg["grid"])
        times.append(time.perf_counter() - start)
    arrays = {k: v.numpy() for k, v in vars(pred).items() if isinstance(v, torch.Tensor)}
    np.savez(cfg["outputs"], **arrays)
    return {
        "dtype": cfg["dtype"],
        "times_s": times,
        "median_s": statistics.median(times),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "threads": torch.get_num_threads(),
        "load_average_1min_before": cfg["load_before"],
    }


def _rotation_angle_deg(a, b):
    import numpy as np

    rel = np.einsum("...ji,...jk->...ik", a[..., :3, :3], b[..., :3, :3])
    cos = np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def compare(fp32: Path, bf16: Path) -> dict:
    """Differences of every output, bf16 against fp32."""
    import numpy as np

    a, b = np.load(fp32), np.load(bf16)
    rel = np.abs(b["depth"] - a["depth"]) / np.abs(a["depth"]).clip(1e-12)
    epe = np.linalg.norm(b["flow"][:, 1:] - a["flow"][:, 1:], axis=2)
    track_px = np.linalg.norm(b["tracks"] - a["tracks"], axis=-1)
    track_px = track_px[np.isfinite(track_px)]
    angle = _rotation_angle_deg(a["extrinsics"], b["extrinsics"])
    return {
        "depth_rel_err_median": float(np.median(rel)),
        "depth_rel_err_max": float(rel.max()),
        "flow_epe_mean_px": float(epe.mean()),
        "flow_epe_max_px": float(epe.max()),
        "motion_prob_abs_err_max": float(np.abs(b["motion"] - a["motion"]).max()),
        "tracks_err_mean_px": float(track_px.mean()),
        "tracks_err_max_px": float(track_px.max()),
        "visibility_agreement": float((a["visibility"] == b["visibility"]).mean()),
        "intrinsics_abs_err_max_px": float(np.abs(b["intrinsics"] - a["intrinsics"]).max()),
        "rotation_err_max_deg": float(angle.max()),
    }


def onednn_conv3d_bf16() -> dict:
    """Run a bf16 Conv3d with ONEDNN_VERBOSE=1 in a subprocess; report the primitives it used."""
    code = (
        "import torch\n"
        "conv = torch.nn.Conv3d(64, 64, 3, padding=1)\n"
        "x = torch.randn(1, 64, 8, 32, 32)\n"
        "with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16):\n"
        "    conv(x)\n"
        "print('mkldnn_available', torch.backends.mkldnn.is_available())\n"
    )
    env = dict(os.environ, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    lines = [ln for ln in out.stdout.splitlines() if "exec" in ln and "convolution" in ln]
    return {
        "mkldnn_available": "mkldnn_available True" in out.stdout,
        "onednn_convolution_calls": len(lines),
        "bf16_convolution": any("bf16" in ln for ln in lines),
        "example": lines[0][:300] if lines else None,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="l4p_vitg14")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--grid", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        cfg = json.loads(args.child.read_text())
        Path(cfg["record"]).write_text(json.dumps(child(cfg)))
        return {}

    meta = run_metadata(argv)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("fp32", "bf16"):
            cfg = {
                "variant": args.variant,
                "checkpoint": args.checkpoint,
                "dtype": dtype,
                "repeats": args.repeats,
                "grid": args.grid,
                "outputs": f"{tmp}/{dtype}.npz",
                "record": f"{tmp}/{dtype}.json",
                "load_before": os.getloadavg()[0],
            }
            Path(f"{tmp}/{dtype}.cfg.json").write_text(json.dumps(cfg))
            subprocess.run([sys.executable, __file__, "--child", f"{tmp}/{dtype}.cfg.json"], check=True)
            runs[dtype] = json.loads(Path(cfg["record"]).read_text())
        diffs = compare(Path(f"{tmp}/fp32.npz"), Path(f"{tmp}/bf16.npz"))
    doc = {
        **meta,
        "variant": args.variant,
        "weights": args.checkpoint or "random (seed 0)",
        "clip": "synthetic scene seed 7, 16x224x224, one window, tasks " + ",".join(TASKS),
        "queries": args.grid**2,
        "runs": runs,
        "speedup_bf16": runs["fp32"]["median_s"] / runs["bf16"]["median_s"],
        "bf16_vs_fp32": diffs,
        "onednn": onednn_conv3d_bf16(),
    }
    stem = f"{meta['date'][:10]}-{meta['machine']}-bf16-cpu-{args.variant}"
    out = args.out or RESULTS / f"{stem}.json"
    write_json(out, doc)
    rows = [[d, f"{r['median_s']:.1f}", f"{r['peak_rss_gb']:.2f}"] for d, r in runs.items()]
    table = markdown_table(["dtype", "median s / window", "peak RSS GB"], rows)
    diff_rows = [[k, f"{v:.3g}"] for k, v in diffs.items()]
    text = table + "\n\n" + markdown_table(["bf16 vs fp32", "value"], diff_rows) + "\n"
    out.with_suffix(".md").write_text(text)
    print(text)
    return doc


if __name__ == "__main__":
    main()
