"""Human3.6M for the benchmark: the four calibrated cameras, the protocol split, the
placement of the exp-map takes in the cameras' world, and the 17-joint map.

Research only (Human3.6M licence, DESIGN §11): nothing here feeds the bundled model;
weights trained with it are written where the user says, never under bundled_models/.

Frames of reference:

- H36M world: the capture volume's frame, **metres** here (millimetres in the JSON), Z up;
- camera: metres, x right, y down, z forward (OpenCV); the JSON's orientation is the
  camera-to-world rotation as a unit quaternion (w, x, y, z) and its translation is the
  camera centre in the world, so ``X_cam = Rᵀ (X_world - C)``;
- image: pixels, x right, y down, origin top-left, with the calibrated principal point
  and lens distortion (`cameras.CalibratedCameras`).

**Placement.** The exp-map takes do not live in the cameras' world: their root track is
integrated from per-frame deltas, so its frame is the first frame's pelvis frame
(`expmap`); `corpus` levels it to the floor (world z = 0 is the plane of the lowest foot
joints, `world`). Here each take is put into the capture volume: its horizontal origin
is moved so that the middle of its pelvis track's extent sits on the point of the floor
that the four cameras aim at (least squares over the optical axes, `aim_point`); its
heading is turned so that the track's long horizontal direction lies along the volume's
long side (the direction in which the cameras stand furthest apart), so walking takes
stay in view; and it is lifted by `FLOOR_BELOW_JOINTS_M`, the distance from the floor to
the plane of the lowest foot joints. The true placement of each take is unknown, so
which camera sees a subject from which side differs from the real recordings; the
cameras themselves are the real ones. `inside_fraction` checks that the projected
subjects land inside the images (the test asserts it).

**Joints.** Our first 17 joints are Human3.6M's 17, in its order (core.skeleton), and the
`h36m` joint map (`joint_maps`) takes each from the exp-map skeleton joint that the
JSON's ``h36m17_subset`` names (`H36M17`), so the benchmark compares those 17.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ...core.errors import DiffPoseError, PathLike
from ...core.skeleton import H36M_JOINT_COUNT, SKELETON
from .cameras import CalibratedCameras
from .corpus import Clip, load_corpus, mocap_root
from .textfile import read_text

SOURCE = "h36m_expmap"
CAMERAS_FILE = "h36m_cameras.json"
#: The standard protocol (#1 and #2 of the lifting literature): train on five subjects,
#: test on two, every camera.
TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")

#: Our joint -> (Human3.6M 17-joint name, exp-map skeleton joint it is taken from; the
#: index in brackets is the joint's index in the 32-joint exp-map skeleton, as listed by
#: ``h36m17_subset`` in h36m_kinematic_tree.json). Same order as both 17-joint lists.
H36M17: tuple[tuple[str, str, str], ...] = (
    ("pelvis", "Hip", "Hips [0]"),
    ("r_hip", "RHip", "RightUpLeg [1]"),
    ("r_knee", "RKnee", "RightLeg [2]"),
    ("r_ankle", "RFoot", "RightFoot [3]"),
    ("l_hip", "LHip", "LeftUpLeg [6]"),
    ("l_knee", "LKnee", "LeftLeg [7]"),
    ("l_ankle", "LFoot", "LeftFoot [8]"),
    ("spine", "Spine", "Spine1 [12]"),
    ("thorax", "Thorax", "Neck [13]"),
    ("neck_nose", "Neck/Nose", "Head [14]"),
    ("head_top", "Head", "Head_Site [15]"),
    ("l_shoulder", "LShoulder", "LeftArm [17]"),
    ("l_elbow", "LElbow", "LeftForeArm [18]"),
    ("l_wrist", "LWrist", "LeftHand [19]"),
    ("r_shoulder", "RShoulder", "RightArm [25]"),
    ("r_elbow", "RElbow", "RightForeArm [26]"),
    ("r_wrist", "RWrist", "RightHand [27]"),
)
#: Indices of the 17 in our joint set: the first 17, by construction.
H36M17_INDICES = SKELETON.indices([ours for ours, _, _ in H36M17])
assert list(H36M17_INDICES) == list(range(H36M_JOINT_COUNT))

#: Height of the plane of the lowest foot joints (our world's z = 0) above the floor the
#: cameras were calibrated on (Human3.6M's z = 0): ankle and toe joint centres sit a few
#: centimetres above the ground; the same 3 cm that `evaluate.stature_chain_ratio` uses.
FLOOR_BELOW_JOINTS_M = 0.03


@dataclass(frozen=True)
class H36MCamera:
    """One calibrated camera of one subject's session.

    rotation      (3, 3) world -> camera (the transpose of the JSON's camera-to-world)
    centre        (3,) camera centre, world metres
    focal_xy      (2,) fx, fy pixels;  principal_px (2,) cx, cy pixels
    distortion    (5,) k1, k2, p1, p2, k3 (OpenCV order)
    image_size    (2,) width, height pixels
    """

    id: str
    rotation: np.ndarray
    centre: np.ndarray
    focal_xy: np.ndarray
    principal_px: np.ndarray
    distortion: np.ndarray
    image_size: np.ndarray


def quaternion_matrix(wxyz: Sequence[float]) -> np.ndarray:
    """Rotation matrix (3, 3) of a unit quaternion (w, x, y, z), column-vector form."""
    w, x, y, z = np.asarray(wxyz, dtype=np.float64) / np.linalg.norm(wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def cameras_path(shared_root: PathLike) -> Path:
    """``h36m_cameras.json`` in the mocap folder of a shared data root."""
    return mocap_root(shared_root) / CAMERAS_FILE


def read_cameras(path: PathLike) -> dict[str, tuple[H36MCamera, ...]]:
    """Every subject's four cameras from ``h36m_cameras.json`` (see the file's "about").

    Returns {subject: (camera 0, 1, 2, 3)}; anything malformed raises `DiffPoseError`
    naming the subject and camera.
    """
    try:
        data = json.loads(read_text(path))
        intrinsics = data["intrinsics"]
        extrinsics = data["extrinsics"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DiffPoseError.at(path, expected=(
            f"a JSON object with 'intrinsics' and 'extrinsics' ({exc})")) from None
    out: dict[str, tuple[H36MCamera, ...]] = {}
    for subject, views in extrinsics.items():
        if not isinstance(views, list) or len(views) != len(intrinsics):
            raise DiffPoseError.at(path, f"subject '{subject}'", expected=(
                f"one extrinsic entry per camera ({len(intrinsics)})"))
        cams = []
        for k, (intr, extr) in enumerate(zip(intrinsics, views)):
            try:
                radial = [float(v) for v in intr["radial"]]
                tangential = [float(v) for v in intr["tangential"]]
                cam = H36MCamera(
                    id=str(intr["id"]),
                    rotation=quaternion_matrix(extr["orientation_wxyz"]).T,
                    centre=np.asarray(extr["translation_mm"], dtype=np.float64) / 1000.0,
                    focal_xy=np.asarray(intr["focal_px"], dtype=np.float64),
                    principal_px=np.asarray(intr["center_px"], dtype=np.float64),
                    distortion=np.array([radial[0], radial[1], tangential[0],
                                         tangential[1], radial[2]]),
                    image_size=np.array([float(intr["width"]), float(intr["height"])]))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise DiffPoseError.at(path, f"subject '{subject}'", f"camera {k}", expected=(
                    f"id, focal_px, center_px, radial (3), tangential (2), width, height "
                    f"and orientation_wxyz, translation_mm ({exc})")) from None
            shapes = (cam.centre.shape, cam.focal_xy.shape, cam.principal_px.shape)
            if shapes != ((3,), (2,), (2,)) or not all(
                    np.isfinite(a).all() for a in (cam.rotation, cam.centre, cam.focal_xy,
                                                   cam.principal_px, cam.distortion)):
                raise DiffPoseError.at(path, f"subject '{subject}'", f"camera {k}",
                                       expected="finite numbers of the documented sizes")
            cams.append(cam)
        out[str(subject)] = tuple(cams)
    return out


def stack(cameras: Sequence[H36MCamera]) -> CalibratedCameras:
    """A batch (B = len(cameras)) of cameras for `synthesis.film`."""
    focal = np.stack([c.focal_xy for c in cameras])
    return CalibratedCameras(
        rotation=np.stack([c.rotation for c in cameras]),
        centre=np.stack([c.centre for c in cameras]),
        focal_px=focal.mean(axis=1), image_size=np.stack([c.image_size for c in cameras]),
        focal_xy=focal, principal_px=np.stack([c.principal_px for c in cameras]),
        distortion=np.stack([c.distortion for c in cameras]))


def aim_point(cameras: Sequence[H36MCamera]) -> np.ndarray:
    """The world point (3,) nearest, in least squares, to every camera's optical axis."""
    a = np.zeros((3, 3))
    b = np.zeros(3)
    for cam in cameras:
        d = cam.rotation[2]                       # the camera's z axis in the world
        proj = np.eye(3) - np.outer(d, d)         # distance to the axis = |proj (p - C)|
        a += proj
        b += proj @ cam.centre
    return np.linalg.solve(a, b)


def long_axis(cameras: Sequence[H36MCamera]) -> np.ndarray:
    """Unit horizontal direction (2,) in which the cameras stand furthest apart."""
    xy = np.stack([c.centre[:2] for c in cameras])
    xy = xy - xy.mean(axis=0)
    _, _, vt = np.linalg.svd(xy, full_matrices=False)
    return vt[0] / np.linalg.norm(vt[0])


def place(positions: np.ndarray, cameras: Sequence[H36MCamera]) -> np.ndarray:
    """Put a levelled take (T, J, 3) world metres (floor of foot joints at z = 0) into
    the capture volume of `cameras` (see the module docstring). Returns (T, J, 3) H36M
    world metres."""
    pelvis = positions[:, 0, :2].astype(np.float64)
    centred = pelvis - pelvis.mean(axis=0)
    if len(pelvis) > 1 and np.abs(centred).max() > 1e-6:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        track = vt[0]
    else:
        track = np.array([1.0, 0.0])
    target = long_axis(cameras)
    angle = np.arctan2(target[1], target[0]) - np.arctan2(track[1], track[0])
    c, s = np.cos(angle), np.sin(angle)
    turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    out = positions.astype(np.float64) @ turn.T
    lo, hi = out[:, 0, :2].min(axis=0), out[:, 0, :2].max(axis=0)
    aim = aim_point(cameras)
    out[..., :2] += aim[:2] - 0.5 * (lo + hi)
    out[..., 2] += FLOOR_BELOW_JOINTS_M
    return out


def inside_fraction(positions: np.ndarray, cameras: Sequence[H36MCamera],
                    joints: int = H36M_JOINT_COUNT) -> np.ndarray:
    """Fraction (C,) of the first `joints` joints over all frames of a placed take
    (T, J, 3) H36M world metres whose projection lies inside each camera's image."""
    cams = stack(cameras)
    world = np.broadcast_to(positions[None, :, :joints], (len(cameras),) +
                            positions[:, :joints].shape)
    cam = cams.to_camera(world)
    px = cams.project(cam)
    size = cams.image_size[:, None, None, :]
    inside = (px >= 0).all(-1) & (px < size).all(-1) & (cam[..., 2] > 0.1)
    return inside.reshape(len(cameras), -1).mean(axis=1)


@dataclass(frozen=True, eq=False)
class Take:
    """One Human3.6M take placed in the capture volume.

    positions  (T, 21, 3) H36M world metres, Z up, 30 fps (corpus's TRAIN_FPS)
    subject    "S1" .. "S11";  name  the action and take (e.g. "walking_1")
    cameras    the subject's four calibrated cameras
    """

    positions: np.ndarray
    subject: str
    name: str
    cameras: tuple[H36MCamera, ...]


@dataclass(frozen=True)
class Protocol:
    """The standard split: training takes (S1, S5, S6, S7, S8) and test takes (S9, S11)."""

    train: tuple[Take, ...]
    test: tuple[Take, ...]


def split(clips: Sequence[Clip], cameras: dict[str, tuple[H36MCamera, ...]],
          min_frames: int = 1) -> Protocol:
    """Place every Human3.6M clip (`corpus.Clip`, source h36m_expmap) with its subject's
    cameras and split by subject. Clips shorter than `min_frames` are left out; a
    subject with no cameras raises `DiffPoseError`."""
    train: list[Take] = []
    test: list[Take] = []
    for clip in clips:
        if clip.source != SOURCE or clip.num_frames < min_frames:
            continue
        if clip.subject not in cameras:
            raise DiffPoseError.at(CAMERAS_FILE, f"subject '{clip.subject}'",
                                   expected="extrinsics for every Human3.6M subject")
        name = Path(clip.path).name.split(".")[0]
        if "#" in clip.take:                      # a piece of a take cut by cleaning
            name += "#" + clip.take.split("#", 1)[1]
        take = Take(place(clip.positions, cameras[clip.subject]), clip.subject, name,
                    cameras[clip.subject])
        if clip.subject in TRAIN_SUBJECTS:
            train.append(take)
        elif clip.subject in TEST_SUBJECTS:
            test.append(take)
    return Protocol(tuple(train), tuple(test))


def load_protocol(cache_dir: PathLike, shared_root: PathLike,
                  min_frames: int = 1) -> Protocol:
    """The Human3.6M exp-map takes of the shared data (parsed once into `cache_dir` by
    `corpus.load_corpus`), placed and split by the standard protocol."""
    clips = load_corpus([SOURCE], cache_dir, shared_root=shared_root)
    return split(clips, read_cameras(cameras_path(shared_root)), min_frames)
