"""Native skeletons in motion: rotations, forward kinematics and resampling.

Every mocap reader in this package turns its file into one `NativeMotion`: the file's own
joint tree (names, parents, rest offsets in the file's own units and axes) plus, per frame,
each joint's local rotation and the root's position. One forward-kinematics routine then
serves every format.

Conventions (all arrays are float64 unless said otherwise):

- **Column vectors.** A local rotation ``L[t, j]`` (3, 3) maps vectors from joint j's frame
  into its parent's frame; the global rotation is ``G[j] = G[parent] @ L[j]`` and the
  position ``p[j] = p[parent] + G[parent] @ offsets[j]``. The root (joint 0) sits at
  ``root_pos[t] + offsets[0]`` with ``G[0] = L[0]``. Readers of row-vector formats
  (the exp-map text files) transpose their matrices once, on reading.
- **Native frame.** Positions are in the file's units and axes (e.g. CMU units, y up);
  conversion to the project's world frame (metres, Z up) happens later, in `world.py`.
- **Joint 0 is the root**, and parents always precede their children.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...core.errors import DiffPoseError
from ...core.rotations import quat_to_matrix

_AXES = {"X": 0, "Y": 1, "Z": 2}


@dataclass(frozen=True)
class NativeMotion:
    """One clip on its own skeleton, in the file's units and axes.

    names       (J,)         joint names as written in the file (end sites get
                             ``<parent>_end``); unique
    parents     (J,)         int64 parent index, -1 for the root (joint 0 only);
                             parents precede children
    offsets     (J, 3)       rest offset of each joint from its parent, in the parent's
                             frame, native units (the root's is added to `root_pos`)
    local_rot   (T, J, 3, 3) local rotation of each joint (column vectors, joint frame
                             -> parent frame); identity for end sites
    root_pos    (T, 3)       root translation, native units, native axes
    fps         frames per second of the rows in this object
    path        the file it came from (for messages)
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    local_rot: np.ndarray
    root_pos: np.ndarray
    fps: float
    path: str

    @property
    def num_frames(self) -> int:
        return int(self.local_rot.shape[0])

    def index(self, name: str) -> int:
        """Index of joint `name`; an unknown name raises `DiffPoseError`."""
        try:
            return self.names.index(name)
        except ValueError:
            raise DiffPoseError.at(
                self.path, f"joint '{name}'",
                expected=f"a joint of this skeleton ({', '.join(self.names)})") from None

    def with_offsets(self, offsets: np.ndarray) -> "NativeMotion":
        return replace(self, offsets=np.asarray(offsets, dtype=np.float64))


def add_sites(motion: NativeMotion,
              sites: tuple[tuple[str, str, tuple[float, float, float]], ...]) -> NativeMotion:
    """Append virtual end sites: (name, parent joint name, offset in the parent's frame,
    native units). They ride on the parent's rotation like any BVH end site, so a point
    fixed to a bone (e.g. the top of the head above a head joint that has no end site)
    follows that bone exactly."""
    if not sites:
        return motion
    names = list(motion.names)
    parents = list(motion.parents)
    offsets = [motion.offsets]
    for name, parent, offset in sites:
        parents.append(motion.index(parent))
        names.append(name)
        offsets.append(np.asarray(offset, dtype=np.float64)[None])
    t = motion.num_frames
    eye = np.broadcast_to(np.eye(3), (t, len(sites), 3, 3))
    return replace(motion, names=tuple(names), parents=np.asarray(parents, dtype=np.int64),
                   offsets=np.concatenate(offsets, axis=0),
                   local_rot=np.concatenate([motion.local_rot, eye], axis=1))


def forward_kinematics(motion: NativeMotion) -> np.ndarray:
    """Global joint positions (T, J, 3), native units and axes, vectorised over frames."""
    t, j = motion.num_frames, len(motion.names)
    glob_rot = np.empty((t, j, 3, 3))
    pos = np.empty((t, j, 3))
    glob_rot[:, 0] = motion.local_rot[:, 0]
    pos[:, 0] = motion.root_pos + motion.offsets[0]
    for k in range(1, j):
        p = int(motion.parents[k])
        glob_rot[:, k] = glob_rot[:, p] @ motion.local_rot[:, k]
        pos[:, k] = pos[:, p] + glob_rot[:, p] @ motion.offsets[k]
    return pos


# --- rotations ------------------------------------------------------------------------

def axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about a principal axis ('X', 'Y' or 'Z') by `angle`
    radians (right-handed: positive angles turn counter-clockwise seen from +axis)."""
    a = _AXES[axis.upper()]
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(np.shape(angle) + (3, 3))
    i, k = (a + 1) % 3, (a + 2) % 3
    out[..., a, a] = 1.0
    out[..., i, i] = c
    out[..., k, k] = c
    out[..., k, i] = s
    out[..., i, k] = -s
    return out


def euler_matrix(angles: np.ndarray, order: str) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from Euler angles (..., len(order)) in radians.

    ``order`` lists the axes in the order the angles are given, e.g. ``"ZYX"``; the
    result is ``R_order[0] @ R_order[1] @ ...`` (column vectors), i.e. intrinsic
    rotations in the listed order, which is how BVH channel lists read.
    """
    angles = np.asarray(angles, dtype=np.float64)
    out = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    for i, axis in enumerate(order):
        out = out @ axis_rotation(axis, angles[..., i])
    return out


def expmap_matrix(r: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation matrices (..., 3, 3) from exponential maps (..., 3) (axis times
    angle, radians): R = I + sin(θ) K + (1 - cos(θ)) K², K the skew matrix of the unit
    axis. This is the matrix the exp-map files' row-vector FK multiplies with."""
    r = np.asarray(r, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1)
    safe = np.where(theta > 1e-12, theta, 1.0)
    k = r / safe[..., None]
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    skew = np.stack([np.stack([zero, -kz, ky], -1),
                     np.stack([kz, zero, -kx], -1),
                     np.stack([-ky, kx, zero], -1)], -2)
    s = np.sin(theta)[..., None, None]
    c = (1.0 - np.cos(theta))[..., None, None]
    return np.eye(3) + s * skew + c * (skew @ skew)


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) as (w, x, y, z) from rotation matrices (..., 3, 3).

    Uses the numerically best of the four branches per matrix (largest diagonal term),
    so no branch divides by a value near zero."""
    m = np.asarray(m, dtype=np.float64)
    tr = np.trace(m, axis1=-2, axis2=-1)
    cand = np.stack([tr, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    best = np.argmax(cand, axis=-1)
    q = np.empty(m.shape[:-2] + (4,))
    # w largest
    s = np.sqrt(np.maximum(1.0 + tr, 1e-12)) * 2.0
    qw = np.stack([0.25 * s, (m[..., 2, 1] - m[..., 1, 2]) / s,
                   (m[..., 0, 2] - m[..., 2, 0]) / s, (m[..., 1, 0] - m[..., 0, 1]) / s], -1)
    s = np.sqrt(np.maximum(1.0 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], 1e-12)) * 2.0
    qx = np.stack([(m[..., 2, 1] - m[..., 1, 2]) / s, 0.25 * s,
                   (m[..., 0, 1] + m[..., 1, 0]) / s, (m[..., 0, 2] + m[..., 2, 0]) / s], -1)
    s = np.sqrt(np.maximum(1.0 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], 1e-12)) * 2.0
    qy = np.stack([(m[..., 0, 2] - m[..., 2, 0]) / s, (m[..., 0, 1] + m[..., 1, 0]) / s,
                   0.25 * s, (m[..., 1, 2] + m[..., 2, 1]) / s], -1)
    s = np.sqrt(np.maximum(1.0 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2], 1e-12)) * 2.0
    qz = np.stack([(m[..., 1, 0] - m[..., 0, 1]) / s, (m[..., 0, 2] + m[..., 2, 0]) / s,
                   (m[..., 1, 2] + m[..., 2, 1]) / s, 0.25 * s], -1)
    for k, cand_q in enumerate((qw, qx, qy, qz)):
        sel = best == k
        q[sel] = cand_q[sel]
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _slerp(q0: np.ndarray, q1: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Spherical interpolation between unit quaternions (..., 4) at fractions u (...)."""
    dot = np.sum(q0 * q1, axis=-1)
    q1 = np.where(dot[..., None] < 0.0, -q1, q1)  # the short way round
    dot = np.abs(dot)
    omega = np.arccos(np.clip(dot, -1.0, 1.0))
    so = np.sin(omega)
    near = so < 1e-6  # nearly equal: linear interpolation is exact enough
    safe = np.where(near, 1.0, so)
    w0 = np.where(near, 1.0 - u, np.sin((1.0 - u) * omega) / safe)
    w1 = np.where(near, u, np.sin(u * omega) / safe)
    out = w0[..., None] * q0 + w1[..., None] * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def resample(motion: NativeMotion, fps: float) -> NativeMotion:
    """The clip at `fps` frames per second, over the same time span [0, (T-1)/fps_in].

    Local rotations are interpolated by quaternion slerp and the root position linearly,
    then forward kinematics runs on the result: bone lengths stay exact, which linear
    interpolation of joint *positions* would not give (it cuts the chord of every
    rotating bone). Nothing above the source's Nyquist rate is invented: upsampling
    12.5 fps Human3.6M to 30 fps gives smooth in-between poses, not new detail.
    """
    if fps <= 0:
        raise DiffPoseError.at(motion.path, expected=f"a positive frame rate, got {fps}")
    if abs(fps - motion.fps) < 1e-9:
        return motion
    if motion.num_frames < 2:
        return replace(motion, fps=float(fps))
    duration = (motion.num_frames - 1) / motion.fps
    n_out = int(np.floor(duration * fps + 1e-9)) + 1
    t_src = np.arange(n_out) / fps * motion.fps  # fractional source frame per output
    i0 = np.minimum(np.floor(t_src).astype(np.int64), motion.num_frames - 2)
    u = t_src - i0
    quat = matrix_to_quaternion(motion.local_rot)  # (T, J, 4)
    q = _slerp(quat[i0], quat[i0 + 1], np.broadcast_to(u[:, None], (n_out, quat.shape[1])))
    root = motion.root_pos[i0] * (1.0 - u)[:, None] + motion.root_pos[i0 + 1] * u[:, None]
    return replace(motion, local_rot=quat_to_matrix(q), root_pos=root, fps=float(fps))
