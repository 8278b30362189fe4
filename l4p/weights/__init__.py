"""Weights that ship inside the package (no download): `l4p.load_model(name)` finds them here.

`l4p_synthetic_s.safetensors`: `l4p_synthetic_s` trained from scratch by `l4p fit --config
configs/synthetic_small.yaml` on `l4p.data.synthetic` scenes only (float16, Apache-2.0 like the
rest of the project; see the README's model card). For demos, tests and as a starting point;
it says nothing about accuracy on real video.
"""

from __future__ import annotations

from pathlib import Path

EMBEDDED: dict[str, str] = {"l4p_synthetic_s": "l4p_synthetic_s.safetensors"}


def embedded_weights(name: str) -> Path | None:
    """Path of the weights shipped for variant `name`, or None when it ships none.

    Raises:
        FileNotFoundError: The variant ships weights but the file is missing (a broken install).
    """
    if name not in EMBEDDED:
        return None
    path = Path(__file__).resolve().parent / EMBEDDED[name]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the l4p install lacks its shipped weights; reinstall l4p "
            "(pip install .) or pass checkpoint=..."
        )
    return path
