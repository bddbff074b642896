"""2D keypoint readers and the project's own 2D archive (core/formats, DESIGN §5).

Samples are made here in the formats' real shapes: a walking person crossing a 1920x1080
image, with a second person farther off and weaker, written as AlphaPose / COCO results,
OpenPose folders, VideoPose3D archives (saved exactly as VideoPose3D saves them) and our
own archive. Joint orders of the foreign formats are spelled out here from the formats'
documentation, independently of the tables in `convert`.
"""

from __future__ import annotations

import collections
import json
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.formats import (FORMAT_LABELS, detect_format, read_keypoints,
                                           write_keypoints_npz)
from diffpose_blender.core.formats.convert import DERIVED_SCORE_FACTOR, HEAD_TOP_K
from diffpose_blender.core.keypoints import Keypoints2D
from diffpose_blender.core.skeleton import JOINT_NAMES, NUM_JOINTS, SKELETON

from tests.samples import (  # noqa: F401
    W, H, J, C, COCO_NAMES, COCO_TEMPLATE, BODY25_NAMES, COCO18_NAMES,
    OPENPOSE_FROM_COCO, HALPE_EXTRA, walking, triplets, write_json, two_people_coco,
    openpose_person, openpose_folder, savez_like_videopose3d, H36M_METADATA,
    COCO_METADATA, sample_keypoints, expected_head_top)


def assert_same_person(kp: Keypoints2D, frames: list[int], coco_xy: np.ndarray) -> None:
    for name, coco in (("l_hip", "left_hip"), ("r_knee", "right_knee"),
                       ("l_wrist", "left_wrist"), ("neck_nose", "nose")):
        np.testing.assert_array_equal(kp.keypoints[frames, J[name]],
                                      coco_xy[frames, C[coco]])


# ------------------------------------------------------------------------ COCO / AlphaPose

def test_coco_keeps_the_consistent_person_by_continuity(tmp_path: Path) -> None:
    path, main_xy, _ = two_people_coco(tmp_path)
    assert detect_format(path) == "coco_json"
    kp = read_keypoints(path, fps=30)
    assert kp.num_frames == 12 and kp.fps == 30.0 and kp.image_size is None
    assert kp.source == f"coco_json:{path}"
    gone = [4, 8]  # 4: no detection at all; 8: only the other person is in view
    present = [t for t in range(12) if t not in gone]
    assert kp.valid.tolist() == [t not in gone for t in range(12)]
    # In frames 1, 2 and 9 the other person scores higher and is listed first: still ours.
    assert_same_person(kp, present, main_xy)
    assert np.isnan(kp.keypoints[gone]).all() and (kp.scores[gone] == 0).all()
    np.testing.assert_array_equal(kp.extra["frame_numbers"], np.arange(12))


def test_coco_derived_joints_follow_the_documented_rules(tmp_path: Path) -> None:
    xy, conf = walking(5, 800, 10, seed=7)
    conf[3, C["right_ear"]] = 0.0  # frame 3: head centre from the eyes instead
    dets = [{"image_id": t, "category_id": 1, "keypoints": triplets(xy[t], conf[t]),
             "score": 1.0} for t in range(5)]
    kp = read_keypoints(write_json(tmp_path / "one.json", dets))
    k, s = kp.keypoints, kp.scores
    f = DERIVED_SCORE_FACTOR

    hips = (xy[:, C["left_hip"]] + xy[:, C["right_hip"]]) / 2
    np.testing.assert_allclose(k[:, J["pelvis"]], hips)
    np.testing.assert_allclose(s[:, J["pelvis"]],
                               f * np.minimum(conf[:, C["left_hip"]], conf[:, C["right_hip"]]))
    shoulders = (xy[:, C["left_shoulder"]] + xy[:, C["right_shoulder"]]) / 2
    np.testing.assert_allclose(k[:, J["thorax"]], shoulders)
    np.testing.assert_allclose(k[:, J["spine"]], (hips + shoulders) / 2)
    np.testing.assert_allclose(s[:, J["spine"]],
                               f * np.minimum(s[:, J["pelvis"]], s[:, J["thorax"]]))
    # Derived joints are marked less certain than what they come from.
    assert (s[:, J["pelvis"]] < np.minimum(conf[:, C["left_hip"]], conf[:, C["right_hip"]])).all()
    assert (s[:, J["spine"]] < s[:, J["pelvis"]]).all()

    ears = [0, 1, 2, 4]
    np.testing.assert_allclose(k[ears, J["head_top"]], expected_head_top(xy[ears]))
    eyes = (xy[3, C["left_eye"]] + xy[3, C["right_eye"]]) / 2
    np.testing.assert_allclose(k[3, J["head_top"]], eyes + HEAD_TOP_K * (eyes - shoulders[3]))
    assert (k[:, J["head_top"], 1] < k[:, J["neck_nose"], 1]).all()  # above the nose
    np.testing.assert_allclose(
        s[ears, J["head_top"]],
        f * np.minimum.reduce([conf[ears, C["left_ear"]], conf[ears, C["right_ear"]],
                               s[ears, J["thorax"]]]))

    # Copied joints keep their score; COCO-17 has no toes or hand ends.
    np.testing.assert_array_equal(k[:, J["neck_nose"]], xy[:, C["nose"]])
    np.testing.assert_array_equal(s[:, J["r_ankle"]], conf[:, C["right_ankle"]])
    for name in ("l_toe", "r_toe", "l_hand_end", "r_hand_end"):
        assert np.isnan(k[:, J[name]]).all() and (s[:, J[name]] == 0).all()


def test_a_derived_joint_is_unknown_when_a_source_is(tmp_path: Path) -> None:
    xy, conf = walking(3, 800, 10, seed=8)
    conf[1, C["left_hip"]] = 0.0
    xy[1, C["left_hip"]] = np.nan  # allowed: its confidence is 0 (JSON writes NaN)
    dets = [{"image_id": t, "keypoints": triplets(xy[t], conf[t]), "score": 1.0}
            for t in range(3)]
    kp = read_keypoints(write_json(tmp_path / "hip.json", dets))
    for name in ("l_hip", "pelvis", "spine"):
        assert np.isnan(kp.keypoints[1, J[name]]).all() and kp.scores[1, J[name]] == 0
        assert kp.scores[0, J[name]] > 0


@pytest.mark.parametrize("key", ["track_id", "idx"])
def test_coco_track_ids_choose_the_track_in_most_frames(tmp_path: Path, key: str) -> None:
    # The other person (track 3) scores 3.0 against 1.0 but is in half the frames.
    path, main_xy, _ = two_people_coco(tmp_path, tracks=key, main_gone=())
    kp = read_keypoints(path)
    present = [t for t in range(12) if t != 4]
    assert kp.valid.tolist() == [t != 4 for t in range(12)]
    assert_same_person(kp, present, main_xy)


def test_alphapose_idx_zero_for_everyone_falls_back_to_continuity(tmp_path: Path) -> None:
    path, main_xy, _ = two_people_coco(tmp_path, tracks="idx0")
    kp = read_keypoints(path)
    assert_same_person(kp, [t for t in range(12) if t not in (4, 8)], main_xy)


def test_coco_frames_ordered_by_the_number_in_the_image_name(tmp_path: Path) -> None:
    xy, conf = walking(12, 300, 15, seed=9)
    order = [10, 2, 0, 11, 1, 7, 3, 9]  # not in file order; 4, 5, 6 and 8 missing
    dets = [{"image_id": f"frame_{t}.jpg", "category_id": 1,
             "keypoints": triplets(xy[t], conf[t]), "score": 2.0} for t in order]
    kp = read_keypoints(write_json(tmp_path / "named.json", dets))
    assert kp.num_frames == 12
    assert kp.valid.tolist() == [t in order for t in range(12)]
    assert_same_person(kp, sorted(order), xy)

    # Integer ids are frame numbers too; frames count from the first one.
    dets = [dict(d, image_id=100 + t) for d, t in zip(dets, order)]
    kp = read_keypoints(write_json(tmp_path / "ints.json", dets))
    np.testing.assert_array_equal(kp.extra["frame_numbers"], np.arange(100, 112))
    assert_same_person(kp, sorted(order), xy)


def test_coco_visibility_flags_and_scores(tmp_path: Path) -> None:
    xy, _ = walking(2, 500, 10, seed=10)
    flags = np.full((2, 17), 2.0)
    flags[0, C["left_wrist"]] = 1.0
    flags[0, C["right_wrist"]] = 0.0
    xy[0, C["right_wrist"]] = 0.0  # COCO ground truth writes 0, 0, 0 for unlabelled
    gt = [{"image_id": t, "category_id": 1, "keypoints": triplets(xy[t], flags[t])}
          for t in range(2)]
    kp = read_keypoints(write_json(tmp_path / "gt.json", gt))
    assert kp.scores[0, J["l_ankle"]] == 1.0
    assert kp.scores[0, J["l_wrist"]] == 0.5
    assert kp.scores[0, J["r_wrist"]] == 0.0 and np.isnan(kp.keypoints[0, J["r_wrist"]]).all()

    # Detector scores (not all 0/1/2) are clipped: AlphaPose can write 1.03.
    scores = np.full((2, 17), 0.7)
    scores[:, C["nose"]] = 1.03
    scores[:, C["left_knee"]] = 2.0
    res = [{"image_id": t, "category_id": 1, "keypoints": triplets(xy[t], scores[t]),
            "score": 2.0} for t in range(2)]
    kp = read_keypoints(write_json(tmp_path / "res.json", res))
    assert kp.scores[0, J["neck_nose"]] == 1.0 and kp.scores[0, J["l_knee"]] == 1.0
    assert kp.scores[0, J["l_ankle"]] == 0.7


def test_halpe26_uses_its_head_neck_hip_and_toes(tmp_path: Path) -> None:
    xy, conf = walking(4, 700, 12, seed=11)
    extra_xy = np.stack([
        expected_head_top(xy) + [0, -15],                               # Head
        (xy[:, C["left_shoulder"]] + xy[:, C["right_shoulder"]]) / 2 + [0, -10],  # Neck
        (xy[:, C["left_hip"]] + xy[:, C["right_hip"]]) / 2 + [0, -6],   # Hip
        xy[:, C["left_ankle"]] + [8, 30], xy[:, C["right_ankle"]] + [-8, 30],  # big toes
        xy[:, C["left_ankle"]] + [-6, 28], xy[:, C["right_ankle"]] + [6, 28],
        xy[:, C["left_ankle"]] + [0, 10], xy[:, C["right_ankle"]] + [0, 10]], axis=1)
    extra_c = np.full((4, 9), 0.77)
    all_xy = np.concatenate([xy, extra_xy], axis=1)
    all_c = np.concatenate([conf, extra_c], axis=1)
    dets = [{"image_id": f"{t}.jpg", "category_id": 1, "keypoints": triplets(all_xy[t], all_c[t]),
             "score": 2.2, "box": [600, 300, 200, 600], "idx": 0} for t in range(4)]
    kp = read_keypoints(write_json(tmp_path / "halpe.json", dets))
    for name, halpe in (("head_top", "Head"), ("thorax", "Neck"), ("pelvis", "Hip"),
                        ("l_toe", "LBigToe"), ("r_toe", "RBigToe")):
        np.testing.assert_array_equal(kp.keypoints[:, J[name]],
                                      extra_xy[:, HALPE_EXTRA.index(halpe)])
        np.testing.assert_array_equal(kp.scores[:, J[name]], 0.77)  # copied, not derived
    np.testing.assert_allclose(kp.keypoints[:, J["spine"]],
                               (extra_xy[:, 1] + extra_xy[:, 2]) / 2)


# --------------------------------------------------------------------------- OpenPose

def test_openpose_body25_folder(tmp_path: Path) -> None:
    folder, xy, c = openpose_folder(tmp_path, BODY25_NAMES)
    one_file = folder / "walk_000000000005_keypoints.json"
    assert detect_format(folder) == "openpose_dir" == detect_format(one_file)
    kp = read_keypoints(folder)
    assert kp.source == f"openpose_dir:{folder}"
    assert kp.num_frames == 8 and kp.valid.tolist() == [t != 3 for t in range(8)]
    assert np.isnan(kp.keypoints[3]).all() and (kp.scores[3] == 0).all()
    ok = [t for t in range(8) if t != 3]
    b = {n: i for i, n in enumerate(BODY25_NAMES)}
    for name, op in (("pelvis", "MidHip"), ("thorax", "Neck"), ("l_toe", "LBigToe"),
                     ("r_toe", "RBigToe"), ("r_knee", "RKnee"), ("neck_nose", "Nose")):
        np.testing.assert_array_equal(kp.keypoints[ok, J[name]], xy[ok, b[op]])
        np.testing.assert_array_equal(kp.scores[ok, J[name]], c[ok, b[op]])
    # 0, 0, 0 is "not found": unknown, not a joint at the image corner.
    assert np.isnan(kp.keypoints[2, J["l_wrist"]]).all() and kp.scores[2, J["l_wrist"]] == 0
    np.testing.assert_array_equal(kp.extra["frame_numbers"], np.arange(8))
    # A single frame file stands for its folder.
    np.testing.assert_array_equal(read_keypoints(one_file).keypoints, kp.keypoints)


def test_openpose_coco18_derives_pelvis_and_copies_neck(tmp_path: Path) -> None:
    folder, xy, c = openpose_folder(tmp_path, COCO18_NAMES, missing=6)
    kp = read_keypoints(folder)
    o = {n: i for i, n in enumerate(COCO18_NAMES)}
    ok = [t for t in range(8) if t != 6]
    np.testing.assert_array_equal(kp.keypoints[ok, J["thorax"]], xy[ok, o["Neck"]])
    np.testing.assert_allclose(kp.keypoints[ok, J["pelvis"]],
                               (xy[ok, o["LHip"]] + xy[ok, o["RHip"]]) / 2)
    np.testing.assert_allclose(kp.scores[ok, J["pelvis"]], DERIVED_SCORE_FACTOR
                               * np.minimum(c[ok, o["LHip"]], c[ok, o["RHip"]]))
    assert (kp.scores[:, J["l_toe"]] == 0).all()
    assert not kp.valid[6]


def test_openpose_person_id_acts_as_a_track(tmp_path: Path) -> None:
    folder = tmp_path / "tracked"
    folder.mkdir()
    main_xy, main_c = walking(6, 300, 15, seed=12)
    other_xy, _ = walking(6, 360, 15, seed=13)  # right beside ours, more confident
    for t in range(6):
        people = [{"person_id": [2], "pose_keypoints_2d":
                   triplets(*openpose_person(main_xy[t], main_c[t], BODY25_NAMES))}]
        if t < 4:
            people.insert(0, {"person_id": [5], "pose_keypoints_2d": triplets(
                *openpose_person(other_xy[t], np.ones(17), BODY25_NAMES))})
        write_json(folder / f"{t:012d}_keypoints.json", {"people": people})
    kp = read_keypoints(folder)
    assert_same_person(kp, list(range(6)), main_xy)


# ------------------------------------------------------------------------- VideoPose3D

def test_videopose3d_h36m_subject_action_camera(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    cams = [rng.uniform(0, 1000, size=(40, 17, 2)).astype(np.float32) for _ in range(4)]
    positions = {"S1": {"Walking": cams, "Eating": cams[:1]},
                 "S5": {"Walking": cams[:2]}}
    path = savez_like_videopose3d(tmp_path / "data_2d_h36m_cpn.npz", positions, H36M_METADATA)
    assert detect_format(path) == "videopose3d_npz"
    with pytest.raises(DiffPoseError, match=re.escape(path.name) + r": key 'positions_2d': "
                       r"2 subjects; choose one with subject=: 'S1', 'S5'"):
        read_keypoints(path)
    with pytest.raises(DiffPoseError, match=r"subject 'S1': 2 actions; .*'Eating', 'Walking'"):
        read_keypoints(path, subject="S1")
    with pytest.raises(DiffPoseError, match=r"action 'Walking': 4 cameras; .*0, 1, 2, 3"):
        read_keypoints(path, subject="S1", action="Walking")
    with pytest.raises(DiffPoseError, match=r"no subject 'S9'; expected one of 'S1', 'S5'"):
        read_keypoints(path, subject="S9")

    kp = read_keypoints(path, subject="S1", action="Walking", camera=2, fps=50)
    np.testing.assert_array_equal(kp.keypoints[:, :17], cams[2].astype(np.float64))
    assert (kp.scores[:, :17] == 1.0).all() and (kp.scores[:, 17:] == 0).all()
    assert kp.fps == 50.0 and kp.image_size is None
    # A single camera is taken without asking.
    kp = read_keypoints(path, subject="S1", action="Eating")
    np.testing.assert_array_equal(kp.keypoints[:, :17], cams[0])


def test_videopose3d_custom_coco_like_prepare_data_2d_custom(tmp_path: Path) -> None:
    xy, _ = walking(30, 300, 15, seed=15)
    positions = {"walk.mp4": {"custom": [xy.astype(np.float32)]}}
    metadata = dict(COCO_METADATA, video_metadata={"walk.mp4": {"w": W, "h": H}})
    path = savez_like_videopose3d(tmp_path / "data_2d_custom_walk.npz", positions, metadata)
    kp = read_keypoints(path)
    assert kp.image_size == (W, H)
    xy32 = xy.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(kp.keypoints[:, J["pelvis"]],
                               (xy32[:, C["left_hip"]] + xy32[:, C["right_hip"]]) / 2)
    assert (kp.scores[:, J["pelvis"]] == DERIVED_SCORE_FACTOR).all()
    assert (kp.scores[:, J["l_knee"]] == 1.0).all()


def test_videopose3d_normalised_coordinates_need_the_image_size(tmp_path: Path) -> None:
    xy, _ = walking(20, 300, 15, seed=16)
    w, h = 1280, 720
    normalised = xy / w * 2 - np.array([1.0, h / w])  # VideoPose3D's normalize_screen_coordinates
    path = savez_like_videopose3d(tmp_path / "norm.npz",
                                  {"S1": {"walk": [normalised]}}, H36M_METADATA)
    with pytest.raises(DiffPoseError, match=re.escape(path.name) + r": .*camera 0: "
                       r"coordinates look normalised .*image_size"):
        read_keypoints(path)
    kp = read_keypoints(path, image_size=(w, h))
    np.testing.assert_allclose(kp.keypoints[:, :17], xy, atol=1e-9)
    assert kp.image_size == (w, h)


class _RunsACommand:
    """Pickles as a call to os.system: what a hostile .npz would carry."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return os.system, (self.command,)


def test_videopose3d_refuses_a_pickled_os_system_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "it-ran"
    path = savez_like_videopose3d(tmp_path / "evil.npz",
                                  {"S1": {"walk": [_RunsACommand(f"touch '{marker}'")]}},
                                  H36M_METADATA)
    with pytest.raises(DiffPoseError, match=re.escape(path.name) + r": key 'positions_2d': "
                       r"refusing to unpickle (posix|nt|os)\.system"):
        read_keypoints(path)
    assert not marker.exists()


def test_videopose3d_refuses_other_classes(tmp_path: Path) -> None:
    xy, _ = walking(5, 300, 15, seed=17)
    path = savez_like_videopose3d(tmp_path / "ordered.npz", {"S1": {"walk": [xy]}},
                                  collections.OrderedDict(H36M_METADATA))
    with pytest.raises(DiffPoseError, match=re.escape(path.name) + r": key 'metadata': "
                       r"refusing to unpickle collections\.OrderedDict"):
        read_keypoints(path, format="videopose3d_npz")


# ------------------------------------------------------------------ our own 2D archive

def assert_same_keypoints(a: Keypoints2D, b: Keypoints2D) -> None:
    for name in ("keypoints", "scores", "valid", "gmm_weights", "gmm_means", "gmm_covs"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            assert x.dtype == y.dtype and x.shape == y.shape, name
            np.testing.assert_array_equal(x, y, err_msg=name)
    assert (a.fps, a.image_size, a.joint_names) == (b.fps, b.image_size, b.joint_names)
    assert a.extra.keys() == b.extra.keys()
    for k in a.extra:
        np.testing.assert_array_equal(a.extra[k], b.extra[k])


def test_keypoints_npz_round_trips_exactly(tmp_path: Path) -> None:
    kp = sample_keypoints()
    path = tmp_path / "walk_2d.npz"
    write_keypoints_npz(path, kp)
    assert sorted(os.listdir(tmp_path)) == ["walk_2d.npz"]  # no temporary left behind
    assert detect_format(path) == "keypoints_npz"
    back = read_keypoints(path)
    assert back.source == f"keypoints_npz:{path}"
    assert_same_keypoints(kp, back)

    bare = Keypoints2D(keypoints=kp.keypoints, scores=kp.scores, valid=kp.valid, fps=None,
                       image_size=None, source="test")
    write_keypoints_npz(path, bare)  # overwrites in place
    assert_same_keypoints(bare, read_keypoints(path))
    # Keywords override what the file says (and fill in what it lacks).
    assert read_keypoints(path, fps=24, image_size=(640, 480)).image_size == (640, 480)


def test_keypoints_npz_from_a_coco_read_round_trips(tmp_path: Path) -> None:
    kp = read_keypoints(two_people_coco(tmp_path)[0], fps=25)
    write_keypoints_npz(tmp_path / "again.npz", kp)
    assert_same_keypoints(kp, read_keypoints(tmp_path / "again.npz"))


def test_keypoints_npz_joints_are_matched_by_name(tmp_path: Path) -> None:
    T, M = 3, 2
    names = ["r_wrist", "l_pinky", "pelvis", "l_knee"]  # l_pinky is not ours: ignored
    rng = np.random.default_rng(18)
    keypoints = rng.uniform(0, 500, size=(T, 4, 2))
    scores = rng.uniform(0.2, 1, size=(T, 4))
    weights = rng.dirichlet(np.ones(M), size=(T, 4))
    means = rng.uniform(0, 500, size=(T, 4, M, 2))
    covs = np.broadcast_to(np.eye(2), (T, 4, M, 2, 2)).copy()
    path = tmp_path / "named.npz"
    np.savez(path, keypoints=keypoints, scores=scores, joint_names=np.array(names),
             fps=np.float64(30), image_size=np.array([W, H]), gmm_weights=weights,
             gmm_means=means, gmm_covs=covs)
    kp = read_keypoints(path)
    assert kp.joint_names == JOINT_NAMES and kp.fps == 30.0 and kp.image_size == (W, H)
    for i, name in ((0, "r_wrist"), (2, "pelvis"), (3, "l_knee")):
        np.testing.assert_array_equal(kp.keypoints[:, J[name]], keypoints[:, i])
        np.testing.assert_array_equal(kp.scores[:, J[name]], scores[:, i])
        assert kp.gmm_means is not None and kp.gmm_weights is not None
        np.testing.assert_array_equal(kp.gmm_means[:, J[name]], means[:, i])
        np.testing.assert_array_equal(kp.gmm_weights[:, J[name]], weights[:, i])
    assert np.isnan(kp.keypoints[:, J["head_top"]]).all()
    assert (kp.scores[:, J["head_top"]] == 0).all()
    assert kp.gmm_weights is not None and (kp.gmm_weights[:, J["head_top"]] == 0).all()


# --------------------------------------------------------------------------- bad input

# A case makes a bad input and returns (path, expected message pattern[, format]).
Case = Callable[[Path], tuple]


def _coco_with(tmp_path: Path, name: str, edit: Callable[[list[dict]], object]) -> Path:
    xy, conf = walking(3, 300, 15, seed=19)
    dets = [{"image_id": f"{t}.jpg", "category_id": 1, "keypoints": triplets(xy[t], conf[t]),
             "score": 2.0} for t in range(3)]
    return write_json(tmp_path / name, edit(dets))


def _set(det: dict, index: int, value: object) -> None:
    det["keypoints"][index] = value


def _npz(tmp_path: Path, name: str, **overrides: object) -> Path:
    T = 4
    arrays: dict[str, object] = {
        "keypoints": np.full((T, NUM_JOINTS, 2), 100.0),
        "scores": np.full((T, NUM_JOINTS), 0.5),
        "joint_names": np.array(JOINT_NAMES)}
    arrays.update(overrides)
    path = tmp_path / name
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})  # type: ignore[arg-type]
    return path


def _vp3d(tmp_path: Path, name: str, array: object, metadata: object = H36M_METADATA) -> Path:
    return savez_like_videopose3d(tmp_path / name, {"S1": {"Walking": [array]}}, metadata)


def _openpose(tmp_path: Path, files: dict[str, object]) -> Path:
    folder = tmp_path / "op"
    folder.mkdir()
    for name, data in files.items():
        if isinstance(data, bytes):
            (folder / name).write_bytes(data)
        else:
            write_json(folder / name, data)
    return folder


def _body25_person(scale: float = 1.0) -> dict:
    xy, conf = walking(1, 300, 0, seed=20)
    return {"person_id": [-1], "pose_keypoints_2d":
            triplets(*openpose_person(xy[0], conf[0] * scale, BODY25_NAMES))}


def _null_knee(dets: list[dict]) -> list[dict]:
    _set(dets[2], 3 * C["left_knee"] + 1, None)
    return dets


def _a_string(dets: list[dict]) -> list[dict]:
    _set(dets[0], 0, "12")
    return dets


def _nan_coordinate(dets: list[dict]) -> list[dict]:
    _set(dets[1], 3 * C["left_hip"], float("nan"))
    return dets


def _infinite_confidence(dets: list[dict]) -> list[dict]:
    _set(dets[1], 3 * C["nose"] + 2, float("inf"))
    return dets


BAD_INPUTS: dict[str, Case] = {
    # JSON files
    "missing file": lambda p: (p / "nope.json", "nope.json: file or folder not found"),
    "missing file, format given": lambda p: (p / "gone.json", "gone.json: file not found",
                                             "coco_json"),
    "empty file": lambda p: (_write(p / "empty.json", b"  \n"),
                             r"empty.json: the file is empty; expected JSON"),
    "truncated JSON": lambda p: (
        # Cut after a comma, as a detector killed mid-write leaves it.
        _write(p / "cut.json", json.dumps([{"image_id": 1, "keypoints": [1.5] * 51}])
               [:60].encode()),
        r"cut.json: line 1, column \d+: expected valid JSON: .*truncated"),
    "not UTF-8": lambda p: (_write(p / "latin.json", b'[\n {"image_id": "caf\xe9.jpg"}]'),
                            r"latin.json: line 2, column 19: expected UTF-8 text, got byte 0xe9"),
    "object, not a list": lambda p: (
        _write(p / "gt.json", b'{"annotations": []}'),
        r"gt.json: expected a list of COCO detections or an OpenPose frame .*got an object"),
    "object given as COCO": lambda p: (
        _write(p / "gt2.json", b'{"annotations": []}'),
        r"gt2.json: expected a JSON list of detections \(COCO results\), got an object",
        "coco_json"),
    "wrong keypoint count": lambda p: (
        _coco_with(p, "short.json",
                   lambda d: [d[0], dict(d[1], keypoints=d[1]["keypoints"][:50])]),
        r"short.json: detection 1 \(image_id '1.jpg'\), key 'keypoints': expected 51 numbers "
        r"\(COCO-17\) or 78 numbers \(Halpe-26\), got 50 numbers"),
    "null in keypoints": lambda p: (
        _coco_with(p, "null.json", _null_knee),
        r"null.json: detection 2 \(image_id '2.jpg'\), key 'keypoints', joint 'l_knee' y: "
        r"expected a number, got null"),
    "string in keypoints": lambda p: (
        _coco_with(p, "str.json", _a_string),
        r"str.json: detection 0 .*joint 'nose' x: expected a number, got '12'"),
    "NaN coordinate": lambda p: (
        _coco_with(p, "nan.json", _nan_coordinate),
        r"nan.json: detection 1 .*joint 'l_hip': expected finite x, y for a joint with "
        r"nonzero confidence, got \(nan, "),
    "infinite confidence": lambda p: (
        _coco_with(p, "inf.json", _infinite_confidence),
        r"inf.json: detection 1 .*joint 'nose' confidence: expected a finite number, got inf"),
    "no detections": lambda p: (_write(p / "none.json", b"[]"),
                                r"none.json: expected at least one detection"),
    "keypoints not a list": lambda p: (
        _coco_with(p, "kpdict.json", lambda d: [dict(d[0], keypoints={"x": 1})]),
        r"kpdict.json: detection 0 \(image_id '0.jpg'\), key 'keypoints': expected a list of "
        r"51 numbers .*got an object"),
    "bad image_id": lambda p: (
        _coco_with(p, "id.json", lambda d: [d[0], dict(d[1], image_id=None)]),
        r"id.json: detection 1, key 'image_id': expected a frame number or an image file "
        r"name, got null"),
    "bad score": lambda p: (
        _coco_with(p, "score.json", lambda d: [dict(d[0], score="high")]),
        r"score.json: detection 0 \(image_id '0.jpg'\), key 'score': expected a finite number"),
    "two names for one frame": lambda p: (
        _coco_with(p, "dup.json", lambda d: [d[0], dict(d[1], image_id="a/0.jpg")]),
        r"dup.json: image_ids '0.jpg' and 'a/0.jpg' both give frame number 0"),
    "mixed layouts": lambda p: (
        _coco_with(p, "mixed.json",
                   lambda d: [d[0], dict(d[1], keypoints=d[1]["keypoints"] + [1.0] * 27)]),
        r"mixed.json: detection 1 .*expected 51 numbers \(COCO-17\) like the detections "
        r"before, got 78"),
    "no person in any frame": lambda p: (
        _coco_with(p, "ghosts.json", lambda d: [dict(x, keypoints=[0.0] * 51) for x in d]),
        r"ghosts.json: no person found in any frame"),
    # OpenPose folders
    "folder without frame files": lambda p: (_mkdir(p / "empty_dir"),
                                             r"empty_dir: expected a folder of OpenPose"),
    "OpenPose frame without people": lambda p: (
        _openpose(p, {"a_000000000000_keypoints.json": {"people": [_body25_person()]},
                      "a_000000000001_keypoints.json": {"persons": []}}),
        r"a_000000000001_keypoints.json: expected an OpenPose frame: an object with a list "
        r"'people', got an object without"),
    "OpenPose wrong length": lambda p: (
        _openpose(p, {"a_000000000002_keypoints.json": {"people": [
            _body25_person(), {"pose_keypoints_2d": [1.0] * 57}]}}),
        r"a_000000000002_keypoints.json: person 1, key 'pose_keypoints_2d': expected 75 "
        r"numbers \(BODY_25\) or 54 numbers \(COCO-18\), got 57"),
    "OpenPose truncated file": lambda p: (
        _openpose(p, {"a_000000000000_keypoints.json": {"people": [_body25_person()]},
                      "a_000000000001_keypoints.json": b'{"people": [{"pose_keypoints_2d": [1,'}),
        r"a_000000000001_keypoints.json: line 1, column \d+: expected valid JSON"),
    "OpenPose nobody anywhere": lambda p: (
        _openpose(p, {f"a_{t:012d}_keypoints.json": {"people": []} for t in range(3)}),
        r"op: no person found in any frame"),
    # our own archive
    "npz frame counts disagree": lambda p: (
        _npz(p, "frames.npz", scores=np.full((3, NUM_JOINTS), 0.5)),
        r"frames.npz: key 'scores': expected 4 frames like key 'keypoints', got 3"),
    "npz wrong shape": lambda p: (
        _npz(p, "shape.npz", keypoints=np.zeros((4, NUM_JOINTS, 3))),
        r"shape.npz: key 'keypoints': expected shape \(n, n, 2\), got shape \(4, 21, 3\)"),
    "npz wrong dtype": lambda p: (
        _npz(p, "dtype.npz", scores=np.full((4, NUM_JOINTS), "high")),
        r"dtype.npz: key 'scores': expected numbers of shape \(4, 21\), got shape"),
    "npz object array": lambda p: (
        _npz(p, "objects.npz", joint_names=np.array(list(JOINT_NAMES), dtype=object)),
        r"objects.npz: key 'joint_names': expected a plain array; object \(pickled\) "
        r"arrays are not allowed"),
    "npz no known joint names": lambda p: (
        _npz(p, "names.npz", joint_names=np.array([f"j{i}" for i in range(NUM_JOINTS)])),
        r"names.npz: key 'joint_names': expected names from the project's joint set"),
    "npz missing key": lambda p: (_npz(p, "nokey.npz", scores=None),
                                  r"nokey.npz: expected key\(s\) scores"),
    "npz some mixtures": lambda p: (
        _npz(p, "gmm.npz", gmm_weights=np.ones((4, NUM_JOINTS, 2))),
        r"gmm.npz: expected all of gmm_weights, gmm_means, gmm_covs or none"),
    "npz zero frames": lambda p: (
        _npz(p, "zero.npz", keypoints=np.zeros((0, NUM_JOINTS, 2)),
             scores=np.zeros((0, NUM_JOINTS))),
        r"zero.npz: no frames; expected at least one"),
    "npz score out of range": lambda p: (
        _npz(p, "range.npz", scores=np.full((4, NUM_JOINTS), 1.5)),
        r"range.npz: frame 0, joint 'pelvis': expected a score in \[0, 1\]"),
    "npz that is not a zip": lambda p: (_write(p / "text.npz", b"keypoints,scores\n1,2\n"),
                                        r"text.npz: expected a .npz \(zip\) archive"),
    # VideoPose3D archives
    "VideoPose3D wrong joint count": lambda p: (
        _vp3d(p, "joints.npz", np.zeros((10, 16, 2), np.float32)),
        r"joints.npz: key 'positions_2d', subject 'S1', action 'Walking', camera 0: expected "
        r"a numeric array of shape \(T, 17, 2\), got shape \(10, 16, 2\)"),
    "VideoPose3D unknown layout": lambda p: (
        _vp3d(p, "layout.npz", np.zeros((10, 15, 2)),
              dict(H36M_METADATA, layout_name="humaneva15")),
        r"layout.npz: key 'metadata', 'layout_name': expected one of 'h36m', 'coco', "
        r"got 'humaneva15'"),
    "VideoPose3D not a zip": lambda p: (_write(p / "vp3d.npz", b"\x93NUMPY garbage"),
                                        r"vp3d.npz: expected a .npz \(zip\) archive",
                                        "videopose3d_npz"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_names_the_file_and_the_place(tmp_path: Path, case: str) -> None:
    path, pattern, *fmt = BAD_INPUTS[case](tmp_path)
    with pytest.raises(DiffPoseError, match=pattern) as info:
        read_keypoints(path, format=fmt[0] if fmt else None)
    assert str(path) in str(info.value)  # the full path, not only the name


def test_bad_options_and_types(tmp_path: Path) -> None:
    path = two_people_coco(tmp_path)[0]
    name = re.escape(path.name)
    with pytest.raises(DiffPoseError, match=name + r": unknown option\(s\) subject for COCO"):
        read_keypoints(path, subject="S1")
    with pytest.raises(DiffPoseError, match=name + r": fps: expected a positive number"):
        read_keypoints(path, fps=0)
    with pytest.raises(DiffPoseError, match=name + r": image_size: expected \(width, height\)"):
        read_keypoints(path, image_size=(1920,))
    with pytest.raises(DiffPoseError, match=name + r": unknown format 'bvh'"):
        read_keypoints(path, format="bvh")
    txt = _write(tmp_path / "poses.txt", b"1 2 3")
    with pytest.raises(DiffPoseError, match=r"poses.txt: expected a .json file, a .npz file"):
        detect_format(txt)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(DiffPoseError, match=r"other.npz: expected key 'positions_2d' "
                       r"\(VideoPose3D\) or 'keypoints' \(DiffPose 2D\), found weights"):
        detect_format(other)


def test_writer_refuses_what_the_reader_would(tmp_path: Path) -> None:
    kp = sample_keypoints()
    kp.gmm_covs = None
    with pytest.raises(DiffPoseError, match=r"bad.npz: expected all of gmm_weights"):
        write_keypoints_npz(tmp_path / "bad.npz", kp)
    assert os.listdir(tmp_path) == []  # nothing half-written


def test_format_labels_cover_every_format() -> None:
    assert set(FORMAT_LABELS) == {"coco_json", "openpose_dir", "videopose3d_npz",
                                  "keypoints_npz"}


def test_formats_never_unpickle_freely() -> None:
    # STYLE §8: the restricted unpickler is the only way objects are read.
    package = Path(__file__).resolve().parents[2] / "diffpose_blender" / "core" / "formats"
    for source in package.glob("*.py"):
        text = source.read_text()
        assert "allow_pickle=True" not in text, source.name
        assert "pickle.load(" not in text and "pickle.loads(" not in text, source.name


def test_keypoints_frames_cuts_every_per_frame_array() -> None:
    from tests.samples import sample_keypoints

    kp = sample_keypoints(T=40, M=2)
    part = kp.frames(11, 30)
    assert part.num_frames == 20 and part.source == kp.source
    np.testing.assert_array_equal(part.keypoints, kp.keypoints[10:30])
    np.testing.assert_array_equal(part.valid, kp.valid[10:30])
    for name in ("gmm_weights", "gmm_means", "gmm_covs"):
        full = getattr(kp, name)
        if full is not None:
            np.testing.assert_array_equal(getattr(part, name), full[10:30])
    assert kp.frames(35).num_frames == 6 and kp.frames(1, 999).num_frames == 40
    for first, last, words in ((0, 5, "expected 1 <= first"), (9, 3, "expected 1 <= first"),
                               (41, None, "starts at 41, but the source has 40 frames")):
        with pytest.raises(DiffPoseError, match=words):
            kp.frames(first, last)
