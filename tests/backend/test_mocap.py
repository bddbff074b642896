"""The mocap readers and corpus (backend/data), on the real files of shared/data/mocap.

One short clip per source kind is read once for the whole module; the checks are the ones
a person would make looking at the result: bones keep their length, the body has an
adult's size, left is on the left, the floor is level and under the feet, walks go
forward. The cache test parses the smallest source (3 files); the broken-file tests
damage copies of a real BVH.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from diffpose_blender.backend.data import corpus
from diffpose_blender.backend.data.bvh import read_bvh
from diffpose_blender.backend.data.asfamc import read_amc, read_asf
from diffpose_blender.backend.data.corpus import (DEFAULT_VAL_SUBJECTS,
                                                  LICENCE_CLEAN_SOURCES, SOURCES, TRAIN_FPS,
                                                  Clip, load_clip, load_corpus,
                                                  read_manifest, shared_data_root,
                                                  split_by_subject, split_by_subjects,
                                                  subject_key)
from diffpose_blender.backend.data.kinematics import (euler_matrix, expmap_matrix,
                                                      forward_kinematics, resample)
from diffpose_blender.backend.data.world import estimate_floor_normal, level_to_floor
from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.skeleton import JOINT_NAMES, SKELETON

try:
    SHARED = shared_data_root()
except DiffPoseError as exc:  # the corpus is not beside this checkout
    pytest.skip(f"shared mocap data not found: {exc}", allow_module_level=True)
MOCAP = SHARED / "mocap"

I = SKELETON.index
FEET = [I["l_ankle"], I["r_ankle"], I["l_toe"], I["r_toe"]]

#: One short clip per source kind; the walks are the clips the walking checks use.
SAMPLES = {
    "cmu_bvh_cgspeed": "cmu_bvh/cgspeed_mb/02/02_01.bvh.gz",         # walk, 86 frames
    "cmu_bvh_cgspeed_daz": "cmu_bvh/cgspeed_daz/12/12_01.bvh.gz",    # walk
    "cmu_bvh_aclstm": "cmu_bvh/aclstm_daz/martial/04.bvh.gz",        # karate
    "cmu_bvh_cgspeed_max": "cmu_bvh/cgspeed_max/131/131_02.bvh.gz",  # styled walk
    "cmu_expmap": "cmu_expmap/test/walking/walking_1.txt.gz",        # walk, 90 frames
    "hdm05": "hdm05/bd/HDM_bd_sneak2StepsLStart_001_30.amc.gz",      # two sneaking steps
    "h36m_expmap": "h36m_expmap/S1/walking_1.txt.gz",                # walk in circles
}
WALKS = ["cmu_bvh_cgspeed", "cmu_bvh_cgspeed_daz", "cmu_bvh_cgspeed_max", "cmu_expmap",
         "hdm05", "h36m_expmap"]


@pytest.fixture(scope="module")
def clips() -> dict[str, Clip]:
    return {source: load_clip(source, MOCAP / rel, rel_path=rel)
            for source, rel in SAMPLES.items()}


def _forward(p: np.ndarray) -> np.ndarray:
    """(T, 3) unit facing direction, horizontal: (left hip - right hip) x up."""
    f = np.cross(p[:, I["l_hip"]] - p[:, I["r_hip"]], [0.0, 0.0, 1.0])
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


# --- every source loads, with plausible bodies ---------------------------------------------

@pytest.mark.parametrize("source", sorted(SAMPLES))
def test_clip_loads(clips: dict[str, Clip], source: str) -> None:
    clip = clips[source]
    assert clip.positions.dtype == np.float32
    assert clip.positions.ndim == 3 and clip.positions.shape[1:] == (len(JOINT_NAMES), 3)
    assert clip.num_frames > 20
    assert np.isfinite(clip.positions).all()
    assert clip.fps == TRAIN_FPS and clip.source == source


def test_human36m_is_upsampled_by_rotation(clips: dict[str, Clip]) -> None:
    # 12.5 fps rows upsampled to 30 fps over the same time span.
    rows = sum(1 for _ in gzip.open(MOCAP / SAMPLES["h36m_expmap"], "rt"))
    expected = int(np.floor((rows - 1) / 12.5 * 30.0 + 1e-9)) + 1
    assert abs(clips["h36m_expmap"].num_frames - expected) <= 2


RIGID = [("l_hip", "r_hip"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"), ("l_ankle", "l_toe"),
         ("r_hip", "r_knee"), ("r_knee", "r_ankle"), ("r_ankle", "r_toe"),
         ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"), ("l_wrist", "l_hand_end"),
         ("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"), ("r_wrist", "r_hand_end")]


@pytest.mark.parametrize("source", sorted(SAMPLES))
def test_limb_bones_keep_their_length(clips: dict[str, Clip], source: str) -> None:
    p = clips[source].positions.astype(np.float64)
    for a, b in RIGID:
        length = np.linalg.norm(p[:, I[a]] - p[:, I[b]], axis=-1)
        assert length.std() < 1e-3, f"{a}-{b}: std {length.std() * 1000:.2f} mm"
        assert 0.03 < length.mean() < 0.6, f"{a}-{b}: {length.mean():.3f} m"


@pytest.mark.parametrize("source", sorted(SAMPLES))
def test_adult_proportions(clips: dict[str, Clip], source: str) -> None:
    p = clips[source].positions
    stature = p[:, I["head_top"], 2] - p[:, FEET, 2].min(axis=1)
    assert 1.5 <= stature.max() <= 2.0, f"head top at most {stature.max():.2f} m up"
    hip_width = np.linalg.norm(p[:, I["l_hip"]] - p[:, I["r_hip"]], axis=-1).mean()
    # CMU subject 131 (cgspeed_max) is a small performer: 13.7 cm between hip centres.
    assert 0.12 <= hip_width <= 0.4, f"hip width {hip_width:.3f} m"
    # The trunk chain is stacked upright when the subject stands.
    standing = stature > 0.95 * stature.max()
    z = p[standing][:, [I["pelvis"], I["spine"], I["thorax"], I["neck_nose"],
                        I["head_top"]], 2].mean(axis=0)
    assert (np.diff(z) > 0.03).all(), f"pelvis/spine/thorax/neck/head heights {z.round(2)}"


@pytest.mark.parametrize("source", sorted(SAMPLES))
def test_left_joints_are_on_the_left(clips: dict[str, Clip], source: str) -> None:
    # Facing from the hips (left - right) x up; a mirrored skeleton would face backwards
    # relative to where its toes point, and its shoulders would disagree with its hips.
    p = clips[source].positions.astype(np.float64)
    fwd = _forward(p)
    toes = (p[:, [I["l_toe"], I["r_toe"]]] - p[:, [I["l_ankle"], I["r_ankle"]]]).mean(axis=1)
    toes[:, 2] = 0.0
    toes /= np.linalg.norm(toes, axis=-1, keepdims=True)
    assert (np.einsum("tc,tc->t", fwd, toes) > 0.3).mean() > 0.9
    shoulders = np.cross(p[:, I["l_shoulder"]] - p[:, I["r_shoulder"]], [0.0, 0.0, 1.0])
    assert (np.einsum("tc,tc->t", fwd, shoulders) > 0).mean() > 0.9
    for side in "lr":  # each side's chain stays on its side of the body
        across = p[:, I[f"{side}_wrist"]] - p[:, I[f"{'r' if side == 'l' else 'l'}_wrist"]]
        hips = p[:, I[f"{side}_hip"]] - p[:, I[f"{'r' if side == 'l' else 'l'}_hip"]]
        assert (np.einsum("tc,tc->t", across, hips) > 0).mean() > 0.6


@pytest.mark.parametrize("source", sorted(SAMPLES))
def test_floor_is_under_the_feet(clips: dict[str, Clip], source: str) -> None:
    p = clips[source].positions
    lowest = p[:, FEET, 2].min(axis=1)
    assert abs(lowest.min()) < 0.04, f"lowest foot joint at {lowest.min():+.3f} m"
    assert np.median(lowest) < 0.10
    assert (p[..., 2] > -0.05).all()


@pytest.mark.parametrize("source", WALKS)
def test_walks_go_forward_on_level_ground(clips: dict[str, Clip], source: str) -> None:
    clip = clips[source]
    p = clip.positions.astype(np.float64)
    pelvis = p[:, I["pelvis"]]
    velocity = np.gradient(pelvis, axis=0) * clip.fps
    speed = np.linalg.norm(velocity[:, :2], axis=-1)
    assert np.linalg.norm(np.diff(pelvis[:, :2], axis=0), axis=-1).sum() > 1.0
    moving = speed > 0.2
    assert moving.mean() > 0.25  # 131_02 is start, slow styled walk, stop
    assert pelvis[:, 2].std() < 0.05  # no bobbing beyond a walk's
    fifth = max(1, len(pelvis) // 5)  # horizontal: no net climb from start to end
    assert abs(pelvis[:fifth, 2].mean() - pelvis[-fifth:, 2].mean()) < 0.05
    heading = velocity[moving, :2] / speed[moving, None]
    agree = np.einsum("tc,tc->t", heading, _forward(p)[moving, :2])
    assert np.median(agree) > 0.8, "the walk does not go the way the body faces"
    # Level floor: in stance a foot stays at one height wherever the walk goes. The
    # lowest foot joint, when it stands still, is on the floor...
    feet = p[:, FEET]
    lowest = feet[..., 2].argmin(axis=1)
    frames = np.arange(len(p))
    still = np.linalg.norm(np.gradient(feet, axis=0), axis=-1)[frames, lowest] * clip.fps < 0.15
    assert still.sum() > 20
    contact = feet[frames, lowest, 2][still]
    assert contact.std() < 0.02, f"floor contact height std {contact.std():.3f} m"
    # ...and a planted ankle keeps its height (heel-off included: within a few cm).
    for ankle in (I["l_ankle"], I["r_ankle"]):
        a = p[:, ankle]
        planted = np.linalg.norm(np.gradient(a, axis=0), axis=-1) * clip.fps < 0.1
        assert planted.sum() > 5
        assert a[planted, 2].std() < 0.025, f"planted ankle height std {a[planted, 2].std():.3f}"


# --- levelling, resampling, rotations ------------------------------------------------------------

def test_levelling_recovers_a_tilted_floor(clips: dict[str, Clip]) -> None:
    level = clips["h36m_expmap"].positions.astype(np.float64)
    axis = np.array([0.6, 0.8, 0.0])
    tilt = expmap_matrix(np.radians(15.0) * axis)
    tilted = level @ tilt.T + [0.3, -0.2, 0.5]
    normal = estimate_floor_normal(tilted, TRAIN_FPS)
    error = np.degrees(np.arccos(np.clip(normal @ (tilt @ [0.0, 0.0, 1.0]), -1, 1)))
    assert error < 1.0
    again = level_to_floor(tilted, TRAIN_FPS)
    assert abs(again[:, FEET, 2].min(axis=1).min()) < 0.04


def test_resample_keeps_bone_lengths_and_time() -> None:
    motion = read_bvh(MOCAP / SAMPLES["cmu_bvh_cgspeed"])
    slow = resample(motion, 12.5)
    fast = resample(slow, 30.0)
    assert fast.num_frames == int(np.floor((slow.num_frames - 1) / 12.5 * 30.0 + 1e-9)) + 1
    p = forward_kinematics(fast)
    bones = np.linalg.norm(p[:, 1:] - p[:, motion.parents[1:]], axis=-1)
    assert bones.std(axis=0).max() < 1e-9
    assert resample(motion, motion.fps) is motion


def test_euler_order_is_read_from_the_channels() -> None:
    a = np.radians([30.0, -20.0, 45.0])
    zyx = euler_matrix(a, "ZYX")
    zxy = euler_matrix(a, "ZXY")
    assert not np.allclose(zyx, zxy)
    c, s = np.cos(a), np.sin(a)
    rz = np.array([[c[0], -s[0], 0], [s[0], c[0], 0], [0, 0, 1]])
    ry = np.array([[c[1], 0, s[1]], [0, 1, 0], [-s[1], 0, c[1]]])
    rx = np.array([[1, 0, 0], [0, c[2], -s[2]], [0, s[2], c[2]]])
    assert np.allclose(zyx, rz @ ry @ rx)
    # The Daz files list 'Zrotation Xrotation Yrotation' on every non-root joint.
    motion = read_bvh(MOCAP / SAMPLES["cmu_bvh_cgspeed_daz"])
    assert motion.num_frames > 100 and "lThigh" in motion.names


def test_cgspeed_lost_bones_are_restored(clips: dict[str, Clip]) -> None:
    # Without the thorax repair CMU 02's neck base would sit 2.06 units (11.6 cm) closer
    # to the spine joint below it; with it the spine-thorax span matches HDM05's.
    p = clips["cmu_bvh_cgspeed"].positions
    span = np.linalg.norm(p[:, I["thorax"]] - p[:, I["spine"]], axis=-1).mean()
    assert 0.2 < span < 0.3
    forearm = np.linalg.norm(p[:, I["l_wrist"]] - p[:, I["l_elbow"]], axis=-1).mean()
    upper = np.linalg.norm(p[:, I["l_elbow"]] - p[:, I["l_shoulder"]], axis=-1).mean()
    assert 0.8 < forearm / upper < 1.1  # Human3.6M: 0.90


# --- the cache ----------------------------------------------------------------------------------

def test_cache_round_trip_and_no_reparse(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    source = "cmu_bvh_cgspeed_max"  # 3 files: the smallest source
    before = corpus.PARSE_COUNT["files"]
    first = load_corpus([source], tmp_path, shared_root=SHARED)
    assert corpus.PARSE_COUNT["files"] == before + 3
    files = list(tmp_path.glob(f"{source}-*.npz"))
    assert len(files) == 1
    second = load_corpus([source], tmp_path, shared_root=SHARED)
    assert corpus.PARSE_COUNT["files"] == before + 3, "second load parsed files again"
    assert len(first) == len(second) == 3
    for a, b in zip(first, second):
        assert np.array_equal(a.positions, b.positions)
        assert (a.fps, a.source, a.subject, a.take, a.path) == \
            (b.fps, b.source, b.subject, b.take, b.path)
    with np.load(files[0], allow_pickle=False) as z:  # plain arrays, no pickles
        assert z["positions"].dtype == np.float32
    # A new code version is a new key: parsed again, the stale file removed.
    monkeypatch.setattr(corpus, "CODE_VERSION", corpus.CODE_VERSION + 1000)
    load_corpus([source], tmp_path, shared_root=SHARED)
    assert corpus.PARSE_COUNT["files"] == before + 6
    assert len(list(tmp_path.glob(f"{source}-*.npz"))) == 1
    # A damaged cache file is rebuilt, not believed.
    cache = next(tmp_path.glob(f"{source}-*.npz"))
    cache.write_bytes(b"not a zip")
    again = load_corpus([source], tmp_path, shared_root=SHARED)
    assert corpus.PARSE_COUNT["files"] == before + 9 and len(again) == 3


def test_unknown_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DiffPoseError, match="nosuch"):
        load_corpus(["nosuch"], tmp_path, shared_root=SHARED)


# --- broken files ---------------------------------------------------------------------------------

@pytest.fixture()
def bvh_lines() -> list[str]:
    return gzip.open(MOCAP / SAMPLES["cmu_bvh_cgspeed"], "rt").read().splitlines()


def _write(path: Path, lines: list[str], compress: bool = False) -> Path:
    text = "\n".join(lines) + "\n"
    if compress:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_truncated_bvh_names_file_and_line(tmp_path: Path, bvh_lines: list[str]) -> None:
    path = _write(tmp_path / "cut.bvh.gz", bvh_lines[:-10], compress=True)
    with pytest.raises(DiffPoseError) as err:
        read_bvh(path)
    msg = str(err.value)
    assert "cut.bvh.gz" in msg and re.search(r"line \d+", msg) and "86 frame lines" in msg


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    raw = (MOCAP / SAMPLES["cmu_bvh_cgspeed"]).read_bytes()
    path = tmp_path / "half.bvh.gz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DiffPoseError, match="half.bvh.gz.*gzip"):
        read_bvh(path)


def test_wrong_value_count_names_the_line(tmp_path: Path, bvh_lines: list[str]) -> None:
    motion_at = bvh_lines.index("MOTION")
    bad = motion_at + 3 + 40  # frame 40
    lines = list(bvh_lines)
    lines[bad] = " ".join(lines[bad].split()[:-1])
    with pytest.raises(DiffPoseError) as err:
        read_bvh(_write(tmp_path / "short.bvh", lines))
    msg = str(err.value)
    assert "short.bvh" in msg and f"line {bad + 1}" in msg and "frame 40" in msg
    assert "96 values" in msg and "got 95" in msg


def test_non_number_and_broken_hierarchy(tmp_path: Path, bvh_lines: list[str]) -> None:
    motion_at = bvh_lines.index("MOTION")
    lines = list(bvh_lines)
    lines[motion_at + 5] = lines[motion_at + 5].replace("0", "x", 1)
    with pytest.raises(DiffPoseError, match=rf"line {motion_at + 6}.*finite numbers"):
        read_bvh(_write(tmp_path / "nan.bvh", lines))
    lines = list(bvh_lines)
    offset_line = next(n for n, line in enumerate(lines) if "OFFSET" in line and n > 5)
    lines[offset_line] = lines[offset_line].replace("OFFSET", "OFSET")
    with pytest.raises(DiffPoseError, match=rf"line {offset_line + 1}.*'OFFSET'"):
        read_bvh(_write(tmp_path / "typo.bvh", lines))
    lines = [line for line in bvh_lines if line.strip() != "MOTION"]
    with pytest.raises(DiffPoseError, match="MOTION"):
        read_bvh(_write(tmp_path / "nomotion.bvh", lines))


def test_amc_missing_bone_names_the_frame(tmp_path: Path) -> None:
    amc_path = MOCAP / SAMPLES["hdm05"]
    asf = read_asf(next(amc_path.parent.glob("*.asf.gz")))
    lines = gzip.open(amc_path, "rt", encoding="latin-1").read().splitlines()
    frame3 = lines.index("3")
    del lines[frame3 + 4]
    with pytest.raises(DiffPoseError, match=rf"frame starting at line {frame3 + 1}.*missing"):
        read_amc(_write(tmp_path / "gap.amc", lines), asf, 30.0)


# --- subjects and the split --------------------------------------------------------------------------

def _manifest_clips(sources: tuple[str, ...]) -> list[Clip]:
    """Stand-ins for the corpus's clips (frame counts from the manifest, no parsing)."""
    return [Clip(np.zeros((r.frames, len(JOINT_NAMES), 3), np.float32), r.fps, r.source,
                 r.subject, r.take, r.path)
            for r in read_manifest(MOCAP) if r.source in sources]


def test_subject_keys_join_cmu_conversions() -> None:
    def key(source: str, subject: str) -> str:
        return subject_key(Clip(np.zeros((1, 21, 3), np.float32), 30.0, source, subject,
                                "", ""))
    assert key("cmu_bvh_cgspeed", "02") == key("cmu_bvh_cgspeed_daz", "2") == "cmu:02"
    assert key("cmu_expmap", "unknown (prob. 09 or 16; not matched)") == "cmu:expmap"
    assert key("hdm05", "bd") == "hdm05:bd" and key("h36m_expmap", "S9") == "h36m:S9"


def test_split_by_subject_is_deterministic_and_disjoint() -> None:
    clips = _manifest_clips(LICENCE_CLEAN_SOURCES)
    train, val = split_by_subject(clips, 0.12, seed=7)
    again_train, again_val = split_by_subject(list(reversed(clips)), 0.12, seed=7)
    assert {c.path for c in val} == {c.path for c in again_val}
    assert not {subject_key(c) for c in train} & {subject_key(c) for c in val}
    assert len(train) + len(val) == len(clips)
    frames = sum(c.num_frames for c in val) / sum(c.num_frames for c in clips)
    assert frames >= 0.12 and len(train) > 0
    assert {c.path for c in split_by_subject(clips, 0.12, seed=8)[1]} != \
        {c.path for c in val}
    assert split_by_subject(clips, 0.0, seed=1)[1] == []


def test_default_validation_subjects() -> None:
    clips = _manifest_clips(LICENCE_CLEAN_SOURCES)
    keys = {subject_key(c) for c in clips}
    assert set(DEFAULT_VAL_SUBJECTS) <= keys
    train, val = split_by_subjects(clips, DEFAULT_VAL_SUBJECTS)
    share = sum(c.num_frames for c in val) / sum(c.num_frames for c in clips)
    assert 0.10 <= share <= 0.15
    kinds = " ".join(r.description for r in read_manifest(MOCAP)
                     if r.path in {c.path for c in val})
    assert "walk" in kinds and "jump" in kinds
    assert set(LICENCE_CLEAN_SOURCES) == set(SOURCES) - {"h36m_expmap"}


def test_shared_data_root_honours_the_environment(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("DIFFPOSE_SHARED", str(tmp_path))
    assert shared_data_root() == tmp_path / "data"
    monkeypatch.setenv("DIFFPOSE_SHARED", str(tmp_path / "missing"))
    with pytest.raises(DiffPoseError, match="DIFFPOSE_SHARED"):
        shared_data_root()
    monkeypatch.delenv("DIFFPOSE_SHARED")
    assert shared_data_root() == SHARED


def test_corpus_source_folder_can_be_copied(tmp_path: Path) -> None:
    # A mocap folder elsewhere (e.g. a copy on a training box) works the same.
    copy = tmp_path / "mocap"
    shutil.copytree(MOCAP / "cmu_bvh" / "cgspeed_max", copy / "cmu_bvh" / "cgspeed_max")
    rows = (MOCAP / "manifest.csv").read_text().splitlines()
    (copy / "manifest.csv").write_text("\n".join(
        [rows[0]] + [r for r in rows[1:] if ",cmu_bvh_cgspeed_max," in r]) + "\n")
    clips = load_corpus(["cmu_bvh_cgspeed_max"], tmp_path / "cache", shared_root=tmp_path)
    assert len(clips) == 3 and clips[0].path.startswith("cmu_bvh/cgspeed_max/")
