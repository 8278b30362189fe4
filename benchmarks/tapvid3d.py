"""TAPVid-3D benchmark: predict 3D tracks, save them in the official layout, score them.

Usage (from the repository root)::

    # run the model, then score (resumable: done videos are skipped)
    python benchmarks/tapvid3d.py --data_root /data/tapvid3d --split minival \\
        --subset adt,pstudio,drivetrack --model l4p_vitg14 --checkpoint l4p.ckpt --out runs/tv3d
    # score an existing predictions folder (<pred_dir>/<subset>/<file>.npz)
    python benchmarks/tapvid3d.py --data_root /data/tapvid3d --predictions preds/ --out runs/tv3d_eval

Layout: ``<data_root>/<subset>/<file>.npz`` (ground truth, official keys). Written under
``--out``: ``predictions/<subset>/<file>.npz`` (``tracks_XYZ`` (T, N, 3), ``visibility`` (T, N);
the official evaluator reads this folder as ``--tapvid3d_predictions``),
``per_video/<subset>/<file>.json``, ``summary.json`` and ``summary.md``.

Splits: the official ``MINIVAL_FILES`` / ``FULL_EVAL_FILES`` lists (tapnet
``tapvid3d/splits/tapvid3d_splits.py``) cannot be downloaded here. ``--split`` therefore scores
the ``.npz`` files present in ``<data_root>/<subset>/`` (put only the split's files there), or
those named in ``--file_list`` (one per line, ``<subset>/<file>.npz`` or ``<file>.npz``; ``#``
starts a comment). The official counts (minival 50/50/50, full_eval 1906/106/2407 for
adt/pstudio/drivetrack) are checked and a warning says when they differ.

Pixel convention: TAPVid-3D pixel coordinates (``queries_xyt`` and the principal point of
``fx_fy_cx_cy``) follow tapnet's raster convention, (0, 0) at the top-left *corner* of the image,
pixel centres at ``k + 0.5`` (the ADT pinhole puts ``cx = cy = 256`` on 512-pixel frames, the
exact image centre in that convention). ``l4p`` puts integers at pixel centres, so both the
query (x, y) and (cx, cy) are shifted by ``-0.5`` (``--pixel_offset``) before ``predict``;
shifting both keeps the unprojection ``K⁻¹·[x, y, 1]`` of every predicted point identical to
the one in TAPVid-3D coordinates. Query times (stored as floats) are rounded to frames.

Scoring: ``l4p.metrics`` (the official ``compute_tapvid3d_metrics`` and driver): per video, mean
over the videos of a subset, unweighted mean over subsets. A missing or unreadable prediction
scores 0 and counts, as in the official driver.
"""

from __future__ import annotations

import argparse
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
from l4p.bench.tracking3d import model_inputs  # noqa: E402
from l4p.bench.tracking3d import predict_tracks as bench_predict_tracks  # noqa: E402
from l4p.data.readers import (  # noqa: E402
    TapVid3DSample,
    load_tapvid3d_npz,
    load_tapvid3d_prediction,
    save_tapvid3d_prediction,
)
from l4p.metrics import average_over_subsets, evaluate_tapvid3d_video, mean_over  # noqa: E402
from l4p.metrics.tapvid3d_eval import zero_metrics  # noqa: E402

logger = logging.getLogger("benchmarks.tapvid3d")

SUBSETS = ("adt", "pstudio", "drivetrack")
__all__ = ["main", "model_inputs", "predict_tracks", "read_file_list", "run", "select_files"]
OFFICIAL_COUNTS = {
    "minival": {"adt": 50, "pstudio": 50, "drivetrack": 50},
    "full_eval": {"adt": 1906, "pstudio": 106, "drivetrack": 2407},
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_root", required=True, help="folder holding adt/ pstudio/ drivetrack/")
    parser.add_argument("--split", default="minival", choices=("minival", "full_eval", "all"))
    parser.add_argument("--subset", default=",".join(SUBSETS), help="comma-separated subsets")
    parser.add_argument("--file_list", default=None, help="text file naming the videos to score")
    parser.add_argument("--max_videos", type=int, default=None, help="first N videos of each subset")
    parser.add_argument(
        "--predictions", default=None, help="score this predictions folder instead of a model"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--scalings", default="median", help="comma-separated scaling modes")
    parser.add_argument(
        "--reproduce_official_failures",
        action="store_true",
        help="score per_trajectory/local_neighborhood 0, as the official driver does",
    )
    parser.add_argument(
        "--pixel_offset", type=float, default=0.5, help="TAPVid-3D minus l4p pixel coordinates"
    )
    parser.add_argument("--direction", default="both", choices=("both", "forward"))
    parser.add_argument("--overwrite", action="store_true", help="redo videos that are already done")
    parser.add_argument("--verbose", action="store_true")
    add_model_args(parser)
    return parser.parse_args(argv)


def read_file_list(path: str | Path) -> list[str]:
    """Entries of a file list: ``<subset>/<file>.npz`` or ``<file>.npz``, comments and blanks dropped."""
    lines = (line.split("#", 1)[0].strip() for line in Path(path).read_text().splitlines())
    return [line for line in lines if line]


def select_files(
    data_root: Path, subset: str, *, split: str, file_list: Sequence[str] | None, max_videos: int | None
) -> list[str]:
    """File names of one subset to score, sorted (see the module docstring for the rules)."""
    folder = data_root / subset
    present = sorted(p.name for p in folder.glob("*.npz"))
    if file_list is None:
        names = present
        expected = OFFICIAL_COUNTS.get(split, {}).get(subset)
        if expected is not None and len(names) != expected and max_videos is None:
            logger.warning(
                "%s: %d files present, the official %s split has %d; the scores cover the present files only",
                subset, len(names), split, expected,
            )  # fmt: skip
    else:
        names = []
        for entry in file_list:
            sub, _, name = entry.rpartition("/")
            if sub in ("", subset) and (sub == subset or name in present):
                names.append(name)
        missing = sorted(set(names) - set(present))
        if missing:
            raise FileNotFoundError(f"{folder}: {len(missing)} listed files are absent, e.g. {missing[:3]}")
    if not names:
        logger.warning("%s: no video to score in %s", subset, folder)
    return names[:max_videos] if max_videos is not None else names


def predict_tracks(predictor, sample: TapVid3DSample, *, pixel_offset: float, direction: str):
    """Run the model on one video; returns ``tracks_XYZ`` (T, N, 3) and ``visibility`` (T, N)."""
    pred = bench_predict_tracks(predictor, sample, pixel_offset=pixel_offset, direction=direction)
    tracks = pred.tracks_3d[0].double().numpy()
    if not np.isfinite(tracks).all():
        logger.warning("%d non-finite predicted coordinates", int((~np.isfinite(tracks)).sum()))
    return tracks, pred.visibility[0].numpy().astype(bool)


def _file_stamp(path: Path) -> list[int] | None:
    return [path.stat().st_mtime_ns, path.stat().st_size] if path.is_file() else None


def evaluate_video(args: argparse.Namespace, predictor, subset: str, name: str, pred_path: Path) -> dict:
    """Predict (model mode, unless the prediction file exists) and score one video."""
    scalings = args.scalings.split(",")
    gt = load_tapvid3d_npz(Path(args.data_root) / subset / name)
    record: dict = {"subset": subset, "file": name, "num_frames": gt.num_frames}
    record["num_tracks"], record["image_size"] = int(gt.queries_xyt.shape[0]), list(gt.image_size())
    if predictor is not None and (args.overwrite or not pred_path.is_file()):
        start = time.perf_counter()
        tracks, vis = predict_tracks(predictor, gt, pixel_offset=args.pixel_offset, direction=args.direction)
        record["predict_seconds"] = time.perf_counter() - start
        pred_path.parent.mkdir(parents=True, exist_ok=True)
        save_tapvid3d_prediction(pred_path, tracks_xyz=tracks, visibility=vis)
    try:
        tracks, vis = load_tapvid3d_prediction(pred_path)
    except (OSError, KeyError, ValueError) as err:
        logger.error("%s/%s: prediction unreadable (%s): it scores 0, as officially", subset, name, err)
        record["missing_prediction"] = True
        record["scores"] = {s: zero_metrics() for s in scalings}
        return record
    record["prediction"], record["prediction_stamp"] = str(pred_path), _file_stamp(pred_path)
    record["scores"] = evaluate_tapvid3d_video(
        gt=gt,
        pred_tracks_xyz=tracks,
        pred_visibility=vis,
        scalings=scalings,
        reproduce_official_failures=args.reproduce_official_failures,
    )
    return record


def is_done(record: dict | None, scalings: Sequence[str], pred_path: Path) -> bool:
    """Whether a stored record holds every scaling and was made from the current prediction file."""
    if record is None or record.get("missing_prediction"):
        return False
    return all(s in record.get("scores", {}) for s in scalings) and record.get(
        "prediction_stamp"
    ) == _file_stamp(pred_path)


def summary_table(per_subset: dict, overall: dict | None, scalings: Sequence[str]) -> str:
    """Markdown: one table per scaling, rows = subsets and the overall mean, scores ×100."""
    parts = []
    for scaling in scalings:
        rows = [
            [sub, info["num_videos"], *(fmt(info["scores"][scaling][k], 100) for k in _COLUMNS)]
            for sub, info in per_subset.items()
        ]
        if overall is not None:
            rows.append(["**mean over subsets**", "", *(fmt(overall[scaling][k], 100) for k in _COLUMNS)])
        parts.append(
            f"scaling `{scaling}` (×100)\n\n" + markdown_table(["subset", "videos", *_HEADERS], rows)
        )
    return "\n".join(parts)


_COLUMNS = ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")
_HEADERS = ("3D-AJ", "APD3D", "OA")


def run(args: argparse.Namespace) -> dict:
    """Evaluate every selected video and write the records and the summary; returns the summary."""
    out, data_root = Path(args.out), Path(args.data_root)
    scalings = args.scalings.split(",")
    subsets = [s for s in args.subset.split(",") if s]
    file_list = read_file_list(args.file_list) if args.file_list else None
    jobs = [
        (sub, name)
        for sub in subsets
        for name in select_files(
            data_root, sub, split=args.split, file_list=file_list, max_videos=args.max_videos
        )
    ]
    pred_root = Path(args.predictions) if args.predictions else out / "predictions"
    settings = ("model", "checkpoint", "mode", "dtype", "pixel_offset", "direction", "predictions")
    check_run_config(out, {k: getattr(args, k) for k in settings}, overwrite=args.overwrite)
    store = ResultStore(out / "per_video")
    predictor = None
    records: dict[str, list[dict]] = {sub: [] for sub in subsets}
    for sub, name in tqdm(jobs, desc="tapvid3d", unit="video"):
        key, pred_path = f"{sub}/{Path(name).stem}", pred_root / sub / name
        record = None if args.overwrite else store.load(key)
        if not is_done(record, scalings, pred_path):
            if args.predictions is None and predictor is None:
                predictor = load_predictor(args, tasks=("tracks",))
            record = evaluate_video(args, predictor, sub, name, pred_path)
            store.save(key, record)
        else:
            logger.debug("%s done, skipped", key)
        records[sub].append(record)
    per_subset = {
        sub: {
            "num_videos": len(recs),
            "scores": {s: mean_over([r["scores"][s] for r in recs]) for s in scalings},
        }
        for sub, recs in records.items()
        if recs
    }
    overall = average_over_subsets({k: v["scores"] for k, v in per_subset.items()}) if per_subset else None
    summary = {
        "meta": run_metadata(),
        "benchmark": "tapvid3d",
        "split": args.split if file_list is None else f"{args.split} (from {args.file_list})",
        "model": None if args.predictions else {"name": args.model, "checkpoint": args.checkpoint},
        "predictions": str(pred_root),
        "pixel_offset": args.pixel_offset,
        "subsets": per_subset,
        "overall": overall,
        "all_subsets": set(per_subset) == set(SUBSETS),
    }
    write_summary(out, summary, summary_table(per_subset, overall, scalings), title="TAPVid-3D")
    return summary


def main(argv: Sequence[str] | None = None) -> dict:
    """Entry point; returns the summary dict."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    return run(args)


if __name__ == "__main__":
    main()
