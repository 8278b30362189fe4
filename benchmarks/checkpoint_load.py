"""Load time and peak RAM of the full-size model from a released-format `.ckpt` and from our
safetensors folder.

The released checkpoint cannot be downloaded here, so a stand-in is written: random
float32 tensors for every key of the released manifest (shapes from
../shared/reference/l4p_official_state_dict.json; the 16 alias keys share storage with
their originals, as in the real file), wrapped like a Lightning checkpoint. Each load runs
in a fresh subprocess so that its peak RSS is its own.

    python benchmarks/checkpoint_load.py --workdir /tmp/l4p_ckpt --out benchmarks/results/<date>-checkpoint-load-cpu.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

MANIFEST = (
    Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "l4p_official_state_dict.json"
)


def write_standin(path: Path) -> None:
    """Write a random released-format checkpoint with the manifest's keys and shapes."""
    import torch

    keys = json.loads(MANIFEST.read_text())["keys"]
    gen = torch.Generator().manual_seed(0)
    sd: dict[str, torch.Tensor] = {}
    for name, info in keys.items():
        if info.get("alias_of"):
            continue
        sd[name] = torch.randn(info["shape"], generator=gen) * 0.02
    for name, info in keys.items():
        if info.get("alias_of"):
            sd[name] = sd[info["alias_of"]]
    missing = set(keys) - set(sd)
    if missing:
        raise RuntimeError(f"manifest keys not written: {sorted(missing)[:5]}")
    torch.save({"state_dict": sd, "epoch": 0, "global_step": 0, "hyper_parameters": {}}, path)


def measure(what: str, source: str) -> dict:
    """Child process: load, report seconds and peak RSS."""
    import resource

    import torch

    import l4p

    start = time.perf_counter()
    if what == "released":
        predictor = l4p.load_model("l4p_vitg14", checkpoint=source, device="cpu")
    else:
        predictor = l4p.load_model(source, device="cpu")
    seconds = time.perf_counter() - start
    n = sum(p.numel() for p in predictor.model.parameters())
    # Touch every weight once, as a first forward would, and report RSS after that too.
    total = sum(float(p.detach().float().sum()) for p in predictor.model.parameters())
    return {
        "what": what,
        "load_s": seconds,
        "peak_rss_gb_after_load": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "parameters": n,
        "weights_gb_fp32": n * 4 / 1024**3,
        "checksum_finite": bool(torch.isfinite(torch.tensor(total))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", default="/tmp/l4p_ckpt_bench")
    parser.add_argument("--out", default=None)
    parser.add_argument("--_child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        print(json.dumps(measure(*args._child)))
        return
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt, folder = work / "standin_released.ckpt", work / "standin_l4p"
    if not ckpt.exists():
        write_standin(ckpt)
    if not (folder / "model.safetensors").exists():
        cmd = "import l4p, sys; l4p.load_model('l4p_vitg14', checkpoint=sys.argv[1], device='cpu').save_pretrained(sys.argv[2])"
        subprocess.run([sys.executable, "-c", cmd, str(ckpt), str(folder)], check=True)
    records = []
    for what, source in (("released", ckpt), ("safetensors", folder)):
        out = subprocess.run(
            [sys.executable, __file__, "--_child", what, str(source)],
            check=True,
            capture_output=True,
            text=True,
        )
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        rec["file_gb"] = (
            sum(p.stat().st_size for p in ([source] if source.is_file() else source.iterdir())) / 1024**3
        )
        records.append(rec)
    meta = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
    }
    out_path = Path(
        args.out or Path(__file__).parent / "results" / f"{meta['date']}-checkpoint-load-cpu.json"
    )
    out_path.write_text(json.dumps({"meta": meta, "records": records}, indent=1))
    print("| format | file GB | load s | peak RSS GB (after touching all weights) | fp32 weights GB |")
    print("|---|---|---|---|---|")
    for r in records:
        print(
            f"| {r['what']} | {r['file_gb']:.2f} | {r['load_s']:.1f} | {r['peak_rss_gb_after_load']:.2f} | {r['weights_gb_fp32']:.2f} |"
        )


if __name__ == "__main__":
    main()
