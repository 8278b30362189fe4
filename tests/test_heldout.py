"""Held-out scoring (`l4p.training.heldout`): the 3D row gets the clip's intrinsics, as TAPVid-3D does."""

from functools import partial

import torch

import l4p
from l4p.outputs import Prediction
from l4p.training.heldout import (
    evaluate_clip,
    flow_chained_tracks,
    heldout_clips,
    predict_clip,
    score_clip,
    trivial_prediction,
)


def _oracle(clip, *, known_intrinsics: bool = False) -> Prediction:
    """The ground truth as a prediction (3D tracks exact only when the intrinsics are given)."""
    pred = trivial_prediction(clip, known_intrinsics=known_intrinsics)
    pred.tracks, pred.visibility = clip["tracks_tn2"][None], clip["visibility_tn"][None].bool()
    pred.tracks_3d = clip["tracks3d_tn3"][None] if known_intrinsics else pred.tracks_3d
    return pred


def test_evaluate_clip_scores_3d_tracks_from_the_prediction_with_the_intrinsics_given():
    (clip,) = heldout_clips(1, num_tracks=8)
    scores = evaluate_clip(_oracle, clip)
    assert scores["aj"] == 1.0 and scores["oa"] == 1.0
    assert scores["aj_3d"] == 1.0 and scores["aj_3d_est_k"] < 0.5
    assert torch.isnan(torch.tensor(score_clip(_oracle(clip), clip)["aj_3d"]))


def test_known_intrinsics_reach_the_model_and_the_trivial_baseline():
    (clip,) = heldout_clips(1, num_tracks=8)
    k = clip["intrinsics_t33"]
    model = l4p.load_model("l4p_test", device="cpu")
    pred = partial(predict_clip, model)(clip, known_intrinsics=True)
    assert torch.allclose(pred.intrinsics[0].float(), k.float())
    # The 3D tracks project back to the 2D tracks through the given K.
    proj = torch.einsum("tij,tnj->tni", k.float(), pred.tracks_3d[0])
    assert torch.allclose(
        proj[..., :2] / proj[..., 2:], pred.tracks[0], atol=1e-3, equal_nan=True
    )  # NaN: before the query
    trivial = trivial_prediction(clip, known_intrinsics=True)
    proj = torch.einsum("tij,tnj->tni", k.float(), trivial.tracks_3d[0])
    assert torch.allclose(proj[..., :2] / proj[..., 2:], trivial.tracks[0], atol=1e-4)
    assert not torch.allclose(trivial_prediction(clip).tracks_3d, trivial.tracks_3d)


def test_flow_chained_tracks_follow_a_translation_from_each_query_frame():
    flow = torch.zeros(6, 2, 20, 30)
    flow[:, 0], flow[:, 1] = -1.5, 0.5  # every pixel of frame t came from (x - 1.5, y + 0.5) in t - 1
    queries = torch.tensor([[0.0, 3.0, 10.0], [2.0, 10.0, 4.0]])
    tracks = flow_chained_tracks(flow, queries)
    steps = torch.arange(6.0)
    assert torch.allclose(tracks[:, 0], torch.stack([3 + 1.5 * steps, 10 - 0.5 * steps], -1), atol=1e-4)
    after = (steps - 2).clamp(min=0)
    assert torch.allclose(tracks[:, 1], torch.stack([10 + 1.5 * after, 4 - 0.5 * after], -1), atol=1e-4)


def test_flow_chained_tracks_through_the_ground_truth_flow_stay_on_the_ground_truth_tracks():
    (clip,) = heldout_clips(1, num_tracks=16)
    tracks = flow_chained_tracks(clip["flow_bwd_t2hw"], clip["queries_n3"])
    after = torch.arange(tracks.shape[0])[:, None] > clip["queries_n3"][None, :, 0]
    # visible all the way from the query: chaining never crossed an occlusion
    seen = torch.cumprod(torch.where(after, clip["visibility_tn"].float(), 1.0), dim=0).bool() & after
    err = (tracks - clip["tracks_tn2"]).norm(dim=-1)[seen]
    assert seen.sum() > 50 and err.median() < 0.3
    assert (clip["tracks_tn2"] - clip["queries_n3"][None, :, 1:]).norm(dim=-1)[seen].median() > 3
