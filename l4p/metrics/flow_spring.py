"""Spring optical-flow metrics as the benchmark server computes them.

Spring ground truth is stored at **twice** the image resolution (e.g. 2160x3840 for
1080x1920 images), NaN where unknown. The server (cv-stuttgart springwebsite,
``get_errors_flow``) scores a prediction at image resolution against the four GT samples of
each pixel, ``g[2i, 2j], g[2i+1, 2j], g[2i, 2j+1], g[2i+1, 2j+1]``:

- ``epe = min_k ‖g_k − f̂‖`` (float64); NaN when any of the four is NaN, and then excluded;
- EPE = nanmean(epe); 1px = 100·#(epe > 1)/N; Fl = 100·#(epe > 3 ∧ epe > 0.05·max_k‖g_k‖)/N;
- WAUC = 100·Σᵢ wᵢ·#(epe ≤ i/20) / (N·Σᵢ wᵢ), wᵢ = 1 − (i − 1)/100, i = 1..100;

with N the number of non-NaN pixels. Submissions are float16 (``as_submitted=True`` casts
the prediction first, as the upload format would). The server pools over its withheld pixel
subset of all test frames; on training data, pass each frame (or their concatenation).

Training-set practice in ``spring_utils`` (``GT[::2, ::2]`` and ordinary EPE) is not this
number; ``l4p.metrics.flow`` computes that one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["spring_endpoint_error", "spring_flow_scores"]


def _four_samples(gt: np.ndarray) -> np.ndarray:
    """(2H, 2W, 2) -> (H, W, 4, 2) in the order (2i,2j), (2i+1,2j), (2i,2j+1), (2i+1,2j+1)."""
    return np.stack([gt[0::2, 0::2], gt[1::2, 0::2], gt[0::2, 1::2], gt[1::2, 1::2]], axis=-2)


def spring_endpoint_error(
    *, pred: np.ndarray, gt: np.ndarray, as_submitted: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel Spring EPE and the largest GT vector length of each pixel.

    Args:
        pred: (H, W, 2) predicted flow (u, v) at image resolution, pixels.
        gt: (2H, 2W, 2) ground truth at twice the resolution, NaN where unknown, in pixels of
            the **image** resolution (as stored by Spring).
        as_submitted: Cast ``pred`` to float16 first, like a server submission.

    Returns:
        ``(epe (H, W) float64 with NaN = not scored, gt_len_max (H, W) float64)``.
    """
    if gt.shape[:2] != (2 * pred.shape[0], 2 * pred.shape[1]) or pred.shape[-1] != 2 or gt.shape[-1] != 2:
        raise ValueError(f"need pred (H, W, 2) and gt (2H, 2W, 2), got {pred.shape} and {gt.shape}")
    if as_submitted:
        pred = pred.astype(np.float16)
    samples = _four_samples(gt)
    diff = (samples - pred[:, :, None, :]).astype(np.float64)
    epe = np.min(np.linalg.norm(diff, axis=-1), axis=-1)
    gt_len_max = np.linalg.norm(samples.astype(np.float64), axis=-1).max(axis=-1)
    return epe, gt_len_max


def spring_flow_scores(
    *, epe: np.ndarray, gt_len_max: np.ndarray, region: np.ndarray | None = None
) -> dict[str, float]:
    """Spring scores, in percent except EPE, over the non-NaN pixels (of ``region`` if given).

    Args:
        epe: Per-pixel EPE from ``spring_endpoint_error`` (any shape; several frames may be
            concatenated).
        gt_len_max: Matching largest GT vector lengths.
        region: Optional bool mask of the same shape (e.g. ``~skymap``).

    Returns:
        ``epe``, ``px1_percent``, ``fl_percent``, ``wauc_percent``, ``num_pixels``.
    """
    scored = ~np.isnan(epe)
    if region is not None:
        scored &= region
    n = int(scored.sum())
    if n == 0:
        raise ValueError("no scored pixel")
    with np.errstate(invalid="ignore"):
        one_px = (epe > 1) & scored
        fl = (epe > 3) & (epe > 0.05 * gt_len_max) & scored
        wauc, sum_w = 0.0, 0.0
        for i in range(1, 101):
            w_i = 1 - ((i - 1) / 100.0)
            wauc += w_i * ((epe <= i / 20.0) & scored).sum()
            sum_w += w_i
    return {
        "epe": float(np.nanmean(np.where(scored, epe, np.nan))),
        "px1_percent": float(100 * one_px.sum() / n),
        "fl_percent": float(100 * fl.sum() / n),
        "wauc_percent": float(100 * wauc / (n * sum_w)),
        "num_pixels": n,
    }
