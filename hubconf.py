"""torch.hub entry points for a local clone: ``torch.hub.load(repo_dir, "l4p_vitg14", source="local")``.

Every entry point returns an `l4p.L4PPredictor`. No weights are downloaded: pass the released
checkpoint (or our `model.safetensors`) you already have, e.g.::

    model = torch.hub.load("path/to/l4p", "l4p_vitg14", source="local",
                           checkpoint="l4p_depth_flow_2d3dtrack_camray_dynseg_v1.ckpt")
    pred = model.predict("video.mp4", tasks=("depth", "flow", "motion", "camera"))
"""

from __future__ import annotations

dependencies = ["torch", "numpy", "einops", "safetensors", "av", "imageio"]


def _load(name: str, checkpoint, kwargs: dict):
    from l4p.api import load_model

    return load_model(name, checkpoint, **kwargs)


def l4p_vitg14(checkpoint=None, **kwargs):
    """The released L4P model (ViT-g/14): `load_model("l4p_vitg14", checkpoint, **kwargs)`.

    Args:
        checkpoint: Released `.ckpt` or `model.safetensors`; None gives random weights.
        **kwargs: `device`, `dtype`, `tasks`, `mode` of `l4p.load_model`.
    """
    return _load("l4p_vitg14", checkpoint, kwargs)


def l4p_vitb16(checkpoint=None, **kwargs):
    """L4P heads on a ViT-B/16 encoder (random weights unless `checkpoint`)."""
    return _load("l4p_vitb16", checkpoint, kwargs)


def l4p_vits16(checkpoint=None, **kwargs):
    """L4P heads on a ViT-S/16 encoder (random weights unless `checkpoint`)."""
    return _load("l4p_vits16", checkpoint, kwargs)


def l4p_test(checkpoint=None, **kwargs):
    """The tiny test model (random weights unless `checkpoint`); runs in seconds on a CPU."""
    return _load("l4p_test", checkpoint, kwargs)
