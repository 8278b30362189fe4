import pytest
import torch

from l4p.data.synthetic import SceneConfig, SyntheticDataset
from l4p.training.augment import AugmentConfig, augment_sample, crop_resize_sample, hflip_sample
from l4p.training.losses import project_points
from l4p.training.sample import choose_queries, from_synthetic, in_image, subsample_tracks


@pytest.fixture(scope="module")
def item():
    config = SceneConfig(height=48, width=64, num_frames=6, num_tracks=48, num_objects=(1, 2))
    return SyntheticDataset(config, length=1, seed_offset=7)[0]


def _reprojection_error(sample):
    points = sample["tracks3d_tn3"]
    front = points[..., 2] > 0.1
    proj = project_points(points, sample["intrinsics_t33"])
    return (proj - sample["tracks_tn2"]).norm(dim=-1)[front].max()


def _flow_track_error(sample):
    """|flow_bwd(track_t) - (track_{t-1} - track_t)| at tracks visible in both frames (nearest pixel)."""
    tracks, vis = sample["tracks_tn2"], sample["visibility_tn"]
    h, w = sample["depth_thw"].shape[-2:]
    errors = []
    for t in range(1, tracks.shape[0]):
        both = vis[t] & vis[t - 1]
        x = tracks[t, both, 0].round().long().clamp(0, w - 1)
        y = tracks[t, both, 1].round().long().clamp(0, h - 1)
        flow = sample["flow_bwd_t2hw"][t][:, y, x].T
        errors.append((flow - (tracks[t - 1, both] - tracks[t, both])).norm(dim=-1))
    return torch.cat(errors).median()


def test_crop_resize_flip_keep_tracks_intrinsics_and_flow_consistent(item):
    sample = from_synthetic(item)
    assert _reprojection_error(sample) < 1e-3
    base_flow_error = _flow_track_error(sample)
    cropped = crop_resize_sample(sample, box=(10, 6, 40, 30), size=(60, 80))  # x2 zoom
    assert _reprojection_error(cropped) < 1e-3
    flipped = hflip_sample(cropped)
    assert _reprojection_error(flipped) < 1e-3
    # flow stays consistent with the moved tracks (a sign or scale error would show here)
    assert _flow_track_error(flipped) < 2 * base_flow_error + 0.5
    # a track is visible only inside the crop
    assert not bool((flipped["visibility_tn"] & ~in_image(flipped["tracks_tn2"], 60, 80)).any())
    # crop without resize: maps are plain crops
    plain = crop_resize_sample(sample, box=(5, 3, 32, 24), size=(24, 32))
    assert torch.equal(plain["depth_thw"], sample["depth_thw"][:, 3:27, 5:37])
    assert torch.equal(plain["flow_bwd_t2hw"], sample["flow_bwd_t2hw"][..., 3:27, 5:37])
    assert torch.allclose(plain["tracks_tn2"], sample["tracks_tn2"] - torch.tensor([5.0, 3.0]))


def test_flip_mirrors_the_world_consistently(item):
    sample = from_synthetic(item)
    flipped = hflip_sample(sample)
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    world = torch.cat([item["tracks3d_world_tn3"], torch.ones_like(item["tracks3d_world_tn3"][..., :1])], -1)
    cam = torch.einsum("tij,tnj->tni", flipped["extrinsics_t44"], world @ mirror.T)[..., :3]
    assert torch.allclose(cam, flipped["tracks3d_tn3"], atol=1e-4)
    assert torch.allclose(torch.linalg.det(flipped["extrinsics_t44"][:, :3, :3]), torch.ones(6), atol=1e-5)
    assert torch.equal(hflip_sample(flipped)["flow_bwd_t2hw"], sample["flow_bwd_t2hw"])
    assert torch.allclose(hflip_sample(flipped)["intrinsics_t33"], sample["intrinsics_t33"])


def test_random_augmentation_is_deterministic_and_queries_follow_tracks(item):
    sample = from_synthetic(item)
    config = AugmentConfig(crop_scale=(0.5, 0.9), flip_prob=0.5)
    outs = [
        augment_sample(sample, size=(28, 42), config=config, generator=torch.Generator().manual_seed(5))
        for _ in range(2)
    ]
    for key, value in outs[0].items():
        assert torch.equal(value, outs[1][key]), key
    out = choose_queries(outs[0], generator=torch.Generator().manual_seed(1), max_query_frame=3)
    valid = out["track_valid_n"]
    assert bool(valid.any())
    frames = out["queries_n3"][valid, 0].long()
    assert bool((frames < 3).all())
    n = torch.arange(frames.shape[0])
    assert bool(out["visibility_tn"][frames, valid.nonzero()[:, 0]].all())
    assert torch.allclose(out["queries_n3"][valid, 1:], out["tracks_tn2"][frames, valid.nonzero()[:, 0]])
    assert n.numel() == int(valid.sum())
    kept = subsample_tracks(out, 64, generator=torch.Generator().manual_seed(0))
    assert kept["tracks_tn2"].shape == (6, 64, 2) and int(kept["track_valid_n"].sum()) == int(valid.sum())


def test_first_query_prob_mixes_first_visible_and_random_query_frames(item):
    sample = from_synthetic(item)
    vis = sample["visibility_tn"] & sample["track_valid_n"][None]
    first_frame = vis.float().argmax(0)

    def frames(prob: float) -> torch.Tensor:
        out = choose_queries(sample, generator=torch.Generator().manual_seed(3), first_prob=prob)
        return out["queries_n3"][out["track_valid_n"], 0].long()

    valid = vis.any(0)
    assert torch.equal(frames(1.0), first_frame[valid])
    late = frames(0.0) != first_frame[valid]
    assert bool(late.any())  # random visible frames: some later than the first
    # The default draws nothing extra: the same queries as before the option existed.
    default = choose_queries(sample, generator=torch.Generator().manual_seed(3))
    assert torch.equal(default["queries_n3"][default["track_valid_n"], 0].long(), frames(0.0))
    # Half: some tracks at their first frame that the all-random draw put later, not all of them.
    half = frames(0.5)
    moved = half[late] == first_frame[valid][late]
    assert bool(moved.any()) and not bool(moved.all())


def test_first_query_prob_out_of_range_is_a_clear_error():
    from l4p.training.datamodule import L4PDataModule

    with pytest.raises(ValueError, match="first_query_prob must be in"):
        L4PDataModule(first_query_prob=1.5)


def test_first_query_prob_applies_to_training_clips_only():
    from l4p.training.datamodule import L4PDataModule

    data = L4PDataModule(
        num_frames=4, height=16, width=16, num_tracks=4, samples_per_epoch=4, first_query_prob=0.5
    )
    assert data.train_dataloader().dataset.first_query_prob == 0.5
    # Validation keeps random query frames: curves of runs with different shares stay comparable.
    assert data.val_dataloader().dataset.first_query_prob == 0.0
