"""Pose metrics, in the units of their inputs (metres in, metres out).

MPJPE: mean per-joint position error after aligning roots (Human3.6M protocol #1).
P-MPJPE: MPJPE after the rigid alignment with scale that best fits the prediction to
the truth (Procrustes, protocol #2). Velocity error: mean per-joint error of the first
time difference, which measures jitter (Pavllo et al., CVPR 2019).
"""

from __future__ import annotations

import numpy as np


def mpjpe(pred: np.ndarray, target: np.ndarray) -> float:
    """(..., J, 3) root-relative poses -> mean joint distance."""
    return float(np.linalg.norm(pred - target, axis=-1).mean())


def per_joint_error(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(..., J, 3) -> (..., J) distances."""
    return np.linalg.norm(pred - target, axis=-1)


def procrustes_align(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Align each pose of pred (N, J, 3) to target (N, J, 3) by rotation, scale and
    translation (least squares; Umeyama 1991). Returns the aligned predictions."""
    mu_p = pred.mean(axis=1, keepdims=True)
    mu_t = target.mean(axis=1, keepdims=True)
    p = pred - mu_p
    t = target - mu_t
    cov = np.einsum("nji,njk->nik", p, t)
    u, sing, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    fix = np.ones_like(sing)
    fix[:, -1] = d
    rot = np.einsum("nij,nj,njk->nik", u, fix, vt)
    scale = (sing * fix).sum(axis=1) / np.maximum((p ** 2).sum(axis=(1, 2)), 1e-12)
    return scale[:, None, None] * np.einsum("nji,nik->njk", p, rot) + mu_t


def p_mpjpe(pred: np.ndarray, target: np.ndarray) -> float:
    """MPJPE after Procrustes alignment. (N, J, 3) each."""
    return mpjpe(procrustes_align(pred, target), target)


def velocity_error(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean per-joint error of frame-to-frame velocity. (T, J, 3) or (B, T, J, 3)."""
    return mpjpe(np.diff(pred, axis=-3), np.diff(target, axis=-3))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two flat arrays (average ranks for ties)."""
    return float(np.corrcoef(_ranks(np.ravel(a)), _ranks(np.ravel(b)))[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    # Average the ranks of tied values.
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]
