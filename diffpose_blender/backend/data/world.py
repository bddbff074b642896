"""The corpus's common world frame: metres, Z up, right-handed, floor at z = 0.

Every clip leaves this package in one frame, so that virtual cameras can be placed the
same way around any of them:

- **metres**; **Z up** (against gravity); **right-handed**; X and Y horizontal. The
  native y-up frames of BVH, ASF/AMC and the exp-map files map by a proper rotation
  (x -> X, y -> Z, z -> -Y), so nothing is mirrored and a subject facing the native +z
  faces -Y, Blender's "forward".
- **floor at z = 0**: z = 0 is the plane on which the lowest foot joints (ankle and toe
  *joint centres*, not the skin) rest during ground contact, estimated per clip as the
  1st percentile over frames of the lowest ankle/toe height. The true floor surface is a
  few centimetres lower (toe joints sit 2-4 cm above it); a joint-based plane is the one
  every source can give the same way, whatever its foot geometry.
- **horizontal origin** as in the source (the capture volume's origin for CMU and HDM05,
  the first frame's pelvis for Human3.6M); clips are not re-centred.

Human3.6M's exp-map root files are in the first frame's pelvis frame, tilted against
gravity (1-24 degrees over the 189 takes); `level_to_floor` estimates the floor plane from
the foot contacts and rotates it to horizontal (afterwards the resting lowest foot joint
of a walking take keeps its height to ~3 mm over the whole capture volume). The other
sources are levelled by their y-up axis.
"""

from __future__ import annotations

import numpy as np

from ...core.skeleton import SKELETON

#: world = Y_UP_TO_WORLD @ native, for a native frame with +y up: a +90 degree rotation
#: about X (det +1, so left stays left).
Y_UP_TO_WORLD = np.array([[1.0, 0.0, 0.0],
                          [0.0, 0.0, -1.0],
                          [0.0, 1.0, 0.0]])

FOOT_JOINTS = SKELETON.indices(["l_ankle", "r_ankle", "l_toe", "r_toe"])
_ANKLES = SKELETON.indices(["l_ankle", "r_ankle"])
_THORAX = SKELETON.index["thorax"]
_PELVIS = SKELETON.index["pelvis"]
_LEGS = [tuple(SKELETON.indices([f"{s}_hip", f"{s}_knee", f"{s}_ankle"])) for s in "lr"]

#: Percentile of the per-frame lowest foot-joint height taken as the floor: robust to a
#: stray frame, and still the floor in clips that spend most of their time in the air.
FLOOR_PERCENTILE = 1.0


def y_up_to_world(positions: np.ndarray, metres_per_unit: float) -> np.ndarray:
    """(..., 3) native y-up positions in native units -> world axes (Z up), metres."""
    return (positions @ Y_UP_TO_WORLD.T) * metres_per_unit


def floor_height(positions: np.ndarray) -> float:
    """Height (m) of the foot-contact plane of a levelled clip (T, 21, 3) world metres."""
    lowest = positions[:, FOOT_JOINTS, 2].min(axis=1)
    return float(np.percentile(lowest, FLOOR_PERCENTILE))


def put_on_floor(positions: np.ndarray) -> np.ndarray:
    """(T, 21, 3) world metres, shifted in z so that `floor_height` becomes 0."""
    out = positions.copy()
    out[..., 2] -= floor_height(positions)
    return out


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking unit vector a onto unit vector b."""
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + k + k @ k * (1.0 / (1.0 + c))


def standing_up(positions: np.ndarray) -> np.ndarray | None:
    """Gravity's direction (3,) from the clip's *standing* frames, or None if it has
    fewer than 10: the mean direction from the ankles' midpoint to the thorax over frames
    where both knees are straight (> 160 degrees), the trunk continues the legs
    (< 20 degrees) and the body axis is within 45 degrees of the input's +z (which tells
    standing from lying stretched out). People stand upright to within a few degrees;
    sitting, bending or lying frames would not tell, so they are left out."""
    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)

    def angle_ok(a: np.ndarray, b: np.ndarray, min_cos: float) -> np.ndarray:
        return np.einsum("tc,tc->t", unit(a), unit(b)) > min_cos

    straight = np.ones(positions.shape[0], dtype=bool)
    for hip, knee, ankle in _LEGS:
        # Knee angle > 160 degrees: thigh and shin directions within 20 degrees.
        straight &= angle_ok(positions[:, knee] - positions[:, hip],
                             positions[:, ankle] - positions[:, knee], np.cos(np.radians(20)))
    mid_ankle = positions[:, _ANKLES].mean(axis=1)
    legs = positions[:, _PELVIS] - mid_ankle
    trunk = positions[:, _THORAX] - positions[:, _PELVIS]
    axis = positions[:, _THORAX] - mid_ankle
    standing = (straight & angle_ok(legs, trunk, np.cos(np.radians(20)))
                & (unit(axis)[:, 2] > np.cos(np.radians(45))))
    if standing.sum() < 10:
        return None
    mean = unit(axis[standing]).mean(axis=0)
    return mean / np.linalg.norm(mean)


#: Height bands (m) above each foot joint's lowest contacts, one per refinement round.
_CONTACT_BANDS = (0.20, 0.10, 0.05, 0.03)


def estimate_floor_normal(positions: np.ndarray, fps: float,
                          prior_spread_m: float = 0.05) -> np.ndarray:
    """Unit normal (3,) of the floor under a clip (T, 21, 3) metres in a frame whose +z
    is roughly up (within ~30 degrees).

    Contacts: in each frame the lowest foot joint (ankles and toes, along the current
    estimate of up), if it stands still (< 0.25 m/s), and only if it is within a band
    above that joint's lowest contacts (its 5th percentile): feet resting on a chair rung
    or a table, both at once, are not the floor, and the floor is what is lowest. Each
    joint touches the floor at its own height (an ankle ~8 cm up, a toe ~3 cm), so each
    joint's contacts are centred on their own mean and one normal is fitted to all: the
    direction of least spread. Rounds repeat with the new normal and a narrower band
    (`_CONTACT_BANDS`); a wide first band tolerates the initial tilt.

    The fit is regularised toward a prior (`standing_up`, else the input's +z), which is
    also the starting estimate, with the weight of contacts spread `prior_spread_m` in
    every direction: decisive only when the feet stay in one spot, negligible when the
    subject walks over metres of floor.
    """
    feet = positions[:, FOOT_JOINTS]  # (T, 4, 3)
    prior = standing_up(positions)
    if prior is None:
        prior = np.array([0.0, 0.0, 1.0])
    if feet.shape[0] < 3:
        return prior
    speed = np.linalg.norm(np.gradient(feet, axis=0), axis=-1) * fps  # (T, 4) m/s
    frames = np.arange(feet.shape[0])
    normal = prior
    for band in _CONTACT_BANDS:
        lowest = np.argmin(feet @ normal, axis=1)  # (T,) the lowest foot joint
        slow = speed[frames, lowest] < 0.25
        groups = []
        for k in range(feet.shape[1]):
            pts = feet[slow & (lowest == k), k]
            if len(pts) < 3:
                continue
            h = pts @ normal
            pts = pts[h <= np.percentile(h, 5) + band]
            if len(pts) >= 3:
                groups.append(pts - pts.mean(axis=0))
        if not groups:
            break
        c = np.concatenate(groups)
        scatter = c.T @ c / len(c) + prior_spread_m ** 2 * (np.eye(3) - np.outer(prior, prior))
        eigvec = np.linalg.eigh(scatter)[1][:, 0]
        normal = eigvec * np.sign(eigvec @ prior)
    return normal


def level_to_floor(positions: np.ndarray, fps: float) -> np.ndarray:
    """Rotate a clip (T, 21, 3) metres about its first-frame pelvis so that the estimated
    floor is horizontal (normal along +Z), keeping its heading; then `put_on_floor`."""
    normal = estimate_floor_normal(positions, fps)
    rot = _rotation_between(normal, np.array([0.0, 0.0, 1.0]))
    pivot = positions[0, _PELVIS]
    levelled = (positions - pivot) @ rot.T + pivot
    return put_on_floor(levelled)
