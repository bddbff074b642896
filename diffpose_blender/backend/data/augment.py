"""Augmentations of 3D mocap windows (world metres, Z up) for training.

The licence-clean corpus is small (about 45 minutes), so variety comes from here:
left/right mirroring, bone-length scaling, playback speed, and new poses made by joining
the upper body of one clip to the lower body of another at the same moment. Also the
offset between mocap joints and a detector's joints (a detector's hip points sit on the
surface of the thighs, its head top on the hair line), applied to the 2D source only.
"""

from __future__ import annotations

import numpy as np

from ...core.skeleton import SKELETON

_J = SKELETON.index
PARENTS = np.array(SKELETON.parents)
MIRROR = np.array(SKELETON.mirror)
UPPER_BODY = np.array([_J[n] for n in SKELETON.names
                       if n in ("spine", "thorax", "neck_nose", "head_top", "l_shoulder",
                                "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
                                "l_hand_end", "r_hand_end")])
FEET = np.array([_J["l_ankle"], _J["r_ankle"], _J["l_toe"], _J["r_toe"]])


def sample_windows(rng: np.random.Generator, clips: list[np.ndarray], count: int,
                   length: int, speed_range: tuple[float, float] = (0.7, 1.4)) -> np.ndarray:
    """`count` windows of `length` frames (count, length, J, 3), clips drawn by length,
    each played back at a random speed (linear interpolation between frames)."""
    sizes = np.array([len(c) for c in clips], dtype=np.float64)
    chosen = rng.choice(len(clips), size=count, p=sizes / sizes.sum())
    out = np.empty((count, length) + clips[0].shape[1:], dtype=np.float64)
    for i, c in enumerate(chosen):
        clip = clips[c]
        speed = rng.uniform(*speed_range)
        span = min((length - 1) * speed, len(clip) - 1)
        start = rng.uniform(0.0, len(clip) - 1 - span)
        t = start + np.linspace(0.0, span, length)
        lo = np.floor(t).astype(int)
        hi = np.minimum(lo + 1, len(clip) - 1)
        frac = (t - lo)[:, None, None]
        out[i] = clip[lo] * (1 - frac) + clip[hi] * frac
    return out


def mirror(windows: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mirror the windows where mask (B,) is set: world x -> -x and left <-> right."""
    flipped = windows[:, :, MIRROR].copy()
    flipped[..., 0] *= -1.0
    return np.where(mask[:, None, None, None], flipped, windows)


def scale_bones(rng: np.random.Generator, windows: np.ndarray) -> np.ndarray:
    """Random body proportions: an overall size of 0.85-1.15 times and each bone
    (symmetric pairs alike) 0.92-1.08 times, rebuilt from the root, feet kept on the
    floor."""
    b = windows.shape[0]
    factor = rng.uniform(0.92, 1.08, size=(b, len(PARENTS)))
    factor = 0.5 * (factor + factor[:, MIRROR])
    factor *= rng.uniform(0.85, 1.15, size=(b, 1))
    out = windows.copy()
    for j, p in enumerate(PARENTS):
        if p >= 0:
            bone = windows[:, :, j] - windows[:, :, p]
            out[:, :, j] = out[:, :, p] + bone * factor[:, None, j, None]
    floor_before = windows[:, :, FEET, 2].min(axis=(1, 2))
    floor_after = out[:, :, FEET, 2].min(axis=(1, 2))
    out[..., 2] += (floor_before - floor_after)[:, None, None]
    return out


def _heading(windows: np.ndarray) -> np.ndarray:
    """Yaw (B, T) of the body: the direction of the left-to-right hip line, in radians."""
    across = windows[:, :, _J["r_hip"], :2] - windows[:, :, _J["l_hip"], :2]
    return np.arctan2(across[..., 1], across[..., 0])


def mix_parts(rng: np.random.Generator, windows: np.ndarray, probability: float) -> np.ndarray:
    """Join the upper body of another window (turned to this one's heading, relative to
    the pelvis) onto the lower body of this one, for a random `probability` of windows."""
    b = windows.shape[0]
    chosen = np.flatnonzero(rng.random(b) < probability)
    if chosen.size == 0:
        return windows
    donors = rng.permutation(b)[: chosen.size]
    out = windows.copy()
    turn = _heading(windows[chosen]) - _heading(windows[donors])              # (n, T)
    c, s = np.cos(turn), np.sin(turn)
    upper = windows[donors][:, :, UPPER_BODY] - windows[donors][:, :, :1]
    x = c[..., None] * upper[..., 0] - s[..., None] * upper[..., 1]
    y = s[..., None] * upper[..., 0] + c[..., None] * upper[..., 1]
    rotated = np.stack([x, y, upper[..., 2]], axis=-1)
    out[chosen[:, None], :, UPPER_BODY] = np.moveaxis(
        rotated + windows[chosen][:, :, :1], 2, 1)
    return out


def detector_offsets(rng: np.random.Generator, windows: np.ndarray) -> np.ndarray:
    """The windows as a 2D detector would place the joints: per window, constant offsets
    in the body frame (hips outward and up, head top, nose forward, shoulders)."""
    b = windows.shape[0]
    across = windows[:, :, _J["r_hip"]] - windows[:, :, _J["l_hip"]]
    across[..., 2] = 0.0
    across /= np.linalg.norm(across, axis=-1, keepdims=True) + 1e-9
    up = np.zeros_like(across)
    up[..., 2] = 1.0
    forward = np.cross(up, across)
    out = windows.copy()
    hip_out = rng.uniform(-0.01, 0.04, size=(b, 1, 1))
    hip_up = rng.uniform(-0.03, 0.06, size=(b, 1, 1))
    out[:, :, _J["r_hip"]] = windows[:, :, _J["r_hip"]] + across * hip_out + up * hip_up
    out[:, :, _J["l_hip"]] = windows[:, :, _J["l_hip"]] - across * hip_out + up * hip_up
    out[:, :, _J["head_top"]] += up * rng.uniform(-0.06, 0.04, size=(b, 1, 1)) \
        + forward * rng.uniform(-0.03, 0.03, size=(b, 1, 1))
    out[:, :, _J["neck_nose"]] += forward * rng.uniform(-0.02, 0.08, size=(b, 1, 1)) \
        + up * rng.uniform(-0.03, 0.05, size=(b, 1, 1))
    sh = rng.uniform(-0.03, 0.03, size=(b, 1, 1))
    out[:, :, _J["r_shoulder"]] += across * sh
    out[:, :, _J["l_shoulder"]] -= across * sh
    # The pelvis a detector reports is the midpoint of its hips.
    out[:, :, 0] = 0.5 * (out[:, :, _J["l_hip"]] + out[:, :, _J["r_hip"]])
    return out


def occlude(rng: np.random.Generator, scores: np.ndarray, probability: float) -> np.ndarray:
    """Long occlusions: in a fraction `probability` of windows, one non-root joint (half
    of the time with everything below it, such as a forearm and hand behind the body)
    loses its detection for a span of 9 frames up to the whole window.

    The detector-like noise only hides joints for short spans, so without this the model
    never sees a joint that the window does not locate at all, and learns to be as sure
    of such a joint as of a visible one. scores (B, T, J) -> copy with 0 where hidden.
    """
    out = scores.copy()
    b, t, j = scores.shape
    parents = SKELETON.parents[:j]
    for i in np.flatnonzero(rng.random(b) < probability):
        joint = int(rng.integers(1, j))
        hidden = {joint}
        if rng.random() < 0.5:
            for c in range(j):                # parents come before children
                if parents[c] in hidden:
                    hidden.add(c)
        span = int(rng.integers(min(9, t), t + 1))
        start = int(rng.integers(0, t - span + 1))
        out[i, start:start + span, sorted(hidden)] = 0.0
    return out
