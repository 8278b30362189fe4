import math

import pytest
import torch

from l4p.geometry.rays import cameras_to_rays, rays_to_cameras
from l4p.training import losses as L
from l4p.training.objective import total_loss
from l4p.training.sampler import MixtureSampler


def test_masked_mean_is_per_sample_and_empty_is_zero():
    values = torch.tensor([[1.0, 3.0, 100.0], [5.0, 7.0, 9.0]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    assert torch.equal(L.masked_mean(values, mask), torch.tensor([2.0, 0.0]))


def test_silog_hand_values():
    gt = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
    valid = torch.tensor([[[True, True], [True, False]]])
    pred = torch.where(valid, 2 * gt, torch.full_like(gt, 1e3))  # invalid entry is garbage
    # d = ln 2 everywhere: sqrt(d^2 - 0.85 d^2) = sqrt(0.15) ln 2
    got = L.silog_loss(pred, gt, valid, variance_focus=0.85)
    assert got.item() == pytest.approx(math.sqrt(0.15) * math.log(2), rel=1e-5)
    assert L.silog_loss(pred, gt, valid, variance_focus=1.0).item() < 1e-3  # fully scale invariant
    # d = (0, ln 2): mean d^2 = ln2^2 / 2, mean d = ln2 / 2 -> sqrt(ln2^2 (1/2 - 0.85/4))
    pred2 = torch.tensor([[1.0, 4.0]])
    got2 = L.silog_loss(pred2, torch.tensor([[1.0, 2.0]]), torch.ones(1, 2, dtype=torch.bool))
    assert got2.item() == pytest.approx(math.log(2) * math.sqrt(0.5 - 0.85 / 4), rel=1e-5)


def test_flow_and_track_l1_hand_values():
    gt = torch.zeros(1, 2, 2, 3, 3)  # (B, T, 2, H, W)
    pred = gt.clone()
    pred[:, :, 0] = 1.0
    pred[:, :, 1] = -2.0
    valid = torch.ones(1, 2, 3, 3, dtype=torch.bool)
    valid[:, 0] = False
    pred[:, 0] = 50.0  # ignored frame
    assert L.flow_l1_loss(pred, gt, valid).item() == pytest.approx(3.0)
    traj = torch.tensor([[[[1.0, 1.0], [4.0, 5.0]]]])  # (B, N, T, 2)
    target = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]]])
    mask = torch.tensor([[[True, False]]])
    assert L.track_position_loss(traj, target, mask).item() == pytest.approx(2.0)


def test_scale_invariant_depth_and_bce():
    gt = torch.tensor([[1.0, 2.0, 3.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    assert L.scale_invariant_depth_loss(7.0 * gt, gt, mask).item() == pytest.approx(0.0, abs=1e-6)
    pred = torch.tensor([[1.0, 4.0, 6.0]])  # d = (0, ln2, ln2): mean ln2 * 2/3
    expected = (2 * math.log(2) / 3 + 2 * math.log(2) / 3) / 3
    assert L.scale_invariant_depth_loss(pred, gt, mask).item() == pytest.approx(expected, rel=1e-5)
    logits = torch.zeros(1, 4)
    assert L.bce_loss(logits, torch.tensor([[1.0, 0.0, 1.0, 0.0]])).item() == pytest.approx(math.log(2))
    big = torch.tensor([[20.0, -20.0]])
    assert L.bce_loss(big, torch.tensor([[1.0, 0.0]])).item() < 1e-6
    assert L.bce_loss(big, torch.tensor([[0.0, 1.0]])).item() == pytest.approx(20.0, rel=1e-4)


def test_losses_are_per_sample_so_batch_splits_do_not_matter():
    torch.manual_seed(0)
    pred, gt = torch.rand(4, 3, 5, 5) + 0.5, torch.rand(4, 3, 5, 5) + 0.5
    valid = torch.rand(4, 3, 5, 5) > 0.3
    whole = L.silog_loss(pred, gt, valid).mean()
    halves = (
        L.silog_loss(pred[:2], gt[:2], valid[:2]).mean() + L.silog_loss(pred[2:], gt[2:], valid[2:]).mean()
    ) / 2
    assert whole.item() == pytest.approx(halves.item(), rel=1e-6)


def _cameras(t=4):
    k = torch.tensor([[60.0, 0.0, 27.5], [0.0, 62.0, 27.0], [0.0, 0.0, 1.0]]).expand(1, t, 3, 3)
    angles = torch.linspace(0, 0.2, t)
    rot = torch.zeros(t, 3, 3)
    rot[:, 0, 0] = rot[:, 2, 2] = torch.cos(angles)
    rot[:, 0, 2], rot[:, 2, 0] = torch.sin(angles), -torch.sin(angles)
    rot[:, 1, 1] = 1
    ext = torch.eye(4).repeat(t, 1, 1)
    ext[:, :3, :3] = rot
    ext[:, :3, 3] = torch.stack([torch.linspace(0.3, 1.2, t), torch.zeros(t), torch.linspace(0, 2, t)], -1)
    return k, ext[None]


def test_camera_targets_are_relative_scale_normalised_and_invert():
    k, ext = _cameras()
    rel = L.relative_poses(ext)
    assert torch.allclose(rel[:, 0], torch.eye(4), atol=1e-6)
    assert rel[0, 1:, :3, 3].norm(dim=-1).mean().item() == pytest.approx(1.0, rel=1e-5)
    target = L.camera_ray_targets(k, ext, grid_hw=(4, 4), patch=14)
    assert target.shape == (1, 6, 4, 4, 4)
    assert L.camera_ray_loss(target, target).item() == 0.0
    assert L.camera_ray_loss(target + 0.5, target).item() == pytest.approx(0.5)
    cams = rays_to_cameras(target)
    assert torch.allclose(cams.camera_to_world, rel, atol=1e-4)
    # a rigid change of the world frame does not change the targets
    shift = torch.eye(4)
    shift[:3, 3] = torch.tensor([5.0, -1.0, 2.0])
    assert torch.allclose(L.camera_ray_targets(k, ext @ shift, grid_hw=(4, 4), patch=14), target, atol=1e-5)
    assert torch.allclose(target, cameras_to_rays(cams.intrinsics_grid, rel, (4, 4)), atol=1e-4)


def test_total_loss_weights():
    losses = {"depth": torch.tensor([1.0, 3.0]), "flow": torch.tensor([2.0, 2.0])}
    assert total_loss(losses, {"depth": 20.0, "flow": 0.5}).item() == pytest.approx(41.0)


def test_mixture_sampler_deterministic_weighted_and_sharded():
    sampler = MixtureSampler(lengths=[10, 1000], weights=[1.0, 3.0], num_samples=4000, seed=3)
    keys = list(sampler)
    assert keys == list(MixtureSampler(lengths=[10, 1000], weights=[1.0, 3.0], num_samples=4000, seed=3))
    share = sum(k[0] == 0 for k in keys) / len(keys)
    assert 0.2 < share < 0.3
    assert all(0 <= item < (10, 1000)[s] for s, item, _ in keys)
    sampler.set_epoch(1)
    assert list(sampler) != keys
    ranks = [
        MixtureSampler(
            lengths=[10, 1000], weights=[1.0, 3.0], num_samples=4000, seed=3, num_replicas=2, rank=r
        )
        for r in (0, 1)
    ]
    assert list(ranks[0]) == keys[0::2] and list(ranks[1]) == keys[1::2] and len(ranks[0]) == 2000
    ordered = MixtureSampler(lengths=[2, 3], shuffle=False)
    assert list(ordered) == [(0, 0, 0), (0, 1, 1), (1, 0, 0), (1, 1, 1), (1, 2, 2)]


def test_heatmap_ce_is_lowest_on_the_target_cell_and_splits_bilinearly():
    # 4x4 logit grid covering an 8x8 window: cell j spans pixels [2j, 2j + 2), centre 2j + 0.5.
    logits = torch.full((1, 1, 1, 4, 4), -20.0)
    logits[..., 1, 2] = 20.0  # all mass on the cell at column 2, row 1
    mask = torch.ones(1, 1, 1, dtype=torch.bool)
    on_cell = torch.tensor([[[[4.5, 2.5]]]])  # its centre in window pixels (x, y)
    hit = L.heatmap_ce_loss(logits, on_cell, mask, window_hw=(8, 8))
    miss = L.heatmap_ce_loss(logits, torch.tensor([[[[0.5, 6.5]]]]), mask, window_hw=(8, 8))
    assert hit.item() < 1e-6 and miss.item() > 30.0
    # Half-way between two cells: the best heatmap puts half the mass on each.
    half = torch.full((1, 1, 1, 4, 4), -30.0)
    half[..., 1, 1] = half[..., 1, 2] = 0.0
    between = torch.tensor([[[[3.5, 2.5]]]])
    assert L.heatmap_ce_loss(half, between, mask, window_hw=(8, 8)).item() == pytest.approx(
        math.log(2), rel=1e-4
    )
    # Masked entries do not count; points outside the window are clamped to the border cells.
    assert L.heatmap_ce_loss(logits, on_cell, ~mask, window_hw=(8, 8)).item() == 0.0
    corner = torch.full((1, 1, 1, 4, 4), -30.0)
    corner[..., 0, 0] = 0.0
    far = torch.tensor([[[[-40.0, -40.0]]]])
    assert L.heatmap_ce_loss(corner, far, mask, window_hw=(8, 8)).item() < 1e-6


def _one_hot_tokens(cell_of_token: torch.Tensor, channels: int) -> torch.Tensor:
    """(1, P, C) tokens whose feature is the one-hot code of `cell_of_token` (P,)."""
    return torch.nn.functional.one_hot(cell_of_token, channels).float()[None]


def test_token_match_loss_rewards_tokens_that_follow_the_track():
    # Grid t=2, h=w=4 over a 4-frame 8x8 window (a token covers 2 frames and 2x2 pixels).
    # Tokens are one-hot codes of "which surface point they see": slice 0 sees the identity
    # layout, slice 1 the same content moved one token to the right.
    grid = (2, 4, 4)
    cells = torch.arange(16).view(4, 4)
    moved = torch.roll(cells, shifts=1, dims=1)
    tokens = _one_hot_tokens(torch.cat([cells.flatten(), moved.flatten()]), 16)
    query = torch.tensor([[[0.0, 2.5, 4.5]]])  # frame 0, centre of token (col 1, row 2)
    mask = torch.ones(1, 1, 4, dtype=torch.bool)
    follows = torch.tensor([[2.5, 4.5], [2.5, 4.5], [4.5, 4.5], [4.5, 4.5]])[None, None]  # right in slice 1
    stays = torch.tensor([[2.5, 4.5]] * 4)[None, None]
    hit = L.token_match_loss(tokens, grid, query, follows, mask, window_hw=(8, 8), temperature=0.05)
    miss = L.token_match_loss(tokens, grid, query, stays, mask, window_hw=(8, 8), temperature=0.05)
    # Cosine 1 on the matching token and 0 elsewhere: -log(e^20 / (e^20 + 15)) per frame.
    expected = -math.log(math.exp(20.0) / (math.exp(20.0) + 15.0))
    assert hit.item() == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert miss.item() > 9.0  # frames 2 and 3 put the GT on a token of cosine 0 (loss 20 + log 16)
    # Masked frames do not count; a constant feature map gives the uniform log(16).
    assert L.token_match_loss(tokens, grid, query, stays, mask & False, window_hw=(8, 8)).item() == 0.0
    flat = torch.ones(1, 32, 16)
    assert L.token_match_loss(flat, grid, query, stays, mask, window_hw=(8, 8)).item() == pytest.approx(
        math.log(16), rel=1e-5
    )


def test_token_match_loss_reads_the_query_slice_and_position():
    grid = (2, 2, 2)
    ids = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])  # every token different, slice 1 unlike slice 0
    tokens = _one_hot_tokens(ids, 8)
    mask = torch.tensor([[[False, False, True, True]]])  # supervise frames 2, 3 (slice 1) only
    target = torch.tensor([[[[0.5, 0.5]] * 4]])  # centre of token (0, 0): pixels 0 and 1
    # A query in slice 1 at token (0, 0) finds itself there; one in slice 0 has no match in slice 1.
    own = L.token_match_loss(tokens, grid, torch.tensor([[[2.0, 0.5, 0.5]]]), target, mask, window_hw=(4, 4),
                             temperature=0.05)  # fmt: skip
    other = L.token_match_loss(tokens, grid, torch.tensor([[[0.0, 0.5, 0.5]]]), target, mask, window_hw=(4, 4),
                               temperature=0.05)  # fmt: skip
    assert own.item() < 1e-6 and other.item() == pytest.approx(math.log(4), rel=1e-5)
