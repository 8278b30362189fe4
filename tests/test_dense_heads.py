"""Dense DPT heads against the parity fixture computed by the released code."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
import torch
from conftest import shared_path
from einops import rearrange

from l4p.checkpoints.common import load_state_dict_strict
from l4p.checkpoints.released_dense import (
    RELEASED_DENSE_TASKS,
    convert_released_dpt,
    released_dpt_prefix,
)
from l4p.heads.dense import build_dense_head
from l4p.heads.dpt_blocks import make_resample

HOOKS = (14, 21, 28, 36)
TINY = {"token_dim": 48, "layer_dims": (8, 16, 32, 32), "feature_dim": 16, "last_dim": 8}
SMALL = {"token_dim": 8, "layer_dims": (4, 4, 8, 8), "feature_dim": 4, "last_dim": 4}


@cache
def _config() -> dict:
    return json.loads(shared_path("reference/parity/config.json").read_text())


@cache
def _state_dict() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(shared_path("reference/parity/state_dict.safetensors")))


@cache
def _single() -> dict[str, np.ndarray]:
    with np.load(shared_path("reference/parity/single.npz")) as data:
        return {k: data[k] for k in data.files}


def _atol(key: str) -> float:
    return float(_config()["tolerances"]["per_key"][key]["atol"])


def _released_head(kind: str) -> torch.nn.Module:
    prefix = released_dpt_prefix(RELEASED_DENSE_TASKS[kind])
    sub = {k[len(prefix) :]: v for k, v in _state_dict().items() if k.startswith(prefix)}
    head = build_dense_head(kind, **TINY).eval()  # type: ignore[arg-type]
    load_state_dict_strict(head.dpt, convert_released_dpt(sub), source=f"released {kind} head")
    return head


def _features() -> list[torch.Tensor]:
    return [
        rearrange(
            torch.from_numpy(_single()[f"debug_enc_features_bpc_w0_i{i:02d}"]),
            "b (t h w) c -> b c t h w",
            t=8,
            h=16,
            w=16,
        )
        for i in HOOKS
    ]


@pytest.mark.parametrize(
    ("kind", "key", "tol_key", "size"),
    [
        ("depth", "output_depth_est_b1thw", "depth_est_b1thw", (16, 224, 224)),
        ("flow", "output_flow_2d_backward_est_b2thw", "flow_2d_backward_est_b2thw", (16, 224, 224)),
        ("motion", "output_dyn_mask_est_b1thw", "dyn_mask_est_b1thw", (16, 224, 224)),
        ("camera_ray", "debug_camray_rays_b6thw_w0", "debug_camray_rays_b6thw_w*", (16, 224, 224)),
    ],
)
def test_head_matches_released(kind: str, key: str, tol_key: str, size: tuple[int, int, int]) -> None:
    head = _released_head(kind)
    with torch.no_grad():
        out = head(_features(), size)
    expected = torch.from_numpy(_single()[key])
    assert out.shape == expected.shape
    err = (out - expected).abs().max().item()
    assert err <= _atol(tol_key), f"{kind}: max abs error {err:.3g}"


def test_conversion_covers_every_released_key() -> None:
    for task in RELEASED_DENSE_TASKS.values():
        prefix = released_dpt_prefix(task)
        sub = {k[len(prefix) :]: v for k, v in _state_dict().items() if k.startswith(prefix)}
        ours = convert_released_dpt(sub)
        # 4 alias keys and the 4 tensors of the coarsest stage's unused residual unit are dropped.
        assert len(ours) == len(sub) - 8
        # Every tensor of the released head (except the unused unit) keeps its values.
        kept = {id(v) for v in ours.values()}
        assert all(
            id(v) in kept
            for k, v in sub.items()
            if "layer_rn" not in k and "refinenet4.resConfUnit1" not in k
        )


def test_conversion_rejects_bad_alias_and_unknown_keys() -> None:
    prefix = released_dpt_prefix("depth")
    sub = {k[len(prefix) :]: v for k, v in _state_dict().items() if k.startswith(prefix)}
    bad = dict(sub)
    bad["scratch.layer_rn.2.weight"] = bad["scratch.layer_rn.2.weight"] + 1.0
    with pytest.raises(ValueError, match="alias"):
        convert_released_dpt(bad)
    extra = dict(sub)
    extra["scratch.refinenet1.bn.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="not released"):
        convert_released_dpt(extra)


@pytest.mark.parametrize(
    ("kind", "grid", "size", "expected"),
    [
        ("depth", (8, 16, 20), (16, 224, 280), (1, 16, 224, 280)),
        ("flow", (4, 16, 16), (8, 224, 224), (2, 8, 224, 224)),
        ("motion", (3, 7, 9), (6, 98, 126), (1, 6, 98, 126)),
        ("camera_ray", (8, 16, 20), (16, 224, 280), (6, 16, 16, 20)),
        ("camera_ray", (3, 7, 9), (6, 98, 126), (6, 6, 7, 9)),
    ],
)
def test_heads_on_other_token_grids(
    kind: str, grid: tuple[int, int, int], size: tuple[int, int, int], expected: tuple[int, ...]
) -> None:
    head = build_dense_head(kind, **SMALL)  # type: ignore[arg-type]
    with torch.no_grad():
        out = head([torch.randn(1, 8, *grid) for _ in range(4)], size)
    assert out.shape == (1, *expected)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("kind", ["depth", "flow", "motion", "camera_ray"])
def test_every_parameter_gets_a_gradient(kind: str) -> None:
    head = build_dense_head(kind, **SMALL)  # type: ignore[arg-type]
    out = head([torch.randn(2, 8, 2, 3, 5) for _ in range(4)], (4, 42, 70))
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_resample_rules() -> None:
    up = make_resample(channels=3, exponents=(1, 0, 2))
    assert isinstance(up, torch.nn.ConvTranspose3d) and up.kernel_size == (2, 1, 4) and up.stride == (2, 1, 4)
    down = make_resample(channels=3, exponents=(-1, 0, -2))
    assert isinstance(down, torch.nn.Conv3d)
    assert down.kernel_size == (3, 1, 5) and down.stride == (2, 1, 4) and down.padding == (1, 0, 2)
    assert isinstance(make_resample(channels=3, exponents=(0, 0, 0)), torch.nn.Identity)
    with pytest.raises(ValueError):
        make_resample(channels=3, exponents=(1, -1, 0))


@pytest.mark.parametrize(
    ("kind", "released_params"),
    [("depth", 85_845_889), ("flow", 85_846_018), ("motion", 85_845_889), ("camera_ray", 82_307_590)],
)
def test_released_size_parameter_count(kind: str, released_params: int) -> None:
    # Released counts (spec parameter budget) include the never-called first residual unit
    # of the coarsest fusion stage (two 3x3x3 256->256 convs with bias), which we drop.
    with torch.device("meta"):
        head = build_dense_head(
            kind,  # type: ignore[arg-type]
            token_dim=1408,
            layer_dims=(256, 512, 1024, 1024),
            feature_dim=256,
            last_dim=128,
        )
    unused = 2 * (256 * 256 * 27 + 256)
    assert sum(p.numel() for p in head.parameters()) == released_params - unused
