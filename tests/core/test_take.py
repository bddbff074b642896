"""The take file (DESIGN §5): round trip, atomic writes, and every way a take can be wrong.

The take used throughout is a realistic one: 30 frames of a person standing 3 m in front
of the camera (camera frame: x right, y down, z forward), arms swaying, 5 hypotheses
scattered a few centimetres around the truth, a 3-frame detection gap that was bridged
(frames 10-12) and a last frame with nobody in it (frame 29).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.skeleton import JOINT_NAMES, SKELETON
from diffpose_blender.core.take import (
    TAKE_FORMAT,
    TAKE_FORMAT_VERSION,
    TAKE_KEYS,
    Take,
    compute_spread,
    read_take,
    write_take,
)

T, N, J = 30, 5, len(JOINT_NAMES)
GAP = slice(10, 13)        # bridged frames
EMPTY_FRAME = 29           # no person
WIDTH, HEIGHT, FOCAL = 1920, 1080, 1100.0

# Offset of each joint from its parent, camera axes (x right, y down, z forward), metres,
# for a person facing the camera (so their left is the camera's right, +x).
_BONE = {
    "pelvis": (0.0, 0.0, 0.0),
    "r_hip": (-0.12, 0.0, 0.0), "r_knee": (0.0, 0.44, 0.02), "r_ankle": (0.0, 0.42, 0.0),
    "l_hip": (0.12, 0.0, 0.0), "l_knee": (0.0, 0.44, 0.02), "l_ankle": (0.0, 0.42, 0.0),
    "spine": (0.0, -0.24, 0.0), "thorax": (0.0, -0.24, 0.0),
    "neck_nose": (0.0, -0.16, -0.06), "head_top": (0.0, -0.16, 0.06),
    "l_shoulder": (0.18, 0.02, 0.0), "l_elbow": (0.02, 0.28, 0.0),
    "l_wrist": (0.0, 0.25, 0.0),
    "r_shoulder": (-0.18, 0.02, 0.0), "r_elbow": (-0.02, 0.28, 0.0),
    "r_wrist": (0.0, 0.25, 0.0),
    "l_toe": (0.0, 0.06, -0.14), "r_toe": (0.0, 0.06, -0.14),
    "l_hand_end": (0.0, 0.08, 0.0), "r_hand_end": (0.0, 0.08, 0.0),
}


def _standing_pose() -> np.ndarray:
    """(J, 3) camera metres, root-relative."""
    pose = np.zeros((J, 3))
    for j, parent in enumerate(SKELETON.parents):
        pose[j] = (pose[parent] if parent >= 0 else 0.0) + np.array(_BONE[JOINT_NAMES[j]])
    return pose


def make_take(**overrides: Any) -> Take:
    """The realistic take of the module docstring, through `Take.from_hypotheses`."""
    rng = np.random.default_rng(7)
    t = np.arange(T)
    truth = np.repeat(_standing_pose()[None], T, axis=0)               # (T, J, 3)
    sway = 0.05 * np.sin(2 * np.pi * t / 15)                           # metres
    for name in ("l_elbow", "l_wrist", "l_hand_end"):
        truth[:, SKELETON.index[name], 2] += sway
    for name in ("r_elbow", "r_wrist", "r_hand_end"):
        truth[:, SKELETON.index[name], 2] -= sway
    hyp = truth[:, None] + rng.normal(0.0, 0.02, size=(T, N, J, 3))
    hyp -= hyp[:, :, :1]                   # root-relative: pelvis at the origin
    root = np.stack([0.2 + 0.01 * t, np.full(T, 0.1), np.full(T, 3.0)], axis=1)

    valid = np.ones(T, bool)
    valid[EMPTY_FRAME] = False
    gaps = np.zeros(T, bool)
    gaps[GAP] = True

    world = truth + root[:, None]                                      # camera metres
    kp = FOCAL * world[..., :2] / world[..., 2:] + (WIDTH / 2, HEIGHT / 2)
    hyp[EMPTY_FRAME] = 0.0                 # invalid frames hold zeros by convention
    root[EMPTY_FRAME] = 0.0
    scores = rng.uniform(0.6, 1.0, size=(T, J))
    missing = ~valid | gaps                # the detector saw nobody there
    kp[missing] = np.nan
    scores[missing] = 0.0

    kwargs: dict[str, Any] = dict(
        hypotheses=hyp, root_cam=root, valid=valid, gap_filled=gaps,
        keypoints_2d=kp, scores_2d=scores, fps=30.0, image_size=(WIDTH, HEIGHT),
        focal_px=FOCAL, source_2d="coco_json:walk.json", model_name="diffpose-h36m-gmm",
        weights_hash="ab" * 32, params={"steps": 50, "seed": 1234, "smoothing": None,
                                        "tags": ["test", "walk"]})
    kwargs.update(overrides)
    return Take.from_hypotheses(**kwargs)


def replaced(take: Take, **changes: Any) -> Take:
    """A copy of `take` with its arrays copied and `changes` applied (no validation)."""
    copies = {f.name: np.array(getattr(take, f.name)) for f in dataclasses.fields(take)
              if isinstance(getattr(take, f.name), np.ndarray)}
    return dataclasses.replace(take, **{**copies, **changes})


def with_array(take: Take, key: str, edit: Callable[[np.ndarray], Any]) -> Take:
    """A copy of `take` whose array `key` was edited in place by `edit`."""
    out = replaced(take)
    edit(getattr(out, key))
    return out


def _set(index: Any, value: Any) -> Callable[[np.ndarray], None]:
    """An edit for `with_array`: a[index] = value."""
    def edit(a: np.ndarray) -> None:
        a[index] = value
    return edit


def assert_same(a: Take, b: Take) -> None:
    """Every field equal, arrays with the same dtype (NaN equal to NaN)."""
    for f in dataclasses.fields(Take):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray), f.name
            assert x.dtype == y.dtype, f.name
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert type(x) is type(y), f.name
            assert x == y, f.name


@contextlib.contextmanager
def refused(path: Path, message: str) -> Iterator[None]:
    """Expect a `DiffPoseError` whose message is ``PATH: MESSAGE...``."""
    with pytest.raises(DiffPoseError) as caught:
        yield
    assert str(caught.value).startswith(f"{path}: {message}"), str(caught.value)


def npz_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def take() -> Take:
    return make_take()


@pytest.fixture
def good_file(tmp_path: Path, take: Take) -> Path:
    path = tmp_path / "walk.take.npz"
    write_take(path, take)
    return path


# --- The good case ---------------------------------------------------------------------

def test_realistic_take_is_valid(take: Take) -> None:
    assert take.num_frames == T and take.num_hypotheses == N and take.num_joints == J
    assert take.validate() is take
    assert take.params["num_hypotheses"] == N      # added by from_hypotheses
    assert take.hypotheses.dtype == np.float32 and take.pose.dtype == np.float32
    assert take.spread.dtype == np.float32 and take.root_cam.dtype == np.float64


def test_round_trip_is_exact(good_file: Path, take: Take) -> None:
    back = read_take(good_file)
    assert_same(take, back)
    assert np.isnan(back.keypoints_2d[GAP]).all()  # NaN where the detector saw nothing
    assert back.joint_names == JOINT_NAMES
    assert back.params == {"num_hypotheses": N, "steps": 50, "seed": 1234,
                           "smoothing": None, "tags": ["test", "walk"]}


def test_file_is_plain_npz_without_pickles(good_file: Path) -> None:
    arrays = npz_arrays(good_file)                 # np.load refuses pickles here
    assert set(arrays) == set(TAKE_KEYS)
    assert str(arrays["format"]) == TAKE_FORMAT
    assert int(arrays["version"]) == TAKE_FORMAT_VERSION
    assert arrays["joint_names"].dtype.kind == "U"
    assert json.loads(str(arrays["params"]))["seed"] == 1234
    with zipfile.ZipFile(good_file) as archive:    # savez_compressed: members deflated
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}


def test_float64_input_is_stored_in_the_storage_dtypes(tmp_path: Path, take: Take) -> None:
    hyp = take.hypotheses.astype(np.float64)
    wide = replaced(take, hypotheses=hyp, pose=hyp.mean(axis=1), spread=compute_spread(hyp),
                    root_cam=take.root_cam.astype(np.float32))
    write_take(tmp_path / "t.npz", wide)
    back = read_take(tmp_path / "t.npz")
    assert back.hypotheses.dtype == np.float32 and back.root_cam.dtype == np.float64
    np.testing.assert_array_equal(back.hypotheses, take.hypotheses)


def test_extra_keys_are_ignored(tmp_path: Path, good_file: Path, take: Take) -> None:
    arrays = npz_arrays(good_file)
    np.savez(tmp_path / "extra.npz", **arrays, debug_noise=np.ones(3))
    assert_same(read_take(tmp_path / "extra.npz"), take)


def test_pose_within_tolerance_passes(take: Take) -> None:
    nudged = with_array(take, "pose", _set((12, 5, 0), take.pose[12, 5, 0] + 5e-5))
    nudged.validate()


# --- Pose and spread ---------------------------------------------------------------------

def test_compute_spread_is_rms_distance_to_the_mean() -> None:
    # One frame, one joint, four hypotheses around the origin at distances 1, 1, 2, 2.
    h = np.array([[1, 0, 0], [-1, 0, 0], [0, 2, 0], [0, -2, 0]], float)[None, :, None]
    np.testing.assert_allclose(compute_spread(h), [[np.sqrt(2.5)]])
    assert compute_spread(h[:, :1]).item() == 0.0  # one hypothesis: no spread


def test_from_hypotheses_computes_pose_and_spread(take: Take) -> None:
    d = 0.03
    base = take.hypotheses[:, :1]
    pair = np.concatenate([base, base], axis=1)
    pair[:, 0, 1:, 0] += d
    pair[:, 1, 1:, 0] -= d
    two = make_take(hypotheses=pair, params={})
    np.testing.assert_allclose(two.pose, base[:, 0], atol=1e-6)
    expected = np.where(np.arange(J) == 0, 0.0, d)           # root stays put
    np.testing.assert_allclose(two.spread, np.broadcast_to(expected, (T, J)), atol=1e-6)
    assert two.params == {"num_hypotheses": 2}


# --- Atomic writes -----------------------------------------------------------------------

def test_write_into_missing_folder_fails(tmp_path: Path, take: Take) -> None:
    target = tmp_path / "nope" / "walk.take.npz"
    with refused(target, f"output folder '{target.parent}' does not exist"):
        write_take(target, take)
    assert not target.parent.exists()


def test_failed_validate_writes_nothing(tmp_path: Path, good_file: Path,
                                       take: Take) -> None:
    before = good_file.read_bytes()
    bad = with_array(take, "pose", _set((3, 2, 1), np.nan))
    with refused(good_file, "key 'pose', frame 3, joint 'r_knee': expected finite numbers"):
        write_take(good_file, bad)
    assert good_file.read_bytes() == before
    with pytest.raises(DiffPoseError):
        write_take(tmp_path / "new.npz", bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == [good_file.name]  # no .part left


def test_overwrite_replaces_the_file(good_file: Path, take: Take) -> None:
    other = make_take(model_name="other-model")
    write_take(good_file, other)
    assert read_take(good_file).model_name == "other-model"


def test_overflow_to_float32_is_caught_before_writing(tmp_path: Path, take: Take) -> None:
    hyp = take.hypotheses.astype(np.float64)
    hyp[2, :, 5, 0] = 1e39                                   # finite in float64 only
    huge = replaced(take, hypotheses=hyp, pose=hyp.mean(axis=1), spread=compute_spread(hyp))
    huge.validate()
    with refused(tmp_path / "huge.npz", "key 'hypotheses', frame 2, hypothesis 0, "
                                        "joint 'l_knee': expected finite numbers, got inf"):
        write_take(tmp_path / "huge.npz", huge)
    assert not (tmp_path / "huge.npz").exists()


# --- Broken takes in memory: each names the file, the key and the frame -----------------

KN, LW, RW = SKELETON.index["l_knee"], SKELETON.index["l_wrist"], SKELETON.index["r_wrist"]

BROKEN: list[tuple[str, Callable[[Take], Take], str]] = [
    ("pose shape", lambda t: replaced(t, pose=t.pose[:, :20]),
     "key 'pose': expected shape (T, J, 3) = (30, 21, 3), got (30, 20, 3)"),
    ("hypotheses rank", lambda t: replaced(t, hypotheses=t.hypotheses[:, 0]),
     "key 'hypotheses': expected shape (T, N, J, 3) with J = 21"),
    ("T disagrees", lambda t: replaced(t, root_cam=t.root_cam[:29]),
     "key 'root_cam': expected shape (T, 3) = (30, 3), got (29, 3)"),
    ("T disagrees (valid)", lambda t: replaced(t, valid=np.append(t.valid, True)),
     "key 'valid': expected shape (T,) = (30,), got (31,)"),
    ("J disagrees with names", lambda t: replaced(t, joint_names=t.joint_names[:20]),
     "key 'hypotheses': expected shape (T, N, J, 3) with J = 20"),
    ("zero frames", lambda t: replaced(t, **{k: getattr(t, k)[:0] for k in (
        "hypotheses", "pose", "spread", "root_cam", "valid", "gap_filled", "keypoints_2d",
        "scores_2d")}), "key 'hypotheses': expected at least one frame, got 0"),
    ("zero hypotheses", lambda t: replaced(t, hypotheses=t.hypotheses[:, :0]),
     "key 'hypotheses': expected at least one hypothesis"),
    ("NaN hypothesis", lambda t: with_array(t, "hypotheses", _set((7, 3, KN, 1), np.nan)),
     "key 'hypotheses', frame 7, hypothesis 3, joint 'l_knee': expected finite numbers, "
     "got nan"),
    ("inf hypothesis", lambda t: with_array(t, "hypotheses", _set((21, 0, LW, 2), np.inf)),
     "key 'hypotheses', frame 21, hypothesis 0, joint 'l_wrist': expected finite numbers, "
     "got inf"),
    ("NaN pose in an invalid frame", lambda t: with_array(
        t, "pose", _set((EMPTY_FRAME, 0, 0), np.nan)),
     "key 'pose', frame 29, joint 'pelvis': expected finite numbers"),
    ("NaN root", lambda t: with_array(t, "root_cam", _set((4, 2), np.nan)),
     "key 'root_cam', frame 4: expected finite numbers"),
    ("pose not the mean", lambda t: with_array(t, "pose", _set((12, KN, 0), 0.5)),
     "key 'pose', frame 12, joint 'l_knee': expected the mean of the hypotheses"),
    ("negative spread", lambda t: with_array(t, "spread", _set((3, RW), -0.01)),
     "key 'spread', frame 3, joint 'r_wrist': expected a spread >= 0 m, got -0.01"),
    ("spread not RMS", lambda t: with_array(t, "spread", _set((5, 2), 0.3)),
     "key 'spread', frame 5, joint 'r_knee': expected the RMS distance"),
    ("score above 1", lambda t: with_array(t, "scores_2d", _set((6, LW), 1.5)),
     "key 'scores_2d', frame 6, joint 'l_wrist': expected a score in [0, 1], got 1.5"),
    ("NaN score", lambda t: with_array(t, "scores_2d", _set((6, LW), np.nan)),
     "key 'scores_2d', frame 6, joint 'l_wrist': expected a score in [0, 1]"),
    ("NaN keypoint with a score", lambda t: with_array(
        t, "keypoints_2d", _set((4, LW, 0), np.nan)),
     "key 'keypoints_2d', frame 4, joint 'l_wrist': expected finite pixels"),
    ("inf keypoint without a score", lambda t: with_array(
        t, "keypoints_2d", _set((11, LW, 1), np.inf)),
     "key 'keypoints_2d', frame 11, joint 'l_wrist': expected finite pixels"),
    ("gap-filled but invalid", lambda t: with_array(
        t, "gap_filled", _set(EMPTY_FRAME, True)),
     "key 'gap_filled', frame 29: expected gap-filled frames to be valid"),
    ("detected frame without 2D", lambda t: with_array(t, "scores_2d", _set(5, 0.0)),
     "key 'scores_2d', frame 5: the frame is valid and not gap-filled"),
    ("no valid frame", lambda t: replaced(t, valid=np.zeros(T, bool),
                                          gap_filled=np.zeros(T, bool)),
     "key 'valid': expected at least one valid frame"),
    ("root behind the camera", lambda t: with_array(t, "root_cam", _set((6, 2), -3.0)),
     "key 'root_cam', frame 6: expected z > 0 m"),
    ("hypothesis not root-relative", lambda t: with_array(
        t, "hypotheses", _set((8, 2, 0, 0), 0.1)),
     "key 'hypotheses', frame 8, hypothesis 2, joint 'pelvis': expected the root joint at "
     "the origin"),
    ("hypotheses as integers", lambda t: replaced(t, hypotheses=t.hypotheses.astype(int)),
     "key 'hypotheses': expected floating-point numbers, got dtype int"),
    ("valid as floats", lambda t: replaced(t, valid=t.valid.astype(float)),
     "key 'valid': expected booleans, got dtype float64"),
    ("duplicate joint name", lambda t: replaced(
        t, joint_names=t.joint_names[:-1] + ("pelvis",)),
     "key 'joint_names': expected unique names, 'pelvis' appears twice"),
    ("empty joint name", lambda t: replaced(t, joint_names=("",) + t.joint_names[1:]),
     "key 'joint_names', joint 0: expected a non-empty name"),
    ("zero fps", lambda t: replaced(t, fps=0.0), "key 'fps': expected a finite number > 0"),
    ("NaN fps", lambda t: replaced(t, fps=float("nan")), "key 'fps': expected a finite"),
    ("bool fps", lambda t: replaced(t, fps=True), "key 'fps': expected a finite"),
    ("negative focal", lambda t: replaced(t, focal_px=-1.0), "key 'focal_px': expected"),
    ("zero width", lambda t: replaced(t, image_size=(0, 1080)),
     "key 'image_size': expected"),
    ("float height", lambda t: replaced(t, image_size=(1920, 1080.0)),
     "key 'image_size': expected"),
    ("short hash", lambda t: replaced(t, weights_hash="abc"),
     "key 'weights_hash': expected 64 lowercase hex digits"),
    ("upper-case hash", lambda t: replaced(t, weights_hash="AB" * 32),
     "key 'weights_hash': expected 64 lowercase hex digits"),
    ("no model name", lambda t: replaced(t, model_name=""), "key 'model_name': expected"),
    ("numpy int in params", lambda t: replaced(t, params={"seed": np.int64(3)}),
     "key 'params': expected JSON values"),
    ("NaN in params", lambda t: replaced(t, params={"eta": float("nan")}),
     "key 'params': expected JSON values"),
    ("set in params", lambda t: replaced(t, params={"s": {1, 2}}),
     "key 'params': expected JSON values"),
    ("tuple in params", lambda t: replaced(t, params={"steps": (1, 2)}),
     "key 'params': expected values that survive a JSON round trip"),
    ("int key in params", lambda t: replaced(t, params={1: 2}),
     "key 'params': expected values that survive a JSON round trip"),
    ("params not a dict", lambda t: replaced(t, params=[1]),
     "key 'params': expected a dict, got list"),
    ("params disagree with N", lambda t: replaced(t, params={"num_hypotheses": 4}),
     "key 'params': params say num_hypotheses = 4 but 'hypotheses' holds 5"),
]


@pytest.mark.parametrize("breaking, message", [(b, m) for _, b, m in BROKEN],
                         ids=[name for name, _, _ in BROKEN])
def test_broken_take_is_refused(tmp_path: Path, take: Take,
                                breaking: Callable[[Take], Take], message: str) -> None:
    bad = breaking(take)
    target = tmp_path / "walk.take.npz"
    with pytest.raises(DiffPoseError) as caught:
        write_take(target, bad)
    assert str(caught.value).startswith(f"{target}: {message}")
    assert not target.exists()
    # In memory the source is "<take>".
    with pytest.raises(DiffPoseError) as caught:
        bad.validate()
    assert str(caught.value).startswith(f"<take>: {message}")


def test_from_hypotheses_refuses_wrong_rank(take: Take) -> None:
    with pytest.raises(DiffPoseError, match=r"<take>: key 'hypotheses': expected shape "
                                            r"\(T, N, J, 3\), got \(30, 21, 3\)"):
        make_take(hypotheses=take.pose)


# --- Broken files: each names the file and the key (and frame where there is one) -------

def _rewrite(source: Path, target: Path, **changes: Any) -> Path:
    """Copy the take at `source` to `target` by hand (np.savez), changing keys; a value
    of None drops the key."""
    arrays = npz_arrays(source)
    arrays.update(changes)
    np.savez(target, **{k: v for k, v in arrays.items() if v is not None})
    return target


def _shortened(a: np.ndarray) -> np.ndarray:
    return a[:29]


def _nan_at_frame_7(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a[7, 1, KN, 0] = np.nan
    return a


BROKEN_FILES: list[tuple[str, Callable[[dict[str, np.ndarray]], dict[str, Any]], str]] = [
    ("no format key", lambda a: {"format": None},
     "not a take file (no 'format' key; expected 'diffpose-take')"),
    ("another format", lambda a: {"format": np.array("diffpose-2d")},
     "not a take file (format is 'diffpose-2d', expected 'diffpose-take')"),
    ("newer version", lambda a: {"version": np.array(2)},
     "key 'version': take format version 2 is newer than this build reads (version 1)"),
    ("version zero", lambda a: {"version": np.array(0)},
     "key 'version': expected a format version from 1 to 1, got 0"),
    ("version as text", lambda a: {"version": np.array("1")},
     "key 'version': expected an integer, got '1'"),
    ("missing spread", lambda a: {"spread": None},
     "key 'spread': missing (a version-1 take has it)"),
    ("object array", lambda a: {"pose": np.array([{"x": 1}, None], dtype=object)},
     "key 'pose': expected a plain numeric or text array, got an object array"),
    ("object joint names", lambda a: {"joint_names": a["joint_names"].astype(object)},
     "key 'joint_names': expected a plain numeric or text array, got an object array"),
    ("T disagrees", lambda a: {"root_cam": _shortened(a["root_cam"])},
     "key 'root_cam': expected shape (T, 3) = (30, 3), got (29, 3)"),
    ("NaN hypothesis", lambda a: {"hypotheses": _nan_at_frame_7(a["hypotheses"])},
     "key 'hypotheses', frame 7, hypothesis 1, joint 'l_knee': expected finite numbers, "
     "got nan"),
    ("params not JSON", lambda a: {"params": np.array("{seed: 1")},
     "key 'params': expected JSON text, got '{seed: 1'"),
    ("params not an object", lambda a: {"params": np.array("[1, 2]")},
     "key 'params': expected a JSON object, got '[1, 2]'"),
    ("joint names as numbers", lambda a: {"joint_names": np.arange(J)},
     "key 'joint_names': expected a 1-D text array"),
    ("fps as text", lambda a: {"fps": np.array("30")},
     "key 'fps': expected a number, got '30'"),
    ("image size rank", lambda a: {"image_size": np.array([1920, 1080, 3])},
     "key 'image_size': expected 2 integers (width, height)"),
    ("valid as integers", lambda a: {"valid": a["valid"].astype(np.int8)},
     "key 'valid': expected booleans, got dtype int8"),
]


@pytest.mark.parametrize("change, message", [(c, m) for _, c, m in BROKEN_FILES],
                         ids=[name for name, _, _ in BROKEN_FILES])
def test_broken_file_is_refused(tmp_path: Path, good_file: Path,
                                change: Callable[[dict[str, np.ndarray]], dict[str, Any]],
                                message: str) -> None:
    bad = _rewrite(good_file, tmp_path / "bad.take.npz", **change(npz_arrays(good_file)))
    with pytest.raises(DiffPoseError) as caught:
        read_take(bad)
    assert str(caught.value).startswith(f"{bad}: {message}")


@pytest.mark.parametrize("keep", [0.5, 0.95, -22])
def test_truncated_file_is_refused(tmp_path: Path, good_file: Path, keep: float) -> None:
    data = good_file.read_bytes()
    cut = tmp_path / "cut.take.npz"
    cut.write_bytes(data[:int(len(data) * keep)] if keep > 0 else data[:int(keep)])
    with refused(cut, "expected a take file (an .npz zip archive); could not open it as "
                      "a zip"):
        read_take(cut)


def test_damaged_member_is_refused(tmp_path: Path, good_file: Path) -> None:
    data = bytearray(good_file.read_bytes())
    with zipfile.ZipFile(good_file) as archive:
        info = archive.getinfo("hypotheses.npy")
    # Local header: 30 bytes, then the name and extra field, then the deflated data.
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    middle = start + info.compress_size // 2
    data[middle:middle + 64] = bytes(64)
    bad = tmp_path / "damaged.take.npz"
    bad.write_bytes(bytes(data))
    with refused(bad, "key 'hypotheses': expected a readable .npy array, the member is "
                      "damaged"):
        read_take(bad)


def test_header_claiming_more_than_is_there_is_refused(tmp_path: Path,
                                                       good_file: Path) -> None:
    # A pose member whose header says 10^9 frames but which holds only a few bytes:
    # refused before anything that size is allocated.
    bad = tmp_path / "liar.take.npz"
    with zipfile.ZipFile(good_file) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            if info.filename != "pose.npy":
                dst.writestr(info.filename, src.read(info))
        with dst.open("pose.npy", "w") as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": "<f4", "fortran_order": False, "shape": (10**9, J, 3)})
            fh.write(bytes(48))
    with refused(bad, "key 'pose': header says shape (1000000000, 21, 3)"):
        read_take(bad)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"\x93NUMPY\x01\x00"])
def test_not_a_zip_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "walk.take.npz"
    path.write_bytes(content)
    with refused(path, "expected a take file"):
        read_take(path)


def test_single_npy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pose.npy"
    np.save(path, np.zeros((3, J, 3)))
    with refused(path, "expected a take file"):
        read_take(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.take.npz"
    with refused(path, "file not found"):
        read_take(path)
