"""Retargeting round trips on real mocap: rigs of several families, roll conventions
and proportions are driven with a CMU clip, posed back with forward kinematics and
compared with the input. Errors are reported in millimetres for a 1.7 m person."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from diffpose_blender.backend.data.corpus import load_clip, shared_data_root
from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.retarget import (RetargetOptions, pose_world_heads,
                                            pose_world_joints, rest_joint_points, retarget)
from diffpose_blender.core.rig import RestBone, RestRig
from diffpose_blender.core.rigmap import detect_rig, resolve_for_rig, rig_map_by_family
from diffpose_blender.core.rotations import angle_between_quats, axis_angle_matrix, normalize
from diffpose_blender.core.skeleton import JOINT_NAMES, SKELETON
from diffpose_blender.core.take import Take
from diffpose_blender.core.world import WorldMotion, take_to_world
from tests.core.numpy_rigs import (MAKEHUMAN_FEMALE_MIXAMO, MAKEHUMAN_MALE_GAME_ENGINE,
                                   MIXAMO, RIGIFY_METARIG, UE5, build_rig, rest_joints,
                                   rig_from_table)

J = SKELETON.index
HEIGHT_M = 1.7
NO_FOOT_LOCK = RetargetOptions(foot_lock=False)


@lru_cache(maxsize=None)
def clip(name: str) -> tuple[np.ndarray, float]:
    """(T, 21, 3) world metres and fps of a CMU BVH clip (subject/trial, e.g. '02/02_05')."""
    path = shared_data_root() / "mocap" / "cmu_bvh" / "cgspeed_mb" / f"{name}.bvh.gz"
    c = load_clip("cmu_bvh_cgspeed", path)
    return c.positions.astype(np.float64), c.fps


def stature(pos: np.ndarray) -> float:
    """Head-top height over the floor in the clip's upright frames (metres)."""
    return float(np.percentile(pos[:, J["head_top"], 2], 95))


def max_jump_deg(rotations: np.ndarray) -> float:
    """Largest rotation between neighbouring frames of any bone (degrees)."""
    return float(np.degrees(angle_between_quats(rotations[1:], rotations[:-1])).max())


# --- rigs with the clip's own proportions: the round trip must be exact ---------------------

@pytest.mark.parametrize("rows, family", [(MIXAMO, "mixamo"), (UE5, "ue5"),
                                          (RIGIFY_METARIG, "rigify_metarig")])
@pytest.mark.parametrize("roll", ["blender", "random", "tails"])
@pytest.mark.parametrize("arms", ["T", "A"])
def test_round_trip_is_exact_whatever_the_rolls(rows, family: str, roll: str,
                                                arms: str) -> None:
    pos, fps = clip("02/02_05")  # punch/strike: arms through every direction
    rig = build_rig(f"{family}-{roll}", rows, rest_joints(pos, arms), roll, seed=7)
    det = detect_rig(rig.names())
    assert det.rig_map.family == family
    result = retarget(WorldMotion.from_positions(pos, fps), rig, det.rig_map, NO_FOOT_LOCK)
    fk = pose_world_joints(rig, det.rig_map, result)

    mm = 1000.0 * HEIGHT_M / stature(pos)
    # Every segment of the skeleton (parent joint -> joint) points exactly where the
    # take's does, and has the take's length where the take's is constant. The segments
    # that are not rigid in the mocap (pelvis -> spine: the hip midpoint moves with the
    # hip joints, +-2 cm here; the virtual neck point, +-3 mm) shift the joints above them
    # by that much: that is the data, and shows in the position error printed.
    seg_err, dir_err = [], []
    for p, c in SKELETON.bones:
        if roll == "tails" and SKELETON.names[c] == "head_top":
            continue  # tails point anywhere here, and head_top is the Head bone's tail
        v_rig, v_take = fk[:, c] - fk[:, p], pos[:, c] - pos[:, p]
        cos = np.einsum("tc,tc->t", normalize(v_rig), normalize(v_take))
        dir_err.append(np.degrees(np.arccos(np.clip(cos, -1, 1))).max())
        length = np.linalg.norm(v_take, axis=-1)
        if np.abs(length - np.median(length)).max() < 1e-4:  # rigid in the take
            seg_err.append(np.linalg.norm(v_rig - v_take, axis=-1).max() * mm)
    rel = np.linalg.norm((fk - fk[:, :1]) - (pos - pos[:, :1]), axis=-1) * mm  # (T, J)
    if roll == "tails":
        rel[:, J["head_top"]] = 0.0
    travel = np.linalg.norm((fk[:, 0] - fk[0, 0]) - (pos[:, 0] - pos[0, 0]), axis=-1) * mm
    print(f"{family} {roll} {arms}: segment direction error max {max(dir_err):.4f} deg, "
          f"rigid segment error max {max(seg_err):.4f} mm; joint position error mean "
          f"{rel.mean():.2f} mm, max {rel.max():.2f} mm; pelvis travel error max "
          f"{travel.max():.4f} mm")
    assert max(dir_err) < 0.01 and max(seg_err) < 0.1
    assert travel.max() < 0.01
    assert max_jump_deg(result.rotations) < 90.0
    # The floor is kept: the lowest foot joint sits where the rig's rest feet stand.
    assert abs(np.nanmin(fk[:, [J["l_toe"], J["r_toe"], J["l_ankle"], J["r_ankle"]], 2])
               - np.min(pos[:, [J["l_toe"], J["r_toe"], J["l_ankle"], J["r_ankle"]], 2])) < 0.01


def test_armature_object_transform_is_honoured() -> None:
    """An FBX-like armature: object rotated 90 degrees about X and scaled by 0.01 (its
    armature space is Y-up centimetres). Posed in the world it must match the plain rig."""
    pos, fps = clip("02/02_05")
    P = rest_joints(pos, "A")
    plain = build_rig("plain", MIXAMO, P, "random", seed=2)
    W = np.eye(4)
    W[:3, :3] = axis_angle_matrix(np.array([1.0, 0, 0]), np.array(np.pi / 2)) * 0.01
    W[:3, 3] = [2.0, -1.0, 0.0]
    inv = np.linalg.inv(W[:3, :3])
    fbx = RestRig("fbx", tuple(RestBone(b.name, b.parent, inv @ b.head, inv @ b.tail,
                                        normalize(inv @ b.matrix)) for b in plain.bones), W)
    motion = WorldMotion.from_positions(pos, fps)
    out = []
    for rig in (plain, fbx):
        det = detect_rig(rig.names())
        out.append(pose_world_joints(rig, det.rig_map, retarget(motion, rig, det.rig_map,
                                                                NO_FOOT_LOCK)))
    np.testing.assert_allclose(out[1] - [2.0, -1.0, 0.0], out[0], atol=1e-6)


# --- real characters' proportions and rest poses ---------------------------------------------

@pytest.mark.parametrize("table, family", [
    (MAKEHUMAN_MALE_GAME_ENGINE, "makehuman_game_engine"),
    (MAKEHUMAN_FEMALE_MIXAMO, "mixamo")])
@pytest.mark.parametrize("take", ["01/01_01", "02/02_05", "06/06_10"])
def test_real_characters_follow_every_bone_direction(table, family: str, take: str) -> None:
    """The MakeHuman characters (A-pose, their own proportions and pivots): each driven
    segment's direction on the posed rig against the take's. The residual comes from the
    rig's structure (a clavicle pivots below the neck base, spine bones above the hip
    centre), not from the solve."""
    pos, fps = clip(take)
    rig = rig_from_table(family, table)
    det = detect_rig(rig.names())
    assert det.rig_map.family == family
    result = retarget(WorldMotion.from_positions(pos, fps), rig, det.rig_map, NO_FOOT_LOCK)
    fk = pose_world_joints(rig, det.rig_map, result)
    errors = {}
    for name, target in det.rig_map.bones.items():
        a = [J[j] for j in target.dir[0]]
        b = [J[j] for j in target.dir[1]]
        d_rig = normalize(fk[:, b].mean(1) - fk[:, a].mean(1))
        d_take = normalize(pos[:, b].mean(1) - pos[:, a].mean(1))
        angle = np.arccos(np.clip(np.einsum("tc,tc->t", d_rig, d_take), -1, 1))
        length = np.median(np.linalg.norm(pos[:, b].mean(1) - pos[:, a].mean(1), axis=1))
        errors[name] = angle * length * 1000.0 * HEIGHT_M / stature(pos)  # mm at 1.7 m
    mean = np.mean([e.mean() for e in errors.values()])
    worst = max(errors, key=lambda n: errors[n].mean())
    print(f"{family} on {take}: direction error {mean:.1f} mm mean over bones "
          f"(worst {worst}: {errors[worst].mean():.1f} mm mean)")
    limbs = [n for n in errors if any(k in n.lower() for k in ("leg", "calf", "thigh",
                                                                "arm", "foot"))]
    assert mean < 12.0
    assert max(errors[n].mean() for n in limbs) < 6.0
    assert max_jump_deg(result.rotations) < 90.0


# --- behaviour ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixamo_setup():
    pos, fps = clip("02/02_05")
    rig = build_rig("mixamo", MIXAMO, rest_joints(pos, "T"), "random", seed=1)
    return pos, fps, rig, detect_rig(rig.names()).rig_map


def test_rest_data_is_never_changed(mixamo_setup) -> None:
    pos, fps, rig, rig_map = mixamo_setup
    before = [(b.head.copy(), b.tail.copy(), b.matrix.copy()) for b in rig.bones]
    retarget(WorldMotion.from_positions(pos, fps), rig, rig_map)
    for b, (h, t, m) in zip(rig.bones, before):
        assert np.array_equal(b.head, h) and np.array_equal(b.tail, t)
        assert np.array_equal(b.matrix, m)
        assert not b.matrix.flags.writeable and not b.head.flags.writeable


def test_result_shapes_and_units(mixamo_setup) -> None:
    pos, fps, rig, rig_map = mixamo_setup
    spread = np.full(pos.shape[:2], 0.01)
    spread[:, J["l_wrist"]] = 0.2
    res = retarget(WorldMotion.from_positions(pos, fps, spread=spread), rig, rig_map)
    T, B = len(pos), len(res.bone_names)
    assert res.rotations.shape == (T, B, 4) and res.root_location.shape == (T, 3)
    assert np.allclose(np.linalg.norm(res.rotations, axis=-1), 1.0)
    assert res.frames.tolist() == list(range(T)) and res.spread.shape == (T, B)
    order = [rig.names().index(n) for n in res.bone_names]
    assert order == sorted(order)  # hierarchy order
    k = res.bone_names.index("LeftForeArm")
    assert np.allclose(res.spread[:, k], 0.2)  # its wrist is uncertain
    assert np.allclose(res.spread[:, res.bone_names.index("Spine")], 0.01)
    assert res.root_bone == "Hips" and any("leg-length ratio" in r for r in res.report)


def test_root_motion_off_keeps_the_character_over_its_spot(mixamo_setup) -> None:
    pos, fps, rig, rig_map = mixamo_setup
    motion = WorldMotion.from_positions(pos, fps)
    fk = pose_world_joints(rig, rig_map, retarget(motion, rig, rig_map, RetargetOptions(
        root_motion=False, foot_lock=False)))
    rest_pelvis = 0.5 * (rig.bone("LeftUpLeg").head + rig.bone("RightUpLeg").head)
    assert np.abs(fk[:, 0, :2] - rest_pelvis[:2]).max() < 1e-6
    assert np.ptp(fk[:, 0, 2]) > 0.05  # still goes up and down


def test_invalid_frames_hold_the_nearest_valid_pose(mixamo_setup) -> None:
    pos, fps, rig, rig_map = mixamo_setup
    valid = np.ones(len(pos), bool)
    valid[:5] = False
    valid[40:50] = False
    joints = pos.copy()
    joints[~valid] = np.nan  # what take_to_world puts there
    res = retarget(WorldMotion.from_positions(joints, fps, valid=valid), rig, rig_map,
                   NO_FOOT_LOCK)
    q = res.rotations
    for t in range(40, 50):
        assert np.allclose(q[t], q[39])
    for t in range(5):
        assert np.allclose(q[t], q[5])


def test_missing_joints_leave_bones_at_rest_and_say_so(mixamo_setup) -> None:
    pos, fps, rig, rig_map = mixamo_setup
    keep = [n for n in JOINT_NAMES if n not in ("l_hand_end", "r_hand_end")]
    motion = WorldMotion.from_positions(pos[:, SKELETON.indices(keep)], fps, joint_names=keep)
    res = retarget(motion, rig, rig_map, NO_FOOT_LOCK)
    assert "LeftHand" not in res.bone_names and "LeftForeArm" in res.bone_names
    assert any("LeftHand" in r and "missing" in r for r in res.report)


def test_nan_in_a_valid_frame_is_refused(mixamo_setup) -> None:
    pos, fps, rig, rig_map = mixamo_setup
    bad = pos.copy()
    bad[12, J["l_knee"], 1] = np.nan
    with pytest.raises(DiffPoseError, match="frame 12, joint 'l_knee'"):
        WorldMotion.from_positions(bad, fps)
    motion = WorldMotion(bad, np.ones(len(bad), bool), np.zeros(bad.shape[:2]),
                         JOINT_NAMES, fps)
    with pytest.raises(DiffPoseError, match="frame 12, joint 'l_knee'"):
        retarget(motion, rig, rig_map)
    with pytest.raises(DiffPoseError, match="expected shape"):
        WorldMotion.from_positions(pos[:, :5], fps)


def test_rig_without_the_maps_root_is_refused(mixamo_setup) -> None:
    pos, fps, rig, rig_map = mixamo_setup
    other = build_rig("ue", UE5, rest_joints(pos), "blender")
    with pytest.raises(DiffPoseError, match="root bone 'Hips'"):
        retarget(WorldMotion.from_positions(pos, fps), other, rig_map)


# --- camera to world ------------------------------------------------------------------------------

def _take_seen_by(pos: np.ndarray, fps: float, cam_rot: np.ndarray,
                  cam_pos: np.ndarray) -> Take:
    """The clip as a take: camera = cam_rot @ (world - cam_pos), root-relative poses."""
    cam = (pos - cam_pos) @ cam_rot.T
    root = cam[:, 0]
    hyp = (cam - root[:, None])[:, None]
    T = len(pos)
    return Take.from_hypotheses(
        hyp, root, np.ones(T, bool), keypoints_2d=np.zeros((T, 21, 2)),
        scores_2d=np.full((T, 21), 0.9), fps=fps, image_size=(1920, 1080), focal_px=1500.0,
        source_2d="test:mocap", model_name="ground truth")


@pytest.mark.parametrize("take_name, bound_deg", [
    ("08/08_01", 2.0),   # a walk: the floor under the steps tells up
    ("03/03_04", 2.0),   # a long walk over uneven ground
    ("07/07_05", 2.5),   # a short slow walk
    ("02/02_05", 2.5)])  # in place: the feet apart in a fighting stance
def test_take_to_world_stands_the_subject_up_from_a_tilted_camera(take_name: str,
                                                                  bound_deg: float) -> None:
    pos, fps = clip(take_name)
    # A camera 4 m away, pitched down 20 degrees and rolled 8 degrees, looking at +Y.
    look = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # world -> level camera
    pitch = axis_angle_matrix(np.array([1.0, 0, 0]), np.array(np.radians(-20)))
    roll = axis_angle_matrix(np.array([0, 0, 1.0]), np.array(np.radians(8)))
    cam_rot = roll @ pitch @ look
    centre = pos[:, 0].mean(axis=0)
    take = _take_seen_by(pos, fps, cam_rot, centre + [0.0, -4.0, 1.5])
    world = take_to_world(take)
    w = world.joints
    # Upright: the rotation from the mocap's own (level) world to the estimated one is a
    # turn about Z alone, up to the error of the up estimate.
    A = (pos - pos.mean(axis=(0, 1))).reshape(-1, 3)
    B = (w - w.mean(axis=(0, 1))).reshape(-1, 3)
    u, _, vt = np.linalg.svd(B.T @ A)
    R = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt  # B ~ R A
    tilt = float(np.degrees(np.arccos(np.clip(R[2, 2], -1.0, 1.0))))
    print(f"{take_name}: up error {tilt:.2f} deg; {world.notes}")
    assert tilt < bound_deg
    # Floor at 0, origin under the first pelvis, facing -Y (left is +X).
    feet = w[:, [J["l_ankle"], J["r_ankle"], J["l_toe"], J["r_toe"]], 2].min(axis=1)
    assert abs(np.percentile(feet, 1)) < 1e-9
    assert np.allclose(w[0, 0, :2], 0.0)
    left = normalize(w[0, J["l_hip"]] - w[0, J["r_hip"]])
    assert left[0] > 0.9
    # Same shape: distances between joints are kept.
    np.testing.assert_allclose(np.linalg.norm(w[:, 1] - w[:, 17], axis=-1),
                               np.linalg.norm(pos[:, 1] - pos[:, 17], axis=-1), atol=1e-5)
    tall = take_to_world(take, height_m=1.5)
    ratio = np.linalg.norm(tall.joints[:, 3] - tall.joints[:, 2], axis=-1) / \
        np.linalg.norm(w[:, 3] - w[:, 2], axis=-1)
    assert np.allclose(ratio, ratio[0]) and any("stature of 1.50" in n for n in tall.notes)


def test_take_to_world_marks_invalid_frames_and_refuses_bad_heights() -> None:
    pos, fps = clip("02/02_05")
    take = _take_seen_by(pos, fps, np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]),
                         np.array([0.0, -5.0, 1.0]))
    take.valid[3] = False
    world = take_to_world(take)
    assert np.isnan(world.joints[3]).all() and np.isfinite(world.joints[4]).all()
    with pytest.raises(DiffPoseError, match="height"):
        take_to_world(take, height_m=12.0)


# --- Rigify's generated rig (its real rest data) ------------------------------------------------

def rigify_generated() -> RestRig:
    """The generated rig's bones that the Rigify maps use, with their ancestors, as
    Rigify (in the bpy wheel) builds them from the human metarig."""
    data = json.loads((Path(__file__).parent / "data" / "rigify_generated_rest.json")
                      .read_text(encoding="utf-8"))
    return RestRig("rig", tuple(RestBone(b["name"], b["parent"], np.array(b["head"]),
                                         np.array(b["tail"]), np.array(b["matrix"]),
                                         use_local_location=b.get("use_local_location", True))
                                for b in data["bones"]))


def test_rigify_fk_controls_follow_the_take() -> None:
    pos, fps = clip("01/01_01")
    rig = rigify_generated()
    rig_map = resolve_for_rig(rig_map_by_family("rigify_fk"), rig.names()).rig_map
    result = retarget(WorldMotion.from_positions(pos, fps), rig, rig_map, NO_FOOT_LOCK)
    assert {"torso", "spine_fk.002", "neck", "head", "thigh_fk.L", "foot_fk.R",
            "upper_arm_fk.L", "hand_fk.R"} <= set(result.bone_names)
    fk = pose_world_joints(rig, rig_map, result)
    mm = 1000.0 * HEIGHT_M / stature(pos)
    for a, b in (("l_hip", "l_knee"), ("r_knee", "r_ankle"), ("l_shoulder", "l_elbow"),
                 ("r_elbow", "r_wrist"), ("l_ankle", "l_toe")):
        d_rig = normalize(fk[:, J[b]] - fk[:, J[a]])
        d_take = normalize(pos[:, J[b]] - pos[:, J[a]])
        angle = np.arccos(np.clip(np.einsum("tc,tc->t", d_rig, d_take), -1, 1))
        assert angle.max() < 1e-4, (a, b)
    assert max_jump_deg(result.rotations) < 90.0
    # The pelvis travels the take's path scaled by the leg ratio.
    travel = (fk[:, 0] - fk[0, 0]) - leg_ratio(rig, rig_map, pos) * (pos[:, 0] - pos[0, 0])
    assert np.abs(travel).max() * mm < 0.01


def leg_ratio(rig: RestRig, rig_map, pos: np.ndarray) -> float:
    """Rig leg length / the take's (hip-knee-ankle, both sides): the root motion scale."""
    P0 = rest_joint_points(rig, rig_map)
    rig_leg, take_leg = [], []
    for s in "lr":
        a, b, c = f"{s}_hip", f"{s}_knee", f"{s}_ankle"
        rig_leg.append(np.linalg.norm(P0[b] - P0[a]) + np.linalg.norm(P0[c] - P0[b]))
        take_leg.append(np.median(np.linalg.norm(pos[:, J[b]] - pos[:, J[a]], axis=1)
                                  + np.linalg.norm(pos[:, J[c]] - pos[:, J[b]], axis=1)))
    return float(np.mean(rig_leg) / np.mean(take_leg))


def test_rigify_ik_targets_land_on_the_scaled_take() -> None:
    pos, fps = clip("01/01_01")
    rig = rigify_generated()
    names = rig.names()
    ik_map = resolve_for_rig(rig_map_by_family("rigify_ik"), names).rig_map
    motion = WorldMotion.from_positions(pos, fps)
    result = retarget(motion, rig, ik_map, NO_FOOT_LOCK)
    assert {"foot_ik.L", "hand_ik.R", "thigh_ik_target.L",
            "upper_arm_ik_target.R"} <= set(result.bone_locations)
    heads = pose_world_heads(rig, ik_map, result)
    # The take scaled onto the rig about its pelvis (the root carries the pelvis there).
    scale = leg_ratio(rig, ik_map, pos)
    pelvis = pose_world_joints(rig, ik_map, result)[:, 0]
    scaled = pelvis[:, None] + scale * (pos - pos[:, :1])
    for bone, joint in (("foot_ik.L", "l_ankle"), ("foot_ik.R", "r_ankle"),
                        ("hand_ik.L", "l_wrist"), ("hand_ik.R", "r_wrist")):
        err = np.linalg.norm(heads[:, names.index(bone)] - scaled[:, J[joint]], axis=1)
        assert err.max() < 1e-5, (bone, err.max())  # 0.01 mm: the JSON rounds the rest
    # Poles sit in the limb's plane, on the side the middle joint bends to.
    for bone, (a, b, c) in (("thigh_ik_target.L", ("l_hip", "l_knee", "l_ankle")),
                            ("upper_arm_ik_target.R", ("r_shoulder", "r_elbow", "r_wrist"))):
        A, B, C = scaled[:, J[a]], scaled[:, J[b]], scaled[:, J[c]]
        n = normalize(np.cross(B - A, C - B))
        bent = np.linalg.norm(np.cross(B - A, C - B), axis=1) > 1e-3
        P = heads[:, names.index(bone)]
        assert np.abs(np.einsum("tc,tc->t", P - B, n))[bent].max() < 1e-5
        side = np.einsum("tc,tc->t", P - B, B - 0.5 * (A + C))
        assert (side[bent] > 0).all()
