"""Real test rigs, built inside bpy the way users get them.

- Rigify: the human metarig from Rigify's own operator, and the rig Rigify generates
  from it (``pose.rigify_generate``). Rigify ships inside both bpy wheels.
- Mixamo and Unreal-style (MakeHuman ``game_engine``, UE4 mannequin names): the MakeHuman
  characters of ``shared/data/character``, imported with Blender's glTF importer, so
  their rest orientations and rolls are what a user's import gives.
- UE5, UE4, VRM 0.x (VRoid names), VRM 1.0 (humanoid names), SMPL (its FBX's ``m_avg_``
  names), SMPL-X (the Blender add-on's names): armatures built in edit
  mode from the MakeHuman skeleton's joint positions (metres, feet on z = 0, facing -Y),
  with each family's bone layout (UE5's five spine bones, VRM's upper chest...), A-pose
  or T-pose as the family ships, and different roll conventions (zero, aligned to the
  front, aligned up, arbitrary per bone) so that retargeting cannot assume any.
- CMU BVH: a CMU clip imported with Blender's BVH importer (Euler rotation modes, an
  action of its own).

Each builder adds its rig to the current scene, leaves object mode active and returns
the armature object.
"""

from __future__ import annotations

import gzip
import math
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import bpy
import numpy as np
from mathutils import Vector

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CHARACTERS = SHARED_DATA / "character"
CMU_BVH = SHARED_DATA / "mocap" / "cmu_bvh"
#: A short CMU walk (subject 02, 86 frames at 30 fps) for the BVH importer's skeleton.
CMU_WALK = CMU_BVH / "cgspeed_mb" / "02" / "02_01.bvh.gz"

# --- Joint positions of the MakeHuman default body (game_engine rig, male, A-pose).
# Metres, Blender world (Z up, facing -Y, feet on z = 0); left side = +X. From the
# character's README table (bone heads); head_top and hand_end are bone tails.
_CENTRE = {
    "root": (0.0, 0.0, 0.0),
    "pelvis": (0.0, -0.003, 0.923),
    "spine_a": (0.0, 0.028, 1.010),
    "spine_b": (0.0, 0.019, 1.080),
    "spine_c": (0.0, 0.027, 1.140),
    "chest_top": (0.0, 0.071, 1.410),
    "neck": (0.0, -0.011, 1.482),
    "head": (0.0, -0.047, 1.579),
    "head_top": (0.0, -0.043, 1.750),
}
_LEFT = {
    "clavicle": (0.023, -0.023, 1.408),
    "shoulder": (0.186, -0.018, 1.379),
    "elbow": (0.351, -0.016, 1.189),
    "wrist": (0.486, -0.207, 1.061),
    "hand_end": (0.534, -0.293, 1.007),
    "hip": (0.109, 0.007, 0.918),
    "knee": (0.151, -0.027, 0.504),
    "ankle": (0.198, -0.015, 0.071),
    "ball": (0.202, -0.140, 0.008),
    "toe": (0.194, -0.280, 0.019),
}


def joint_positions(t_pose: bool = False) -> dict[str, np.ndarray]:
    """Named joint positions (metres); ``L_``/``R_`` prefixes for the sides.

    With `t_pose` the arms are straightened out sideways (shoulder -> elbow -> wrist ->
    hand end along ±X at shoulder height), keeping every segment's length.
    """
    pts = {k: np.array(v) for k, v in _CENTRE.items()}
    for side, sign in (("L_", 1.0), ("R_", -1.0)):
        for k, v in _LEFT.items():
            pts[side + k] = np.array(v) * (sign, 1.0, 1.0)
        if t_pose:
            chain = ["shoulder", "elbow", "wrist", "hand_end"]
            for a, b in zip(chain, chain[1:]):
                length = np.linalg.norm(np.array(_LEFT[b]) - np.array(_LEFT[a]))
                pts[side + b] = pts[side + a] + np.array((sign * length, 0.0, 0.0))
    return pts


def _lerp(a: str, b: str, f: float) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    return lambda p: p[a] + f * (p[b] - p[a])


# A bone spec: (name, parent, head, tail); head/tail are joint names or functions of the
# joint table. "{s}" in a name or joint is replaced per side.
Spec = tuple[str, str | None, object, object]


def _sided(specs: list[Spec], side_names: dict[str, str]) -> list[Spec]:
    out: list[Spec] = []
    for name, parent, head, tail in specs:
        if "{s}" not in name:
            out.append((name, parent, head, tail))
            continue
        for side in ("L", "R"):
            fill = side_names[side]
            out.append((name.format(s=fill), parent.format(s=fill) if parent else None,
                        head.format(s=side) if isinstance(head, str) else head,
                        tail.format(s=side) if isinstance(tail, str) else tail))
    return out


def _limbs(names: dict[str, str], spine_top: str, pelvis: str) -> list[Spec]:
    """Arm and leg bones; `names` maps a part to its name pattern with {s}."""
    return [
        (names["clavicle"], spine_top, "{s}_clavicle", "{s}_shoulder"),
        (names["upperarm"], names["clavicle"], "{s}_shoulder", "{s}_elbow"),
        (names["forearm"], names["upperarm"], "{s}_elbow", "{s}_wrist"),
        (names["hand"], names["forearm"], "{s}_wrist", "{s}_hand_end"),
        (names["thigh"], pelvis, "{s}_hip", "{s}_knee"),
        (names["shin"], names["thigh"], "{s}_knee", "{s}_ankle"),
        (names["foot"], names["shin"], "{s}_ankle", "{s}_ball"),
        (names["toe"], names["foot"], "{s}_ball", "{s}_toe"),
    ]


def _ue5_specs() -> list[Spec]:
    spine = [("spine_0%d" % (i + 1), "pelvis" if i == 0 else "spine_0%d" % i,
              _lerp("spine_a", "chest_top", i / 5), _lerp("spine_a", "chest_top", (i + 1) / 5))
             for i in range(5)]
    return _sided([
        ("root", None, "root", _lerp("root", "pelvis", 0.25)),
        ("pelvis", "root", "pelvis", "spine_a"),
        *spine,
        ("neck_01", "spine_05", "neck", _lerp("neck", "head", 0.5)),
        ("neck_02", "neck_01", _lerp("neck", "head", 0.5), "head"),
        ("head", "neck_02", "head", "head_top"),
        *_limbs({"clavicle": "clavicle_{s}", "upperarm": "upperarm_{s}",
                 "forearm": "lowerarm_{s}", "hand": "hand_{s}", "thigh": "thigh_{s}",
                 "shin": "calf_{s}", "foot": "foot_{s}", "toe": "ball_{s}"},
                "spine_05", "pelvis"),
    ], {"L": "l", "R": "r"})


def _ue4_specs() -> list[Spec]:
    # The UE4 mannequin's layout: three spine bones, one neck bone.
    spine = [("spine_0%d" % (i + 1), "pelvis" if i == 0 else "spine_0%d" % i,
              _lerp("spine_a", "chest_top", i / 3), _lerp("spine_a", "chest_top", (i + 1) / 3))
             for i in range(3)]
    return _sided([
        ("root", None, "root", _lerp("root", "pelvis", 0.25)),
        ("pelvis", "root", "pelvis", "spine_a"),
        *spine,
        ("neck_01", "spine_03", "neck", "head"),
        ("head", "neck_01", "head", "head_top"),
        *_limbs({"clavicle": "clavicle_{s}", "upperarm": "upperarm_{s}",
                 "forearm": "lowerarm_{s}", "hand": "hand_{s}", "thigh": "thigh_{s}",
                 "shin": "calf_{s}", "foot": "foot_{s}", "toe": "ball_{s}"},
                "spine_03", "pelvis"),
    ], {"L": "l", "R": "r"})


def _smpl_specs() -> list[Spec]:
    # SMPL's own joint names under the prefix its FBX files carry (m_avg_ for the male).
    return [(("m_avg_" + n) if n else n, ("m_avg_" + p) if p else None, h, t)
            for n, p, h, t in _sided([
                ("Pelvis", None, "pelvis", "spine_a"),
                ("Spine1", "Pelvis", "spine_a", "spine_b"),
                ("Spine2", "Spine1", "spine_b", "spine_c"),
                ("Spine3", "Spine2", "spine_c", "chest_top"),
                ("Neck", "Spine3", "neck", "head"),
                ("Head", "Neck", "head", "head_top"),
                *_limbs({"clavicle": "{s}_Collar", "upperarm": "{s}_Shoulder",
                         "forearm": "{s}_Elbow", "hand": "{s}_Wrist", "thigh": "{s}_Hip",
                         "shin": "{s}_Knee", "foot": "{s}_Ankle", "toe": "{s}_Foot"},
                        "Spine3", "Pelvis"),
            ], {"L": "L", "R": "R"})]


def _vrm0_specs() -> list[Spec]:
    # VRoid Studio's bone names (what VRM 0.x files from VRoid carry).
    return _sided([
        ("Root", None, "root", _lerp("root", "pelvis", 0.25)),
        ("J_Bip_C_Hips", "Root", "pelvis", "spine_a"),
        ("J_Bip_C_Spine", "J_Bip_C_Hips", "spine_a", "spine_c"),
        ("J_Bip_C_Chest", "J_Bip_C_Spine", "spine_c", _lerp("spine_c", "chest_top", 0.5)),
        ("J_Bip_C_UpperChest", "J_Bip_C_Chest", _lerp("spine_c", "chest_top", 0.5),
         "chest_top"),
        ("J_Bip_C_Neck", "J_Bip_C_UpperChest", "neck", "head"),
        ("J_Bip_C_Head", "J_Bip_C_Neck", "head", "head_top"),
        *_limbs({"clavicle": "J_Bip_{s}_Shoulder", "upperarm": "J_Bip_{s}_UpperArm",
                 "forearm": "J_Bip_{s}_LowerArm", "hand": "J_Bip_{s}_Hand",
                 "thigh": "J_Bip_{s}_UpperLeg", "shin": "J_Bip_{s}_LowerLeg",
                 "foot": "J_Bip_{s}_Foot", "toe": "J_Bip_{s}_ToeBase"},
                "J_Bip_C_UpperChest", "J_Bip_C_Hips"),
    ], {"L": "L", "R": "R"})


def _vrm1_specs() -> list[Spec]:
    # VRM 1.0 humanoid bone names used as the bones' own names.
    return _sided([
        ("hips", None, "pelvis", "spine_a"),
        ("spine", "hips", "spine_a", "spine_c"),
        ("chest", "spine", "spine_c", _lerp("spine_c", "chest_top", 0.5)),
        ("upperChest", "chest", _lerp("spine_c", "chest_top", 0.5), "chest_top"),
        ("neck", "upperChest", "neck", "head"),
        ("head", "neck", "head", "head_top"),
        *_limbs({"clavicle": "{s}Shoulder", "upperarm": "{s}UpperArm",
                 "forearm": "{s}LowerArm", "hand": "{s}Hand", "thigh": "{s}UpperLeg",
                 "shin": "{s}LowerLeg", "foot": "{s}Foot", "toe": "{s}Toes"},
                "upperChest", "hips"),
    ], {"L": "left", "R": "right"})


def _smplx_specs() -> list[Spec]:
    # The SMPL-X Blender add-on's joint names; bones run joint -> child joint.
    spine = lambda i: _lerp("spine_a", "chest_top", i / 3)  # noqa: E731
    return _sided([
        ("pelvis", None, "pelvis", "spine_a"),
        ("spine1", "pelvis", spine(0), spine(1)),
        ("spine2", "spine1", spine(1), spine(2)),
        ("spine3", "spine2", spine(2), "chest_top"),
        ("neck", "spine3", "neck", "head"),
        ("head", "neck", "head", "head_top"),
        *_limbs({"clavicle": "{s}_collar", "upperarm": "{s}_shoulder",
                 "forearm": "{s}_elbow", "hand": "{s}_wrist", "thigh": "{s}_hip",
                 "shin": "{s}_knee", "foot": "{s}_ankle", "toe": "{s}_foot"},
                "spine3", "pelvis"),
    ], {"L": "left", "R": "right"})


def _roll_zero(i: int, bone: bpy.types.EditBone) -> None:
    bone.roll = 0.0


def _roll_aligned(axis: tuple[float, float, float],
                  fallback: tuple[float, float, float]) -> Callable[[int, bpy.types.EditBone],
                                                                    None]:
    def roll(i: int, bone: bpy.types.EditBone) -> None:
        y = (bone.tail - bone.head).normalized()
        target = Vector(axis) if abs(y.dot(Vector(axis))) < 0.9 else Vector(fallback)
        bone.align_roll(target)
    return roll


def _roll_arbitrary(i: int, bone: bpy.types.EditBone) -> None:
    # Deterministic, different for every bone: no convention at all.
    bone.roll = math.radians((i * 73) % 360 - 180)


#: family -> (bone specs, T-pose?, roll rule, armature name)
BUILT_FAMILIES: dict[str, tuple[Callable[[], list[Spec]], bool,
                                Callable[[int, bpy.types.EditBone], None], str]] = {
    "ue5": (_ue5_specs, False, _roll_aligned((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)), "SK_Mannequin"),
    "ue4": (_ue4_specs, False, _roll_aligned((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
            "UE4_Mannequin"),
    "smpl": (_smpl_specs, True, _roll_zero, "SMPL-male"),
    "vrm0": (_vrm0_specs, True, _roll_aligned((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)), "VRoid"),
    "vrm1": (_vrm1_specs, True, _roll_zero, "VRM1_Humanoid"),
    "smplx": (_smplx_specs, True, _roll_arbitrary, "SMPLX-neutral"),
}


def armature_from_specs(name: str, specs: list[Spec], t_pose: bool,
                        roll: Callable[[int, bpy.types.EditBone], None]) -> bpy.types.Object:
    """A new armature object `name` with one bone per spec, in edit mode then back."""
    pts = joint_positions(t_pose)

    def point(ref: object) -> Vector:
        return Vector(pts[ref] if isinstance(ref, str) else ref(pts))  # type: ignore[operator]

    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for i, (bone_name, parent, head, tail) in enumerate(specs):
        bone = data.edit_bones.new(bone_name)
        bone.head, bone.tail = point(head), point(tail)
        roll(i, bone)
        if parent is not None:
            bone.parent = data.edit_bones[parent]
            bone.use_connect = (bone.parent.tail - bone.head).length < 1e-6
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def build_family(family: str) -> bpy.types.Object:
    """One of `BUILT_FAMILIES`."""
    specs, t_pose, roll, name = BUILT_FAMILIES[family]
    return armature_from_specs(name, specs(), t_pose, roll)


def enable_rigify() -> None:
    import addon_utils

    addon_utils.enable("rigify", default_set=True)


def build_rigify_metarig() -> bpy.types.Object:
    """Rigify's human metarig (``object.armature_human_metarig_add``)."""
    enable_rigify()
    _object_mode()
    bpy.ops.object.armature_human_metarig_add()
    obj = bpy.context.object
    assert obj is not None and obj.type == "ARMATURE"
    return obj


def build_rigify_generated(metarig: bpy.types.Object | None = None) -> bpy.types.Object:
    """The rig Rigify generates from `metarig` (a new human metarig if None)."""
    if metarig is None:
        metarig = build_rigify_metarig()
    _object_mode()
    for o in bpy.context.selected_objects:
        o.select_set(False)
    bpy.context.view_layer.objects.active = metarig
    metarig.select_set(True)
    assert bpy.ops.pose.rigify_generate() == {"FINISHED"}
    rig = bpy.context.object
    assert rig is not None and rig is not metarig and rig.type == "ARMATURE"
    _object_mode()
    return rig


def import_glb(path: Path) -> bpy.types.Object:
    """Import a glTF character; returns its armature object."""
    _object_mode()
    before = set(bpy.data.objects)
    assert bpy.ops.import_scene.gltf(filepath=str(path)) == {"FINISHED"}
    armatures = [o for o in bpy.data.objects if o not in before and o.type == "ARMATURE"]
    assert len(armatures) == 1, armatures
    _object_mode()
    return armatures[0]


def build_mixamo() -> bpy.types.Object:
    """MakeHuman's Mixamo-named character (``mixamorig:`` bones), as glTF imports it."""
    return import_glb(CHARACTERS / "makehuman_female_mixamo.glb")


def build_makehuman_game_engine() -> bpy.types.Object:
    """MakeHuman's game_engine rig (UE4 mannequin names: pelvis, spine_01..03, thigh_l)."""
    return import_glb(CHARACTERS / "makehuman_male_game_engine.glb")


def build_cmu_bvh(path: Path = CMU_WALK) -> bpy.types.Object:
    """The skeleton (and action) Blender's BVH importer makes from a CMU clip."""
    _object_mode()
    with tempfile.TemporaryDirectory() as tmp:
        bvh = Path(tmp) / path.name.removesuffix(".gz")
        with gzip.open(path, "rb") as src, open(bvh, "wb") as dst:
            shutil.copyfileobj(src, dst)
        # CMU BVH is in inches-ish units (~17 per metre): scale to a ~1.7 m person.
        assert bpy.ops.import_anim.bvh(filepath=str(bvh), global_scale=0.056444,
                                       rotate_mode="NATIVE") == {"FINISHED"}
    obj = bpy.context.object
    assert obj is not None and obj.type == "ARMATURE"
    return obj


#: Every rig family the tests build: name -> builder.
BUILDERS: dict[str, Callable[[], bpy.types.Object]] = {
    "rigify_metarig": build_rigify_metarig,
    "rigify_generated": build_rigify_generated,
    "mixamo": build_mixamo,
    "makehuman_game_engine": build_makehuman_game_engine,
    **{family: (lambda f=family: build_family(f)) for family in BUILT_FAMILIES},
    "bvh_cmu": build_cmu_bvh,
}


def build_all(path: Path) -> dict[str, str]:
    """Build every family into a fresh file saved at `path`; returns family -> object name.

    Generating the Rigify rig takes ~30 s, so tests build once and reopen the file
    (``wm.open_mainfile``) for a clean scene per test.
    """
    bpy.ops.wm.read_factory_settings(use_empty=True)
    names: dict[str, str] = {}
    metarig = build_rigify_metarig()
    names["rigify_metarig"] = metarig.name
    names["rigify_generated"] = build_rigify_generated(metarig).name
    for family, builder in BUILDERS.items():
        if family.startswith("rigify"):
            continue
        names[family] = builder().name
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return names


def _object_mode() -> None:
    if bpy.context.object is not None and bpy.context.object.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")


