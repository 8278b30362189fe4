"""Filters for pretrained video encoders: VideoMAEv2 `.pth`, Hugging Face VideoMAE, released L4P.

Each `convert_*` function takes a foreign state dict and returns one in the key names of
`l4p.models.videomae.VideoMAEEncoder`. `load_encoder_weights` reads a file or folder,
detects its format, converts it and loads it strictly.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch

from l4p.checkpoints.common import NotACheckpointError, load_state_dict_strict, rename_keys
from l4p.models.videomae import VideoMAEEncoder

logger = logging.getLogger(__name__)

RELEASED_ENCODER_PREFIX = "l4p_model.video_encoder."
EncoderFormat = Literal["auto", "videomaev2", "hf", "released"]

# Keys of VideoMAE/VideoMAEv2 files that the encoder does not use.
_VIDEOMAE_SKIP = re.compile(r"^(decoder\.|encoder_to_decoder\.|mask_token|fc_norm\.|head\.|pos_embed$)")
_VIDEOMAE_RULES = [(r"\.gamma_1$", ".ls1.gamma"), (r"\.gamma_2$", ".ls2.gamma")]


def unwrap_state_dict(obj: Mapping) -> dict[str, torch.Tensor]:
    """Return the tensor dict inside a checkpoint (`state_dict`, `model` or `module` wrappers)."""
    for key in ("state_dict", "model", "module"):
        if key in obj and isinstance(obj[key], Mapping):
            return unwrap_state_dict(obj[key])
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def convert_videomaev2(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """VideoMAE/VideoMAEv2 checkpoint as OpenGVLab publishes it -> our encoder keys.

    Handles DDP `module.` prefixes, pretraining files (encoder under `encoder.`, decoder
    keys skipped), fine-tuned files (`fc_norm`, `head` skipped) and layer scale
    (`gamma_1`/`gamma_2`).
    """
    sd = {re.sub(r"^module\.", "", k): v for k, v in state_dict.items()}
    if any(k.startswith("encoder.") for k in sd):
        sd = {k[len("encoder.") :]: v for k, v in sd.items() if k.startswith("encoder.")}
    skipped = sorted(k for k in sd if _VIDEOMAE_SKIP.match(k))
    if skipped:
        logger.info(
            "VideoMAE checkpoint: skipping %d keys not used by the encoder: %s", len(skipped), skipped[:8]
        )
    return rename_keys({k: v for k, v in sd.items() if not _VIDEOMAE_SKIP.match(k)}, _VIDEOMAE_RULES)


def convert_hf_videomae(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hugging Face `transformers` VideoMAE weights -> our encoder keys.

    Works for `VideoMAEModel` and for task models (`videomae.` prefix; `classifier`,
    `fc_norm` and decoder keys skipped). Separate `query/key/value` weights are stacked
    into one qkv weight; q/v biases come from `query.bias`/`value.bias` (transformers
    >= 5) or `q_bias`/`v_bias` (older versions).
    """
    sd = {re.sub(r"^videomae\.", "", k): v for k, v in state_dict.items()}
    out: dict[str, torch.Tensor] = {}
    per_layer: dict[int, dict[str, torch.Tensor]] = {}
    simple = {
        "embeddings.patch_embeddings.projection.": "patch_embed.proj.",
        "layernorm.": "norm.",
    }
    layer_map = {
        "attention.output.dense.": "attn.proj.",
        "intermediate.dense.": "mlp.fc1.",
        "output.dense.": "mlp.fc2.",
        "layernorm_before.": "norm1.",
        "layernorm_after.": "norm2.",
        "lambda_1": "ls1.gamma",
        "lambda_2": "ls2.gamma",
    }
    for key, value in sd.items():
        m = re.match(r"^encoder\.layer\.(\d+)\.(.*)$", key)
        if m is None:
            for src, dst in simple.items():
                if key.startswith(src):
                    out[dst + key[len(src) :]] = value
            continue
        idx, rest = int(m.group(1)), m.group(2)
        if rest.startswith("attention.attention."):
            per_layer.setdefault(idx, {})[rest[len("attention.attention.") :]] = value
            continue
        for src, dst in layer_map.items():
            if rest.startswith(src):
                out[f"blocks.{idx}.{dst}{rest[len(src) :]}"] = value
                break
        else:
            out[f"blocks.{idx}.{rest}"] = value  # unknown: reported as unexpected by the strict load
    for idx, parts in per_layer.items():
        out[f"blocks.{idx}.attn.qkv.weight"] = torch.cat(
            [parts.pop(f"{n}.weight") for n in ("query", "key", "value")]
        )
        q_bias = parts.pop("query.bias", parts.pop("q_bias", None))
        v_bias = parts.pop("value.bias", parts.pop("v_bias", None))
        if q_bias is not None and v_bias is not None:
            out[f"blocks.{idx}.attn.q_bias"] = q_bias
            out[f"blocks.{idx}.attn.v_bias"] = v_bias
        out.update({f"blocks.{idx}.attn.{k}": v for k, v in parts.items()})
    return out


def convert_released_encoder(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Encoder part of the released L4P checkpoint (`l4p_model.video_encoder.*`) -> our keys.

    Our encoder uses the same names as the release below that prefix.
    """
    sd = unwrap_state_dict(state_dict)
    return {
        k[len(RELEASED_ENCODER_PREFIX) :]: v for k, v in sd.items() if k.startswith(RELEASED_ENCODER_PREFIX)
    }


def encoder_from_hf_config(config: Mapping) -> VideoMAEEncoder:
    """Build an encoder with the architecture of a Hugging Face VideoMAE `config.json`."""
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"only GELU VideoMAE models are supported, got hidden_act={config['hidden_act']!r}")
    size = config.get("image_size", 224)
    return VideoMAEEncoder(
        dim=config["hidden_size"],
        depth=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        mlp_hidden_dim=config["intermediate_size"],
        patch=config.get("patch_size", 16),
        tubelet=config.get("tubelet_size", 2),
        num_frames=config.get("num_frames", 16),
        image_size=(size, size) if isinstance(size, int) else tuple(size),
        norm_eps=config.get("layer_norm_eps", 1e-12),
        qv_bias=config.get("qv_bias", config.get("qkv_bias", True)),
        final_norm=not config.get("use_mean_pooling", True),
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read tensors from a `.safetensors`, `.pth`/`.pt`/`.ckpt`/`.bin` file or a HF folder."""
    path = Path(path)
    if path.is_dir():
        candidates = [path / "model.safetensors", path / "pytorch_model.bin"]
        found = next((p for p in candidates if p.exists()), None)
        if found is None:
            raise FileNotFoundError(f"{path} has neither model.safetensors nor pytorch_model.bin")
        path = found
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise NotACheckpointError(path, "the file is empty")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            detail = _first_line(err).replace("Error while deserializing header: ", "").lower()
            raise NotACheckpointError(path, f"not a valid safetensors file: {detail}") from err
    obj = _torch_load(path)
    if not isinstance(obj, Mapping):
        raise NotACheckpointError(path, f"it holds a {type(obj).__name__}, not a dict of tensors")
    sd = unwrap_state_dict(obj)
    if not sd:
        raise NotACheckpointError(path, "it holds no tensors")
    return sd


def _torch_load(path: Path) -> object:
    """`torch.load` of plain tensors only; every failure becomes a `NotACheckpointError`.

    Never suggests `weights_only=False`: a file we cannot read safely is not loaded at all.
    """
    with open(path, "rb") as f:
        head = f.read(2)
    if not zipfile.is_zipfile(path) and head != b"\x80\x02":  # torch.save: a zip, or a protocol-2 pickle
        raise NotACheckpointError(path, "not a PyTorch file: neither its zip archive nor its pickle format")
    try:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            return torch.load(str(path), map_location="cpu", weights_only=True)  # legacy (non-zip) file
    except pickle.UnpicklingError as err:
        objects = "can still be loaded" in str(err) or "Unsupported global" in str(err)
        reason = (
            "it stores Python objects besides tensors, which are not loaded for safety"
            if objects
            else "a corrupt or truncated PyTorch file"
        )
        raise NotACheckpointError(path, reason) from err
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        raise NotACheckpointError(
            path, f"a corrupt or truncated PyTorch file: {_first_line(err)[:120]}"
        ) from err


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def detect_encoder_format(state_dict: Mapping[str, torch.Tensor]) -> EncoderFormat:
    """Guess a checkpoint's format from its key names."""
    keys = list(state_dict)
    if any(k.startswith(RELEASED_ENCODER_PREFIX) for k in keys):
        return "released"
    if any(re.match(r"^(videomae\.)?encoder\.layer\.\d+\.", k) for k in keys):
        return "hf"
    return "videomaev2"


_CONVERTERS = {
    "videomaev2": convert_videomaev2,
    "hf": convert_hf_videomae,
    "released": convert_released_encoder,
}


def load_encoder_weights(
    encoder: VideoMAEEncoder, source: str | Path | Mapping[str, torch.Tensor], *, fmt: EncoderFormat = "auto"
) -> None:
    """Load pretrained weights into `encoder`, strictly.

    Args:
        encoder: The encoder to fill (its dtype and device are kept).
        source: A path (file or HF folder) or an already-read state dict.
        fmt: Checkpoint format, or "auto" to detect it from the key names.

    Raises:
        StateDictMismatchError: listing missing, unexpected and mis-shaped keys.
    """
    sd = unwrap_state_dict(source) if isinstance(source, Mapping) else read_state_dict(source)
    fmt = detect_encoder_format(sd) if fmt == "auto" else fmt
    load_state_dict_strict(encoder, _CONVERTERS[fmt](sd), source=f"{fmt} encoder checkpoint")


def load_hf_videomae(folder: str | Path) -> VideoMAEEncoder:
    """Build and load an encoder from a Hugging Face VideoMAE `save_pretrained` folder."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{folder} is not a Hugging Face model folder (no config.json)")
    encoder = encoder_from_hf_config(json.loads(config_path.read_text()))
    load_encoder_weights(encoder, folder, fmt="hf")
    return encoder
