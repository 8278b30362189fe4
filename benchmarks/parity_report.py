"""Largest absolute and relative error of every output against the released code's fixture.

Runs the reduced-width released architecture (weights and outputs from
../shared/reference/parity) through our predictor's window engine in released mode and
prints a markdown table; `--out` writes JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

import l4p
from l4p.inference.engine import run_model

PARITY = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "parity"
TASKS = {
    "single": ("depth", "flow", "motion", "camera", "tracks"),
    "windowed": ("depth", "flow", "motion", "tracks"),
    "camray_windowed": ("camera",),
}


def ours_by_key(raw) -> dict[str, np.ndarray]:
    """Our outputs in the released layouts and key names."""
    out = {}
    if raw.depth is not None:
        out["depth_est_b1thw"] = raw.depth.numpy()[:, None]
    if raw.flow is not None:
        out["flow_2d_backward_est_b2thw"] = rearrange(raw.flow.numpy(), "b t c h w -> b c t h w")
    if raw.motion_logits is not None:
        out["dyn_mask_est_b1thw"] = raw.motion_logits.numpy()[:, None]
    if raw.cam_to_world is not None:
        out["traj3d_est_b16t"] = rearrange(raw.cam_to_world.numpy(), "b t i j -> b (i j) t")
        k = np.zeros((*raw.intrinsics.shape[:2], 4, 4), np.float32)
        k[..., :3, :3], k[..., 3, 3] = raw.intrinsics.numpy(), 1
        out["traj3d_intrinsics_est_b16t"] = rearrange(k, "b t i j -> b (i j) t")
    if raw.tracks is not None:
        out["track_2d_traj_est_bn2t"] = rearrange(raw.tracks.traj.numpy(), "b n t c -> b n c t")
        out["track_2d_vis_est_bn1t"] = raw.tracks.vis.numpy()[:, :, None]
        out["track_2d_depth_est_bn1t"] = raw.tracks.depth.numpy()[:, :, None]
    for w, rays in enumerate(raw.rays):
        out[f"debug_camray_rays_b6thw_w{w}"] = rays.numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    cfg = json.loads((PARITY / "config.json").read_text())
    w = cfg["widths"]
    predictor = l4p.load_model(
        "l4p_vitg14", checkpoint=PARITY / "state_dict.safetensors", device="cpu", mode="released",
        encoder_dim=w["encoder_embed_dim"], encoder_heads=w["encoder_num_heads"], dpt_feature_dim=w["dpt_feature_dim"],
        dpt_last_dim=w["dpt_last_dim"], dpt_layer_dims=tuple(w["dpt_layer_dims"]), tracker_mlp=w["sam_mlp_dim"],
        tracker_heads=w["sam_num_heads"],
    )  # fmt: skip
    rows = []
    for case_name, tasks in TASKS.items():
        case = dict(np.load(PARITY / f"{case_name}.npz"))
        k = rearrange(case["input_intrinsics_b44t"], "b i j t -> b t i j")[..., :3, :3].copy()
        queries = case.get("input_track_2d_pointquerries_bn3")
        with torch.inference_mode():
            raw = run_model(
                predictor.model, torch.from_numpy(case["input_rgb_b3thw"]), tasks=tasks,
                queries_bn3=None if queries is None else torch.from_numpy(queries),
                fallback_intrinsics_bt33=torch.from_numpy(k), mode="released",
            )  # fmt: skip
        for key, ours in ours_by_key(raw).items():
            ref_key = f"output_{key}" if f"output_{key}" in case else key
            if ref_key not in case:
                continue
            ref = case[ref_key]
            err = np.abs(ours - ref)
            tol_key = key if key in cfg["tolerances"]["per_key"] else key.rsplit("_w", 1)[0] + "_w*"
            atol = cfg["tolerances"]["per_key"][tol_key]["atol"]
            rel = err.max() / max(np.abs(ref).max(), 1e-12)
            rows.append(
                {
                    "case": case_name,
                    "output": key,
                    "max_abs": float(err.max()),
                    "max_rel": float(rel),
                    "atol": atol,
                }
            )
    print("| case | output | max abs error | max abs error / max abs value | tolerance |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['output']} | {r['max_abs']:.2e} | {r['max_rel']:.2e} | {r['atol']:g} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
