"""Rest rigs built in numpy for the retargeting tests: real rig families' bone names and
hierarchies, a rest pose with the proportions of a given clip (so a round trip can be
exact), and deliberately different roll and tail conventions.

A layout row is (bone, parent, head joint, tail): the head sits on one of the project's
joints; the tail is a joint, or "+along" (a short stub continuing from the parent joint
direction) for leaf bones.
"""

from __future__ import annotations

import numpy as np

from diffpose_blender.core.rig import RestBone, RestRig
from diffpose_blender.core.rotations import axis_angle_matrix, normalize
from diffpose_blender.core.skeleton import SKELETON

J = SKELETON.index


def median_lengths(positions: np.ndarray) -> dict[tuple[str, str], float]:
    """Median distance (m) between every pair of joints of the skeleton's bones."""
    out = {}
    for p, c in SKELETON.bones:
        a, b = SKELETON.names[p], SKELETON.names[c]
        out[(a, b)] = float(np.median(np.linalg.norm(positions[:, c] - positions[:, p], axis=1)))
    return out


def rest_joints(positions: np.ndarray, arms: str = "T") -> dict[str, np.ndarray]:
    """A standing rest pose (facing -Y, Z up, lowest foot joint at z = 0) with the
    clip's median bone lengths. arms: "T" (horizontal) or "A" (45 degrees down)."""
    L = median_lengths(positions)
    up, down, left, fwd = (np.array(v, float) for v in ([0, 0, 1], [0, 0, -1], [1, 0, 0],
                                                       [0, -1, 0]))
    P: dict[str, np.ndarray] = {}
    P["pelvis"] = np.zeros(3)
    for s, sign in (("l", 1.0), ("r", -1.0)):
        P[f"{s}_hip"] = sign * left * L[("pelvis", f"{s}_hip")]
        knee_dir = normalize(down + 0.03 * fwd)  # a slight knee bend, as real rigs have
        P[f"{s}_knee"] = P[f"{s}_hip"] + knee_dir * L[(f"{s}_hip", f"{s}_knee")]
        P[f"{s}_ankle"] = P[f"{s}_knee"] + down * L[(f"{s}_knee", f"{s}_ankle")]
        P[f"{s}_toe"] = P[f"{s}_ankle"] + normalize(fwd + 0.5 * down) * L[(f"{s}_ankle", f"{s}_toe")]
    P["spine"] = P["pelvis"] + up * L[("pelvis", "spine")]
    P["thorax"] = P["spine"] + normalize(up + 0.05 * fwd) * L[("spine", "thorax")]
    P["neck_nose"] = P["thorax"] + normalize(up + 0.1 * fwd) * L[("thorax", "neck_nose")]
    P["head_top"] = P["neck_nose"] + up * L[("neck_nose", "head_top")]
    arm = {"T": np.array([1.0, 0, 0]), "A": normalize(np.array([1.0, 0, -1.0]))}[arms]
    for s, sign in (("l", 1.0), ("r", -1.0)):
        m = np.array([sign, 1.0, 1.0])
        P[f"{s}_shoulder"] = P["thorax"] + normalize(m * [1, 0, -0.15]) * L[("thorax", f"{s}_shoulder")]
        P[f"{s}_elbow"] = P[f"{s}_shoulder"] + m * arm * L[(f"{s}_shoulder", f"{s}_elbow")]
        P[f"{s}_wrist"] = P[f"{s}_elbow"] + normalize(m * arm + 0.05 * fwd) * L[(f"{s}_elbow", f"{s}_wrist")]
        P[f"{s}_hand_end"] = P[f"{s}_wrist"] + m * arm * L[(f"{s}_wrist", f"{s}_hand_end")]
    floor = min(P[f][2] for f in ("l_ankle", "r_ankle", "l_toe", "r_toe"))
    return {k: v - [0, 0, floor] for k, v in P.items()}


def _side(row: tuple, s: str, S: str) -> tuple:
    return tuple(x.replace("{s}", s).replace("{S}", S).replace("{Side}",
                 {"l": "Left", "r": "Right"}[s]) if isinstance(x, str) else x for x in row)


def layout(center: list[tuple], sided: list[tuple], sides=(("l", "L"), ("r", "R"))) -> list[tuple]:
    rows = list(center)
    for s, S in sides:
        rows += [_side(r, s, S) for r in sided]
    return rows


def build_rig(name: str, rows: list[tuple], P: dict[str, np.ndarray], roll: str,
              seed: int = 0, world_matrix: np.ndarray | None = None) -> RestRig:
    """A RestRig from layout rows and rest joints.

    roll  "blender": Z axis as close to +Z/-Y as Blender's default roll 0 gives;
          "random": every bone rolled by a random angle about its Y axis;
          "tails": like "random", and every tail moved to a random direction 5-15 cm from
                   the head (FBX imports without bone-orientation fixing look like this:
                   the joints are the heads, the Y axes point anywhere).
    """
    rng = np.random.default_rng(seed)
    bones = []
    for bone, parent, head_j, tail in rows:
        head = P[head_j]
        if tail.startswith("+"):
            tail_p = head + 0.08 * normalize(head - P[tail[1:]])
        else:
            tail_p = P[tail]
        if roll == "tails" and not tail.startswith("+"):
            tail_p = head + rng.uniform(0.05, 0.15) * normalize(rng.normal(size=3))
        y = normalize(tail_p - head)
        helper = np.array([0.0, 0.0, 1.0]) if abs(y[2]) < 0.9 else np.array([0.0, -1.0, 0.0])
        x = normalize(np.cross(y, helper))
        z = np.cross(x, y)
        m = np.stack([x, y, z], axis=1)
        if roll in ("random", "tails"):
            m = axis_angle_matrix(y, np.array(rng.uniform(-np.pi, np.pi))) @ m
        bones.append(RestBone(bone, parent, head, tail_p, m))
    return RestRig(name, tuple(bones), np.eye(4) if world_matrix is None else world_matrix)


MIXAMO = layout(
    [("Hips", None, "pelvis", "spine"),
     ("Spine", "Hips", "pelvis", "spine"),
     ("Spine1", "Spine", "spine", "thorax"),
     ("Spine2", "Spine1", "spine", "thorax"),
     ("Neck", "Spine2", "thorax", "neck_nose"),
     ("Head", "Neck", "neck_nose", "head_top")],
    [("{Side}UpLeg", "Hips", "{s}_hip", "{s}_knee"),
     ("{Side}Leg", "{Side}UpLeg", "{s}_knee", "{s}_ankle"),
     ("{Side}Foot", "{Side}Leg", "{s}_ankle", "{s}_toe"),
     ("{Side}ToeBase", "{Side}Foot", "{s}_toe", "+{s}_ankle"),
     ("{Side}Shoulder", "Spine2", "thorax", "{s}_shoulder"),
     ("{Side}Arm", "{Side}Shoulder", "{s}_shoulder", "{s}_elbow"),
     ("{Side}ForeArm", "{Side}Arm", "{s}_elbow", "{s}_wrist"),
     ("{Side}Hand", "{Side}ForeArm", "{s}_wrist", "{s}_hand_end"),
     ("{Side}HandMiddle1", "{Side}Hand", "{s}_hand_end", "+{s}_wrist")])

UE5 = layout(
    [("root", None, "pelvis", "spine"),
     ("pelvis", "root", "pelvis", "spine"),
     ("spine_01", "pelvis", "pelvis", "spine"),
     ("spine_02", "spine_01", "pelvis", "spine"),
     ("spine_03", "spine_02", "spine", "thorax"),
     ("spine_04", "spine_03", "spine", "thorax"),
     ("spine_05", "spine_04", "spine", "thorax"),
     ("neck_01", "spine_05", "thorax", "neck_nose"),
     ("neck_02", "neck_01", "thorax", "neck_nose"),
     ("head", "neck_02", "neck_nose", "head_top")],
    [("thigh_{s}", "pelvis", "{s}_hip", "{s}_knee"),
     ("calf_{s}", "thigh_{s}", "{s}_knee", "{s}_ankle"),
     ("foot_{s}", "calf_{s}", "{s}_ankle", "{s}_toe"),
     ("ball_{s}", "foot_{s}", "{s}_toe", "+{s}_ankle"),
     ("clavicle_{s}", "spine_05", "thorax", "{s}_shoulder"),
     ("upperarm_{s}", "clavicle_{s}", "{s}_shoulder", "{s}_elbow"),
     ("lowerarm_{s}", "upperarm_{s}", "{s}_elbow", "{s}_wrist"),
     ("hand_{s}", "lowerarm_{s}", "{s}_wrist", "{s}_hand_end"),
     ("middle_01_{s}", "hand_{s}", "{s}_hand_end", "+{s}_wrist")])

RIGIFY_METARIG = layout(
    [("spine", None, "pelvis", "spine"),
     ("spine.001", "spine", "pelvis", "spine"),
     ("spine.002", "spine.001", "spine", "thorax"),
     ("spine.003", "spine.002", "spine", "thorax"),
     ("spine.004", "spine.003", "thorax", "neck_nose"),
     ("spine.005", "spine.004", "thorax", "neck_nose"),
     ("spine.006", "spine.005", "neck_nose", "head_top")],
    [("thigh.{S}", "spine", "{s}_hip", "{s}_knee"),
     ("shin.{S}", "thigh.{S}", "{s}_knee", "{s}_ankle"),
     ("foot.{S}", "shin.{S}", "{s}_ankle", "{s}_toe"),
     ("toe.{S}", "foot.{S}", "{s}_toe", "+{s}_ankle"),
     ("shoulder.{S}", "spine.003", "thorax", "{s}_shoulder"),
     ("upper_arm.{S}", "shoulder.{S}", "{s}_shoulder", "{s}_elbow"),
     ("forearm.{S}", "upper_arm.{S}", "{s}_elbow", "{s}_wrist"),
     ("hand.{S}", "forearm.{S}", "{s}_wrist", "{s}_hand_end"),
     ("f_middle.01.{S}", "hand.{S}", "{s}_hand_end", "+{s}_wrist")])


def _mirror(name: str) -> str:
    for a, b in (("_l", "_r"), ("Left", "Right")):
        if name.endswith(a):
            return name[: -len(a)] + b
        if a in name and not name.endswith(a) and a == "Left":
            return name.replace(a, b)
    return name


def rig_from_table(name: str, table: dict[str, tuple], seed: int = 3) -> RestRig:
    """A RestRig from (parent, head, tail) rows of a real character's left and middle
    bones (the right side mirrored), each bone rolled by a random angle (the real rolls
    are not in the table; the solve must not care)."""
    rng = np.random.default_rng(seed)
    rows = []
    for bone, (parent, head, tail) in table.items():
        rows.append((bone, parent, np.array(head, float), np.array(tail, float)))
        if _mirror(bone) != bone:
            m = np.array([-1.0, 1.0, 1.0])
            rows.append((_mirror(bone), _mirror(parent) if parent else None,
                         np.array(head, float) * m, np.array(tail, float) * m))
    bones = []
    for bone, parent, head, tail in rows:
        y = normalize(tail - head)
        helper = np.array([0.0, 0.0, 1.0]) if abs(y[2]) < 0.9 else np.array([0.0, -1.0, 0.0])
        x = normalize(np.cross(y, helper))
        m = axis_angle_matrix(y, np.array(rng.uniform(-np.pi, np.pi))) @ np.stack(
            [x, y, np.cross(x, y)], axis=1)
        bones.append(RestBone(bone, parent, head, tail, m))
    return RestRig(name, tuple(bones))


#: shared/data/character/README.md, makehuman_male_game_engine.glb (left and middle).
MAKEHUMAN_MALE_GAME_ENGINE = {
    "Root": (None, (0.000, -0.000, 0.000), (0.000, 0.923, 0.000)),
    "pelvis": ("Root", (0.000, -0.003, 0.923), (0.000, 0.028, 1.010)),
    "spine_01": ("pelvis", (0.000, 0.028, 1.010), (0.000, 0.019, 1.080)),
    "spine_02": ("spine_01", (0.000, 0.019, 1.080), (0.000, 0.027, 1.140)),
    "spine_03": ("spine_02", (0.000, 0.027, 1.140), (0.000, 0.071, 1.410)),
    "clavicle_l": ("spine_03", (0.023, -0.023, 1.408), (0.186, -0.018, 1.379)),
    "upperarm_l": ("clavicle_l", (0.186, -0.018, 1.379), (0.351, -0.016, 1.189)),
    "lowerarm_l": ("upperarm_l", (0.351, -0.016, 1.189), (0.486, -0.207, 1.061)),
    "hand_l": ("lowerarm_l", (0.486, -0.207, 1.061), (0.501, -0.247, 1.038)),
    "middle_01_l": ("hand_l", (0.534, -0.293, 1.007), (0.542, -0.317, 0.980)),
    "neck_01": ("spine_03", (0.000, -0.011, 1.482), (0.000, -0.047, 1.579)),
    "head": ("neck_01", (0.000, -0.047, 1.579), (0.000, -0.043, 1.682)),
    "thigh_l": ("pelvis", (0.109, 0.007, 0.918), (0.151, -0.027, 0.504)),
    "calf_l": ("thigh_l", (0.151, -0.027, 0.504), (0.198, -0.015, 0.071)),
    "foot_l": ("calf_l", (0.198, -0.015, 0.071), (0.202, -0.140, 0.008)),
    "ball_l": ("foot_l", (0.202, -0.140, 0.008), (0.194, -0.280, 0.019)),
}

#: shared/data/character/README.md, makehuman_female_mixamo.glb (left and middle).
MAKEHUMAN_FEMALE_MIXAMO = {
    "mixamorig:Hips": (None, (0.004, -0.025, 0.861), (0.001, -0.022, 0.963)),
    "mixamorig:LeftUpLeg": ("mixamorig:Hips", (0.095, -0.017, 0.815), (0.134, -0.048, 0.446)),
    "mixamorig:LeftLeg": ("mixamorig:LeftUpLeg", (0.134, -0.048, 0.446), (0.165, -0.030, 0.068)),
    "mixamorig:LeftFoot": ("mixamorig:LeftLeg", (0.165, -0.030, 0.068), (0.164, -0.153, 0.024)),
    "mixamorig:LeftToeBase": ("mixamorig:LeftFoot", (0.164, -0.153, 0.024), (0.172, -0.280, -0.010)),
    "mixamorig:Spine": ("mixamorig:Hips", (0.000, -0.021, 0.983), (0.000, -0.015, 1.085)),
    "mixamorig:Spine1": ("mixamorig:Spine", (0.000, -0.015, 1.085), (0.000, -0.012, 1.203)),
    "mixamorig:Spine2": ("mixamorig:Spine1", (0.000, -0.012, 1.203), (0.000, -0.000, 1.333)),
    "mixamorig:LeftShoulder": ("mixamorig:Spine2", (0.061, -0.017, 1.323), (0.154, -0.021, 1.263)),
    "mixamorig:LeftArm": ("mixamorig:LeftShoulder", (0.154, -0.021, 1.263), (0.311, -0.024, 1.092)),
    "mixamorig:LeftForeArm": ("mixamorig:LeftArm", (0.311, -0.024, 1.092), (0.420, -0.159, 0.972)),
    "mixamorig:LeftHand": ("mixamorig:LeftForeArm", (0.420, -0.159, 0.972), (0.438, -0.184, 0.947)),
    "mixamorig:LeftHandMiddle1": ("mixamorig:LeftHand", (0.460, -0.226, 0.923), (0.466, -0.244, 0.898)),
    "mixamorig:Neck": ("mixamorig:Spine2", (0.000, 0.001, 1.346), (0.000, -0.005, 1.410)),
    "mixamorig:Head": ("mixamorig:Neck", (0.000, -0.024, 1.405), (0.000, -0.022, 1.470)),
}
