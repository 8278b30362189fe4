"""Our own saved format (`save_pretrained` folder) and building a model from any checkpoint.

A folder holds `config.json` (`{"name": <variant>, "overrides": {...}, "format": "l4p"}`)
and `model.safetensors` in our key names. Loading builds the model on the `meta` device and
takes the file's tensors directly (`assign=True`), so the weights exist once in memory.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from l4p.build import ALL_TASKS, build_model
from l4p.checkpoints.common import NotACheckpointError, load_state_dict_strict
from l4p.checkpoints.released import convert_released_l4p, is_released_l4p, released_tasks
from l4p.checkpoints.videomae import read_state_dict
from l4p.export.atomic import atomic_path, write_text_atomic
from l4p.models.l4p import L4P

logger = logging.getLogger(__name__)
CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
_OWN_PREFIXES = ("encoder.", "heads.", "tracker.")


def save_pretrained(model: L4P, directory: str | Path) -> Path:
    """Write `config.json` and `model.safetensors` for `model` into `directory`."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = getattr(model, "build_config", None)
    if not config:
        raise ValueError("model has no build config; build it with l4p.build_model(name, ...)")
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "l4p_variant": config["name"]})
    write_text_atomic(directory / CONFIG_NAME, json.dumps({**config, "format": "l4p"}, indent=1))
    return directory


def own_tasks(state_dict) -> tuple[str, ...]:
    """Tasks whose heads a state dict in our key names contains."""
    present = {k.split(".")[1] for k in state_dict if k.startswith("heads.")}
    tasks = [t for t in ALL_TASKS if t in present]
    if any(k.startswith("tracker.") for k in state_dict):
        tasks.append("tracks")
    return tuple(tasks)


def build_and_load(
    name_or_dir: str | Path,
    checkpoint: str | Path | None = None,
    *,
    tasks: Sequence[str] | None = None,
    **builder_overrides,
) -> L4P:
    """Build a variant (or a saved folder's variant) and load a checkpoint into it, strictly.

    Args:
        name_or_dir: Registered variant name or a `save_pretrained` folder.
        checkpoint: Released `.ckpt`, our `model.safetensors`, or None: the folder's weights,
            the weights shipped in the package for the variant (`l4p.weights`), else random.
        tasks: Heads to keep; default: every head the checkpoint has. Heads of the file that
            are not asked for are skipped; a head asked for but absent is an error.
        **builder_overrides: Keyword arguments of the variant's builder (e.g. widths).
    """
    overrides: dict = dict(builder_overrides)
    name = str(name_or_dir)
    folder = Path(name_or_dir)
    if folder.is_dir():
        config = json.loads((folder / CONFIG_NAME).read_text())
        name, overrides = config["name"], {**config.get("overrides", {}), **overrides}
        checkpoint = checkpoint or folder / WEIGHTS_NAME
    overrides.pop("tasks", None)
    if checkpoint is None:
        from l4p.weights import embedded_weights

        checkpoint = embedded_weights(name)  # weights shipped in the package (l4p_synthetic_s)
    if checkpoint is None:
        logger.warning(
            "no checkpoint given: %s has RANDOM weights. Load real ones with "
            "l4p.load_model('l4p_vitg14', checkpoint='l4p_depth_flow_2d3dtrack_camray_dynseg_v1.ckpt')",
            name,
        )
        return build_model(name, tasks=tuple(tasks or ALL_TASKS), **overrides)
    raw = read_state_dict(checkpoint)
    if is_released_l4p(raw):
        available, sd = released_tasks(raw), convert_released_l4p(raw)
    elif not any(k.startswith(_OWN_PREFIXES) for k in raw):
        raise NotACheckpointError(
            checkpoint, f"none of its {len(raw)} tensors has an L4P name, e.g. {next(iter(raw))!r}"
        )
    else:
        available, sd = own_tasks(raw), raw
    tasks = tuple(tasks or available)
    missing = [t for t in tasks if t not in available]
    if missing:
        raise ValueError(f"checkpoint {checkpoint} has no head for {missing}; it has {available}")
    sd = {k: v for k, v in sd.items() if _keep(k, tasks)}
    with torch.device("meta"):
        model = build_model(name, tasks=tasks, **overrides)
    load_state_dict_strict(model, sd, source=f"checkpoint {checkpoint}", assign=True)
    return model.float()


def _keep(key: str, tasks: Sequence[str]) -> bool:
    if key.startswith("heads."):
        return key.split(".")[1] in tasks
    if key.startswith("tracker."):
        return "tracks" in tasks
    return True
