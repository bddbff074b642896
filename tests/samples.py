"""Real-shaped 2D keypoint samples, shared by the format tests and the lifting tests.

A walking person crossing a 1920x1080 image, with a second person farther off and weaker,
written as AlphaPose / COCO results, OpenPose folders, VideoPose3D archives (saved
exactly as VideoPose3D saves them) and the project's own archive. Joint orders of the
foreign formats are spelled out here from the formats' documentation, independently of
the tables in `core.formats.convert`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from diffpose_blender.core.formats.convert import HEAD_TOP_K
from diffpose_blender.core.keypoints import Keypoints2D
from diffpose_blender.core.skeleton import NUM_JOINTS, SKELETON

W, H = 1920, 1080
J = SKELETON.index  # project joint name -> index

# COCO-17 in the COCO dataset's order and names.
COCO_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
              "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
              "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
              "right_ankle"]
C = {n: i for i, n in enumerate(COCO_NAMES)}
# Offsets from the hip centre in px (y down) of a person facing the camera, ~560 px tall:
# their left is the image's right.
COCO_TEMPLATE = np.array([
    [0, -330], [10, -342], [-10, -342], [24, -336], [-24, -336], [58, -270], [-58, -270],
    [70, -175], [-70, -175], [74, -90], [-74, -90], [36, 0], [-36, 0], [40, 115],
    [-40, 115], [42, 225], [-42, 225]], dtype=np.float64)

# OpenPose's documented orders (output_format.md).
BODY25_NAMES = ["Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow",
                "LWrist", "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle",
                "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe", "LHeel",
                "RBigToe", "RSmallToe", "RHeel"]
COCO18_NAMES = BODY25_NAMES[:8] + ["RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle",
                                   "REye", "LEye", "REar", "LEar"]
OPENPOSE_FROM_COCO = {
    "Nose": "nose", "RShoulder": "right_shoulder", "RElbow": "right_elbow",
    "RWrist": "right_wrist", "LShoulder": "left_shoulder", "LElbow": "left_elbow",
    "LWrist": "left_wrist", "RHip": "right_hip", "RKnee": "right_knee",
    "RAnkle": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee",
    "LAnkle": "left_ankle", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear",
    "LEar": "left_ear"}
# AlphaPose Halpe-26: COCO-17, then these.
HALPE_EXTRA = ["Head", "Neck", "Hip", "LBigToe", "RBigToe", "LSmallToe", "RSmallToe",
               "LHeel", "RHeel"]


# ----------------------------------------------------------------------------- samples

def walking(T: int, x0: float, speed: float, seed: int, hip_y: float = 700.0
            ) -> tuple[np.ndarray, np.ndarray]:
    """A COCO-17 person walking right: xy (T, 17, 2) image px, conf (T, 17)."""
    t = np.arange(T)
    swing = 25.0 * np.sin(2 * np.pi * t / 32)[:, None]
    xy = np.repeat(COCO_TEMPLATE[None], T, axis=0)
    legs = [C["left_knee"], C["left_ankle"], C["right_knee"], C["right_ankle"]]
    arms = [C["left_elbow"], C["left_wrist"], C["right_elbow"], C["right_wrist"]]
    xy[:, legs, 0] += swing * np.array([0.6, 1.0, -0.6, -1.0])
    xy[:, arms, 0] -= swing * np.array([0.4, 0.8, -0.4, -0.8])
    xy += np.stack([x0 + speed * t, np.full(T, hip_y)], axis=1)[:, None]
    conf = np.random.default_rng(seed).uniform(0.55, 0.95, size=(T, 17))
    return xy, conf


def triplets(xy: np.ndarray, conf: np.ndarray) -> list[float]:
    return np.concatenate([xy, conf[:, None]], axis=1).ravel().tolist()


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def two_people_coco(tmp_path: Path, T: int = 12, *, tracks: str | None = None,
                    skip: tuple[int, ...] = (4,), main_gone: tuple[int, ...] = (8,)
                    ) -> tuple[Path, np.ndarray, np.ndarray]:
    """AlphaPose-style results: the main person, and a second one farther right, smaller
    on screen and usually weaker, listed first in odd frames. No detection at all in
    frames `skip`; only the second person in frames `main_gone`.

    tracks: None, "track_id" or "idx" (main 7, other 3; the other is in fewer frames
    but scores higher), or "idx0" (AlphaPose without tracking: idx 0 for everyone).
    """
    main_xy, main_c = walking(T, 300, 15, seed=1)
    other_xy, other_c = walking(T, 1500, -5, seed=2, hip_y=600)
    other_xy = (other_xy - other_xy[:, :1]) * 0.6 + other_xy[:, :1]
    main_scores = np.full(T, 2.5)
    main_scores[6] = 2.9  # the best detection of the file is the main person's
    other_scores = np.full(T, 1.2)
    other_scores[[1, 2, 9]] = 2.7  # stronger than the main person in a few frames
    if tracks in ("track_id", "idx"):
        main_scores[:] = 1.0
        other_scores[:] = 3.0
    dets = []
    for t in range(T):
        if t in skip:
            continue
        pair = []
        if t not in main_gone:
            main = {"image_id": f"{t}.jpg", "category_id": 1,
                    "keypoints": triplets(main_xy[t], main_c[t]), "score": main_scores[t]}
            pair.append((main, 7))
        if tracks not in ("track_id", "idx") or t % 2 == 0:
            other = {"image_id": f"{t}.jpg", "category_id": 1,
                     "keypoints": triplets(other_xy[t], other_c[t]),
                     "score": other_scores[t]}
            pair.append((other, 3))
        if t % 2:
            pair.reverse()
        for det, track in pair:
            if tracks in ("track_id", "idx"):
                det[tracks] = track
            elif tracks == "idx0":
                det["idx"] = 0
            dets.append(det)
    return write_json(tmp_path / "alphapose-results.json", dets), main_xy, main_c


def openpose_person(coco_xy: np.ndarray, coco_c: np.ndarray, names: list[str]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One frame of a COCO person in an OpenPose layout. Neck and MidHip are placed off
    the shoulder and hip midpoints so that copying can be told from deriving."""
    pts = {n: (coco_xy[C[c]], coco_c[C[c]]) for n, c in OPENPOSE_FROM_COCO.items()}
    sh = (coco_xy[C["left_shoulder"]] + coco_xy[C["right_shoulder"]]) / 2
    hip = (coco_xy[C["left_hip"]] + coco_xy[C["right_hip"]]) / 2
    pts["Neck"] = (sh + [0, -12], 0.91)
    pts["MidHip"] = (hip + [0, -8], 0.87)
    for side, ankle in (("L", "left_ankle"), ("R", "right_ankle")):
        a = coco_xy[C[ankle]]
        pts[side + "BigToe"] = (a + [8, 30], 0.66)
        pts[side + "SmallToe"] = (a + [-8, 28], 0.6)
        pts[side + "Heel"] = (a + [0, 10], 0.7)
    xy = np.array([pts[n][0] for n in names])
    c = np.array([pts[n][1] for n in names])
    return xy, c


def openpose_folder(tmp_path: Path, names: list[str], T: int = 8, missing: int = 3
                    ) -> tuple[Path, np.ndarray, np.ndarray]:
    """An OpenPose output folder of a walking person plus a weaker farther one; frame
    `missing` has no file; the main person's left wrist is 0,0,0 in frame 2."""
    folder = tmp_path / "openpose"
    folder.mkdir()
    main_xy, main_c = walking(T, 300, 15, seed=3)
    other_xy, other_c = walking(T, 1400, 0, seed=4, hip_y=500)
    all_xy, all_c = [], []
    for t in range(T):
        xy, c = openpose_person(main_xy[t], main_c[t], names)
        if t == 2:
            w = names.index("LWrist")
            xy[w], c[w] = 0.0, 0.0
        oxy, oc = openpose_person(other_xy[t], other_c[t] * 0.5, names)
        all_xy.append(xy)
        all_c.append(c)
        if t == missing:
            continue
        people = [{"person_id": [-1], "pose_keypoints_2d": triplets(xy, c),
                   "face_keypoints_2d": [], "hand_left_keypoints_2d": []},
                  {"person_id": [-1], "pose_keypoints_2d": triplets(oxy, oc)}]
        if t % 2:
            people.reverse()
        write_json(folder / f"walk_{t:012d}_keypoints.json", {"version": 1.3,
                                                               "people": people})
    return folder, np.array(all_xy), np.array(all_c)


def savez_like_videopose3d(path: Path, positions_2d: object, metadata: object) -> Path:
    # VideoPose3D's prepare_data_2d_*.py: dicts become pickled 0-d object arrays.
    np.savez_compressed(path, positions_2d=positions_2d, metadata=metadata)
    return path


H36M_METADATA = {"layout_name": "h36m", "num_joints": 17,
                 "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
COCO_METADATA = {"layout_name": "coco", "num_joints": 17,
                 "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15],
                                        [2, 4, 6, 8, 10, 12, 14, 16]]}


def sample_keypoints(T: int = 6, M: int = 3, seed: int = 5) -> Keypoints2D:
    """A Keypoints2D keeping its contract, with mixtures, an invalid frame and extras."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.1, 1.0, size=(T, NUM_JOINTS))
    scores[:, J["l_hand_end"]] = 0.0
    scores[2] = 0.0
    keypoints = rng.uniform(0, 1000, size=(T, NUM_JOINTS, 2))
    keypoints[scores == 0] = np.nan
    valid = np.ones(T, dtype=bool)
    valid[2] = False
    weights = rng.dirichlet(np.ones(M), size=(T, NUM_JOINTS))
    means = keypoints[:, :, None, :] + rng.normal(0, 3, size=(T, NUM_JOINTS, M, 2))
    a = rng.normal(0, 2, size=(T, NUM_JOINTS, M, 2, 2))
    covs = a @ np.swapaxes(a, -1, -2) + np.eye(2)
    return Keypoints2D(keypoints=keypoints, scores=scores, valid=valid, fps=29.97,
                       image_size=(W, H), source="test", gmm_weights=weights,
                       gmm_means=means, gmm_covs=covs,
                       extra={"frame_numbers": np.arange(10, 10 + T)}).check()


def expected_head_top(coco_xy: np.ndarray) -> np.ndarray:
    """The documented rule: c = ear midpoint, head_top = c + k (c - shoulder midpoint)."""
    c = (coco_xy[..., C["left_ear"], :] + coco_xy[..., C["right_ear"], :]) / 2
    thorax = (coco_xy[..., C["left_shoulder"], :] + coco_xy[..., C["right_shoulder"], :]) / 2
    return c + HEAD_TOP_K * (c - thorax)
