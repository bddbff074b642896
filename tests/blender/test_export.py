"""FBX (each preset) and BVH export of an animated armature, re-imported into a clean
scene: the keys must reproduce the pose (world positions of every bone's head and tail
at several frames), only the armature and its meshes go into the FBX, and bad input is
reported without writing anything.

The animated armature is a CMU walk (subject 02, trial 01, CMU's BVH conversion) imported
with Blender's own BVH importer, 86 frames at 30 fps, scaled to about 1.7 m.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Iterator

import bpy
import numpy as np
import pytest

from diffpose_blender.blender.export import FBX_PRESETS
from diffpose_blender.blender.operators import export as export_ops

SHARED = Path(__file__).resolve().parents[3] / "shared"
WALK_BVH = SHARED / "data" / "mocap" / "cmu_bvh" / "cgspeed_mb" / "02" / "02_01.bvh.gz"
CMU_TO_METRES = 0.056444  # the cgspeed conversion's unit (inches x 1/0.45) in metres
FRAMES = (1, 23, 47, 86)
#: Largest allowed distance between a bone's world position before and after (metres).
TOLERANCE_M = 1e-3

pytestmark = pytest.mark.skipif(not WALK_BVH.is_file(), reason=f"{WALK_BVH} not found")


@pytest.fixture(scope="module", autouse=True)
def operators() -> Iterator[None]:
    # The export operators alone, as the add-on registers them.
    for cls in export_ops.classes:
        bpy.utils.register_class(cls)
    yield
    for cls in reversed(export_ops.classes):
        bpy.utils.unregister_class(cls)


@pytest.fixture(scope="module")
def walk_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bvh") / "02_01.bvh"
    with gzip.open(WALK_BVH) as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def clean_scene() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


def walking_armature(walk_file: Path) -> bpy.types.Object:
    """A clean scene holding the CMU walk as an armature, a mesh parented to it and an
    unrelated mesh (which must stay out of the FBX)."""
    clean_scene()
    bpy.ops.import_anim.bvh(filepath=str(walk_file), global_scale=CMU_TO_METRES,
                            update_scene_fps=True, update_scene_duration=True)
    arm = bpy.context.object
    assert arm is not None and arm.type == "ARMATURE"
    arm.name = "Walker"
    body = bpy.data.objects.new("Body", bpy.data.meshes.new("Body"))
    body.parent = arm
    bpy.context.scene.collection.objects.link(body)
    prop = bpy.data.objects.new("Prop", bpy.data.meshes.new("Prop"))
    bpy.context.scene.collection.objects.link(prop)
    bpy.context.view_layer.objects.active = arm
    return arm


def bone_positions(arm: bpy.types.Object, frames: tuple[int, ...] = FRAMES
                   ) -> dict[str, np.ndarray]:
    """World head and tail (F, 2, 3) metres of every pose bone, by bone name."""
    scene = bpy.context.scene
    out: dict[str, list[list[list[float]]]] = {b.name: [] for b in arm.pose.bones}
    for f in frames:
        scene.frame_set(f)
        for pb in arm.pose.bones:
            m = arm.matrix_world
            out[pb.name].append([list(m @ pb.head), list(m @ pb.tail)])
    return {k: np.array(v) for k, v in out.items()}


def only_armature() -> bpy.types.Object:
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(arms) == 1, [o.name for o in bpy.data.objects]
    return arms[0]


def fbx_global_settings(path: Path) -> dict[str, object]:
    """The GlobalSettings properties of an FBX file, read with Blender's own parser."""
    from io_scene_fbx import parse_fbx

    root, _ = parse_fbx.parse(str(path))
    settings = next(e for e in root.elems if e.id == b"GlobalSettings")
    props = next(e for e in settings.elems if e.id == b"Properties70")
    return {p.props[0].decode(): p.props[-1] for p in props.elems}


#: What each preset must write: up axis (0 X, 1 Y, 2 Z), front axis and its sign, and
#: the file's unit in centimetres (100: metres).
EXPECTED_SETTINGS = {
    "UNITY": {"UpAxis": 1, "FrontAxis": 2, "FrontAxisSign": 1, "UnitScaleFactor": 100.0},
    "UNREAL": {"UpAxis": 2, "FrontAxis": 1, "FrontAxisSign": -1, "UnitScaleFactor": 1.0},
    "BLENDER": {"UpAxis": 1, "FrontAxis": 2, "FrontAxisSign": 1, "UnitScaleFactor": 1.0},
}


def fbx_armature_scale(path: Path) -> list[float]:
    """'Lcl Scaling' of the FBX file's armature node (a Model of type Null)."""
    from io_scene_fbx import parse_fbx

    root, _ = parse_fbx.parse(str(path))
    objects = next(e for e in root.elems if e.id == b"Objects")
    model = next(e for e in objects.elems if e.id == b"Model" and e.props[2] == b"Null")
    props = next(e for e in model.elems if e.id == b"Properties70")
    return [float(x) for p in props.elems if p.props[0] == b"Lcl Scaling"
            for x in p.props[4:]] or [1.0, 1.0, 1.0]


def heads_error(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> float:
    """Largest head distance (metres) over the bones both have."""
    common = sorted(set(before) & set(after))
    assert len(common) >= 0.9 * len(before), sorted(set(before) - set(after))
    return max(float(np.linalg.norm(before[b][:, 0] - after[b][:, 0], axis=-1).max())
               for b in common)


@pytest.mark.parametrize("preset", sorted(FBX_PRESETS))
def test_fbx_round_trip(preset: str, walk_file: Path, tmp_path: Path) -> None:
    arm = walking_armature(walk_file)
    before = bone_positions(arm)
    first, last = (int(x) for x in arm.animation_data.action.frame_range)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 10, 20  # the export must use the action's range
    bpy.data.objects["Prop"].select_set(True)
    out = tmp_path / f"walk_{preset.lower()}.fbx"

    result = bpy.ops.diffpose.export_fbx(filepath=str(out), preset=preset)
    assert result == {"FINISHED"}
    assert out.is_file()
    assert not list(tmp_path.glob(".diffpose-*")), "temporary file left behind"
    # The user's scene is as it was: frame range, selection, active object.
    assert (scene.frame_start, scene.frame_end) == (10, 20)
    assert bpy.data.objects["Prop"].select_get()
    assert bpy.context.view_layer.objects.active == arm

    written = fbx_global_settings(out)
    print(f"FBX {preset}: " + ", ".join(f"{k} {written[k]}"
                                        for k in EXPECTED_SETTINGS[preset]))
    assert {k: written[k] for k in EXPECTED_SETTINGS[preset]} == EXPECTED_SETTINGS[preset]
    # FBX_SCALE_ALL (Unity) keeps metres and no object scale; the others write centimetres
    # through a scale of 100 on the armature node.
    assert fbx_armature_scale(out) == ([1.0] * 3 if preset == "UNITY" else [100.0] * 3)

    clean_scene()
    # Blender's FBX importer adds an "Animation Offset" of 1 frame by default (FBX files
    # from other tools start at time 0); ours keep Blender's frame numbers, so 0 here.
    bpy.ops.import_scene.fbx(filepath=str(out), anim_offset=0.0)
    names = {o.name for o in bpy.data.objects}
    assert "Body" in names and "Prop" not in names, names
    back = only_armature()
    action = back.animation_data.action
    assert tuple(int(round(x)) for x in action.frame_range) == (first, last)
    after = bone_positions(back)
    error = heads_error(before, after)
    print(f"FBX {preset}: largest bone head error {error * 1000:.3f} mm over "
          f"{len(before)} bones, frames {FRAMES}")
    assert error < TOLERANCE_M


def test_fbx_keeps_every_frame(walk_file: Path, tmp_path: Path) -> None:
    # bake_anim_simplify_factor = 0: a key on every frame survives the export, even where
    # the curve is a straight line that simplification would thin out.
    arm = walking_armature(walk_file)
    pb = arm.pose.bones["LeftHand"]
    pb.rotation_mode = "XYZ"
    for f in range(1, 87):
        pb.rotation_euler = (0.0, 0.0, 0.01 * f)  # linear: simplification would drop it
        pb.keyframe_insert("rotation_euler", frame=f)
    out = tmp_path / "linear.fbx"
    assert bpy.ops.diffpose.export_fbx(filepath=str(out), preset="BLENDER") == {"FINISHED"}
    clean_scene()
    bpy.ops.import_scene.fbx(filepath=str(out), anim_offset=0.0)
    back = only_armature()
    from diffpose_blender.blender.animdata import fcurves_for

    curves = [fc for fc in fcurves_for(back.animation_data.action, back)
              if 'pose.bones["LeftHand"]' in fc.data_path]
    assert curves
    assert min(len(fc.keyframe_points) for fc in curves) == 86


def test_bvh_round_trip(walk_file: Path, tmp_path: Path) -> None:
    arm = walking_armature(walk_file)
    before = bone_positions(arm)
    out = tmp_path / "walk.bvh"
    assert bpy.ops.diffpose.export_bvh(filepath=str(out)) == {"FINISHED"}
    text = out.read_text()
    assert "Frames: 86" in text
    clean_scene()
    # Our BVH is in Blender's axes (module docstring): import with forward Y, up Z.
    bpy.ops.import_anim.bvh(filepath=str(out), axis_forward="Y", axis_up="Z",
                            global_scale=1.0, update_scene_fps=True,
                            update_scene_duration=True)
    after = bone_positions(only_armature())
    error = heads_error(before, after)
    print(f"BVH: largest bone head error {error * 1000:.3f} mm over {len(before)} bones")
    assert error < TOLERANCE_M


def test_export_refuses_armature_without_action(tmp_path: Path) -> None:
    clean_scene()
    arm = bpy.data.objects.new("Still", bpy.data.armatures.new("Still"))
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    out = tmp_path / "still.fbx"
    with pytest.raises(RuntimeError, match="armature 'Still': has no action to export"):
        bpy.ops.diffpose.export_fbx(filepath=str(out), preset="UNITY")
    with pytest.raises(RuntimeError, match="has no action to export"):
        bpy.ops.diffpose.export_bvh(filepath=str(tmp_path / "still.bvh"))
    assert not list(tmp_path.iterdir())


def test_export_reports_missing_folder(walk_file: Path, tmp_path: Path) -> None:
    walking_armature(walk_file)
    out = tmp_path / "nowhere" / "walk.fbx"
    with pytest.raises(RuntimeError, match="walk.fbx: the folder .* does not exist"):
        bpy.ops.diffpose.export_fbx(filepath=str(out), preset="UNREAL")
    with pytest.raises(RuntimeError, match="object 'Prop': expected an armature"):
        bpy.ops.diffpose.export_fbx(filepath=str(tmp_path / "p.fbx"), armature="Prop")


def test_game_presets_keep_rigify_deform_bones(tmp_path: Path) -> None:
    # A Rigify generated rig, its FK arm keyed: the Unity preset writes the deform bones
    # (and the parents they need), not Rigify's control and mechanism bones, and the
    # constraint-driven deform bones come back where they were.
    import addon_utils

    clean_scene()
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    assert bpy.ops.pose.rigify_generate() == {"FINISHED"}
    rig = bpy.context.object
    assert rig is not None and rig.name == "rig"
    bpy.ops.object.mode_set(mode="OBJECT")
    rig.pose.bones["upper_arm_parent.L"]["IK_FK"] = 1.0
    arm = rig.pose.bones["upper_arm_fk.L"]
    arm.rotation_mode = "XYZ"
    for f in (1, 10, 20):
        arm.rotation_euler = (0.0, 0.0, 0.05 * f)
        arm.keyframe_insert("rotation_euler", frame=f)
    deform = [b.name for b in rig.data.bones if b.use_deform]
    # The exporter keeps the deform bones and the bones they hang from (their ancestors).
    keep = {a.name for b in rig.data.bones if b.use_deform
            for a in (b, *b.parent_recursive)}
    all_bones = len(rig.data.bones)
    frames = (1, 10, 20)
    before = {n: v for n, v in bone_positions(rig, frames).items() if n in deform}
    out = tmp_path / "rigify_unity.fbx"
    assert bpy.ops.diffpose.export_fbx(filepath=str(out), preset="UNITY") == {"FINISHED"}

    clean_scene()
    bpy.ops.import_scene.fbx(filepath=str(out), anim_offset=0.0)
    back = only_armature()
    names = {b.name for b in back.data.bones}
    assert names == keep
    assert len(names) < all_bones / 2 and "upper_arm_fk.L" not in names
    after = bone_positions(back, frames)
    error = heads_error(before, after)
    print(f"FBX UNITY, Rigify: {len(names)} of {all_bones} bones written for "
          f"{len(deform)} deform bones; largest deform head error {error * 1000:.3f} mm")
    assert error < TOLERANCE_M
    # The keyed arm really moved (the check is not comparing rest poses).
    hand = before["DEF-hand.L"]
    assert np.linalg.norm(hand[2] - hand[0]) > 0.1
