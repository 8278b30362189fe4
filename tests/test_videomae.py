"""VideoMAE encoder: presets, contract, dtype, and parity with other people's code."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import shared_path

from l4p.checkpoints import StateDictMismatchError
from l4p.checkpoints.videomae import (
    convert_released_encoder,
    load_encoder_weights,
    load_hf_videomae,
)
from l4p.models.layers import sinusoid_table
from l4p.models.videomae import ENCODER_PRESETS, build_encoder


def test_hf_videomae_parity(tmp_path):
    transformers = pytest.importorskip("transformers")
    for use_mean_pooling in (True, False):
        config = transformers.VideoMAEConfig(
            image_size=56,
            patch_size=14,
            num_frames=4,
            tubelet_size=2,
            hidden_size=32,
            num_hidden_layers=3,
            num_attention_heads=2,
            intermediate_size=48,
            use_mean_pooling=use_mean_pooling,
        )
        theirs = transformers.VideoMAEModel(config).eval()
        with torch.no_grad():  # non-trivial biases so that every parameter matters
            for p in theirs.parameters():
                p.add_(0.05 * torch.randn_like(p))
        theirs.save_pretrained(tmp_path / f"hf{use_mean_pooling}")
        ours = load_hf_videomae(tmp_path / f"hf{use_mean_pooling}").eval()
        video = torch.randn(2, 3, 4, 56, 56)
        with torch.no_grad():
            out = theirs(video.transpose(1, 2), output_hidden_states=True)
            feats = ours.forward_intermediates(video, range(4), output_fmt="NLC")
        assert len(out.hidden_states) == len(feats.intermediates) == 4
        for theirs_h, ours_h in zip(out.hidden_states, feats.intermediates):
            torch.testing.assert_close(ours_h, theirs_h, atol=1e-5, rtol=0)
        torch.testing.assert_close(feats.final, out.last_hidden_state, atol=1e-5, rtol=0)


def test_released_encoder_parity_fixture():
    """Encoder hooks against the released code's outputs (reduced widths)."""
    from safetensors.torch import load_file

    cfg = json.loads(shared_path("reference/parity/config.json").read_text())
    sd = load_file(str(shared_path("reference/parity/state_dict.safetensors")))
    case = np.load(shared_path("reference/parity/single.npz"))
    widths = cfg["widths"]
    enc = build_encoder(
        "vit_g14",
        dim=widths["encoder_embed_dim"],
        num_heads=widths["encoder_num_heads"],
        mlp_hidden_dim=cfg["derived_widths"]["encoder_mlp_hidden"],
    ).eval()
    load_encoder_weights(enc, sd)
    hooks = [0, 14, 21, 28, 36]
    with torch.no_grad():
        feats = enc.forward_intermediates(torch.from_numpy(case["input_rgb_b3thw"]), hooks, output_fmt="NLC")
    tol = cfg["tolerances"]["per_key"]
    for idx, ours in zip([*hooks, 40], [*feats.intermediates, feats.final]):
        ref = case[f"debug_enc_features_bpc_w0_i{idx:02d}"]
        atol = tol[f"debug_enc_features_bpc_w*_i{idx:02d}"]["atol"]
        np.testing.assert_allclose(ours.numpy(), ref, atol=atol, rtol=0, err_msg=f"encoder feature {idx}")


def test_sinusoid_table_formula():
    table = sinusoid_table(50, 8).double()
    p, j = 37, 5  # odd channel -> cos(p / 10000^(2*2/8))
    assert table[p, j].item() == pytest.approx(np.cos(p / 10000 ** (4 / 8)), abs=1e-7)
    assert table[p, 4].item() == pytest.approx(np.sin(p / 10000 ** (4 / 8)), abs=1e-7)


def test_vit_g14_matches_released_manifest():
    manifest = json.loads(shared_path("reference/l4p_official_state_dict.json").read_text())
    released = {
        k: tuple(v["shape"]) for k, v in manifest["keys"].items() if k.startswith("l4p_model.video_encoder.")
    }
    with torch.device("meta"):
        enc = build_encoder("vit_g14")
    ours = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    mapped = convert_released_encoder({k: torch.empty(s, device="meta") for k, s in released.items()})
    assert {k: tuple(v.shape) for k, v in mapped.items()} == ours
    n_params = sum(p.numel() for p in enc.parameters())
    assert n_params == manifest["parameters_per_top_level_module"]["l4p_model.video_encoder"]


@pytest.mark.parametrize("name", sorted(ENCODER_PRESETS))
def test_every_preset_builds(name):
    with torch.device("meta"):
        enc = build_encoder(name)
    feats = enc.forward_intermediates(torch.empty(1, 3, 16, 224, 224, device="meta"), [1, enc.depth])
    t, h, w = 8, 224 // enc.patch_embed.patch, 224 // enc.patch_embed.patch
    assert feats.final.shape == (1, enc.dim, t, h, w)
    assert [f.shape for f in feats.intermediates] == [(1, enc.dim, t, h, w)] * 2


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown encoder preset 'vit_x'"):
        build_encoder("vit_x")


def test_tiny_contract_gradients_and_shapes():
    enc = build_encoder("vit_test", layer_scale_init=0.1)
    video = torch.randn(2, 3, 8, 56, 84)  # 8 frames, non-square: position table is resampled
    feats = enc.forward_intermediates(video, [0, 2, 3])
    assert feats.grid == (4, 4, 6)
    assert all(f.shape == (2, 32, 4, 4, 6) for f in feats.intermediates)
    loss = sum(f.square().mean() for f in feats.intermediates) + feats.final.square().mean()
    loss.backward()
    assert torch.isfinite(loss)
    no_grad = [n for n, p in enc.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"parameters without gradient: {no_grad}"


def test_stop_early_skips_unrequested_blocks():
    enc = build_encoder("vit_test")
    calls = []
    for blk in enc.blocks:
        blk.register_forward_hook(lambda *_: calls.append(1))
    enc.forward_intermediates(torch.randn(1, 3, 2, 28, 28), [2], return_final=False)
    assert len(calls) == 2


def test_grad_checkpointing_same_result():
    enc = build_encoder("vit_test")
    video = torch.randn(1, 3, 4, 28, 28)
    ref = enc(video)
    enc.set_grad_checkpointing()
    out = enc(video)
    out.sum().backward()
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_agrees(dtype):
    enc = build_encoder("vit_test").eval()
    video = torch.randn(1, 3, 4, 56, 56)
    with torch.no_grad():
        ref = enc(video)
        low = enc.to(dtype)(video.to(dtype))
    assert low.dtype == dtype
    err = (low.float() - ref).abs().max().item()
    assert err < 0.1 * ref.abs().max().item(), err


def test_bad_clip_size_message():
    enc = build_encoder("vit_test")
    with pytest.raises(ValueError, match="not a multiple of the token size"):
        enc(torch.randn(1, 3, 3, 28, 28))


def test_videomaev2_pth_filter(tmp_path):
    """A pretraining-style file: `model` wrapper, `encoder.` prefix, decoder keys, layer scale."""
    src = build_encoder("vit_test", layer_scale_init=0.5)
    sd = {}
    for k, v in src.state_dict().items():
        k = k.replace("ls1.gamma", "gamma_1").replace("ls2.gamma", "gamma_2")
        sd["encoder." + k] = v + 0.01
    sd["decoder.blocks.0.attn.qkv.weight"] = torch.zeros(3, 3)
    sd["encoder_to_decoder.weight"] = torch.zeros(3, 3)
    sd["mask_token"] = torch.zeros(1, 1, 3)
    torch.save({"model": sd}, tmp_path / "vit_test_pretrain.pth")
    dst = build_encoder("vit_test", layer_scale_init=0.5)
    load_encoder_weights(dst, tmp_path / "vit_test_pretrain.pth")
    for k, v in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[k], v + 0.01)


def test_mismatched_checkpoint_lists_keys():
    small = build_encoder("vit_test")
    sd = build_encoder("vit_test", dim=48, depth=5, num_heads=2).state_dict()
    sd.pop("norm.weight")
    with pytest.raises(StateDictMismatchError) as err:
        load_encoder_weights(small, sd, fmt="videomaev2")
    msg = str(err.value)
    assert "missing keys (1): norm.weight" in msg
    assert "unexpected keys" in msg and "blocks.4." in msg
    assert "mis-shaped keys" in msg
    assert ("patch_embed.proj.weight", (48, 3, 2, 14, 14), (32, 3, 2, 14, 14)) in err.value.mis_shaped
    assert len(err.value.unexpected) == 13  # the whole fifth block
