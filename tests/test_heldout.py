"""Held-out scoring (`l4p.training.heldout`): the 3D row gets the clip's intrinsics, as TAPVid-3D does."""

from functools import partial

import torch

import l4p
from l4p.outputs import Prediction
from l4p.training.heldout import evaluate_clip, heldout_clips, predict_clip, score_clip, trivial_prediction


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
