"""Camera frame -> Blender world: the take stood upright on the floor (DESIGN §4).

A take holds root-relative poses and the root's position in the *camera* frame (metres,
x right, y down, z forward). Blender wants the *world* frame (metres, Z up, -Y forward).
The camera's pitch and roll are unknown, so "up" is estimated from the body itself:

1. **Fixed axis change.** camera (x, y, z) -> provisional world (x, z, -y): a proper
   rotation (det +1), so left stays left; a level camera already gives Z up.
2. **Up from the body** (`estimate_up`). People stand upright within a few degrees, so
   the mean direction from the ankles' midpoint to the thorax over *standing* frames
   (knees straight within 20 degrees, trunk in line with the legs within 20 degrees)
   is a good first estimate. Clips with fewer than `MIN_STANDING_FRAMES` standing frames
   fall back to the mean pelvis -> thorax direction over all valid frames.
3. **Up from the floor.** A foot joint that is still (< 0.3 m/s) and within 3 cm of its
   own lowest level is on the floor. Ankles and toes are centred each on their own mean
   (an ankle rests ~5 cm above a toe), left and right together (they rest at one height).
   When the contacts spread over the floor in two directions (a walk around the room)
   their plane's normal replaces the body's up, if within `MAX_FLOOR_BODY_ANGLE_DEG` of it
   (else they are a staircase or a chair, not one floor). When they spread along one
   line (a straight walk, or a stance with the feet apart) the floor contains that line,
   so the body's up is made perpendicular to it. Measured on CMU clips seen by a camera
   pitched 20 and rolled 8 degrees: 0.1-2 degrees of error, 3.5 on a dance that never
   stands still.
4. **Heading.** A rotation about Z turns the character to face -Y at the first valid
   frame (forward = left x up, with "left" from the hips and shoulders).
5. **Floor and origin.** The first valid frame's pelvis goes to X = Y = 0; Z = 0 is the
   1st percentile over frames of the lowest foot joint (ankle or toe *joint centre*: the
   skin is a few centimetres lower, and a rig's foot joints also sit above its floor,
   which `retarget` accounts for).
6. **Optional height.** With `height_m`, everything (positions and spread) is scaled so
   that the subject's stature is `height_m`. Stature is the ankle-to-head-top chain
   along the bones (legs averaged; the median over valid frames) times
   `STATURE_OVER_CHAIN`, as the lifter measures it.

Invalid frames (``take.valid`` False) hold NaN in `WorldMotion.joints`, so nothing uses
them by accident; `retarget` holds the neighbouring valid pose there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .errors import DiffPoseError
from .rotations import normalize, rotation_between
from .skeleton import JOINT_NAMES

#: camera (x right, y down, z forward) -> provisional world (Z up, Y away from camera).
CAMERA_TO_WORLD = np.array([[1.0, 0.0, 0.0],
                            [0.0, 0.0, 1.0],
                            [0.0, -1.0, 0.0]])
#: Fewer standing frames than this and the body's up falls back to pelvis -> thorax.
MIN_STANDING_FRAMES = 5
#: The floor plane is trusted over the body axis only when the two agree this well.
MAX_FLOOR_BODY_ANGLE_DEG = 25.0
#: Contacts must spread this far (metres, RMS) along a direction before it counts
#: (feet 30 cm apart spread 15 cm).
MIN_CONTACT_SPREAD_M = 0.12
#: Standing height over the ankle-to-head-top chain (see backend posespace).
STATURE_OVER_CHAIN = 1.04
#: Percentile of the per-frame lowest foot joint taken as the floor.
FLOOR_PERCENTILE = 1.0

_FEET = ("l_ankle", "r_ankle", "l_toe", "r_toe")


@dataclass(frozen=True, eq=False)
class WorldMotion:
    """A take in Blender's world frame.

    joints       (T, J, 3) world metres (Z up, -Y forward, upright, lowest foot joint on
                 Z = 0, facing -Y at the first valid frame); NaN in invalid frames.
    valid        (T,) bool.
    spread       (T, J) metres, per-joint spread of the hypotheses (0 where unknown).
    joint_names  (J,) names, the project's skeleton names.
    fps          frames per second.
    notes        how the frame was found (for the bake report).
    camera_to_world  (3, 3) the linear part of the placement (axis change, levelling,
                 heading turn, scale) from camera metres, so that anything else in the
                 take's camera frame (its hypotheses) goes where the pose went:
                 ``world = joints + camera_to_world @ (camera - pose)``; None for a
                 motion that did not come from a camera (mocap).
    """

    joints: np.ndarray
    valid: np.ndarray
    spread: np.ndarray
    joint_names: tuple[str, ...]
    fps: float
    notes: tuple[str, ...] = ()
    camera_to_world: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    def index(self, name: str) -> int | None:
        """Index of joint `name`, or None when the motion lacks it."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            return None

    @classmethod
    def from_positions(cls, joints: Any, fps: float, *, valid: Any = None,
                       spread: Any = None,
                       joint_names: Sequence[str] = JOINT_NAMES) -> "WorldMotion":
        """A motion from world positions (T, J, 3) metres that are already in Blender's
        frame (for example a mocap clip); checked like a take's."""
        arr = np.array(joints, dtype=np.float64)
        names = tuple(joint_names)
        if arr.ndim != 3 or arr.shape[1:] != (len(names), 3) or arr.shape[0] == 0:
            raise DiffPoseError.at("<motion>", "joints",
                                   expected=f"expected shape (T, {len(names)}, 3) with T >= 1, "
                                            f"got {arr.shape}")
        T = arr.shape[0]
        ok = np.ones(T, bool) if valid is None else np.array(valid, dtype=bool)
        sp = np.zeros(arr.shape[:2]) if spread is None else np.array(spread, dtype=np.float64)
        if ok.shape != (T,) or sp.shape != arr.shape[:2]:
            raise DiffPoseError.at("<motion>", "valid/spread",
                                   expected=f"expected shapes ({T},) and {arr.shape[:2]}, got "
                                            f"{ok.shape} and {sp.shape}")
        motion = cls(arr, ok, sp, names, float(fps))
        check_finite(motion)
        return motion


def check_finite(motion: WorldMotion, source: str = "<motion>") -> None:
    """DiffPoseError naming the first valid frame and joint that is not a finite number."""
    bad = ~np.isfinite(motion.joints).all(axis=-1) & motion.valid[:, None]
    if bad.any():
        t, j = (int(i) for i in np.argwhere(bad)[0])
        raise DiffPoseError.at(source, f"frame {t}", f"joint '{motion.joint_names[j]}'",
                               expected="expected finite world positions in a valid frame, "
                                        f"got {motion.joints[t, j].tolist()}")
    if not motion.valid.any():
        raise DiffPoseError.at(source, "valid", expected="expected at least one valid frame")
    if not np.isfinite(motion.fps) or motion.fps <= 0:
        raise DiffPoseError.at(source, "fps", expected=f"expected > 0, got {motion.fps}")


def _idx(names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    return [list(names).index(n) for n in wanted if n in names]


def estimate_up(joints: np.ndarray, names: Sequence[str], fps: float
                ) -> tuple[np.ndarray, str]:
    """Unit up direction (3,) of a clip (T, J, 3) of valid frames, metres, in a frame
    whose +Z is roughly up (within ~45 degrees), and a note on how it was found."""
    J = {n: i for i, n in enumerate(names)}
    need = ("pelvis", "thorax", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
    if any(n not in J for n in need):
        return np.array([0.0, 0.0, 1.0]), "up: camera's own axis (joints missing)"
    p = joints
    straight = np.ones(len(p), dtype=bool)
    for s in "lr":
        thigh = normalize(p[:, J[f"{s}_knee"]] - p[:, J[f"{s}_hip"]])
        shin = normalize(p[:, J[f"{s}_ankle"]] - p[:, J[f"{s}_knee"]])
        straight &= np.einsum("tc,tc->t", thigh, shin) > np.cos(np.radians(20))
    ankles = 0.5 * (p[:, J["l_ankle"]] + p[:, J["r_ankle"]])
    legs = normalize(p[:, J["pelvis"]] - ankles)
    trunk = normalize(p[:, J["thorax"]] - p[:, J["pelvis"]])
    axis = normalize(p[:, J["thorax"]] - ankles)
    standing = straight & (np.einsum("tc,tc->t", legs, trunk) > np.cos(np.radians(20))) \
        & (axis[:, 2] > np.cos(np.radians(60)))
    if standing.sum() >= MIN_STANDING_FRAMES:
        up = normalize(axis[standing].mean(axis=0))
        note = f"up: body axis over {int(standing.sum())} standing frames"
    else:
        up = normalize(trunk.mean(axis=0))
        note = "up: mean pelvis-to-thorax direction (few standing frames)"

    feet = p[:, _idx(names, _FEET)]  # (T, F, 3)
    if feet.shape[1] == 0 or len(p) < 3:
        return up, note
    speed = np.linalg.norm(np.gradient(feet, axis=0), axis=-1) * fps  # (T, F) m/s
    h = feet @ up                                                       # (T, F)
    # A foot joint touches the floor where it is still and near its own lowest level.
    contact = (speed < 0.3) & (h < np.percentile(h, 5, axis=0) + 0.03)
    if contact.sum() < 10:
        return up, note
    # Ankles rest higher than toes: centre each kind on its own mean. Left and right of a
    # kind stay together (they rest at one height), so a stance with the feet apart tells
    # the tilt across it even when the subject stays in place.
    kinds = np.array([0 if "ankle" in n else 1 for n in _FEET if n in names])
    groups = []
    for k in (0, 1):
        pts = feet[:, kinds == k][contact[:, kinds == k]]
        if len(pts) >= 3:
            groups.append(pts - pts.mean(axis=0))
    c = np.concatenate(groups)
    evals, evecs = np.linalg.eigh(c.T @ c / len(c))
    spread = np.sqrt(np.maximum(evals, 0.0))  # ascending
    if spread[1] >= MIN_CONTACT_SPREAD_M:
        n = evecs[:, 0] * np.sign(evecs[:, 0] @ up)
        if np.degrees(np.arccos(np.clip(n @ up, -1, 1))) <= MAX_FLOOR_BODY_ANGLE_DEG:
            return n, note + "; floor plane of the foot contacts"
    elif spread[2] >= MIN_CONTACT_SPREAD_M:
        d = evecs[:, 2]
        along = up - (up @ d) * d
        return normalize(along), note + "; made perpendicular to the line of the foot contacts"
    return up, note


def _stature(joints: np.ndarray, names: Sequence[str]) -> float | None:
    J = {n: i for i, n in enumerate(names)}
    chain = [("pelvis", "spine"), ("spine", "thorax"), ("thorax", "neck_nose"),
             ("neck_nose", "head_top")]
    legs = [(f"{s}_{a}", f"{s}_{b}") for s in "lr" for a, b in (("ankle", "knee"),
                                                                  ("knee", "hip"))]
    if any(a not in J or b not in J for a, b in chain + legs):
        return None

    def seg(a: str, b: str) -> np.ndarray:
        return np.linalg.norm(joints[:, J[a]] - joints[:, J[b]], axis=-1)

    total = 0.5 * sum(seg(a, b) for a, b in legs) + sum(seg(a, b) for a, b in chain)
    return float(np.median(total)) * STATURE_OVER_CHAIN


def take_to_world(take: Any, height_m: float | None = None) -> WorldMotion:
    """A take (`core.take.Take`) in Blender's world frame; see the module docstring.

    height_m  scale the subject to this standing height in metres (None keeps the take's
              own metric scale).
    """
    names = tuple(take.joint_names)
    pose = np.asarray(take.pose, dtype=np.float64)          # (T, J, 3) camera, root-relative
    root = np.asarray(take.root_cam, dtype=np.float64)      # (T, 3) camera
    valid = np.asarray(take.valid, dtype=bool)
    spread = np.asarray(take.spread, dtype=np.float64)
    if pose.ndim != 3 or pose.shape[-1] != 3 or root.shape != (pose.shape[0], 3):
        raise DiffPoseError.at("<take>", "pose/root_cam",
                               expected=f"expected shapes (T, J, 3) and (T, 3), got "
                                        f"{pose.shape} and {root.shape}")
    cam = pose + root[:, None, :]
    bad = ~np.isfinite(cam).all(axis=-1) & valid[:, None]
    if bad.any():
        t, j = (int(i) for i in np.argwhere(bad)[0])
        raise DiffPoseError.at("<take>", f"frame {t}", f"joint '{names[j]}'",
                               expected="expected finite camera positions in a valid frame")
    if not valid.any():
        raise DiffPoseError.at("<take>", "valid", expected="expected at least one valid frame")
    if height_m is not None and not (np.isfinite(height_m) and 0.3 < height_m < 3.0):
        raise DiffPoseError.at("<take>", "height",
                               expected=f"expected a height between 0.3 and 3 m, got {height_m}")

    world = cam @ CAMERA_TO_WORLD.T
    fps = float(take.fps)
    up, note = estimate_up(world[valid], names, fps)
    level = rotation_between(up, np.array([0.0, 0.0, 1.0]))
    world = world @ level.T
    linear = level @ CAMERA_TO_WORLD

    first = int(np.argmax(valid))
    J = {n: i for i, n in enumerate(names)}
    left = np.zeros(3)
    for a, b in (("l_hip", "r_hip"), ("l_shoulder", "r_shoulder")):
        if a in J and b in J:
            left += normalize(world[first, J[a]] - world[first, J[b]])
    left[2] = 0.0
    notes = [note]
    if np.linalg.norm(left) > 1e-6:
        forward = np.cross(normalize(left), [0.0, 0.0, 1.0])
        yaw = np.arctan2(forward[0], -forward[1])  # angle from -Y to forward, about Z
        c, s = np.cos(-yaw), np.sin(-yaw)
        turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        world = world @ turn.T
        linear = turn @ linear
        notes.append(f"heading: turned {np.degrees(-yaw):.1f} degrees about Z to face -Y")

    root_j = J.get("pelvis", 0)
    world = world - np.array([world[first, root_j, 0], world[first, root_j, 1], 0.0])
    feet = _idx(names, _FEET)
    if feet:
        floor = float(np.percentile(world[valid][:, feet, 2].min(axis=1), FLOOR_PERCENTILE))
        world[..., 2] -= floor

    if height_m is not None:
        stature = _stature(world[valid], names)
        if stature is None or stature <= 0:
            raise DiffPoseError.at("<take>", "height",
                                   expected="joints to measure the stature (ankles, knees, "
                                            "hips, pelvis, spine, thorax, neck_nose, head_top)")
        k = height_m / stature
        world *= k
        spread = spread * k
        linear = k * linear
        notes.append(f"scaled x{k:.3f} to a stature of {height_m:.2f} m")

    world[~valid] = np.nan
    return WorldMotion(world, valid.copy(), spread.copy(), names, fps, tuple(notes),
                       camera_to_world=linear)
