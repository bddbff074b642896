"""Detector-like 2D noise for synthetic training inputs.

What a real 2D detector does to a projected skeleton, and what is simulated here
(all in image pixels, sizes relative to the figure's height in the image):

- per-joint noise scale: torso joints are found precisely, wrists, ankles and the
  extremities less so (`JOINT_NOISE`), times a per-clip quality factor (sharp studio
  footage to a blurry phone clip);
- temporally correlated jitter: AR(1) noise, so errors persist over a few frames as they
  do for a detector tracking a blurred limb;
- outliers: a joint lands far away (on the other leg, on the background), sometimes a
  left/right swap of a whole limb pair;
- missing joints: occlusion spans during which a joint has no position and score 0;
- confidence that tracks the error: the score falls as the error grows, with some
  outliers still reported confidently (detectors are sometimes sure and wrong).
"""

from __future__ import annotations

import numpy as np

from ...core.skeleton import SKELETON

_J = SKELETON.index
#: Noise standard deviation per joint as a fraction of figure height (for quality 1).
JOINT_NOISE = np.full(SKELETON.num_joints, 0.010)
for _name, _sigma in (("pelvis", 0.008), ("spine", 0.010), ("thorax", 0.007),
                      ("neck_nose", 0.008), ("head_top", 0.016),
                      ("l_hip", 0.010), ("r_hip", 0.010), ("l_shoulder", 0.007),
                      ("r_shoulder", 0.007), ("l_knee", 0.011), ("r_knee", 0.011),
                      ("l_elbow", 0.012), ("r_elbow", 0.012), ("l_ankle", 0.013),
                      ("r_ankle", 0.013), ("l_wrist", 0.016), ("r_wrist", 0.016),
                      ("l_toe", 0.020), ("r_toe", 0.020), ("l_hand_end", 0.024),
                      ("r_hand_end", 0.024)):
    JOINT_NOISE[_J[_name]] = _sigma

_LIMB_PAIRS = (("l_knee", "r_knee"), ("l_ankle", "r_ankle"), ("l_wrist", "r_wrist"),
               ("l_elbow", "r_elbow"))


def figure_height_px(keypoints: np.ndarray) -> np.ndarray:
    """Height of the figure's 2D bounding box. keypoints (B, T, J, 2) -> (B, T)."""
    y = keypoints[..., 1]
    return np.maximum(np.nanmax(y, axis=-1) - np.nanmin(y, axis=-1), 1.0)


def add_detector_noise(rng: np.random.Generator, keypoints: np.ndarray,
                       clean_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Noisy keypoints and scores from clean projections.

    keypoints  (B, T, J, 2) clean image pixels
    returns    keypoints (B, T, J, 2) pixels with NaN where missing, scores (B, T, J)
    A `clean_fraction` of the windows gets almost no noise (like ground-truth 2D).
    """
    b, t, j, _ = keypoints.shape
    height = figure_height_px(keypoints)[..., None, None]                    # (B, T, 1, 1)
    quality = np.exp(rng.uniform(np.log(0.3), np.log(2.5), size=b))
    quality[rng.random(b) < clean_fraction] = 0.05
    sigma = JOINT_NOISE[None, None, :, None] * quality[:, None, None, None] * height

    # AR(1) jitter, stationary variance 1, correlation rho per window.
    rho = rng.uniform(0.0, 0.9, size=b)[:, None, None]
    white = rng.standard_normal((b, t, j, 2))
    jitter = np.empty_like(white)
    jitter[:, 0] = white[:, 0]
    scale = np.sqrt(1.0 - rho ** 2)
    for k in range(1, t):
        jitter[:, k] = rho * jitter[:, k - 1] + scale * white[:, k]
    error = sigma * jitter

    # Outliers: a joint thrown 5-30 % of the figure height away.
    p_out = rng.uniform(0.0, 0.03, size=b)[:, None, None]
    outlier = rng.random((b, t, j)) < p_out
    direction = rng.standard_normal((b, t, j, 2))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True) + 1e-9
    magnitude = rng.uniform(0.05, 0.3, size=(b, t, j, 1)) * height
    error = np.where(outlier[..., None], direction * magnitude, error)
    noisy = keypoints + error

    # Left/right swaps of a limb pair for a short span.
    for name_l, name_r in _LIMB_PAIRS:
        swap = rng.random((b, t)) < 0.004
        if swap.any():
            swap = _dilate(swap, rng.integers(1, 6))
            jl, jr = _J[name_l], _J[name_r]
            left = noisy[:, :, jl].copy()
            noisy[:, :, jl] = np.where(swap[..., None], noisy[:, :, jr], left)
            noisy[:, :, jr] = np.where(swap[..., None], left, noisy[:, :, jr])
            outlier[:, :, jl] |= swap
            outlier[:, :, jr] |= swap

    # Confidence follows the error (relative to figure height), with detector-like noise.
    rel = np.linalg.norm(noisy - keypoints, axis=-1) / height[..., 0]
    scores = np.exp(-0.5 * (rel / 0.04) ** 2) * rng.uniform(0.75, 1.0, size=(b, t, j))
    confident_outlier = outlier & (rng.random((b, t, j)) < 0.25)
    scores = np.where(confident_outlier, rng.uniform(0.5, 0.9, size=(b, t, j)), scores)

    # Missing joints: occlusion spans of 1-20 frames; also points out of the image.
    p_miss = rng.uniform(0.0, 0.01, size=b)[:, None, None]
    starts = rng.random((b, t, j)) < p_miss
    missing = _dilate_joints(starts, rng)
    missing[..., 0] = False  # the root (pelvis) is derived from the hips; kept visible
    noisy[missing] = np.nan
    scores[missing] = 0.0
    return noisy, np.clip(scores, 0.0, 1.0)


def _dilate(mask: np.ndarray, length: int) -> np.ndarray:
    """Extend each True in (B, T) forward in time by `length` - 1 frames."""
    out = mask.copy()
    for k in range(1, length):
        out[:, k:] |= mask[:, :-k]
    return out


def _dilate_joints(starts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Occlusion spans (B, T, J) of random length from span starts."""
    out = starts.copy()
    length = int(rng.integers(1, 21))
    for k in range(1, length):
        out[:, k:] |= starts[:, :-k]
    return out
