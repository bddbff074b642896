"""Rig maps: every shipped map loads, detection picks the right family on real rigs'
bone names (whatever their prefix), and bad rigs and bad map files say what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.rigmap import (builtin_rig_maps, detect_rig, load_rig_map,
                                          resolve_for_rig, rig_map_by_family)
from diffpose_blender.core.skeleton import JOINT_NAMES

from tests.core.rig_names import (BVH_CMU, BVH_DAZ, MAKEHUMAN_GAME_ENGINE, MAKEHUMAN_MIXAMO,
                        RIGIFY_GENERATED, RIGIFY_METARIG)

REPO = Path(__file__).resolve().parents[2]

# Names as the rigs' makers publish them (not read from a file here).
UE5 = ["root", "pelvis", "spine_01", "spine_02", "spine_03", "spine_04", "spine_05",
       "neck_01", "neck_02", "head"] + [f"{b}_{s}" for s in "lr" for b in (
        "clavicle", "upperarm", "lowerarm", "hand", "middle_01", "thigh", "calf", "foot",
        "ball")]
UE4 = ["root", "pelvis", "spine_01", "spine_02", "spine_03", "neck_01", "head"] + [
    f"{b}_{s}" for s in "lr" for b in ("clavicle", "upperarm", "lowerarm", "hand",
                                       "middle_01", "thigh", "calf", "foot", "ball",
                                       "ik_foot")]
VRM = ["hips", "spine", "chest", "upperChest", "neck", "head"] + [
    f"{s}{b}" for s in ("left", "right") for b in (
        "UpperLeg", "LowerLeg", "Foot", "Toes", "Shoulder", "UpperArm", "LowerArm", "Hand")]
VROID = ["Root", "J_Bip_C_Hips", "J_Bip_C_Spine", "J_Bip_C_Chest", "J_Bip_C_UpperChest",
         "J_Bip_C_Neck", "J_Bip_C_Head"] + [f"J_Bip_{s}_{b}" for s in "LR" for b in (
            "UpperLeg", "LowerLeg", "Foot", "ToeBase", "Shoulder", "UpperArm", "LowerArm",
            "Hand", "Middle1")]
SMPL = ["Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2", "L_Ankle",
        "R_Ankle", "Spine3", "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head",
        "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand",
        "R_Hand"]
SMPLX_ADDON = ["root", "pelvis", "left_hip", "right_hip", "spine1", "left_knee",
               "right_knee", "spine2", "left_ankle", "right_ankle", "spine3", "left_foot",
               "right_foot", "neck", "left_collar", "right_collar", "head", "jaw",
               "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
               "right_wrist"]
MAKEHUMAN_DEFAULT = ["root", "spine05", "spine04", "spine03", "spine02", "spine01",
                     "neck01", "neck02", "neck03", "head", "jaw"] + [
    f"{b}.{s}" for s in "LR" for b in (
        "pelvis", "upperleg01", "upperleg02", "lowerleg01", "lowerleg02", "foot",
        "toe3-1", "clavicle", "shoulder01", "upperarm01", "upperarm02", "lowerarm01",
        "lowerarm02", "wrist", "finger3-1")]


def test_every_shipped_map_loads_and_is_consistent() -> None:
    maps = builtin_rig_maps()
    families = {m.family for m in maps}
    assert {"rigify_metarig", "rigify_fk", "rigify_ik", "mixamo", "ue5", "ue4",
            "vrm_humanoid", "vroid", "smpl", "smplx_addon", "bvh_cmu", "bvh_daz",
            "makehuman_default", "makehuman_game_engine"} <= families
    for m in maps:
        assert m.required(), m.family
        for name, target in m.bones.items():
            assert set(target.joints) <= set(m.joints), (m.family, name)
            assert set(target.joints) <= set(JOINT_NAMES)
        assert m.root in m.bone_names()


@pytest.mark.parametrize("names, family, prefix", [
    (MAKEHUMAN_GAME_ENGINE, "makehuman_game_engine", ""),
    (MAKEHUMAN_MIXAMO, "mixamo", "mixamorig:"),
    ([n.replace("mixamorig:", "mixamorig1:") for n in MAKEHUMAN_MIXAMO], "mixamo",
     "mixamorig1:"),
    ([n.replace("mixamorig:", "") for n in MAKEHUMAN_MIXAMO], "mixamo", ""),
    ([n.replace("mixamorig:", "Armature|") for n in MAKEHUMAN_MIXAMO], "mixamo",
     "Armature|"),
    (BVH_CMU, "bvh_cmu", ""),
    (BVH_DAZ, "bvh_daz", ""),
    (RIGIFY_METARIG, "rigify_metarig", ""),
    (RIGIFY_GENERATED, "rigify_fk", ""),
    (UE5, "ue5", ""),
    (UE4, "ue4", ""),
    (VRM, "vrm_humanoid", ""),
    (VROID, "vroid", ""),
    (SMPL, "smpl", ""),
    (SMPLX_ADDON, "smplx_addon", ""),
    (MAKEHUMAN_DEFAULT, "makehuman_default", ""),
])
def test_detects_the_family_of_real_rigs(names: list[str], family: str, prefix: str) -> None:
    det = detect_rig(names)
    assert det.rig_map.family == family, det.report()
    assert det.rig_map.prefix == prefix
    assert det.score == 1.0
    # Concrete names: every driven bone is a bone of the rig.
    assert set(det.rig_map.bones) <= set(names)
    assert det.rig_map.root in names
    report = det.report()
    assert det.rig_map.label in report and f"{det.score:.2f}" in report


def test_vrm_without_its_optional_bones_still_maps_and_reports_them() -> None:
    names = [n for n in VRM if n not in ("upperChest", "leftToes", "rightToes")]
    det = detect_rig(names)
    assert det.rig_map.family == "vrm_humanoid" and det.score == 1.0
    assert "upperChest" in det.missing and "upperChest" not in det.rig_map.bones
    # The toes give the foot its direction: without them the foot is not driven.
    assert "leftFoot" not in det.rig_map.bones and "leftFoot" in det.undriven
    assert "upperChest" in det.report() and "leftFoot" in det.report()


def test_rigify_ik_is_chosen_by_name_and_made_concrete() -> None:
    ik = rig_map_by_family("rigify_ik")
    det = resolve_for_rig(ik, RIGIFY_GENERATED)
    assert det.score == 1.0 and det.rig_map.family == "rigify_ik"
    assert det.rig_map.bones["foot_ik.L"].place == "l_ankle"
    assert det.rig_map.bones["thigh_ik_target.L"].pole == ("l_hip", "l_knee", "l_ankle")
    with pytest.raises(DiffPoseError, match="family 'rigify_xx'.*rigify_ik"):
        rig_map_by_family("rigify_xx")


def test_unknown_rig_lists_what_was_looked_for() -> None:
    names = ["Bone", "Bone.001", "Bone.002", "Tail", "Wing.L", "Wing.R"]
    with pytest.raises(DiffPoseError) as err:
        detect_rig(names)
    msg = str(err.value)
    assert "Bone, Bone.001" in msg and "best matches" in msg
    assert "Mixamo" in msg or "Rigify" in msg
    assert "rig_maps/README.md" in msg
    with pytest.raises(DiffPoseError, match="no"):
        detect_rig([])


def _write(tmp_path: Path, data: object, name: str = "map.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_user_map_file_with_the_same_schema(tmp_path: Path) -> None:
    base = json.loads((REPO / "rig_maps" / "mixamo.json").read_text(encoding="utf-8"))
    renamed = json.loads(json.dumps(base).replace('"Left', '"L_').replace('"Right', '"R_'))
    renamed.update(family="my_rig", label="My rig")
    user = load_rig_map(_write(tmp_path, renamed))
    names = [n.replace("mixamorig:", "").replace("Left", "L_").replace("Right", "R_")
             for n in MAKEHUMAN_MIXAMO]
    det = detect_rig(names, maps=builtin_rig_maps() + [user])
    assert det.rig_map.family == "my_rig" and det.score == 1.0


@pytest.mark.parametrize("edit, where", [
    (lambda d: "{ not json", "line 1, column 3"),
    (lambda d: {**d, "schema": "other"}, "key 'schema'"),
    (lambda d: {**d, "version": 7}, "key 'version'"),
    (lambda d: {**d, "root": ""}, "key 'root'"),
    (lambda d: {**d, "joints": {**d["joints"], "l_kneee": "LeftLeg"}}, "joints.l_kneee"),
    (lambda d: {**d, "bones": {**d["bones"], "LeftLeg": {"dir": ["l_knee"]}}},
     "bones.LeftLeg.dir"),
    (lambda d: {**d, "bones": {**d["bones"], "LeftLeg": {"dir": ["l_knee", "l_ankle"],
                                                         "twist": {"plane": ["l_hip"]}}}},
     "bones.LeftLeg.twist.plane"),
    (lambda d: {**d, "bones": {**d["bones"], "LeftLeg": {
        "dir": ["l_knee", "l_ankle"], "twist": {"plane": ["l_hip", "l_knee", "l_ankle"],
                                                "bend": "sideways"}}}},
     "bones.LeftLeg.twist.bend"),
    (lambda d: {**d, "bones": {**d["bones"], "LeftLeg": {"dir": ["l_knee", "l_ankle"],
                                                         "spin": 3}}}, "bones.LeftLeg"),
    (lambda d: {**d, "joints": {k: v for k, v in d["joints"].items() if k != "l_ankle"}},
     "joint 'l_ankle' is used"),
    (lambda d: {**d, "properties": {'pose.bones["x"]["IK_FK"]': "on"}}, "key 'properties'"),
    (lambda d: {**d, "properties": ["IK_FK"]}, "key 'properties'"),
])
def test_bad_map_files_name_the_file_and_key(tmp_path: Path, edit, where: str) -> None:
    base = json.loads((REPO / "rig_maps" / "mixamo.json").read_text(encoding="utf-8"))
    path = _write(tmp_path, edit(base), "bad.json")
    with pytest.raises(DiffPoseError) as err:
        load_rig_map(path)
    assert "bad.json" in str(err.value) and where in str(err.value), str(err.value)


def test_rigify_maps_carry_their_switches_into_the_result() -> None:
    fk = {m.family: m for m in builtin_rig_maps()}["rigify_fk"]
    ik = {m.family: m for m in builtin_rig_maps()}["rigify_ik"]
    switch = 'pose.bones["upper_arm_parent.L"]["IK_FK"]'
    assert fk.properties[switch] == 1.0 and ik.properties[switch] == 0.0
    assert fk.properties['pose.bones["torso"]["head_follow"]'] == 1.0


def test_missing_map_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DiffPoseError, match="nothere.json"):
        load_rig_map(tmp_path / "nothere.json")
    with pytest.raises(DiffPoseError, match="at least one rig map"):
        builtin_rig_maps(tmp_path)
