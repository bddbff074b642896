"""Rotations as numpy arrays: 3x3 matrices and (w, x, y, z) quaternions.

Matrices act on column vectors (``v' = R @ v``), as Blender's do. Quaternions are stored
w first, the order of ``pose_bone.rotation_quaternion``. Every function accepts leading
batch dimensions.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12
#: Below this sin(angle / 2) a rotation's axis is taken as undefined.
_AXIS_EPS = 1e-8


def normalize(v: np.ndarray, eps: float = _EPS) -> np.ndarray:
    """Unit vectors along the last axis (zero vectors stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, eps)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (..., 3, 3) taking direction a onto direction b (..., 3).

    Opposite directions have no unique smallest rotation: a half turn about an axis
    perpendicular to a is used.
    """
    a = normalize(np.asarray(a, dtype=np.float64))
    b = normalize(np.asarray(b, dtype=np.float64))
    v = np.cross(a, b)
    c = np.einsum("...i,...i->...", a, b)
    k = skew(v)
    denom = np.maximum(1.0 + c, _EPS)[..., None, None]
    rot = np.eye(3) + k + k @ k / denom
    opposite = c < -1.0 + 1e-9
    if np.any(opposite):
        # Half turn about any axis perpendicular to a: R = 2 u u^T - I.
        aa = a[opposite]
        helper = np.where(np.abs(aa[..., :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        u = normalize(np.cross(aa, helper))
        rot[opposite] = 2.0 * u[..., :, None] * u[..., None, :] - np.eye(3)
    return rot


def skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrices (..., 3, 3) of vectors (..., 3)."""
    out = np.zeros(v.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out


def frame_from(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal frames (..., 3, 3) whose column 0 is along `primary` and column 1 is
    `secondary` made perpendicular to it (Gram-Schmidt); column 2 completes a right-handed
    frame. The caller makes sure `secondary` is not parallel to `primary`."""
    e0 = normalize(primary)
    s = secondary - np.einsum("...i,...i->...", secondary, e0)[..., None] * e0
    e1 = normalize(s)
    e2 = np.cross(e0, e1)
    return np.stack([e0, e1, e2], axis=-1)


def axis_angle_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) by `angle` radians about unit `axis` (..., 3)."""
    k = skew(normalize(axis))
    s = np.sin(angle)[..., None, None]
    c = np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1.0 - c) * k @ k


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) w, x, y, z, w >= 0.

    Shepperd's method: the largest of the four diagonal combinations is the pivot, so
    no branch divides by a small number.
    """
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    tr = np.trace(m, axis1=1, axis2=2)
    cand = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    pick = np.argmax(cand, axis=1)
    q = np.empty((m.shape[0], 4))
    for case in range(4):
        sel = pick == case
        if not sel.any():
            continue
        r = m[sel]
        if case == 0:
            s = np.sqrt(1.0 + tr[sel]) * 2.0
            q[sel] = np.stack([0.25 * s, (r[:, 2, 1] - r[:, 1, 2]) / s,
                               (r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 1, 0] - r[:, 0, 1]) / s], 1)
        elif case == 1:
            s = np.sqrt(1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2]) * 2.0
            q[sel] = np.stack([(r[:, 2, 1] - r[:, 1, 2]) / s, 0.25 * s,
                               (r[:, 0, 1] + r[:, 1, 0]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s], 1)
        elif case == 2:
            s = np.sqrt(1.0 + r[:, 1, 1] - r[:, 0, 0] - r[:, 2, 2]) * 2.0
            q[sel] = np.stack([(r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 0, 1] + r[:, 1, 0]) / s,
                               0.25 * s, (r[:, 1, 2] + r[:, 2, 1]) / s], 1)
        else:
            s = np.sqrt(1.0 + r[:, 2, 2] - r[:, 0, 0] - r[:, 1, 1]) * 2.0
            q[sel] = np.stack([(r[:, 1, 0] - r[:, 0, 1]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s,
                               (r[:, 1, 2] + r[:, 2, 1]) / s, 0.25 * s], 1)
    q = normalize(q)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(shape + (4,))


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) w, x, y, z (normalised here) -> rotation matrices (..., 3, 3)."""
    q = normalize(np.asarray(q, dtype=np.float64))
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def hemisphere_continuous(q: np.ndarray) -> np.ndarray:
    """Quaternion tracks (T, ..., 4) with signs flipped so that each frame lies in the
    same hemisphere as the one before (q and -q are one rotation; fcurves interpolate
    component-wise, so a sign jump between keys would spin the bone the long way)."""
    out = np.array(q, dtype=np.float64, copy=True)
    for t in range(1, out.shape[0]):
        dot = np.sum(out[t] * out[t - 1], axis=-1, keepdims=True)
        out[t] *= np.where(dot < 0, -1.0, 1.0)
    return out


def angle_between_quats(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle (radians, 0..pi) between quaternion rotations a and b (..., 4)."""
    dot = np.abs(np.sum(normalize(a) * normalize(b), axis=-1))
    return 2.0 * np.arccos(np.clip(dot, 0.0, 1.0))


def quaternions_to_axis_angle(quats: np.ndarray) -> np.ndarray:
    """(T, 4) w, x, y, z -> (T, 4) angle (radians), axis x, y, z: ``rotation_axis_angle``.

    The input is hemisphere-continuous, so angle = 2 acos(w) in [0, 2π] and the axis are
    continuous too, except where the rotation is (nearly) none and the axis is undefined:
    there the previous frame's axis is kept (the first frame's defaults to +Y, Blender's
    default axis).
    """
    q = np.asarray(quats, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    half = np.arccos(np.clip(q[:, 0], -1.0, 1.0))
    sin_half = np.sin(half)
    axis = np.zeros((len(q), 3))
    defined = sin_half > _AXIS_EPS
    axis[defined] = q[defined, 1:] / sin_half[defined, None]
    last = np.array([0.0, 1.0, 0.0])
    for t in np.flatnonzero(~defined):  # rare: only frames at rest
        axis[t] = last if t == 0 or not defined[:t].any() else axis[t - 1]
    return np.column_stack((2.0 * half, axis))
