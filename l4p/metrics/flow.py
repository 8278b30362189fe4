"""Optical-flow metrics: end-point error, n-px accuracy / outlier rates, KITTI Fl.

Names used throughout (all values are fractions in [0, 1]; multiply by 100 for percent):
- ``epe``: end-point error ``‖f̂ − f‖₂`` in pixels.
- ``acc_{1,3,5}px``: fraction of pixels with ``epe < n`` ("fraction **below**"; what RAFT's
  Sintel validation prints as 1px / 3px / 5px).
- ``outlier_{1,3,5}px``: fraction with ``epe > n`` (the "n-px error / outlier rate" many papers
  report; Spring's "1px"). ``acc + outlier = 1`` except for pixels exactly at ``n``.
- ``fl``: KITTI outliers, ``epe > 3`` **and** ``epe / ‖f‖ > 0.05`` (RAFT's form of the devkit test).

Averaging conventions (RAFT ``evaluate.py``, the de-facto protocol):
- Sintel: every pixel of every pair of a pass, no mask; EPE and n-px fractions **pooled** over
  all pixels of the dataset (``FlowAccumulator.summary()["epe_pooled"]``, ``acc_*``).
- KITTI: EPE averaged over the valid pixels of each image, then over images
  (``epe_image_mean``); Fl pooled over all valid pixels of the dataset (``fl``).

Per-pixel EPE is computed in the inputs' dtype (float32 for the file formats), as RAFT does in
torch, so EPE maps equal RAFT's bit for bit; per-image means use torch's float32 ``mean`` as
RAFT does (``l4p.metrics._torch_mean``). Pooled means: ``FlowAccumulator(exact=True)`` keeps
the maps and takes ``np.mean`` of their concatenation in float32 exactly as RAFT; the default
accumulates float64 sums instead (memory-light; differs only by float32 rounding, ~1e-6 relative).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from l4p.metrics._torch_mean import torch_mean

logger = logging.getLogger(__name__)

__all__ = ["FLOW_THRESHOLDS_PX", "FlowAccumulator", "endpoint_error", "flow_scores", "sintel_eval_mask"]

FLOW_THRESHOLDS_PX: tuple[int, ...] = (1, 3, 5)


def endpoint_error(*, pred: np.ndarray, gt: np.ndarray, channel_axis: int = -1) -> np.ndarray:
    """Per-pixel end-point error.

    Args:
        pred: Predicted flow with a 2-long (u, v) axis, e.g. (H, W, 2) or (2, H, W).
        gt: Ground-truth flow, same shape.
        channel_axis: The (u, v) axis (-1 for the readers' (H, W, 2), 0 for (2, H, W)).

    Returns:
        ``sqrt(Σ (pred − gt)²)`` over the channel axis, in the inputs' (promoted) dtype.
    """
    if pred.shape != gt.shape or pred.shape[channel_axis] != 2:
        raise ValueError(
            f"pred {pred.shape} and gt {gt.shape} must match with 2 channels on axis {channel_axis}"
        )
    return np.sqrt(np.sum(np.square(pred - gt), axis=channel_axis))


def _fl_outliers(epe: np.ndarray, gt_mag: np.ndarray) -> np.ndarray:
    """KITTI outlier test ``epe > 3 and epe / |gt| > 0.05`` (0/0 counts as not an outlier)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (epe > 3.0) & ((epe / gt_mag) > 0.05)


def _scored_pixels(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None, channel_axis: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel EPE and ground-truth magnitude at the scored pixels, flattened."""
    epe = endpoint_error(pred=pred, gt=gt, channel_axis=channel_axis)
    mag = np.sqrt(np.sum(np.square(gt), axis=channel_axis))
    if valid is not None:
        epe, mag = epe[valid], mag[valid]
    return epe.reshape(-1), mag.reshape(-1)


def flow_scores(
    *, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None, channel_axis: int = -1
) -> dict[str, float]:
    """Scores of one flow field over its valid pixels.

    Args:
        pred: Predicted flow, (H, W, 2) by default (see ``channel_axis``).
        gt: Ground truth, same shape.
        valid: (H, W) bool mask of pixels to score (e.g. KITTI valid, or ``sintel_eval_mask``);
            None scores every pixel.
        channel_axis: The (u, v) axis.

    Returns:
        ``epe`` (mean over the scored pixels), ``acc_{1,3,5}px``, ``outlier_{1,3,5}px``,
        ``fl`` and ``num_pixels``. NaN scores when no pixel is scored.
    """
    epe, mag = _scored_pixels(pred, gt, valid, channel_axis)
    if epe.size == 0:
        logger.warning("flow_scores: no valid pixel")
        return {**{k: float("nan") for k in _score_names()}, "num_pixels": 0}
    out = {"epe": torch_mean(epe)}
    for n in FLOW_THRESHOLDS_PX:
        out[f"acc_{n}px"] = float(np.mean(epe < n))
        out[f"outlier_{n}px"] = float(np.mean(epe > n))
    out["fl"] = float(np.mean(_fl_outliers(epe, mag)))
    out["num_pixels"] = int(epe.size)
    return out


def _score_names() -> list[str]:
    names = ["epe"]
    for n in FLOW_THRESHOLDS_PX:
        names += [f"acc_{n}px", f"outlier_{n}px"]
    return [*names, "fl"]


def sintel_eval_mask(
    *,
    occluded: np.ndarray | None = None,
    invalid: np.ndarray | None = None,
    region: Literal["all", "noc", "occ"] = "all",
    exclude_invalid: bool = False,
) -> np.ndarray | None:
    """Pixels to score for a Sintel pair.

    ``"all"`` scores every pixel (RAFT's convention, and the server's "all"); ``"noc"``
    (the server's "matched") only pixels not occluded in the next frame; ``"occ"``
    ("unmatched") only occluded ones. ``exclude_invalid`` also drops the pixels of the
    ``invalid`` mask (our option; whether the server drops them is not confirmed).

    Args:
        occluded: (H, W) bool from ``occlusions/`` (needed for "noc"/"occ").
        invalid: (H, W) bool from ``invalid/`` (needed with ``exclude_invalid``).
        region: Which pixels.
        exclude_invalid: Drop invalid pixels.

    Returns:
        (H, W) bool mask, or None when every pixel is scored.
    """
    mask = None
    if region != "all":
        if occluded is None:
            raise ValueError(f"region {region!r} needs the occlusion mask")
        mask = np.logical_not(occluded) if region == "noc" else np.asarray(occluded, dtype=bool)
    if exclude_invalid:
        if invalid is None:
            raise ValueError("exclude_invalid needs the invalid mask")
        keep = np.logical_not(invalid)
        mask = keep if mask is None else mask & keep
    return mask


class FlowAccumulator:
    """Dataset-level flow scores, fed one image at a time.

    Args:
        exact: Keep every scored pixel's EPE and Fl flag (float32) and pool with ``np.mean``
            of the concatenation, reproducing RAFT's numbers bit for bit (memory: 8 bytes per
            scored pixel). False pools float64 sums instead.
    """

    def __init__(self, *, exact: bool = False) -> None:
        self.exact = exact
        self._epe_maps: list[np.ndarray] = []
        self._fl_maps: list[np.ndarray] = []
        self._image_epe: list[float] = []
        self._sum = 0.0
        self._count = 0
        self._below = dict.fromkeys(FLOW_THRESHOLDS_PX, 0)
        self._above = dict.fromkeys(FLOW_THRESHOLDS_PX, 0)
        self._fl = 0

    def update(
        self, *, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None, channel_axis: int = -1
    ) -> None:
        """Add one image: flows as in ``flow_scores``; ``valid`` (H, W) bool or None (all pixels)."""
        epe, mag = _scored_pixels(pred, gt, valid, channel_axis)
        if epe.size == 0:
            logger.warning("FlowAccumulator: image without valid pixels skipped")
            return
        fl = _fl_outliers(epe, mag)
        self._image_epe.append(torch_mean(epe))
        if self.exact:
            self._epe_maps.append(epe)
            self._fl_maps.append(fl.astype(np.float32))
        self._sum += float(np.sum(epe, dtype=np.float64))
        self._count += epe.size
        for n in FLOW_THRESHOLDS_PX:
            self._below[n] += int(np.count_nonzero(epe < n))
            self._above[n] += int(np.count_nonzero(epe > n))
        self._fl += int(np.count_nonzero(fl))

    def summary(self) -> dict[str, float]:
        """Dataset scores.

        Returns:
            ``epe_pooled`` (mean over all scored pixels: the Sintel number), ``epe_image_mean``
            (mean of per-image means: the KITTI number), ``acc_{1,3,5}px`` and
            ``outlier_{1,3,5}px`` (pooled), ``fl`` (pooled; KITTI Fl-all / 100),
            ``num_pixels``, ``num_images``.
        """
        if self._count == 0:
            raise ValueError("no pixel was accumulated")
        if self.exact:
            epe_pooled = float(np.mean(np.concatenate(self._epe_maps)))
            fl = float(np.mean(np.concatenate(self._fl_maps)))
        else:
            epe_pooled, fl = self._sum / self._count, self._fl / self._count
        out = {"epe_pooled": epe_pooled, "epe_image_mean": float(np.mean(np.array(self._image_epe)))}
        for n in FLOW_THRESHOLDS_PX:
            out[f"acc_{n}px"] = self._below[n] / self._count
            out[f"outlier_{n}px"] = self._above[n] / self._count
        out["fl"] = fl
        out["num_pixels"] = float(self._count)
        out["num_images"] = float(len(self._image_epe))
        return out
