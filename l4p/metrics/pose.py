"""Camera-trajectory metrics: ATE after Sim(3) alignment, RTE and RRE.

Definitions (the ``evo`` conventions used by MonST3R-style Sintel/TUM/Bonn pose evaluation;
that L4P reports these exact statistics is **unverified**):

- Poses are turned into camera-to-world ``P_i`` (prediction) and ``Q_i`` (GT), OpenCV axes.
- Alignment: one similarity ``(s, R, t)`` from Umeyama's closed form on the camera
  **centres**, ``c_gt ≈ s·R·c_pred + t``; applied to the prediction as ``R_i ← R·R_i``,
  ``c_i ← s·R·c_i + t``. ``align="se3"`` fixes s = 1, ``"none"`` skips it.
- ATE: ``‖c_i − c_gt,i‖`` per frame, GT units (metres for metric GT).
- RTE / RRE: per consecutive pair (i, i+Δ), ``E = (Q_i⁻¹ Q_{i+Δ})⁻¹ (P_i⁻¹ P_{i+Δ})``;
  RTE = ``‖translation(E)‖`` (GT units), RRE = rotation angle of E in **degrees**.
- Each is reduced over frames (ATE) or pairs (RTE, RRE) by ``"rmse"`` (evo's ``stats["rmse"]``,
  the default) or ``"mean"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["PoseScores", "camera_to_world", "pose_metrics", "rotation_angle_deg", "umeyama_similarity"]


@dataclass(frozen=True)
class PoseScores:
    """Trajectory scores.

    Attributes:
        ate: Absolute trajectory error (GT units).
        rte: Relative translation error (GT units).
        rre: Relative rotation error (degrees).
        scale: Alignment scale s applied to the prediction (1 unless ``align="sim3"``).
    """

    ate: float
    rte: float
    rre: float
    scale: float


def umeyama_similarity(
    *, src: np.ndarray, dst: np.ndarray, with_scale: bool = True
) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ s·R·src + t`` (Umeyama 1991).

    Args:
        src: (N, D) points to move.
        dst: (N, D) target points.
        with_scale: Estimate s; otherwise s = 1 (rigid fit).

    Returns:
        ``(s, R (D, D) proper rotation, t (D,))``.
    """
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2:
        raise ValueError(f"need matching (N, D) point sets, got {src.shape} and {dst.shape}")
    mu_src, mu_dst = src.mean(axis=0), dst.mean(axis=0)
    x_src, x_dst = src - mu_src, dst - mu_dst
    var_src = np.mean(np.sum(np.square(x_src), axis=1))
    cov = x_dst.T @ x_src / src.shape[0]
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(src.shape[1])
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = (u * sign) @ vt
    if with_scale and var_src > 0:
        scale = float(np.sum(d * sign) / var_src)
    else:
        if with_scale:
            logger.warning("umeyama_similarity: source points coincide; scale set to 1")
        scale = 1.0
    return scale, rot, mu_dst - scale * rot @ mu_src


def camera_to_world(*, poses: np.ndarray, convention: Literal["w2c", "c2w"] = "w2c") -> np.ndarray:
    """(T, 4, 4) camera-to-world matrices from (T, 4, 4) or (T, 3, 4) poses.

    Args:
        poses: Rigid poses; ``convention`` says whether they map world → camera (``"w2c"``,
            the library's ``extrinsics``) or camera → world.
        convention: ``"w2c"`` or ``"c2w"``.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"poses must be (T, 4, 4) or (T, 3, 4), got {poses.shape}")
    full = np.tile(np.eye(4), (poses.shape[0], 1, 1))
    full[:, :3] = poses[:, :3]
    if convention == "c2w":
        return full
    rot_t = np.transpose(full[:, :3, :3], (0, 2, 1))
    inv = np.tile(np.eye(4), (poses.shape[0], 1, 1))
    inv[:, :3, :3] = rot_t
    inv[:, :3, 3] = -np.einsum("tij,tj->ti", rot_t, full[:, :3, 3])
    return inv


def rotation_angle_deg(rot: np.ndarray) -> np.ndarray:
    """Rotation angle of (..., 3, 3) rotations in degrees, in [0, 180].

    Uses ``atan2(|sin θ|, cos θ)`` from the skew and trace parts (accurate near 0 and 180).
    """
    cos = (np.trace(rot, axis1=-2, axis2=-1) - 1.0) / 2.0
    skew = np.stack(
        [rot[..., 2, 1] - rot[..., 1, 2], rot[..., 0, 2] - rot[..., 2, 0], rot[..., 1, 0] - rot[..., 0, 1]],
        axis=-1,
    )
    sin = np.linalg.norm(skew, axis=-1) / 2.0
    return np.degrees(np.arctan2(sin, cos))


def _reduce(x: np.ndarray, reduction: Literal["rmse", "mean"]) -> float:
    if x.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean(np.square(x)))) if reduction == "rmse" else float(np.mean(x))


def pose_metrics(
    *,
    pred_poses: np.ndarray,
    gt_poses: np.ndarray,
    convention: Literal["w2c", "c2w"] = "w2c",
    align: Literal["sim3", "se3", "none"] = "sim3",
    reduction: Literal["rmse", "mean"] = "rmse",
    delta: int = 1,
) -> PoseScores:
    """ATE, RTE and RRE of a predicted camera trajectory.

    Args:
        pred_poses: (T, 4, 4) or (T, 3, 4) predicted poses (any scale with ``align="sim3"``).
        gt_poses: Same shape, ground truth.
        convention: ``"w2c"`` (the library's ``extrinsics``) or ``"c2w"``, for both inputs.
        align: ``"sim3"`` (Umeyama with scale), ``"se3"`` (rigid) or ``"none"``.
        reduction: ``"rmse"`` or ``"mean"`` over frames / pairs.
        delta: Frame gap of the relative-error pairs.

    Returns:
        ``PoseScores``; RTE/RRE are NaN when T ≤ delta.
    """
    if delta < 1:
        raise ValueError(f"delta must be >= 1, got {delta}")
    pred = camera_to_world(poses=pred_poses, convention=convention)
    gt = camera_to_world(poses=gt_poses, convention=convention)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} trajectories differ in length")
    scale = 1.0
    if align != "none":
        scale, rot, trans = umeyama_similarity(
            src=pred[:, :3, 3], dst=gt[:, :3, 3], with_scale=align == "sim3"
        )
        pred = pred.copy()
        pred[:, :3, :3] = rot @ pred[:, :3, :3]
        pred[:, :3, 3] = scale * pred[:, :3, 3] @ rot.T + trans
    ate = np.linalg.norm(pred[:, :3, 3] - gt[:, :3, 3], axis=-1)
    rel_gt = np.linalg.inv(gt[:-delta]) @ gt[delta:]
    rel_pred = np.linalg.inv(pred[:-delta]) @ pred[delta:]
    err = np.linalg.inv(rel_gt) @ rel_pred
    rte = np.linalg.norm(err[:, :3, 3], axis=-1)
    rre = rotation_angle_deg(err[:, :3, :3])
    return PoseScores(
        ate=_reduce(ate, reduction), rte=_reduce(rte, reduction), rre=_reduce(rre, reduction), scale=scale
    )
