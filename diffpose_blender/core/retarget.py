"""Retargeting: world joint positions -> rotations of a rig's own bones (issue 4).

For every driven bone (a `rigmap.BoneTarget`) and every frame the bone gets a full
armature-space rotation ``R`` (a delta applied to its rest orientation) built from two
vector pairs, measured the same way on the rig at rest and on the take:

- the *direction* between two joints (``dir``): the rest direction ``d0`` between the
  rig's rest points for those joints, the target ``d`` between the take's joints;
- a *twist reference* perpendicular to it: a body-frame vector (hips, shoulders), the
  normal of a limb's bend plane (hip-knee-ankle), or none ("parent": the smallest swing
  from where the parent carried the bone).

``R = F(d, ref) @ F(d0, ref0)^T`` with F the orthonormal frame of (direction, reference).
Because R is applied to the bone's *own* rest matrix (``posed = R @ rest``), nothing
depends on the rig's roll convention or on where its tails point; the rest directions
come from the joint table (bone heads), not from the bones' Y axes.

Blender's pose rotation of a bone is local: ``rest_parent^-1 @ rest`` then the pose
quaternion, after the parent's pose. With parent rotation delta ``Rp`` that gives
``Q = rest^T @ Rp^T @ R @ rest`` (`RetargetResult.rotations`). Undriven bones keep their
rest pose relative to their parent (``R = Rp``).

Pivots: where a bone's head is not on its 'from' joint (a clavicle starts below the neck
base, a spine bone above the hip centre) it is aimed from its own posed head at where the
'to' joint should be, seen from the posed 'from' joint.

Fallbacks, blended so nothing jumps: the twist reference is followed through time
(`_follow_twist`): each frame turns the previous frame's reference, carried along by the
parent and the bone's own swing, toward the take's reference by its quality (the sine of
the bend angle; the share of a vector perpendicular to the bone). A well-bent limb takes
the take's twist exactly; a straightening one holds its twist instead of reading it from
noise, and a bend that comes back on the other side turns the bone over the frames in
which it grows. Bones whose joints the take or the rig lacks stay at rest relative to
their parent; invalid frames hold the nearest valid pose. Quaternion tracks are made
hemisphere-continuous.

Root motion: the rig's pelvis point follows the take's pelvis scaled by the leg-length
ratio rig / take (the floor kept: the take's lowest foot joints go where the rig's rest
foot joints are), and the root bone's location is solved in its rest-local frame. IK
controls (``place``) and poles (``pole``) get location keys the same way.

Foot locking (`core.footlock`, when `RetargetOptions.foot_lock`) is done on the rig: a
first solve poses the rig; contacts and pins come from the take's feet scaled onto it; the
legs are re-solved by two-bone IK from the rig's own posed hips with its own bone lengths
(a pin the take's leg reaches is not where the rig's leg lands); a second solve then
turns those legs into rotations.

Frames and units: `WorldMotion` joints are Blender world metres; they are taken relative
to the armature object's origin and brought into armature space through the inverse of
the object's 3x3 ``matrix_world`` (so an FBX armature scaled by 0.01 or rotated by 90
degrees works); everything after that is armature space, armature units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import DiffPoseError
from .footlock import FootLockOptions, lock_feet
from .rig import RestBone, RestRig
from .rigmap import BoneTarget, RigMap
from .rotations import frame_from, hemisphere_continuous, matrix_to_quat, normalize, \
    quat_to_matrix, rotation_between
from .skeleton import JOINT_NAMES
from .world import WorldMotion, check_finite

_FEET = ("l_ankle", "r_ankle", "l_toe", "r_toe")


@dataclass(frozen=True)
class RetargetOptions:
    """root_motion  the root travels with the take (False: it stays over its rest spot
                    horizontally; up and down still follow, so feet stay on the floor).
    foot_lock       pin planted feet before retargeting (`core.footlock`).
    foot_lock_options  thresholds of contact detection and the blend.
    twist_min_sin / twist_full_sin  a twist reference whose quality (sine of the bend
                    angle, or of the reference's angle to the bone) is below the first is
                    ignored, above the second trusted fully, blended in between.
    """

    root_motion: bool = True
    foot_lock: bool = True
    foot_lock_options: FootLockOptions = FootLockOptions()
    twist_min_sin: float = 0.05
    twist_full_sin: float = 0.25


@dataclass(frozen=True, eq=False)
class RetargetResult:
    """What the Blender writer keys.

    bone_names     driven bones, hierarchy order.
    rotations      (T, B, 4) w, x, y, z: ``pose_bone.rotation_quaternion`` values (local,
                   relative to the bone's rest), hemisphere-continuous over time.
    root_bone      the bone that gets location keys for root motion.
    root_location  (T, 3) ``pose_bone.location`` of root_bone (its rest-local frame,
                   armature units).
    frames         (T,) int frame offsets 0..T-1.
    spread         (T, B) metres: the largest spread of the joints each bone depends on.
    report         human-readable notes (fallbacks used, bones left out).
    bone_locations bone -> (T, 3) ``pose_bone.location`` of other bones that get location
                   keys (IK targets and poles), each in its own rest-local frame.
    properties     object data path -> value to hold over the take (from the rig map:
                   switches such as Rigify's IK/FK that make the keyed controls count).
    """

    bone_names: tuple[str, ...]
    rotations: np.ndarray
    root_bone: str
    root_location: np.ndarray
    frames: np.ndarray
    spread: np.ndarray
    report: tuple[str, ...]
    bone_locations: dict[str, np.ndarray] = field(default_factory=dict)
    properties: dict[str, float] = field(default_factory=dict)


def select_frames(result: RetargetResult, first: int, last: int) -> RetargetResult:
    """The part of `result` on take frames `first`..`last` (inclusive), for baking part of
    a take; its ``frames`` keep their offsets, so the keys land where they would in a
    whole bake. The whole take was retargeted (foot contacts and continuity see all of
    it). Raises `DiffPoseError` when the range misses the take."""
    frames = np.asarray(result.frames)
    keep = (frames >= first) & (frames <= last)
    if not keep.any():
        raise DiffPoseError(f"bake range: take frames {first} to {last} are outside the "
                            f"take (frames 0 to {int(frames.max()) if len(frames) else -1})")
    return RetargetResult(
        bone_names=result.bone_names, rotations=result.rotations[keep],
        root_bone=result.root_bone, root_location=result.root_location[keep],
        frames=frames[keep], spread=result.spread[keep], report=result.report,
        bone_locations={k: v[keep] for k, v in result.bone_locations.items()},
        properties=dict(result.properties))


# --- rest data -----------------------------------------------------------------------------

def rest_joint_points(rig: RestRig, rig_map: RigMap) -> dict[str, np.ndarray]:
    """Joint name -> (3,) armature-space rest position, for the joints of the map's table
    whose bones the rig has."""
    out = {}
    for joint, points in rig_map.joints.items():
        if all(b in rig for b, _ in points):
            out[joint] = np.mean([rig.bone(b).head if end == "head" else rig.bone(b).tail
                                  for b, end in points], axis=0)
    return out


def _effective_parents(rig: RestRig, rig_map: RigMap) -> list[int]:
    """Per rig bone, the index of the bone it moves with (-1: none): the map's ``parent``
    override where there is one, else the hierarchy parent."""
    index = {n: i for i, n in enumerate(rig.names())}
    out = []
    for bone in rig.bones:
        target = rig_map.bones.get(bone.name)
        name = target.parent if target is not None and target.parent else bone.parent
        out.append(index.get(name, -1) if name is not None else -1)
    return out


def _solve_order(parents: list[int]) -> list[int]:
    """Bone indices with every bone after the bone it moves with (hierarchy order, with
    a map's ``parent`` overrides moving a bone after its override: Rigify lists
    ``shoulder.L`` after the arm controls that follow it)."""
    order: list[int] = []
    placed = [False] * len(parents)

    def place(i: int, depth: int = 0) -> None:
        if placed[i]:
            return
        if depth > len(parents):
            raise DiffPoseError.at("<rig map>", expected="bone 'parent' overrides without "
                                                         "a cycle")
        if parents[i] >= 0:
            place(parents[i], depth + 1)
        placed[i] = True
        order.append(i)

    for i in range(len(parents)):
        place(i)
    return order


def _rig_frame(P0: dict[str, np.ndarray], up_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rig's rest (left, forward) unit vectors from its hips and shoulders."""
    left = np.zeros(3)
    for a, b in (("l_hip", "r_hip"), ("l_shoulder", "r_shoulder")):
        if a in P0 and b in P0:
            left += normalize(P0[a] - P0[b])
    up = normalize(P0["thorax"] - P0["pelvis"]) if "thorax" in P0 and "pelvis" in P0 else up_arm
    if np.linalg.norm(left) < 1e-9:
        left = np.cross(up, [0.0, -1.0, 0.0])
    left = normalize(left - (left @ up) * up)
    return left, np.cross(left, up)


# --- the solve -----------------------------------------------------------------------------

def _fill_invalid(joints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Invalid frames take the nearest valid frame's values (earlier ones first)."""
    out = joints.copy()
    idx = np.where(valid)[0]
    if len(idx) == len(valid):
        return out
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(len(valid)), side="right") - 1,
                          0, len(idx) - 1)]
    before = np.arange(len(valid)) < idx[0]
    nearest[before] = idx[0]
    return out[nearest]


class _Solver:
    """One retarget: take joints (armature space) onto one rig through one map."""

    def __init__(self, X: np.ndarray, names: tuple[str, ...], rig: RestRig, rig_map: RigMap,
                 options: RetargetOptions, up_arm: np.ndarray) -> None:
        self.X, self.rig, self.map, self.opt = X, rig, rig_map, options
        self.J = {n: i for i, n in enumerate(names)}
        self.P0 = rest_joint_points(rig, rig_map)
        self.left0, self.forward0 = _rig_frame(self.P0, up_arm)
        self.notes: list[str] = []

    def take(self, group: tuple[str, ...]) -> np.ndarray | None:
        if any(j not in self.J for j in group):
            return None
        return self.X[:, [self.J[j] for j in group]].mean(axis=1)

    def rest(self, group: tuple[str, ...]) -> np.ndarray | None:
        if any(j not in self.P0 for j in group):
            return None
        return np.mean([self.P0[j] for j in group], axis=0)

    def _weight(self, q: np.ndarray) -> np.ndarray:
        lo, hi = self.opt.twist_min_sin, self.opt.twist_full_sin
        return np.clip((q - lo) / (hi - lo), 0.0, 1.0)

    def rotation(self, name: str, t: BoneTarget, R_par: np.ndarray, head0: np.ndarray,
                 head: np.ndarray, point: "Callable[[str], np.ndarray | None]"
                 ) -> np.ndarray | None:
        """(T, 3, 3) armature-space rotation delta of a driven bone, or None (kept at rest
        relative to its parent) when its joints are missing.

        head0 (3,) and head (T, 3) are the bone's rest and posed head; `point(joint)` gives
        a joint's posed position on the rig where it is already known (None if not)."""
        if not t.dir:
            return None
        a, b = self.take(t.dir[0]), self.take(t.dir[1])
        a0, b0 = self.rest(t.dir[0]), self.rest(t.dir[1])
        if a is None or b is None or a0 is None or b0 is None:
            self.notes.append(f"{name}: joints {t.dir[0] + t.dir[1]} missing in the take or "
                              f"the rig; kept at rest relative to its parent")
            return None
        d = normalize(b - a)                                  # (T, 3)
        d0 = normalize(b0 - a0)                               # (3,)
        off = float(np.linalg.norm(head0 - a0))
        if off > 1e-3 * max(float(np.linalg.norm(b0 - a0)), 1e-9):
            # The bone pivots somewhere else than at its 'from' joint (a clavicle starts
            # below the neck base, a spine bone above the hip centre): aim it from its own
            # head at where the 'to' joint should be, seen from the posed 'from' joint.
            a_posed = point(t.dir[0][0]) if len(t.dir[0]) == 1 else None
            if a_posed is not None:
                to = a_posed + float(np.linalg.norm(b0 - a0)) * d
                span0 = b0 - head0
                if np.linalg.norm(span0) > 0.25 * np.linalg.norm(b0 - a0):
                    d, d0 = normalize(to - head), normalize(span0)
        carried = R_par @ d0                                  # where the parent put d0
        R_min = rotation_between(carried, d) @ R_par          # smallest swing from there
        if t.twist == "parent":
            return R_min
        ref0 = self.rest_reference(name, t, d0)
        if ref0 is None:
            return R_min
        raw, quality = self.take_reference(t, d)
        if raw is None:
            self.notes.append(f"{name}: twist joints missing in the take; smallest swing used")
            return R_min
        fallback = R_min @ ref0                               # (T, 3), perpendicular to d
        ref = _follow_twist(d, raw, self._weight(quality), fallback, R_par)
        weak = int((self._weight(quality) < 1.0).sum())
        if weak and t.twist == "plane":
            self.notes.append(f"{name}: limb nearly straight in {weak} frames; twist held "
                              f"from the frames before there")
        return frame_from(d, ref) @ frame_from(d0, ref0).T

    def rest_reference(self, name: str, t: BoneTarget, d0: np.ndarray) -> np.ndarray | None:
        """Unit rest twist reference (3,) perpendicular to d0, or None."""
        if t.twist == "vector":
            a0, b0 = self.rest(t.twist_joints[0]), self.rest(t.twist_joints[1])
            if a0 is None or b0 is None:
                return None
            v = b0 - a0
            v = v - (v @ d0) * d0
            if np.linalg.norm(v) < 0.1 * np.linalg.norm(b0 - a0):
                self.notes.append(f"{name}: rest twist reference along the bone; smallest "
                                  f"swing used")
                return None
            return normalize(v)
        pa, pb, pc = (self.rest(g) for g in t.twist_joints)
        if pa is None or pb is None or pc is None:
            return None
        upper, lower = pb - pa, pc - pb
        bend = self.forward0 if t.bend == "forward" else -self.forward0
        hint = np.cross(normalize(upper), bend)
        n = np.cross(upper, lower)
        sin = float(np.linalg.norm(n)) / max(
            float(np.linalg.norm(upper) * np.linalg.norm(lower)), 1e-12)
        # The rig's own bend plane where its rest limb is bent enough to show one (an
        # A-pose elbow), turned to the side the hint says; the hint alone where straight.
        w = float(self._weight(np.array([sin]))[0])
        n_u = normalize(n) * (1.0 if n @ hint >= 0 else -1.0)
        ref = w * n_u + (1.0 - w) * normalize(hint)
        ref = ref - (ref @ d0) * d0
        if np.linalg.norm(ref) < 1e-6:
            return None
        return normalize(ref)

    def take_reference(self, t: BoneTarget, d: np.ndarray
                       ) -> tuple[np.ndarray | None, np.ndarray]:
        """(T, 3) raw take reference and its quality (T,) in 0..1."""
        if t.twist == "vector":
            a, b = self.take(t.twist_joints[0]), self.take(t.twist_joints[1])
            if a is None or b is None:
                return None, np.zeros(len(d))
            v = b - a
            perp = v - np.einsum("tc,tc->t", v, d)[:, None] * d
            q = np.linalg.norm(perp, axis=1) / np.maximum(np.linalg.norm(v, axis=1), 1e-12)
            return v, q
        pa, pb, pc = (self.take(g) for g in t.twist_joints)
        if pa is None or pb is None or pc is None:
            return None, np.zeros(len(d))
        upper, lower = pb - pa, pc - pb
        n = np.cross(upper, lower)
        q = np.linalg.norm(n, axis=1) / np.maximum(
            np.linalg.norm(upper, axis=1) * np.linalg.norm(lower, axis=1), 1e-12)
        return n, q


def _follow_twist(d: np.ndarray, raw: np.ndarray, w: np.ndarray, fallback: np.ndarray,
                  R_par: np.ndarray) -> np.ndarray:
    """Twist references (T, 3) perpendicular to d (T, 3): each frame turns the previous
    frame's reference (carried along by the parent's and the bone's own motion) toward
    the take's reference `raw` by the fraction w (its quality, 0..1), about d.

    Where the reference is well defined (w = 1) this is exactly `raw`. Where it fades (a
    limb straightening) the twist is held from the frames before rather than read from
    noise, and when it comes back on the other side the bone turns there over the frames
    in which the bend grows, not in one frame. The first frame starts where a backward
    pass over the clip (from the smallest swing from the parent at its end) arrives, so
    a clip that opens with a straight limb takes the twist it has once it bends."""
    T = len(d)
    raw_u = normalize(raw - np.einsum("tc,tc->t", raw, d)[:, None] * d)
    start = _twist_pass(d[::-1], raw_u[::-1], w[::-1], fallback[::-1], R_par[::-1],
                        fallback[-1])[-1]
    return _twist_pass(d, raw_u, w, fallback, R_par, start)


def _twist_pass(d: np.ndarray, raw_u: np.ndarray, w: np.ndarray, fallback: np.ndarray,
                R_par: np.ndarray, start: np.ndarray) -> np.ndarray:
    """One sequential pass of `_follow_twist` from the reference `start` (3,)."""
    T = len(d)
    # Frame-to-frame transport (vectorised): the parent's change, then the smallest swing
    # from the carried bone direction to the new one.
    rel = R_par[1:] @ np.swapaxes(R_par[:-1], -1, -2)
    carried_d = np.einsum("tij,tj->ti", rel, d[:-1])
    C = np.concatenate([np.eye(3)[None], rotation_between(carried_d, d[1:]) @ rel])
    # The recursion itself on plain floats: numpy's per-call cost dominates 3-vectors.
    Cl, dl, rl, wl, fl = C.tolist(), d.tolist(), raw_u.tolist(), w.tolist(), fallback.tolist()
    out = [[0.0, 0.0, 0.0]] * T
    px, py, pz = (float(v) for v in start)
    for k in range(T):
        c = Cl[k]
        ax = c[0][0] * px + c[0][1] * py + c[0][2] * pz
        ay = c[1][0] * px + c[1][1] * py + c[1][2] * pz
        az = c[2][0] * px + c[2][1] * py + c[2][2] * pz
        dx, dy, dz = dl[k]
        dot = ax * dx + ay * dy + az * dz
        ax, ay, az = ax - dot * dx, ay - dot * dy, az - dot * dz
        n = (ax * ax + ay * ay + az * az) ** 0.5
        if n > 1e-9:
            ax, ay, az = ax / n, ay / n, az / n
        else:
            ax, ay, az = fl[k]
        wk = wl[k]
        if wk > 0.0:
            bx, by, bz = rl[k]
            # Signed angle from a to b about d, then turn a by the fraction wk of it.
            cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
            ang = math.atan2(cx * dx + cy * dy + cz * dz, ax * bx + ay * by + az * bz) * wk
            co, si = math.cos(ang), math.sin(ang)
            ex, ey, ez = dy * az - dz * ay, dz * ax - dx * az, dx * ay - dy * ax  # d x a
            ax, ay, az = ax * co + ex * si, ay * co + ey * si, az * co + ez * si
        out[k] = [ax, ay, az]
        px, py, pz = ax, ay, az
    return np.array(out)


def _forward(rig: RestRig, parents: list[int], R: np.ndarray,
             locations: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Posed heads and tails (T, N, 3) armature space from per-bone rotation deltas
    R (T, N, 3, 3) and location keys {bone index: (T, 3) rest-local}."""
    T, N = R.shape[:2]
    heads = np.zeros((T, N, 3))
    for i in _solve_order(parents):
        bone = rig.bones[i]
        p = parents[i]
        if p < 0:
            heads[:, i] = bone.head
            R_par = np.broadcast_to(np.eye(3), (T, 3, 3))
        else:
            heads[:, i] = heads[:, p] + R[:, p] @ (bone.head - rig.bones[p].head)
            R_par = R[:, p]
        if i in locations:
            frame = R_par @ bone.matrix if bone.use_local_location else R_par
            heads[:, i] += np.einsum("tij,tj->ti", frame, locations[i])
    tails = heads + np.einsum("tnij,nj->tni", R, np.stack([b.tail - b.head for b in rig.bones]))
    return heads, tails


def _joint_positions(rig: RestRig, rig_map: RigMap, heads: np.ndarray, tails: np.ndarray,
                     names: tuple[str, ...] = JOINT_NAMES) -> np.ndarray:
    """(T, J, 3) posed rig points of each joint (NaN where the map or rig has none)."""
    index = {n: i for i, n in enumerate(rig.names())}
    out = np.full((heads.shape[0], len(names), 3), np.nan)
    for j, joint in enumerate(names):
        points = rig_map.joints.get(joint)
        if points and all(b in index for b, _ in points):
            out[:, j] = np.mean([heads[:, index[b]] if end == "head" else tails[:, index[b]]
                                 for b, end in points], axis=0)
    return out


def retarget(motion: WorldMotion, rig: RestRig, rig_map: RigMap,
             options: RetargetOptions = RetargetOptions()) -> RetargetResult:
    """Rotations (and root/IK locations) that pose `rig` like `motion`; see the module
    docstring. `rig` and `rig_map` are not changed; `rig_map` should be the one made
    concrete for this rig (`detect_rig` or `resolve_for_rig`)."""
    check_finite(motion)
    if rig_map.root not in rig:
        raise DiffPoseError.at("<rig>", f"armature '{rig.name}'",
                               expected=f"the root bone '{rig_map.root}' of rig map "
                                        f"'{rig_map.label}'")
    notes = list(motion.notes)
    names = motion.joint_names
    joints = _fill_invalid(motion.joints, motion.valid)

    W3 = rig.world_matrix[:3, :3]
    if abs(np.linalg.det(W3)) < 1e-12:
        raise DiffPoseError.at("<rig>", f"armature '{rig.name}'",
                               expected="an invertible matrix_world (scale is zero)")
    to_arm = np.linalg.inv(W3)
    X = joints @ to_arm.T                                   # (T, J, 3) armature units
    up = normalize(to_arm @ np.array([0.0, 0.0, 1.0]))
    def solve(X: np.ndarray) -> dict:
        """One solve of every bone for joints X (T, J, 3) armature space."""
        notes: list[str] = []
        solver = _Solver(X, names, rig, rig_map, options, up)
        parents = _effective_parents(rig, rig_map)
        T, N = X.shape[0], len(rig.bones)
        index = {n: i for i, n in enumerate(rig.names())}

        # Rotations, parents first; posed heads (without root motion) alongside, for bones
        # that are aimed from their own head.
        R = np.empty((T, N, 3, 3))
        heads = np.empty((T, N, 3))
        done = np.zeros(N, dtype=bool)

        def head_of(j: int) -> np.ndarray | None:
            p = parents[j]
            if p < 0:
                return np.broadcast_to(rig.bones[j].head, (T, 3))
            if not done[p]:
                return None
            return heads[:, p] + R[:, p] @ (rig.bones[j].head - rig.bones[p].head)

        def point(joint: str) -> np.ndarray | None:
            pts = rig_map.joints.get(joint)
            if not pts or len(pts) != 1 or pts[0][1] != "head" or pts[0][0] not in index:
                return None
            return head_of(index[pts[0][0]])

        driven: list[int] = []
        for i in _solve_order(parents):
            bone = rig.bones[i]
            R_par = R[:, parents[i]] if parents[i] >= 0 else np.broadcast_to(np.eye(3), (T, 3, 3))
            h = head_of(i)
            heads[:, i] = h if h is not None else bone.head
            target = rig_map.bones.get(bone.name)
            rot = solver.rotation(bone.name, target, R_par, bone.head, heads[:, i], point) \
                if target is not None else None
            R[:, i] = rot if rot is not None else R_par
            done[i] = True
            if target is not None and (rot is not None or target.place or target.pole):
                driven.append(i)
        notes += solver.notes
        missing = [n for n in rig_map.bones if n not in index]
        if missing:
            notes.append("bones of the map missing in the rig: " + ", ".join(missing))

        # Root motion: move the root so that the rig's pelvis point follows the take's.
        locations: dict[int, np.ndarray] = {}
        root_i = index[rig_map.root]
        P0 = solver.P0
        scale, scale_note = _leg_ratio(X, names, P0)
        notes.append(scale_note)
        pelvis_take = solver.take(("pelvis",))
        heads, tails = _forward(rig, parents, R, locations)
        pelvis_fk = _joint_positions(rig, rig_map, heads, tails, ("pelvis",))[:, 0]
        root_loc = np.zeros((T, 3))
        targets = None
        if pelvis_take is not None and "pelvis" in P0 and np.isfinite(pelvis_fk).all():
            targets = _scaled_targets(X, names, P0, pelvis_take, scale, up, options.root_motion)
            delta = targets[:, names.index("pelvis")] - pelvis_fk
            root_loc = _location_for(rig, parents, R, root_i, delta)
            locations[root_i] = root_loc
            heads2, tails2 = _forward(rig, parents, R, locations)
            moved = _joint_positions(rig, rig_map, heads2, tails2, ("pelvis",))[:, 0]
            if np.abs(moved - targets[:, names.index("pelvis")]).max() > 1e-6 * max(1.0, scale):
                notes.append(f"root bone '{rig_map.root}' does not carry the pelvis; root motion "
                             f"is approximate")
        else:
            notes.append("no pelvis in the take or the rig: no root motion")

        # IK targets and poles: location keys after the root has moved.
        bone_locations: dict[str, np.ndarray] = {}
        if targets is not None:
            for i, bone in enumerate(rig.bones):
                t = rig_map.bones.get(bone.name)
                if t is None or (t.place is None and t.pole is None) or i == root_i:
                    continue
                heads, _ = _forward(rig, parents, R, locations)
                want = _placement(t, bone, R[:, i], P0, targets, names, solver)
                if want is None:
                    notes.append(f"{bone.name}: placement joints missing; left at rest")
                    continue
                loc = _location_for(rig, parents, R, i, want - heads[:, i])
                locations[i] = loc
                bone_locations[bone.name] = loc
        return dict(R=R, locations=locations, root_loc=root_loc, targets=targets,
                    bone_locations=bone_locations, driven=driven, solver=solver,
                    parents=parents, index=index, notes=notes, scale=scale,
                    pelvis_take=pelvis_take)

    sol = solve(X)
    if options.foot_lock and sol["targets"] is not None:
        X2, lock_notes = _lock_on_rig(X, sol, rig, rig_map, names, W3, motion.fps,
                                      options.foot_lock_options)
        notes += lock_notes
        if X2 is not None:
            sol = solve(X2)
    notes += sol["notes"]
    T = X.shape[0]
    R, parents, driven, solver = sol["R"], sol["parents"], sol["driven"], sol["solver"]
    root_loc, bone_locations = sol["root_loc"], sol["bone_locations"]

    # Local quaternions.
    order = [i for i in driven]
    Q = np.empty((T, len(order), 4))
    for k, i in enumerate(order):
        M = rig.bones[i].matrix
        R_par = R[:, parents[i]] if parents[i] >= 0 else np.eye(3)
        local = M.T @ np.swapaxes(R_par, -1, -2) @ R[:, i] @ M
        Q[:, k] = matrix_to_quat(local)
    Q = hemisphere_continuous(Q)

    spread = np.zeros((T, len(order)))
    sp = _fill_invalid(motion.spread, motion.valid)
    for k, i in enumerate(order):
        js = [solver.J[j] for j in rig_map.bones[rig.bones[i].name].joints if j in solver.J]
        if js:
            spread[:, k] = sp[:, js].max(axis=1)
    notes = list(dict.fromkeys(notes))  # once each, in order
    return RetargetResult(
        bone_names=tuple(rig.bones[i].name for i in order), rotations=Q,
        root_bone=rig_map.root, root_location=root_loc, frames=np.arange(T),
        spread=spread, report=tuple(notes), bone_locations=bone_locations,
        properties=dict(rig_map.properties))


def _lock_on_rig(X: np.ndarray, sol: dict, rig: RestRig, rig_map: RigMap,
                 names: tuple[str, ...], W3: np.ndarray, fps: float,
                 options: FootLockOptions) -> tuple[np.ndarray | None, list[str]]:
    """Foot locking done on the rig. Contacts and pins come from the take's feet scaled
    onto the rig (world metres: the thresholds are physical); the legs are re-solved from
    the rig's own posed hips with its own thigh and shin lengths, since a pin the take's
    leg reaches is not where the rig's leg lands. Returns joints X' (take space, armature
    axes) that give that pose in a second solve (their hips, knees, ankles and toes are
    the re-solved rig's, mapped back), or None when the rig has no legs to lock."""
    targets = sol["targets"]                                # (T, J, 3) armature
    heads, tails = _forward(rig, sol["parents"], sol["R"], sol["locations"])
    fk = _joint_positions(rig, rig_map, heads, tails, names)  # the rig's pose
    legs = [f"{s}_{n}" for s in "lr" for n in ("hip", "knee", "ankle")]
    if "pelvis" not in names or any(n not in names or not np.isfinite(fk[:, names.index(n)]).all()
                                    for n in legs):
        return None, ["foot lock: the rig or the take has no legs to lock"]
    locked, notes = lock_feet(targets @ W3.T, names, fps, options, legs=fk @ W3.T)
    P = locked @ np.linalg.inv(W3).T
    pel = names.index("pelvis")
    X2 = X.copy()
    for n in legs + ["l_toe", "r_toe"]:
        if n in names and np.isfinite(P[:, names.index(n)]).all():
            j = names.index(n)
            # targets = target_pelvis + scale * (X - X_pelvis), inverted.
            X2[:, j] = X[:, pel] + (P[:, j] - targets[:, pel]) / sol["scale"]
    return X2, notes


def _leg_ratio(X: np.ndarray, names: tuple[str, ...], P0: dict[str, np.ndarray]
               ) -> tuple[float, str]:
    """Rig leg length / take leg length (hip-knee-ankle, both legs), and a note."""
    J = {n: i for i, n in enumerate(names)}
    rig_legs, take_legs = [], []
    for s in "lr":
        chain = [f"{s}_hip", f"{s}_knee", f"{s}_ankle"]
        if all(c in P0 for c in chain) and all(c in J for c in chain):
            rig_legs.append(sum(float(np.linalg.norm(P0[b] - P0[a]))
                                for a, b in zip(chain, chain[1:])))
            take_legs.append(float(np.median(sum(
                np.linalg.norm(X[:, J[b]] - X[:, J[a]], axis=1) for a, b in zip(chain, chain[1:])))))
    if not rig_legs or np.mean(take_legs) <= 0:
        return 1.0, "leg joints missing: root motion unscaled"
    ratio = float(np.mean(rig_legs) / np.mean(take_legs))
    return ratio, f"root motion scaled by the leg-length ratio rig/take = {ratio:.3f}"


def _scaled_targets(X: np.ndarray, names: tuple[str, ...], P0: dict[str, np.ndarray],
                    pelvis: np.ndarray, scale: float, up: np.ndarray, root_motion: bool
                    ) -> np.ndarray:
    """(T, J, 3) armature-space targets: the take's joints scaled about its pelvis by the
    leg ratio, the pelvis placed over the rig's rest spot plus the (scaled) travel, at the
    (scaled) height above the floor the rig's rest feet stand on."""
    J = {n: i for i, n in enumerate(names)}
    feet = [J[f] for f in _FEET if f in J]
    rig_feet = [P0[f] @ up for f in _FEET if f in P0]
    take_floor = float(np.percentile((X[:, feet] @ up).min(axis=1), 1.0)) if feet else 0.0
    rig_floor = min(rig_feet) if rig_feet else 0.0
    height = pelvis @ up                                       # (T,)
    horiz = pelvis - height[:, None] * up
    rest_h = P0["pelvis"] - (P0["pelvis"] @ up) * up
    travel = scale * (horiz - horiz[0]) if root_motion else np.zeros_like(horiz)
    target_pelvis = rest_h + travel + (rig_floor + scale * (height - take_floor))[:, None] * up
    return target_pelvis[:, None, :] + scale * (X - pelvis[:, None, :])


def _location_for(rig: RestRig, parents: list[int], R: np.ndarray, i: int,
                  delta: np.ndarray) -> np.ndarray:
    """Location keys (T, 3) that move bone i's head by `delta` (T, 3) armature space: in
    its rest axes carried by the parent's pose, or in the parent's axes where the bone
    does not use local location."""
    bone = rig.bones[i]
    M = bone.matrix if bone.use_local_location else np.eye(3)
    p = parents[i]
    frame = R[:, p] @ M if p >= 0 else np.broadcast_to(M, R[:, 0].shape)
    return np.einsum("tji,tj->ti", frame, delta)


def _placement(t: BoneTarget, bone: RestBone, R_b: np.ndarray, P0: dict[str, np.ndarray],
               targets: np.ndarray, names: tuple[str, ...], solver: _Solver
               ) -> np.ndarray | None:
    """(T, 3) where an IK target's or pole's head should be."""
    J = {n: i for i, n in enumerate(names)}
    if t.place is not None:
        if t.place not in J or t.place not in P0:
            return None
        # Keep the control's rest offset from its joint, turned with the bone.
        return targets[:, J[t.place]] + R_b @ (bone.head - P0[t.place])
    a, b, c = t.pole  # type: ignore[misc]
    if any(j not in J or j not in P0 for j in (a, b, c)):
        return None
    A, B, C = targets[:, J[a]], targets[:, J[b]], targets[:, J[c]]
    axis = normalize(C - A)
    out = B - 0.5 * (A + C)
    out = out - np.einsum("tc,tc->t", out, axis)[:, None] * axis
    dist = float(np.linalg.norm(bone.head - P0[b]))
    # Straight limb: the pole side is undefined; hold the last frame that had one (the
    # rig's rest side before any).
    rest_side = normalize(bone.head - P0[b])
    side = np.empty_like(out)
    prev = rest_side
    for k in range(len(out)):
        n = np.linalg.norm(out[k])
        if n > 0.02 * np.linalg.norm(C[k] - A[k]):
            prev = out[k] / n
        side[k] = prev
    return B + dist * side


def _posed(rig: RestRig, rig_map: RigMap, result: RetargetResult
           ) -> tuple[np.ndarray, np.ndarray]:
    """Posed heads and tails (T, N, 3) armature space of every bone of `rig`."""
    parents = _effective_parents(rig, rig_map)
    index = {n: i for i, n in enumerate(rig.names())}
    T = result.rotations.shape[0]
    local = {index[n]: quat_to_matrix(result.rotations[:, k])
             for k, n in enumerate(result.bone_names)}
    R = np.empty((T, len(rig.bones), 3, 3))
    for i in _solve_order(parents):
        bone = rig.bones[i]
        R_par = R[:, parents[i]] if parents[i] >= 0 else np.broadcast_to(np.eye(3), (T, 3, 3))
        if i in local:
            R[:, i] = R_par @ bone.matrix @ local[i] @ bone.matrix.T
        else:
            R[:, i] = R_par
    locations = {index[result.root_bone]: result.root_location}
    for n, loc in result.bone_locations.items():
        locations[index[n]] = loc
    return _forward(rig, parents, R, locations)


def pose_world_heads(rig: RestRig, rig_map: RigMap, result: RetargetResult) -> np.ndarray:
    """Forward kinematics of `result`: (T, N, 3) Blender world positions of the heads of
    all the rig's bones (``rig.bones`` order), as `pose_world_joints` computes them."""
    heads, _ = _posed(rig, rig_map, result)
    W = rig.world_matrix
    return heads @ W[:3, :3].T + W[:3, 3]


def pose_world_joints(rig: RestRig, rig_map: RigMap, result: RetargetResult) -> np.ndarray:
    """Forward kinematics of `result` on `rig`: (T, J, 3) Blender world positions of the
    project's joints (`core.skeleton` order) as the rig's joint table places them (NaN
    where the map has no point for a joint). Follows the hierarchy and the map's
    ``parent`` overrides as `retarget` does; IK is not solved (IK controls are posed,
    the chains they would pull are not)."""
    heads, tails = _posed(rig, rig_map, result)
    pts = _joint_positions(rig, rig_map, heads, tails)
    W = rig.world_matrix
    return pts @ W[:3, :3].T + W[:3, 3]
