"""Model variants: short builders with their hyper-parameters written out, and a registry.

`l4p_vitg14` is the released L4P architecture (VideoMAEv2 ViT-g/14, dense heads on blocks
14, 21, 28, 36, tracking on the final-normed last layer). Smaller variants share the heads
on VideoMAE ViT-B/16 and ViT-S/16 encoders; `l4p_test` is tiny and serves the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from l4p.heads.dense import DenseHeadKind, build_dense_head
from l4p.heads.tracking.head import TrackingHead
from l4p.models.l4p import DENSE_TASKS, L4P
from l4p.models.videomae import VideoMAEEncoder, vit_b16, vit_g14, vit_s16, vit_test

_DENSE_KIND: dict[str, DenseHeadKind] = {
    "depth": "depth",
    "flow": "flow",
    "motion": "motion",
    "camera": "camera_ray",
}


def _assemble(
    encoder: VideoMAEEncoder,
    *,
    hooks: Sequence[int],
    layer_dims: Sequence[int],
    feature_dim: int,
    last_dim: int,
    tracker_heads: int,
    tracker_mlp: int,
    window: tuple[int, int, int],
    tasks: Sequence[str],
    max_queries: int = 128,
) -> L4P:
    dense = {
        task: build_dense_head(
            _DENSE_KIND[task],
            token_dim=encoder.dim,
            layer_dims=layer_dims,
            feature_dim=feature_dim,
            last_dim=last_dim,
        )
        for task in DENSE_TASKS
        if task in tasks
    }
    tracker = None
    if "tracks" in tasks:
        tracker = TrackingHead(
            dim=encoder.dim,
            num_heads=tracker_heads,
            mlp_dim=tracker_mlp,
            window_size=window,
            patch_size=encoder.patch_size,
            max_queries=max_queries,
        )
    return L4P(encoder=encoder, dense_heads=dense, tracker=tracker, dense_hooks=hooks, window=window)


ALL_TASKS = ("depth", "flow", "motion", "camera", "tracks")


def l4p_vitg14(
    *,
    tasks: Sequence[str] = ALL_TASKS,
    encoder_dim: int = 1408,
    encoder_heads: int = 16,
    dpt_feature_dim: int = 256,
    dpt_last_dim: int = 128,
    dpt_layer_dims: Sequence[int] = (256, 512, 1024, 1024),
    tracker_mlp: int = 2048,
    tracker_heads: int = 8,
    max_queries: int = 128,
) -> L4P:
    """The released L4P model (1.42 B parameters with all five heads).

    Width arguments exist so that the architecture can be built at reduced widths (the
    parity fixture does this); leave them at their defaults for the released weights.
    """
    encoder = vit_g14(dim=encoder_dim, num_heads=encoder_heads, mlp_hidden_dim=int(encoder_dim * 48 / 11))
    return _assemble(
        encoder,
        hooks=(14, 21, 28, 36),
        layer_dims=dpt_layer_dims,
        feature_dim=dpt_feature_dim,
        last_dim=dpt_last_dim,
        tracker_heads=tracker_heads,
        tracker_mlp=tracker_mlp,
        window=(16, 224, 224),
        tasks=tasks,
        max_queries=max_queries,
    )


def l4p_vitb16(*, tasks: Sequence[str] = ALL_TASKS) -> L4P:
    """L4P heads on a VideoMAE ViT-B/16 encoder (hooks on blocks 3, 6, 9, 12)."""
    return _assemble(
        vit_b16(),
        hooks=(3, 6, 9, 12),
        layer_dims=(96, 192, 384, 768),
        feature_dim=128,
        last_dim=64,
        tracker_heads=8,
        tracker_mlp=1024,
        window=(16, 224, 224),
        tasks=tasks,
    )


def l4p_vits16(*, tasks: Sequence[str] = ALL_TASKS) -> L4P:
    """L4P heads on a VideoMAE ViT-S/16 encoder (hooks on blocks 3, 6, 9, 12)."""
    return _assemble(
        vit_s16(),
        hooks=(3, 6, 9, 12),
        layer_dims=(48, 96, 192, 384),
        feature_dim=64,
        last_dim=32,
        tracker_heads=8,
        tracker_mlp=512,
        window=(16, 224, 224),
        tasks=tasks,
    )


def l4p_test(*, tasks: Sequence[str] = ALL_TASKS) -> L4P:
    """Tiny model for tests: 32-wide 4-block encoder, 16 x 112 x 112 windows."""
    return _assemble(
        vit_test(),
        hooks=(1, 2, 3, 4),
        layer_dims=(8, 16, 32, 32),
        feature_dim=16,
        last_dim=8,
        tracker_heads=4,
        tracker_mlp=32,
        window=(16, 112, 112),
        tasks=tasks,
    )


def l4p_synthetic_s(*, tasks: Sequence[str] = ALL_TASKS) -> L4P:
    """Small model trained from scratch on `l4p.data.synthetic` (weights ship with the package).

    128-wide 8-block encoder, patch 8, 16 x 64 x 64 windows (8 x 8 x 8 tokens), 4.2 M parameters.
    `l4p.load_model("l4p_synthetic_s")` loads the embedded weights (`l4p/weights/`).
    """
    encoder = VideoMAEEncoder(
        dim=128, depth=8, num_heads=4, mlp_hidden_dim=512, patch=8, num_frames=16, image_size=(64, 64)
    )
    return _assemble(
        encoder,
        hooks=(2, 4, 6, 8),
        layer_dims=(16, 32, 64, 96),
        feature_dim=16,
        last_dim=16,
        tracker_heads=4,
        tracker_mlp=256,
        window=(16, 64, 64),
        tasks=tasks,
    )


MODEL_REGISTRY: dict[str, Callable[..., L4P]] = {
    "l4p_vitg14": l4p_vitg14,
    "l4p_vitb16": l4p_vitb16,
    "l4p_vits16": l4p_vits16,
    "l4p_test": l4p_test,
    "l4p_synthetic_s": l4p_synthetic_s,
}


def list_models() -> list[str]:
    """Names of the registered variants."""
    return sorted(MODEL_REGISTRY)


def build_model(name: str, **overrides) -> L4P:  # noqa: D417
    """Build a registered variant with random weights.

    Args:
        name: A name from `list_models()`.
        **overrides: Keyword arguments of the variant's builder (e.g. `tasks=("depth",)`).
    """
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {list_models()}")
    model = MODEL_REGISTRY[name](**overrides)
    model.build_config = {  # type: ignore[assignment]
        "name": name,
        "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
    }
    return model
