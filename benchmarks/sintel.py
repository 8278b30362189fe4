"""MPI-Sintel benchmark: optical flow, video depth and camera poses on the training sequences.

Usage (from the repository root)::

    python benchmarks/sintel.py --data_root /data/MPI-Sintel-complete/training \\
        --depth_root /data/MPI-Sintel-depth-training-20150305/training \\
        --tasks flow,depth,camera --pass final --model l4p_vitg14 --checkpoint l4p.ckpt --out runs/sintel

``--data_root`` is the ``training`` folder (or its parent) holding ``clean/ final/ flow/
occlusions/ invalid/``; ``--depth_root`` the one holding ``depth/ camdata_left/`` (default: the
same). Each task runs where its folders exist. Written under ``--out``:
``per_sequence/<seq>.json`` (one entry per task and pass; a rerun computes only missing ones),
``summary.json`` and ``summary.md``.

Flow direction: ``predict`` returns BACKWARD flow (frame t -> t-1), Sintel's GT
``flow/<seq>/frame_K.flo`` is FORWARD (K -> K+1). The model is therefore run on the
time-reversed sequence r(j) = T-1-j: its backward flow at reversed frame j maps original frame
T-1-j to original frame T-j, i.e. it IS the forward flow of the pair i = T-1-j. Pair i is
scored against ``flow_rev[T-1-i]`` with no warping or approximation. Scores follow RAFT's
``validate_sintel`` (every pixel of every pair, pooled EPE, 1/3/5 px = fraction *below*), plus
EPE over non-occluded ("matched") and occluded ("unmatched") pixels when ``occlusions/`` exists.

Depth: DepthCrafter's protocol (``l4p.metrics.video_depth_metrics``): the prediction
(relative depth) is turned into disparity 1/depth, the first 50 frames, one scale and shift over
the whole sequence in inverse depth, GT capped at 70; AbsRel and δ1 per frame, mean over frames,
then over sequences. DepthCrafter uses the clean pass (``--depth_pass``). Cameras come from the
same forward run: ATE/RTE/RRE (``l4p.metrics.pose_metrics``, Sim(3) alignment) against
``camdata_left/*.cam``, and the relative focal-length error.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    ResultStore,
    add_model_args,
    check_run_config,
    fmt,
    load_predictor,
    markdown_table,
    run_metadata,
    setup_logging,
    write_summary,
)
from l4p.bench.flow_peers import REGIONS, flow_scores_of_sequence, pool_flow, sintel_report  # noqa: E402
from l4p.data.readers import SintelSequence  # noqa: E402
from l4p.metrics import (  # noqa: E402
    DEPTHCRAFTER_PROTOCOLS,
    VideoDepthScores,
    mean_over_sequences,
    pose_metrics,
    video_depth_metrics,
)

logger = logging.getLogger("benchmarks.sintel")

TASKS = ("flow", "depth", "camera")
__all__ = ["REGIONS", "flow_scores_of_sequence", "main", "pool_flow", "run"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_root", required=True, help="Sintel 'training' folder (or its parent)")
    parser.add_argument(
        "--depth_root", default=None, help="depth package 'training' folder (default: data_root)"
    )
    parser.add_argument("--tasks", default="flow,depth,camera", help="comma-separated: flow, depth, camera")
    parser.add_argument("--pass", dest="render_pass", default="clean", choices=("clean", "final"))
    parser.add_argument(
        "--depth_pass", default="clean", choices=("clean", "final"), help="images for depth/camera"
    )
    parser.add_argument("--sequences", default=None, help="comma-separated sequence names (default: all)")
    parser.add_argument("--max_sequences", type=int, default=None)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="redo sequences that are already done")
    parser.add_argument("--verbose", action="store_true")
    add_model_args(parser)
    return parser.parse_args(argv)


def training_root(path: str | Path) -> Path:
    """The ``training`` folder given it or its parent."""
    path = Path(path)
    return path / "training" if (path / "training").is_dir() else path


def list_sequences(root: Path, render_pass: str, names: str | None, limit: int | None) -> list[str]:
    """Sequence names of a pass, sorted (or the requested ones)."""
    present = sorted(p.name for p in (root / render_pass).iterdir() if p.is_dir())
    if names:
        wanted = names.split(",")
        missing = sorted(set(wanted) - set(present))
        if missing:
            raise FileNotFoundError(f"sequences {missing} are not in {root / render_pass}")
        present = wanted
    return present[:limit] if limit is not None else present


def depth_camera_of_sequence(predictor, seq: SintelSequence, tasks: Sequence[str]) -> dict[str, dict]:
    """Depth and/or camera scores from one forward run over the sequence."""
    n = len(seq)
    tasks = [
        t for t in tasks if all(seq.has("depth" if t == "depth" else "camdata_left", i) for i in range(n))
    ]
    if not tasks:
        return {}
    start = time.perf_counter()
    pred = predictor.predict(seq.frames(), tasks=tuple(tasks))
    seconds = time.perf_counter() - start
    out: dict[str, dict] = {}
    if "depth" in tasks:
        seq_len, max_depth = DEPTHCRAFTER_PROTOCOLS["sintel"]
        disparity = (1.0 / pred.depth[0].clamp_min(1e-6)).numpy().astype(np.float32)
        gt = np.stack([seq.depth(i) for i in range(n)])
        scores = video_depth_metrics(
            pred_disparity=disparity, gt_depth=gt, max_depth=max_depth, seq_len=seq_len
        )
        out["depth"] = {**dataclasses.asdict(scores), "predict_seconds": seconds}
    if "camera" in tasks:
        cams = [seq.camera(i) for i in range(n)]
        gt_k, gt_rt = np.stack([c[0] for c in cams]), np.stack([c[1] for c in cams])
        scores = pose_metrics(
            pred_poses=pred.extrinsics[0].double().numpy(), gt_poses=gt_rt, convention="w2c"
        )
        k = pred.intrinsics[0].double().numpy()
        f_pred, f_gt = (k[:, 0, 0] + k[:, 1, 1]) / 2, (gt_k[:, 0, 0] + gt_k[:, 1, 1]) / 2
        focal = float(np.mean(np.abs(f_pred - f_gt) / f_gt))
        out["camera"] = {**dataclasses.asdict(scores), "focal_rel_err": focal, "num_frames": n}
        out["camera"]["predict_seconds"] = seconds
    return out


def _depth_report(done: dict[str, dict]) -> tuple[dict, list, list]:
    fields = {f.name for f in dataclasses.fields(VideoDepthScores)}
    scores = {n: VideoDepthScores(**{k: v for k, v in r.items() if k in fields}) for n, r in done.items()}
    mean = mean_over_sequences(scores)
    head = ["sequence", "frames", "AbsRel", "δ1 %", "RMSE"]
    rows = [
        [n, s.num_frames, fmt(s.abs_rel, 1, 3), fmt(s.delta1, 100), fmt(s.rmse)] for n, s in scores.items()
    ]
    rows.append(["**mean**", "", fmt(mean["abs_rel"], 1, 3), fmt(mean["delta1"], 100), fmt(mean["rmse"])])
    return mean, head, rows


def _camera_report(done: dict[str, dict]) -> tuple[dict, list, list]:
    names = ("ate", "rte", "rre", "focal_rel_err")
    mean: dict = {k: float(np.mean([r[k] for r in done.values()])) for k in names}
    mean["num_sequences"] = len(done)
    head = ["sequence", "ATE", "RTE", "RRE °", "focal err %"]

    def row(name: str, r: dict) -> list:
        return [name, *(fmt(r[k], 100 if k == "focal_rel_err" else 1, 4) for k in names)]

    return mean, head, [*(row(n, r) for n, r in done.items()), row("**mean**", mean)]


def summarise(records: dict[str, dict], keys: dict[str, str]) -> tuple[dict, str]:
    """Dataset scores and a markdown report (one table per task, a row per sequence)."""
    reports = {"flow": sintel_report, "depth": _depth_report, "camera": _camera_report}
    summary: dict[str, dict] = {}
    parts = []
    for task, key in keys.items():
        done = {name: rec[key] for name, rec in records.items() if rec.get(key)}
        if not done:
            logger.warning("no sequence has scores for %s", key)
            continue
        summary[key], head, rows = reports[task](done)
        parts.append(f"## {key}\n\n" + markdown_table(head, rows))
    return summary, "\n".join(parts)


def run(args: argparse.Namespace) -> dict:
    """Evaluate every selected sequence and write the records and the summary."""
    root = training_root(args.data_root)
    depth_root = training_root(args.depth_root) if args.depth_root else root
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = set(tasks) - set(TASKS)
    if unknown:
        raise ValueError(f"unknown tasks {sorted(unknown)}; choose from {TASKS}")
    keys = {t: f"{t}_{args.render_pass if t == 'flow' else args.depth_pass}" for t in TASKS if t in tasks}
    names = list_sequences(root, args.render_pass, args.sequences, args.max_sequences)
    settings = {k: getattr(args, k) for k in ("model", "checkpoint", "mode", "dtype")}
    check_run_config(args.out, settings, overwrite=args.overwrite)
    store, predictor, records = ResultStore(Path(args.out) / "per_sequence"), None, {}
    for name in tqdm(names, desc="sintel", unit="seq"):
        record = (None if args.overwrite else store.load(name)) or {"sequence": name}
        todo = [t for t in tasks if keys[t] not in record]
        if todo and predictor is None:
            predictor = load_predictor(args, tasks=tasks)
        if "flow" in todo:
            seq = SintelSequence(root, name, render_pass=args.render_pass, depth_root=depth_root)
            record[keys["flow"]] = flow_scores_of_sequence(predictor, seq)
        dense = [t for t in todo if t != "flow"]
        if dense:
            seq = SintelSequence(root, name, render_pass=args.depth_pass, depth_root=depth_root)
            found = depth_camera_of_sequence(predictor, seq, dense)
            record.update({keys[t]: found.get(t) for t in dense})
        if todo:
            store.save(name, record)
        records[name] = record
    scores, table = summarise(records, keys)
    summary = {
        "meta": run_metadata(),
        "benchmark": "sintel",
        "model": {"name": args.model, "checkpoint": args.checkpoint},
        "sequences": names,
        "scores": scores,
    }
    write_summary(args.out, summary, table, title="MPI-Sintel (training set)")
    return summary


def main(argv: Sequence[str] | None = None) -> dict:
    """Entry point; returns the summary dict."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    return run(args)


if __name__ == "__main__":
    main()
