"""`localising_init`: a fresh tracking head attends to its query's position from the start."""

import torch

from l4p.heads.tracking.driver import run_windows
from l4p.training.network import NetworkFactory


def _point_attention(model, queries_bn3):
    """Layer-0 video->token attention on the point token, (N, P), and the token grid."""
    attention = model.tracker.mask_decoder.transformer.layers[0].cross_attn_image_to_token
    seen = {}
    handle = attention.register_forward_pre_hook(lambda mod, args: seen.update(q=args[0], k=args[1]))
    torch.manual_seed(1)
    with torch.no_grad():
        feats = model.encode(torch.randn(1, 3, 16, 64, 64), tasks=("tracks",))
        run_windows(
            model.tracker,
            [feats.final],
            queries_bn3 + 0.5,
            window_starts=[0],
            num_frames=16,
            grid_thw=feats.grid,
        )
        q, k = attention.q_proj(seen["q"]), attention.k_proj(seen["k"])
    handle.remove()
    heads = 4
    qh = q.unflatten(-1, (heads, -1)).transpose(1, 2)
    kh = k.unflatten(-1, (heads, -1)).transpose(1, 2)
    weights = torch.softmax(qh @ kh.transpose(-1, -2) / qh.shape[-1] ** 0.5, -1).mean(1)
    return weights[..., 3], feats.grid


def _near_far_ratio(tracker_init: str) -> float:
    """Mean over 12 queries of (attention near the query) / (attention far from it)."""
    torch.manual_seed(0)
    model = NetworkFactory(variant="l4p_synthetic_s", tasks=("tracks",), tracker_init=tracker_init).build()
    g = torch.Generator().manual_seed(5)
    queries = torch.cat(
        [torch.randint(0, 16, (1, 12, 1), generator=g).float(), torch.rand(1, 12, 2, generator=g) * 63], -1
    )
    weights, (t, h, w) = _point_attention(model, queries)
    tt, yy, xx = torch.meshgrid(
        torch.arange(t) * 2 + 1.0, torch.arange(h) * 8 + 4.0, torch.arange(w) * 8 + 4.0, indexing="ij"
    )
    q = queries[0] + 0.5
    dist = torch.sqrt(
        (xx.flatten() - q[:, 1:2]) ** 2
        + (yy.flatten() - q[:, 2:3]) ** 2
        + (4 * (tt.flatten() - q[:, :1])) ** 2
    )
    near = (weights * (dist < 10)).sum(1) / (dist < 10).sum(1)
    far = (weights * (dist > 30)).sum(1) / (dist > 30).sum(1)
    return float((near / far).mean())


def test_localising_init_points_attention_at_the_query():
    torch.manual_seed(0)
    model = NetworkFactory(variant="l4p_synthetic_s", tasks=("tracks",), tracker_init="localising").build()
    first = model.tracker.mask_decoder.transformer.layers[0].self_attn
    assert torch.equal(first.q_proj.weight, first.k_proj.weight)
    assert torch.allclose(model.encoder.norm.weight, torch.full_like(model.encoder.norm.weight, 0.2))
    assert _near_far_ratio("localising") > 1.5  # measured 1.9
    assert _near_far_ratio("default") < 1.2  # measured 0.95: no preference for the query's position
