"""Baking retargeted motion onto real rigs: the keys Blender evaluates are the motion.

The writer is checked against forward kinematics done here in numpy from the rig's rest
pose (`rest_rig`) and the rotations baked: what Blender poses at every frame must match,
whatever the bone's rotation mode (quaternion, the BVH importer's Euler orders,
axis-angle), on every rig family. Then: one new action per bake, the existing action,
rest pose and rolls untouched, and bad input refused with the scene unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import bpy
import numpy as np
import pytest

from diffpose_blender.blender import animdata
from diffpose_blender.blender.bake import bake
from diffpose_blender.blender.rigdata import check_target, rest_rig
from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.rig import RestRig
from diffpose_blender.core.rotations import quaternions_to_axis_angle
from tests.blender import rigs


@dataclass(frozen=True)
class Motion:
    """A `RetargetResult`-shaped motion (the fields `bake` reads)."""

    bone_names: tuple[str, ...]
    rotations: np.ndarray  # (T, B, 4) w, x, y, z
    root_bone: str
    root_location: np.ndarray  # (T, 3)
    frames: np.ndarray  # (T,)
    spread: np.ndarray  # (T, B) metres
    report: tuple[str, ...] = field(default=())
    properties: dict[str, float] = field(default_factory=dict)


def _axis_angle_quats(axes: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """axes (B, 3) unit, angles (T, B) radians -> (T, B, 4) w, x, y, z."""
    half = angles[..., None] / 2.0
    return np.concatenate((np.cos(half), np.sin(half) * axes[None]), axis=-1)


def known_motion(rig: RestRig, bone_names: tuple[str, ...], frames: int = 40,
                 seed: int = 0) -> Motion:
    """Every bone swings about its own random axis by up to ±60°, out of phase; the
    root also walks forward 2 m and bobs. Spread rises from 0 to 12 cm over the clip."""
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(len(bone_names), 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    t = np.arange(frames)[:, None]
    angles = np.radians(60.0) * np.sin(2 * np.pi * t / frames + rng.uniform(0, 6, len(bone_names)))
    root = bone_names[0]
    s = np.linspace(0.0, 1.0, frames)
    location = np.column_stack((0.1 * np.sin(4 * s), 2.0 * s, 0.05 * np.cos(8 * s)))
    spread = np.broadcast_to(np.linspace(0.0, 0.12, frames)[:, None],
                             (frames, len(bone_names))).copy()
    return Motion(bone_names, _axis_angle_quats(axes, angles), root, location,
                  np.arange(frames), spread)


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def expected_pose(rig: RestRig, motion: Motion, t: int) -> dict[str, np.ndarray]:
    """Armature-space (4, 4) pose matrix of every bone at frame index t, by FK in numpy:
    pose[b] = pose[parent] @ rest[parent]^-1 @ rest[b] @ T(location) @ R(rotation)."""
    index = {n: i for i, n in enumerate(motion.bone_names)}
    pose: dict[str, np.ndarray] = {}
    for bone in rig.bones:
        rest = np.eye(4)
        rest[:3, :3], rest[:3, 3] = bone.matrix, bone.head
        basis = np.eye(4)
        if bone.name in index:
            basis[:3, :3] = _quat_matrix(motion.rotations[t, index[bone.name]])
        if bone.name == motion.root_bone and not bone.use_connect:
            basis[:3, 3] = motion.root_location[t]
        if bone.parent is None:
            pose[bone.name] = rest @ basis
        else:
            parent = rig.bone(bone.parent)
            prest = np.eye(4)
            prest[:3, :3], prest[:3, 3] = parent.matrix, parent.head
            pose[bone.name] = pose[bone.parent] @ np.linalg.inv(prest) @ rest @ basis
    return pose


@pytest.fixture(scope="module")
def rigs_blend(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("rigs") / "rigs.blend"
    return path, rigs.build_all(path)


@pytest.fixture
def scene(rigs_blend: tuple[Path, dict[str, str]]) -> Iterator[dict[str, bpy.types.Object]]:
    """A fresh copy of the rigs file: family -> armature object."""
    path, names = rigs_blend
    # Rigify leaves its load_post handler behind when a factory reset unregisters it
    # (5.0), and that handler fails on files with armatures: keep Rigify registered.
    rigs.enable_rigify()
    bpy.ops.wm.open_mainfile(filepath=str(path))
    yield {family: bpy.data.objects[name] for family, name in names.items()}


# Families whose bones have no constraints or drivers, so the pose is plain FK.
FK_FAMILIES = ("rigify_metarig", "mixamo", "makehuman_game_engine", "ue5", "ue4", "vrm0",
               "vrm1", "smpl", "smplx", "bvh_cmu")


def _snapshot_rest(obj: bpy.types.Object) -> dict[str, tuple[np.ndarray, ...]]:
    return {b.name: (np.array(b.matrix_local), np.array(b.head_local),
                     np.array(b.tail_local)) for b in obj.data.bones}


def _snapshot_action(action: bpy.types.Action, obj: bpy.types.Object) -> list[tuple]:
    out = []
    for fc in animdata.fcurves_for(action, obj):
        co = np.zeros(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out.append((fc.data_path, fc.array_index, co.tobytes()))
    return out


@pytest.mark.parametrize("family", FK_FAMILIES)
def test_baked_keys_pose_the_rig(scene: dict[str, bpy.types.Object], family: str) -> None:
    obj = scene[family]
    rig = rest_rig(obj)
    modes_before = {pb.name: pb.rotation_mode for pb in obj.pose.bones}
    rest_before = _snapshot_rest(obj)
    motion = known_motion(rig, rig.names())
    action = bake(obj, motion, "known motion", start_frame=10, colors=False)

    assert obj.animation_data.action == action
    fcurves = list(animdata.fcurves_for(action, obj))
    # One curve per channel of each bone's own rotation mode, plus the root's location.
    channels = {"QUATERNION": 4, "AXIS_ANGLE": 4}
    expected = sum(channels.get(m, 3) for m in modes_before.values()) + 3
    assert len(fcurves) == expected
    for fc in fcurves:
        assert len(fc.keyframe_points) == 40
        assert fc.group is not None and fc.data_path.startswith(
            f'pose.bones["{fc.group.name}"]')
        assert fc.keyframe_points[0].co[0] == 10 and fc.keyframe_points[-1].co[0] == 49

    errors = []
    for t in (0, 7, 13, 26, 39):
        bpy.context.scene.frame_set(10 + t)
        want = expected_pose(rig, motion, t)
        for pb in obj.pose.bones:
            errors.append(np.abs(np.array(pb.matrix) - want[pb.name]).max())
    # float32 keys: ~1e-6 per bone, accumulated down chains of up to ~25 bones.
    assert max(errors) < 1e-4, f"{family}: worst matrix entry off by {max(errors):.2e}"
    assert {pb.name: pb.rotation_mode for pb in obj.pose.bones} == modes_before
    after = _snapshot_rest(obj)
    assert all(np.array_equal(a, b) for n in rest_before
               for a, b in zip(rest_before[n], after[n]))


def test_euler_keys_are_continuous(scene: dict[str, bpy.types.Object]) -> None:
    # The BVH importer's bones use Euler ZYX: two full turns must not wrap at ±180°.
    obj = scene["bvh_cmu"]
    rig = rest_rig(obj)
    names = rig.names()
    frames = 200
    angle = np.linspace(0.0, 4 * np.pi, frames)[:, None].repeat(len(names), axis=1)
    axes = np.tile(np.array([[0.3, 0.9, 0.3]]) / np.linalg.norm([0.3, 0.9, 0.3]),
                   (len(names), 1))
    motion = Motion(names, _axis_angle_quats(axes, angle), names[0], np.zeros((frames, 3)),
                    np.arange(frames), np.zeros((frames, len(names))))
    action = bake(obj, motion, "spin", colors=False)
    for fc in animdata.fcurves_for(action, obj):
        co = np.zeros(2 * frames, dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        steps = np.abs(np.diff(co[1::2]))
        assert steps.max() < np.radians(20), (fc.data_path, fc.array_index, steps.max())


def test_axis_angle_mode(scene: dict[str, bpy.types.Object]) -> None:
    obj = scene["vrm1"]
    for pb in obj.pose.bones:
        pb.rotation_mode = "AXIS_ANGLE"
    rig = rest_rig(obj)
    motion = known_motion(rig, rig.names(), seed=3)
    bake(obj, motion, "axis angle", colors=False)
    for t in (0, 21):
        bpy.context.scene.frame_set(1 + t)
        want = expected_pose(rig, motion, t)
        worst = max(np.abs(np.array(pb.matrix) - want[pb.name]).max() for pb in obj.pose.bones)
        assert worst < 1e-4
    # At rest the axis is undefined: Blender's default +Y is kept, the angle is 0.
    still = quaternions_to_axis_angle(np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 0]]))
    assert np.allclose(still, [[0, 0, 1, 0], [0, 0, 1, 0]])


def test_new_action_per_bake_and_existing_action_untouched(
        scene: dict[str, bpy.types.Object]) -> None:
    obj = scene["bvh_cmu"]
    imported = obj.animation_data.action
    assert imported is not None
    before = _snapshot_action(imported, obj)
    rig = rest_rig(obj)
    motion = known_motion(rig, rig.names()[:5])
    first = bake(obj, motion, "walk_take")
    second = bake(obj, motion, "walk_take")
    assert first.name == "walk_take" and second.name == "walk_take.001"
    assert obj.animation_data.action == second
    if animdata.SLOTTED_ACTIONS:
        assert obj.animation_data.action_slot == second.slots[0]
        assert second.slots[0].target_id_type == "OBJECT"
    # The importer's action: still there, same keys, kept by a fake user now that the
    # rig no longer uses it.
    assert bpy.data.actions.get(imported.name) == imported
    assert imported.use_fake_user and first.use_fake_user
    assert _snapshot_action(imported, obj) == before


def test_rigify_generated_rig_keys(scene: dict[str, bpy.types.Object]) -> None:
    # The generated rig's controls mix quaternion and three Euler orders; bake onto its
    # FK controls and read the local rotations back.
    obj = scene["rigify_generated"]
    rig = rest_rig(obj)
    controls = ("torso", "hips", "chest", "thigh_fk.L", "shin_fk.L", "foot_fk.L",
                "upper_arm_fk.R", "forearm_fk.R", "hand_fk.R", "neck", "head")
    motion = known_motion(rig, controls, seed=5)
    bake(obj, motion, "rigify")
    for t in (3, 30):
        bpy.context.scene.frame_set(1 + t)
        for b, name in enumerate(controls):
            pb = obj.pose.bones[name]
            got = np.array(pb.matrix_basis)[:3, :3]
            assert np.abs(got - _quat_matrix(motion.rotations[t, b])).max() < 1e-5, name


def test_rig_switches_are_keyed(scene: dict[str, bpy.types.Object]) -> None:
    # Rigify shows FK controls only with the limb's IK/FK switch at 1: the bake keys the
    # switches the result asks for, once, held over the take.
    obj = scene["rigify_generated"]
    switch = 'pose.bones["upper_arm_parent.L"]["IK_FK"]'
    assert obj.path_resolve(switch) == 0.0
    motion = known_motion(rest_rig(obj), ("upper_arm_fk.L", "forearm_fk.L"))
    motion = Motion(*(getattr(motion, f) for f in ("bone_names", "rotations", "root_bone",
                                                   "root_location", "frames", "spread")),
                    properties={switch: 1.0})
    action = bake(obj, motion, "fk")
    curves = [fc for fc in animdata.fcurves_for(action, obj) if fc.data_path == switch]
    assert len(curves) == 1 and len(curves[0].keyframe_points) == 1
    bpy.context.scene.frame_set(30)
    assert obj.path_resolve(switch) == 1.0
    for bad in ({'pose.bones["upper_arm_parent.L"]["NO_SUCH"]': 1.0}, {switch: np.nan}):
        actions = set(bpy.data.actions)
        broken = Motion(*(getattr(motion, f) for f in (
            "bone_names", "rotations", "root_bone", "root_location", "frames", "spread")),
            properties=bad)
        with pytest.raises(DiffPoseError, match="property"):
            bake(obj, broken, "bad")
        assert set(bpy.data.actions) == actions and obj.animation_data.action == action


def test_bad_input_leaves_scene_unchanged(scene: dict[str, bpy.types.Object],
                                          tmp_path: Path) -> None:
    obj = scene["ue5"]
    rig = rest_rig(obj)
    motion = known_motion(rig, rig.names())
    actions = set(bpy.data.actions)

    mesh = bpy.data.objects.new("Plane", bpy.data.meshes.new("Plane"))
    bpy.context.scene.collection.objects.link(mesh)
    with pytest.raises(DiffPoseError, match="'Plane': expected an armature, got a mesh"):
        bake(mesh, motion, "x")
    with pytest.raises(DiffPoseError, match="no target armature"):
        bake(None, motion, "x")

    nan = Motion(motion.bone_names, motion.rotations.copy(), motion.root_bone,
                 motion.root_location, motion.frames, motion.spread)
    nan.rotations[17, 3] = np.nan
    with pytest.raises(DiffPoseError, match="rotations, frame 17: expected finite"):
        bake(obj, nan, "x")
    wrong = Motion(("pelvis", "no_such_bone"), motion.rotations[:, :2], "pelvis",
                   motion.root_location, motion.frames, motion.spread[:, :2])
    with pytest.raises(DiffPoseError, match="no bone named 'no_such_bone'"):
        bake(obj, wrong, "x")

    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        with pytest.raises(DiffPoseError, match="edit mode"):
            bake(obj, motion, "x")
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    assert set(bpy.data.actions) == actions
    assert obj.animation_data is None or obj.animation_data.action is None
    assert obj.pose.bones[0].color.palette == "DEFAULT"


def test_linked_rig_is_refused(scene: dict[str, bpy.types.Object], tmp_path: Path) -> None:
    library = tmp_path / "library.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(library), copy=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    with bpy.data.libraries.load(str(library), link=True) as (src, dst):
        dst.objects = ["SK_Mannequin"]
    linked = dst.objects[0]
    bpy.context.scene.collection.objects.link(linked)
    assert linked.library is not None
    with pytest.raises(DiffPoseError, match="linked from .*library.blend"):
        check_target(linked)
    motion = known_motion(_rig_unchecked(linked), ("pelvis",))
    with pytest.raises(DiffPoseError, match="linked"):
        bake(linked, motion, "x")
    assert len(bpy.data.actions) == 0


def _rig_unchecked(obj: bpy.types.Object) -> RestRig:
    from diffpose_blender.core.rig import RestBone

    return RestRig(obj.name, tuple(
        RestBone(b.name, b.parent.name if b.parent else None, np.array(b.head_local),
                 np.array(b.tail_local), np.array(b.matrix_local)[:3, :3])
        for b in obj.data.bones))


def test_failed_write_removes_the_new_action(scene: dict[str, bpy.types.Object]) -> None:
    # A failure after the rotations are written (here: a spread that is not numbers
    # slipped past the checks, so the colour step fails) must leave no action behind,
    # the rig's own action assigned and its colours as they were.
    obj = scene["bvh_cmu"]
    imported = obj.animation_data.action
    rig = rest_rig(obj)
    motion = known_motion(rig, rig.names()[:3])
    broken = Motion(motion.bone_names, motion.rotations, motion.root_bone,
                    motion.root_location, motion.frames,
                    np.full(motion.spread.shape, "unknown"))
    actions = set(bpy.data.actions)
    with pytest.raises((ValueError, TypeError)):
        bake(obj, broken, "broken")
    assert set(bpy.data.actions) == actions
    assert obj.animation_data.action == imported
    assert "diffpose_saved_colors" not in obj



# --- Round trip: a ground-truth mocap clip onto every family ------------------------------

#: A CMU walk (subject 02, trial 01: 85 frames at 30 fps), as the training data reads it.
ROUND_TRIP_CLIP = rigs.CMU_BVH / "cgspeed_mb" / "02" / "02_01.bvh.gz"
ROUND_TRIP_FAMILIES = (
    "rigify_metarig",
    # FK controls, with the rig map's switches (IK_FK = 1, neck/head follow = 1) keyed by
    # the bake so the controls drive the deforming bones as core models them.
    "rigify_generated",
    "mixamo", "makehuman_game_engine", "ue5", "ue4", "vrm0", "vrm1", "smpl", "smplx",
    "bvh_cmu")
#: Bounds reached (mm at 1.7 m stature), see `test_round_trip_mocap_clip`. Measured on
#: both Blender versions: writer <= 0.01 mm; direction mean 1.6 (CMU BVH) to 8.6 mm
#: (MakeHuman game_engine), max 23 mm.
WRITER_BOUND_MM = 0.5
DIRECTION_MEAN_BOUND_MM = 12.0
DIRECTION_MAX_BOUND_MM = 30.0


@pytest.fixture(scope="module")
def mocap_motion():  # type: ignore[no-untyped-def]
    from diffpose_blender.backend.data import load_file
    from diffpose_blender.core.world import WorldMotion

    clip = load_file("cmu_bvh_cgspeed", ROUND_TRIP_CLIP, fps=30.0)[0]
    return WorldMotion.from_positions(clip.positions, clip.fps)


def _posed_joints(obj: bpy.types.Object, joints: dict, frames: range) -> np.ndarray:
    """(T, J, 3) world positions of the project's joints read from the posed rig: each
    joint is the mean of its rig points (bone heads or tails) as the rig map places it."""
    from diffpose_blender.core.skeleton import JOINT_NAMES

    out = np.full((len(frames), len(JOINT_NAMES), 3), np.nan)
    world = np.array(obj.matrix_world)
    for t, frame in enumerate(frames):
        bpy.context.scene.frame_set(frame)
        for j, name in enumerate(JOINT_NAMES):
            points = joints.get(name)
            if points:
                p = np.mean([np.array(getattr(obj.pose.bones[b], end)) for b, end in points],
                            axis=0)
                out[t, j] = world[:3, :3] @ p + world[:3, 3]
    return out


def _matched_input(inp: np.ndarray, got: np.ndarray) -> np.ndarray:
    """The input pose rebuilt with the rig's proportions: from the rig's pelvis, every
    skeleton bone takes the input's direction and the posed rig's length. (T, J, 3).

    What is left between this and the rig is the retarget's direction error, summed down
    each chain: the rig's own proportions (shorter arms, a longer neck) do not count."""
    from diffpose_blender.core.skeleton import SKELETON

    out = np.full_like(got, np.nan)
    out[:, 0] = got[:, 0]
    for p, c in SKELETON.bones:
        length = np.linalg.norm(got[:, c] - got[:, p], axis=-1, keepdims=True)
        d = inp[:, c] - inp[:, p]
        out[:, c] = out[:, p] + length * d / np.linalg.norm(d, axis=-1, keepdims=True)
    return out


def _rotation_steps_deg(obj: bpy.types.Object, names: tuple[str, ...],
                        frames: range) -> np.ndarray:
    """(T - 1, B) angle between each bone's armature-space orientation on neighbouring
    frames, degrees."""
    mats = []
    for frame in frames:
        bpy.context.scene.frame_set(frame)
        mats.append([np.array(obj.pose.bones[n].matrix)[:3, :3] for n in names])
    R = np.array(mats)
    rel = np.einsum("tbji,tbjk->tbik", R[:-1], R[1:])
    cos = (np.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


@pytest.mark.parametrize("family", ROUND_TRIP_FAMILIES)
def test_round_trip_mocap_clip(scene: dict[str, bpy.types.Object], mocap_motion,  # type: ignore[no-untyped-def]
                               family: str) -> None:
    """Retarget a CMU walk onto the rig, bake, read the joints back from the posed rig.

    Reported per rig, mm scaled to a 1.7 m stature: `writer`, Blender's posed joints
    against core's forward kinematics of the same result (the bake adds nothing);
    `direction`, the posed joints against the input rebuilt with the rig's proportions
    (`_matched_input`); `mpjpe`, root-relative joints against the input scaled by
    stature (includes the rig's different proportions, for reference only). No bone may
    turn by more than 90° between neighbouring frames.
    """
    from diffpose_blender.core.retarget import RetargetOptions, pose_world_joints, retarget
    from diffpose_blender.core.rigmap import detect_rig

    obj = scene[family]
    if family == "rigify_generated":
        # The FK controls are keyed; Rigify shows them with the limbs switched to FK.
        for name in ("thigh_parent.L", "thigh_parent.R", "upper_arm_parent.L",
                     "upper_arm_parent.R"):
            obj.pose.bones[name]["IK_FK"] = 1.0
    rig = rest_rig(obj)
    detection = detect_rig(rig.names())
    result = retarget(mocap_motion, rig, detection.rig_map, RetargetOptions(foot_lock=False))
    bake(obj, result, "round trip", start_frame=1)
    frames = range(1, len(result.frames) + 1)
    got = _posed_joints(obj, detection.rig_map.joints, frames)
    mapped = ~np.isnan(got[0, :, 0])
    core = pose_world_joints(rig, detection.rig_map, result)
    stature = np.ptp(got[0, mapped, 2])
    mm = 1000.0 * 1.7 / stature

    writer = np.linalg.norm(got - core, axis=-1)[:, mapped] * mm
    matched = _matched_input(mocap_motion.joints, got)
    ok = mapped & ~np.isnan(matched[0, :, 0])
    direction = np.linalg.norm(got - matched, axis=-1)[:, ok] * mm
    inp_rel = mocap_motion.joints - mocap_motion.joints[:, :1]
    got_rel = got - got[:, :1]
    scale = stature / np.ptp(mocap_motion.joints[0, mapped, 2])
    mpjpe = np.linalg.norm(got_rel - scale * inp_rel, axis=-1)[:, mapped] * mm
    steps = _rotation_steps_deg(obj, result.bone_names, frames)
    print(f"\nround trip {family:22s} map {detection.rig_map.family:22s} "
          f"writer max {writer.max():6.3f} mm | direction mean {direction.mean():5.1f} "
          f"max {direction.max():5.1f} mm | mpjpe mean {mpjpe.mean():5.1f} mm | "
          f"largest frame-to-frame turn {steps.max():5.1f} deg  (Blender {bpy.app.version_string})")
    assert detection.score == 1.0
    assert writer.max() < WRITER_BOUND_MM
    assert direction.mean() < DIRECTION_MEAN_BOUND_MM
    assert direction.max() < DIRECTION_MAX_BOUND_MM
    assert steps.max() < 90.0


# --- The operator: take file -> world -> rig map -> retarget -> bake ----------------------

def _mocap_take(motion, path: Path, hypotheses: int = 4) -> Path:  # type: ignore[no-untyped-def]
    """Write `motion` (world metres) as a take seen by a level camera 4 m in front of the
    character, 1 m up; a few hypotheses around the truth (1 cm noise)."""
    from diffpose_blender.core.take import Take, write_take

    world = np.asarray(motion.joints, dtype=np.float64)
    # Blender world (x, y, z) -> camera (x right, y down, z forward), camera looking +Y.
    cam = np.stack((world[..., 0], 1.0 - world[..., 2], world[..., 1] + 4.0), axis=-1)
    root = cam[:, 0]
    rng = np.random.default_rng(0)
    hyp = (cam - root[:, None])[:, None] + rng.normal(0, 0.01, (len(cam), hypotheses) + cam.shape[1:])
    hyp -= hyp[:, :, :1]
    focal, size = 1000.0, (1280, 720)
    kp = focal * cam[..., :2] / cam[..., 2:] + (size[0] / 2, size[1] / 2)
    take = Take.from_hypotheses(
        hyp, root, np.ones(len(cam), bool), keypoints_2d=kp,
        scores_2d=np.full(cam.shape[:2], 0.9), fps=motion.fps, image_size=size,
        focal_px=focal, source_2d="mocap:02_01.bvh", model_name="ground truth")
    write_take(path, take)
    return path


@pytest.fixture
def bake_operators() -> Iterator[None]:
    from diffpose_blender.blender.operators import bake as bake_operators

    for cls in bake_operators.classes:
        bpy.utils.register_class(cls)
    yield
    for cls in reversed(bake_operators.classes):
        bpy.utils.unregister_class(cls)


def test_bake_operator(scene: dict[str, bpy.types.Object], mocap_motion,  # type: ignore[no-untyped-def]
                       bake_operators: None, tmp_path: Path) -> None:
    take = _mocap_take(mocap_motion, tmp_path / "walk.take.npz")
    obj = scene["ue5"]
    assert bpy.ops.diffpose.bake(take_path=str(take), armature=obj.name,
                                 start_frame=101) == {"FINISHED"}
    action = obj.animation_data.action
    assert action.name == "walk"
    assert tuple(action.frame_range) == (101.0, 101.0 + mocap_motion.num_frames - 1)
    sc = bpy.context.scene
    assert (sc.frame_start, sc.frame_end) == (101, 101 + mocap_motion.num_frames - 1)
    assert obj.data.show_bone_colors
    # The active object is the default target; a second bake is a second action.
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.diffpose.bake(take_path=str(take), colors=False) == {"FINISHED"}
    assert obj.animation_data.action.name == "walk.001"


def test_bake_operator_refuses_bad_input(scene: dict[str, bpy.types.Object], mocap_motion,  # type: ignore[no-untyped-def]
                                         bake_operators: None, tmp_path: Path) -> None:
    good = _mocap_take(mocap_motion, tmp_path / "walk.take.npz")
    # A take with NaN frames: written around the checked writer, as a broken tool would.
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["pose"][10:13] = np.nan
    nan_take = tmp_path / "nan.take.npz"
    np.savez(nan_take, **arrays)
    # A rig whose bones no map knows.
    data = bpy.data.armatures.new("Props")
    odd = bpy.data.objects.new("Props", data)
    bpy.context.scene.collection.objects.link(odd)
    bpy.context.view_layer.objects.active = odd
    bpy.ops.object.mode_set(mode="EDIT")
    for name in ("Bone", "Bone.001", "Lid"):
        bone = data.edit_bones.new(name)
        bone.tail = (0.0, 0.0, 1.0)
    bpy.ops.object.mode_set(mode="OBJECT")

    actions = set(bpy.data.actions)
    frames = (bpy.context.scene.frame_start, bpy.context.scene.frame_end)
    cases = [
        (dict(take_path=str(nan_take), armature="SK_Mannequin"), "nan.take.npz.*pose"),
        (dict(take_path=str(good), armature="Props"), "known family"),
        (dict(take_path=str(good), armature="Nobody"), "no object named 'Nobody'"),
        (dict(take_path=str(tmp_path / "missing.npz"), armature="SK_Mannequin"),
         "missing.npz"),
        (dict(take_path="", armature="SK_Mannequin"), "no take file"),
    ]
    for kwargs, message in cases:
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.diffpose.bake(**kwargs)
    assert set(bpy.data.actions) == actions
    assert (bpy.context.scene.frame_start, bpy.context.scene.frame_end) == frames
    assert scene["ue5"].animation_data is None
