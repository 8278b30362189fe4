"""Spring's benchmark server in its own data layout: subsampled pixels, float16, speed regions.

Facts (cv-stuttgart ``springwebsite``: ``subsampling/flow_subsampling.cpp``,
``subsampling/create_evalfiles.py``, ``springeval/.../evaluation.py::get_errors_flow``):

- Order of the cases: for each test scene (``SPRING_TEST_SCENES``: scene, frame count), for each
  camera (left, right): FW frames 1..N-1, then BW frames N..2 (descending); the 10 hero frames
  (``SPRING_HERO_FRAMES``) are skipped there and appended at the end **in full** (all 1920x1080
  pixels, row-major).
- Each other case contributes ``REDUCED_SIZE = 51839`` pixels: with the list ``r`` of random
  steps, ``k = (frame · scene) mod len(r)``, the first pixel index is ``r[k]``, then
  ``k ← (k + 1) mod len(r)`` and the index grows by ``r[k]``; index → (row, col) =
  divmod(index, image width). The true ``r`` is withheld by the organisers (the public code
  holds the placeholder ``[40, 40, 40]``, mean 40).
- Submission (``flow_submission.hdf5``): dataset ``flow``, float16, (N, 2), the prediction at
  image resolution. GT eval file (``eval_flow.hdf5``): dataset ``flow``, float16, (N, 4, 2), the
  four samples ``g[2i,2j], g[2i+1,2j], g[2i,2j+1], g[2i+1,2j+1]`` of the double-resolution GT.
- Score: ``epe = min_k ‖g_k − f̂‖`` where the difference is taken **in float16** (both arrays
  are float16) and then cast to float64; NaN if any sample is NaN and then not counted.
  EPE = nanmean; 1px = 100·#(epe > 1)/N; Fl = 100·#(epe > 3 ∧ epe > 0.05·max_k‖g_k‖)/N; WAUC as
  in ``flow_spring``. Regions s0-10 / s10-40 / s40+ use the **mean of the four GT vector
  lengths ignoring NaN** (float64): < 10, [10, 40), >= 40. Because the server subtracts in
  float16, a local check must store its GT as float16 too (``to_server_gt`` does).

Scores here are kept as additive counts (``RegionCounts``) so that frames and scenes pool
exactly as the server pools all its pixels.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "REDUCED_SIZE",
    "SPEED_REGIONS",
    "SPRING_HERO_FRAMES",
    "SPRING_TEST_SCENES",
    "RegionCounts",
    "server_cases",
    "server_counts",
    "server_scores",
    "subsample_indices",
    "to_server_gt",
]

REDUCED_SIZE = 51840 - 1
SPRING_TEST_SCENES: tuple[tuple[int, int], ...] = (
    (3, 131), (19, 111), (28, 39), (29, 135), (31, 73), (34, 47), (35, 120), (40, 111), (42, 116), (46, 117),
)  # fmt: skip
SPRING_HERO_FRAMES: tuple[tuple[int, str, str, int], ...] = (
    (3, "FW", "left", 17), (19, "FW", "left", 55), (28, "FW", "left", 18), (29, "FW", "left", 68),
    (31, "FW", "left", 32), (34, "FW", "left", 24), (35, "FW", "left", 89), (40, "FW", "left", 55),
    (42, "FW", "left", 60), (46, "FW", "left", 47),
)  # fmt: skip
SPEED_REGIONS = ("s0-10", "s10-40", "s40+")
PUBLIC_PLACEHOLDER_STEPS = (40, 40, 40)


def server_cases(
    scenes: Sequence[tuple[int, int]] = SPRING_TEST_SCENES,
    hero: Sequence[tuple[int, str, str, int]] = SPRING_HERO_FRAMES,
    cams: Sequence[str] = ("left", "right"),
) -> tuple[list[tuple[int, str, str, int]], list[tuple[int, str, str, int]]]:
    """``(subsampled cases, hero cases)`` as (scene, direction, cam, frame), in server order."""
    hero_set = set(hero)
    cases = []
    for scene, count in scenes:
        for cam in cams:
            ordered = [(scene, "FW", cam, f) for f in range(1, count)]
            ordered += [(scene, "BW", cam, f) for f in range(count, 1, -1)]
            cases += [c for c in ordered if c not in hero_set]
    return cases, list(hero)


def subsample_indices(
    *,
    scene: int,
    frame: int,
    width: int,
    steps: Sequence[int] = PUBLIC_PLACEHOLDER_STEPS,
    size: int = REDUCED_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the ``size`` pixels the server keeps of one case (image resolution)."""
    steps_arr = np.asarray(steps, dtype=np.int64)
    start = (frame * scene) % len(steps_arr)
    order = (start + np.arange(size)) % len(steps_arr)  # step k is added before pixel k
    index = np.cumsum(steps_arr[order])
    return index // width, index % width


def to_server_gt(
    gt_2x: np.ndarray, rows: np.ndarray | None = None, cols: np.ndarray | None = None
) -> np.ndarray:
    """(n, 4, 2) float16 GT samples of the given pixels (all pixels, row-major, when None)."""
    samples = np.stack([gt_2x[0::2, 0::2], gt_2x[1::2, 0::2], gt_2x[0::2, 1::2], gt_2x[1::2, 1::2]], axis=-2)
    flat = samples.reshape(-1, 4, 2) if rows is None else samples[rows, cols]
    return flat.astype(np.float16)


@dataclass
class RegionCounts:
    """Additive counts of one region: pixels, Σ epe, #1px, #Fl, Σ_i w_i #(epe ≤ i/20)."""

    n: int = 0
    epe_sum: float = 0.0
    px1: int = 0
    fl: int = 0
    wauc_sum: float = 0.0

    def add(self, other: RegionCounts) -> None:
        """Accumulate ``other`` into this."""
        self.n += other.n
        self.epe_sum += other.epe_sum
        self.px1 += other.px1
        self.fl += other.fl
        self.wauc_sum += other.wauc_sum

    def scores(self) -> dict[str, float]:
        """EPE, 1px %, Fl %, WAUC % and the pixel count (NaN scores for an empty region)."""
        if self.n == 0:
            return {"epe": float("nan"), "px1_percent": float("nan"), "fl_percent": float("nan"),
                    "wauc_percent": float("nan"), "num_pixels": 0}  # fmt: skip
        sum_w = sum(1 - (i - 1) / 100.0 for i in range(1, 101))
        return {"epe": self.epe_sum / self.n, "px1_percent": 100 * self.px1 / self.n,
                "fl_percent": 100 * self.fl / self.n, "wauc_percent": 100 * self.wauc_sum / (self.n * sum_w),
                "num_pixels": self.n}  # fmt: skip


def _counts(epe: np.ndarray, gt_len_max: np.ndarray, region: np.ndarray) -> RegionCounts:
    scored = region & ~np.isnan(epe)
    e, m = epe[scored], gt_len_max[scored]
    wauc = sum((1 - (i - 1) / 100.0) * int((e <= i / 20.0).sum()) for i in range(1, 101))
    return RegionCounts(n=int(e.size), epe_sum=float(e.sum()), px1=int((e > 1).sum()),
                        fl=int(((e > 3) & (e > 0.05 * m)).sum()), wauc_sum=float(wauc))  # fmt: skip


def server_counts(
    submission: np.ndarray, gt: np.ndarray, maps: dict[str, np.ndarray] | None = None
) -> dict[str, RegionCounts]:
    """Counts of ``total``, the speed regions and any extra bool ``maps`` (each (N,)).

    Args:
        submission: (N, 2) prediction; cast to float16 as the upload format stores it.
        gt: (N, 4, 2) GT samples; cast to float16 as the server's eval file stores them.
        maps: Optional named bool masks (e.g. ``{"sky": ...}``).
    """
    sub16, gt16 = np.asarray(submission).astype(np.float16), np.asarray(gt).astype(np.float16)
    if sub16.ndim != 2 or gt16.shape != (sub16.shape[0], 4, 2):
        raise ValueError(f"need submission (N, 2) and GT (N, 4, 2), got {sub16.shape} and {gt16.shape}")
    epe = np.linalg.norm((gt16 - sub16[:, None, :]).astype(np.float64), axis=2).min(axis=1)
    lengths = np.linalg.norm(gt16.astype(np.float64), axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN pixels: NaN mean
        mean_len = np.nanmean(lengths, axis=1)
    len_max = lengths.max(axis=1)
    regions = {"total": np.ones(epe.shape, bool), "s0-10": mean_len < 10,
               "s10-40": (mean_len >= 10) & (mean_len < 40), "s40+": mean_len >= 40}  # fmt: skip
    regions.update(maps or {})
    return {name: _counts(epe, len_max, region) for name, region in regions.items()}


def pool_counts(parts: Iterable[dict[str, RegionCounts]]) -> dict[str, RegionCounts]:
    """Sum the counts of several frames / scenes region by region."""
    out: dict[str, RegionCounts] = {}
    for part in parts:
        for name, counts in part.items():
            out.setdefault(name, RegionCounts()).add(counts)
    return out


def server_scores(
    submission: np.ndarray, gt: np.ndarray, maps: dict[str, np.ndarray] | None = None
) -> dict[str, dict[str, float]]:
    """The server's numbers per region (``total``, ``s0-10``, ``s10-40``, ``s40+``, maps)."""
    return {name: c.scores() for name, c in server_counts(submission, gt, maps).items()}
