"""The L4P paper's reported numbers (Badki et al., 3DV 2026), keyed by protocol and metric.

Transcribed from the paper's tables (``L4P`` rows; depth also ``L4P*``, the overlapping-window
alignment of its Sec. 3.2, which is what ``predict`` does by default). Units are those of our
summaries: fractions for AbsRel, δ1 and the TAP metrics are stored ×100 here because the paper
prints them so, and ``PaperNumber.scale`` says how to compare (our value × scale).
Protocols the paper does not report (the peers' flow benchmarks, TAP-Vid, camera pose) have none.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PAPER_L4P", "PaperNumber"]


@dataclass(frozen=True)
class PaperNumber:
    """One reported value.

    Attributes:
        metric: Key of our summary's ``scores`` dict.
        label: Column label.
        value: The paper's number, as printed.
        scale: Multiply our value by this to compare (100 for fractions printed in percent).
        note: Where it comes from.
        digits: Decimals the paper prints.
    """

    metric: str
    label: str
    value: float
    scale: float = 1.0
    note: str = ""
    digits: int = 1


def _depth(abs_rel: float, delta1: float, star: tuple[float, float]) -> tuple[PaperNumber, ...]:
    return (
        PaperNumber("abs_rel", "AbsRel", abs_rel, 1.0, "Table 1, L4P", 3),
        PaperNumber("delta1", "δ1 %", 100 * delta1, 100.0, "Table 1, L4P"),
        PaperNumber("abs_rel", "AbsRel (L4P*)", star[0], 1.0, "Table 1, L4P* (windows aligned)", 3),
        PaperNumber("delta1", "δ1 % (L4P*)", 100 * star[1], 100.0, "Table 1, L4P* (windows aligned)"),
    )


def _flow(epe: float, acc1: float, note: str) -> tuple[PaperNumber, ...]:
    return (
        PaperNumber("epe", "EPE", epe, 1.0, note, 2),
        PaperNumber("acc_1px", "EPE<1 %", acc1, 100.0, note),
    )


def _tap3d_2d(aj: float, apd: float | None = None, oa: float | None = None) -> tuple[PaperNumber, ...]:
    out = [PaperNumber("average_jaccard", "2D-AJ", aj, 100.0, "Table 3")]
    if apd is not None:
        out.append(PaperNumber("average_pts_within_thresh", "APD", apd, 100.0, "Table 3"))
    if oa is not None:
        out.append(PaperNumber("occlusion_accuracy", "OA", oa, 100.0, "Table 3"))
    return tuple(out)


PAPER_L4P: dict[str, tuple[PaperNumber, ...]] = {
    "depth-sintel": _depth(0.263, 0.662, (0.247, 0.691)),
    "depth-scannet": _depth(0.103, 0.898, (0.072, 0.951)),
    "depth-kitti": _depth(0.093, 0.924, (0.090, 0.928)),
    "depth-bonn": _depth(0.060, 0.973, (0.058, 0.973)),
    "depth-nyuv2": _depth(0.081, 0.925, (0.081, 0.925)),
    "flow-kubric": _flow(0.13, 97.6, "Table 2 (seen in training)"),
    "flow-dynamic-replica": _flow(0.03, 99.9, "Table 2 (seen in training)"),
    "flow-spring-224": _flow(0.10, 98.5, "Table 2"),
    "tapvid3d-2d": _tap3d_2d(51.2, 67.0, 88.7),
    "tapvid3d": (
        PaperNumber("average_jaccard", "3D-AJ", 12.1, 100.0, "Table 4, full_eval, overall"),
        PaperNumber("average_pts_within_thresh", "APD3D", 19.1, 100.0, "Table 4, full_eval, overall"),
        PaperNumber("occlusion_accuracy", "OA", 88.7, 100.0, "Table 4, full_eval, overall"),
    ),
    "motion-vkitti": (PaperNumber("iou", "fg IoU %", 46.7, 100.0, "Sec. 4.6"),),
    "motion-spring": (PaperNumber("iou", "fg IoU %", 23.7, 100.0, "Sec. 4.6"),),
}
"""Protocol name -> the paper's L4P numbers (absent: the paper reports none)."""

PAPER_SUBSET_2D_AJ = {"adt": 53.0, "drivetrack": 51.6, "pstudio": 48.8}
"""Table 3 per-subset 2D-AJ of L4P (Aria = adt, DriveTrack, Panoptic Studio)."""

PAPER_SUBSET_3D = {
    "adt": (11.2, 17.7, 90.3),
    "drivetrack": (6.6, 11.4, 88.1),
    "pstudio": (18.6, 28.2, 87.6),
}
"""Table 4 per-subset (3D-AJ, APD3D, OA) of L4P on full_eval."""
