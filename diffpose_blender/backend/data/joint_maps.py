"""From each native mocap skeleton to the project's 21 joints (DESIGN §4).

The aim is Human3.6M's joint *semantics* (the first 17 joints are Human3.6M's), because
the lifter is benchmarked against Human3.6M and a joint that means one thing in one source
and another elsewhere teaches the model a blur. Human3.6M's own layout, from its exp-map
skeleton (heights above the hip centre for an upright pose)::

    pelvis     the hip centre (the root sits exactly between the hip joints)
    spine      233 mm up (mid-back)
    thorax     490 mm up: base of the neck, between the shoulders
    neck_nose  121 mm above the thorax, on the neck-head line
    head_top   115 mm above that: top of the head
    hand_end   100 mm beyond the wrist (middle of the hand)

Rules applied to every source:

- **pelvis** is the midpoint of the two hip joints. In CMU and HDM05 the root is the
  pelvis centre about 10 cm *above* the hip joints, in the Daz skeletons 2.6 cm below;
  only Human3.6M's root is the hip midpoint already. The midpoint is the same point in all.
- **hips** are the thigh joints (UpLeg / Thigh / femur start), **knees** the shin joints,
  **ankles** the foot joints, **toes** the toe base (ball of the foot).
- **spine** the named joint nearest 23 cm above the hip centre; **thorax** the base of the
  neck; **neck_nose** a point midway up the neck-head chain; **head_top** the head's end
  site, or a documented point fixed to the head bone where there is none.
- **shoulders** the upper-arm joints (Arm / Shldr / humerus start), **elbows** the forearm
  joints, **wrists** the hand joints, **hand_end** the finger base.

Skeleton repairs. The cgspeed CMU BVH conversions (MotionBuilder- and 3dsMax-friendly) and
the CMU exp-map skeleton (which is the BVH of CMU subject 02) were made from CMU's ASF,
one BVH joint at the start of each ASF bone, and two ASF bones lost their length on the
way (their rotations are still in the file):

- the ``thorax`` bone: the neck and both clavicles hang off ``Spine1`` / ``Chest2`` at
  offset 0 0 0, 11-12 cm too low, so a 1.55 m CMU adult comes out 1.43 m tall with a
  trunk short against the legs. `InsertBone` puts it back in ``Spine1``'s frame (which
  carries the thorax rotation), as long as the upper back and along it: in the HDM05
  ASF files, from the same VICON model, thorax and upper back differ by < 1 %.
- the ``wrist`` bone, the distal half of the forearm (ASF ``lwrist`` twists about the
  forearm; the hand hangs off its end): ``LeftFingerBase`` sits at offset 0 from
  ``LeftHand``, so the hand pivots two thirds down the forearm. VICON's model makes it
  exactly half the ``radius`` (HDM05 ASF ``lwrist``/``lradius`` = 1.50195/3.00391), so
  `StretchBone` makes the forearm 1.5x its BVH length. (In the MotionBuilder files the
  ``LeftHand`` rotation is a pure twist about the forearm, so stretching equals
  inserting the wrist bone; the 3dsMax files fold the hand's bend into ``LeftWrist``,
  where stretching is the only reading that keeps the forearm rigid.)

A repair applies only where the child offsets are all zero, the signature of the lost
bone, so an intact file is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.errors import DiffPoseError
from ...core.skeleton import JOINT_NAMES
from .kinematics import NativeMotion, add_sites, forward_kinematics

#: One CMU unit in metres: (1/0.45) inch, per the CMU FAQ and the ASF ':units length 0.45'.
CMU_METRES_PER_UNIT = 0.0254 / 0.45


@dataclass(frozen=True)
class InsertBone:
    """A lost bone after `joint`, in its frame: add ``fraction * offset(joint)`` to the
    offset of every child of `joint`."""

    joint: str
    fraction: float


@dataclass(frozen=True)
class StretchBone:
    """A lost bone folded into `joint`'s own: scale ``offset(joint)`` by `factor`."""

    joint: str
    factor: float


Repair = InsertBone | StretchBone


@dataclass(frozen=True)
class JointMap:
    """How one native skeleton becomes the project's joints.

    recipe    project joint name -> ((native joint name, weight), ...); weights sum to 1
    sites     virtual end sites added before FK: (name, parent, offset in the parent's
              frame in native units)
    repairs   skeleton repairs (`InsertBone`, `StretchBone`), applied before FK
    metres_per_unit  native length unit in metres (None: the reader knows, e.g. ASF)
    root      what the native root is, in words
    approx    what is approximate about this source, in one line
    """

    kind: str
    recipe: dict[str, tuple[tuple[str, float], ...]]
    metres_per_unit: float | None
    root: str
    approx: str
    sites: tuple[tuple[str, str, tuple[float, float, float]], ...] = ()
    repairs: tuple[Repair, ...] = ()

    def __post_init__(self) -> None:
        missing = [n for n in JOINT_NAMES if n not in self.recipe]
        if missing:
            raise DiffPoseError(f"joint map '{self.kind}': no rule for {', '.join(missing)}")
        for name, parts in self.recipe.items():
            if abs(sum(w for _, w in parts) - 1.0) > 1e-9:
                raise DiffPoseError(f"joint map '{self.kind}': weights of '{name}' must sum to 1")


def _one(name: str) -> tuple[tuple[str, float], ...]:
    return ((name, 1.0),)


def _mid(a: str, b: str) -> tuple[tuple[str, float], ...]:
    return ((a, 0.5), (b, 0.5))


def _sided(left: dict[str, tuple[tuple[str, float], ...]],
           right: dict[str, tuple[tuple[str, float], ...]]
           ) -> dict[str, tuple[tuple[str, float], ...]]:
    out = {f"l_{k}": v for k, v in left.items()}
    out.update({f"r_{k}": v for k, v in right.items()})
    return out


def _limbs(hip: str, knee: str, ankle: str, toe: str, shoulder: str, elbow: str, wrist: str,
           hand_end: str) -> dict[str, tuple[tuple[str, float], ...]]:
    return {"hip": _one(hip), "knee": _one(knee), "ankle": _one(ankle), "toe": _one(toe),
            "shoulder": _one(shoulder), "elbow": _one(elbow), "wrist": _one(wrist),
            "hand_end": _one(hand_end)}


# --- CMU, cgspeed MotionBuilder-friendly BVH (and the CMU exp-map skeleton) -------------
_CMU_MB_RECIPE = {
    "pelvis": _mid("LeftUpLeg", "RightUpLeg"),
    "spine": _one("Spine"),          # end of the ASF lower back, ~22 cm above the hips
    "thorax": _one("Neck"),          # start of the lower neck (after the thorax repair)
    "neck_nose": _mid("Neck1", "Head"),
    "head_top": _one("Head_end"),
    **_sided(
        _limbs("LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LeftArm", "LeftForeArm",
               "LeftFingerBase", "LeftHandIndex1_end"),
        _limbs("RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightArm",
               "RightForeArm", "RightFingerBase", "RightHandIndex1_end")),
}
_CMU_MB_REPAIRS: tuple[Repair, ...] = (
    InsertBone("Spine1", 1.0), StretchBone("LeftHand", 1.5), StretchBone("RightHand", 1.5))

CMU_MB = JointMap(
    kind="cmu_mb", recipe=_CMU_MB_RECIPE, metres_per_unit=CMU_METRES_PER_UNIT,
    repairs=_CMU_MB_REPAIRS,
    root="'Hips': the pelvis centre, ~10 cm above the hip joints (ASF root)",
    approx="thorax and wrist bone lengths restored by rule; hand_end is CMU's short "
           "finger end site (~7 cm past the wrist)")

CMU_EXPMAP = JointMap(
    kind="cmu_expmap", recipe=_CMU_MB_RECIPE, metres_per_unit=CMU_METRES_PER_UNIT,
    repairs=_CMU_MB_REPAIRS,
    root="'Hips' as in the cgspeed BVH (one fixed skeleton: CMU subject 02)",
    approx="every clip on subject 02's bone lengths (the real subject's are lost); thorax "
           "and wrist repaired as for the BVH")

# --- CMU, cgspeed 3dsMax-friendly BVH -----------------------------------------------------
CMU_MAX = JointMap(
    kind="cmu_max",
    recipe={
        "pelvis": _mid("LeftHip", "RightHip"),
        "spine": _one("Chest"),
        "thorax": _one("lowerneck"),
        "neck_nose": _mid("Neck", "Head"),
        "head_top": _one("Head_end"),
        **_sided(_limbs("LeftHip", "LeftKnee", "LeftAnkle", "LeftToe", "LeftShoulder",
                        "LeftElbow", "lhand", "LFingers_end"),
                 _limbs("RightHip", "RightKnee", "RightAnkle", "RightToe", "RightShoulder",
                        "RightElbow", "rhand", "RFingers_end")),
    },
    metres_per_unit=CMU_METRES_PER_UNIT,
    repairs=(InsertBone("Chest2", 1.0), StretchBone("LeftWrist", 1.5),
             StretchBone("RightWrist", 1.5)),
    root="'Hips': the pelvis centre, ~10 cm above the hip joints (ASF root)",
    approx="as cgspeed_mb (same ASF origin, 3dsMax names: 'Shoulder' is the upper arm, "
           "'Collar' the clavicle)")

# --- CMU, cgspeed Daz-friendly BVH (acLSTM clips and cgspeed_daz) -----------------------
#: The Daz head has no end site: the top of the head is put 18 cm above the head joint
#: (skull base) along the head's rest up axis. The eyes sit 8 cm above the head joint and
#: an adult's vertex ~10 cm above the eyes, which also gives the thorax-to-head-top span
#: of Human3.6M (25 cm here, 24 cm there).
DAZ_HEAD_TOP_CM = 18.0

CMU_DAZ = JointMap(
    kind="cmu_daz",
    recipe={
        "pelvis": _mid("lThigh", "rThigh"),
        "spine": _one("abdomen"),
        "thorax": _one("neck"),
        # Nose level near the neck-head axis: midway between the skull base and the eyes.
        "neck_nose": (("head", 0.5), ("leftEye", 0.25), ("rightEye", 0.25)),
        "head_top": _one("head_top_site"),
        **_sided(_limbs("lThigh", "lShin", "lFoot", "lFoot_end", "lShldr", "lForeArm",
                        "lHand", "lMid1"),
                 _limbs("rThigh", "rShin", "rFoot", "rFoot_end", "rShldr", "rForeArm",
                        "rHand", "rMid1")),
    },
    metres_per_unit=0.01,
    sites=(("head_top_site", "head", (0.0, DAZ_HEAD_TOP_CM, 0.0)),),
    root="'hip': 2.6 cm below the thigh joints (Daz figure's hip bone)",
    approx="Daz figure's proportions, not the CMU subject's; no toe joint (toe = foot end "
           "site, the ball of the foot); head_top placed by rule")

# --- HDM05, ASF/AMC (joint = start of the named ASF bone) --------------------------------
HDM05 = JointMap(
    kind="hdm05",
    recipe={
        "pelvis": _mid("lfemur", "rfemur"),
        "spine": _one("upperback"),      # start of the upper back = end of the lower back
        "thorax": _one("lowerneck"),     # end of the thorax bone
        "neck_nose": _mid("upperneck", "head"),
        "head_top": _one("head_end"),
        # wrist = start of 'lhand' (end of the ASF 'lwrist' bone, the forearm's distal
        # half); 'lwrist' itself starts mid-forearm.
        **_sided(_limbs("lfemur", "ltibia", "lfoot", "ltoes", "lhumerus", "lradius",
                        "lhand", "lfingers"),
                 _limbs("rfemur", "rtibia", "rfoot", "rtoes", "rhumerus", "rradius",
                        "rhand", "rfingers")),
    },
    metres_per_unit=None,
    root="'root': the pelvis centre, ~10 cm above the hip joints",
    approx="nothing structural; hand_end is the finger base (~7 cm past the wrist)")

# --- Human3.6M exp-map ----------------------------------------------------------------------
H36M = JointMap(
    kind="h36m",
    recipe={
        "pelvis": _one("Hips"),
        "spine": _one("Spine1"),
        "thorax": _one("Neck"),
        "neck_nose": _one("Head"),
        "head_top": _one("Head_Site"),
        **_sided(_limbs("LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LeftArm",
                        "LeftForeArm", "LeftHand", "L_Wrist_End"),
                 _limbs("RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightArm",
                        "RightForeArm", "RightHand", "R_Wrist_End")),
    },
    metres_per_unit=0.001,
    root="'Hips': the hip midpoint (the hip offsets are purely lateral)",
    approx="one fixed skeleton for every subject; the 17 joints are the JSON's "
           "h36m17_subset, from this FK rather than the original D3_Positions markers")

JOINT_MAPS: dict[str, JointMap] = {m.kind: m for m in
                                   (CMU_MB, CMU_EXPMAP, CMU_MAX, CMU_DAZ, HDM05, H36M)}


def repair(motion: NativeMotion, repairs: tuple[Repair, ...]) -> NativeMotion:
    """`motion` with each lost bone of `repairs` put back, where the children of the
    repaired joint all sit at offset zero (else that repair is skipped)."""
    if not repairs:
        return motion
    offsets = motion.offsets.copy()
    for rep in repairs:
        j = motion.index(rep.joint)
        children = np.flatnonzero(motion.parents == j)
        if not children.size or np.abs(offsets[children]).max() > 1e-9:
            continue
        if isinstance(rep, InsertBone):
            offsets[children] += rep.fraction * offsets[j]
        else:
            offsets[j] *= rep.factor
    return motion.with_offsets(offsets)


def weights_matrix(motion: NativeMotion, joint_map: JointMap) -> np.ndarray:
    """(21, J) matrix W with project = W @ native joint positions."""
    w = np.zeros((len(JOINT_NAMES), len(motion.names)))
    for k, name in enumerate(JOINT_NAMES):
        for native, weight in joint_map.recipe[name]:
            w[k, motion.index(native)] += weight
    return w


def project_joints(motion: NativeMotion, joint_map: JointMap) -> np.ndarray:
    """The project's 21 joints (T, 21, 3) in native units and axes: repairs, virtual
    sites, forward kinematics, then the recipe's weighted sums."""
    fixed = add_sites(repair(motion, joint_map.repairs), joint_map.sites)
    native = forward_kinematics(fixed)  # (T, J, 3)
    return np.einsum("kj,tjc->tkc", weights_matrix(fixed, joint_map), native)
