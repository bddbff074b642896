"""The mocap corpus: every source read into one kind of clip, cached, split by subject.

A `Clip` is one take as the project's 21 joints in the common world frame (`world`:
metres, Z up, floor at z = 0) at one frame rate, `TRAIN_FPS`. The pipeline per file::

    reader (bvh / asfamc / expmap)  ->  NativeMotion (native units and axes, native fps)
    -> resample to TRAIN_FPS (slerp of joint rotations, so bone lengths stay exact)
    -> joint map (skeleton repairs, virtual sites, FK, 21 joints)  [joint_maps]
    -> world axes and metres; cut reference and implausible frames  [cleaning]
    -> level (Human3.6M: floor plane from foot contacts) and put the floor at z = 0

Frame rate. Every source but Human3.6M is 30 fps already. Human3.6M's exp-map files are
12.5 fps; they are upsampled to 30 fps by interpolating joint *rotations* (quaternion
slerp) and the root position (linear), then FK, so that one model sees one time step.
The in-between frames are smooth interpolation, not measured motion.

Cache. `load_corpus` parses each source once and keeps one compressed ``.npz`` per source
(``allow_pickle=False``) named by a hash of the file list, the file sizes, `CODE_VERSION`
and `TRAIN_FPS`; anything that changes the output must bump `CODE_VERSION`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ...core.errors import DiffPoseError, PathLike
from ...core.fileio import atomic_write
from ...core.skeleton import JOINT_NAMES, NUM_JOINTS
from .asfamc import AsfSkeleton, read_amc, read_asf
from .bvh import read_bvh
from .cleaning import good_segments
from .expmap import h36m_root_path, read_cmu_expmap, read_h36m_expmap
from .joint_maps import JOINT_MAPS, JointMap, project_joints
from .kinematics import NativeMotion, resample
from .world import level_to_floor, put_on_floor, y_up_to_world

#: The one frame rate of every clip this module returns (frames per second).
TRAIN_FPS = 30.0
#: Bump whenever parsing, joint maps, the world frame or trimming change the output.
CODE_VERSION = 1

#: Environment variable: path to the shared folder (the one holding ``data/mocap``).
SHARED_ENV = "DIFFPOSE_SHARED"


@dataclass(frozen=True)
class SourceSpec:
    """How to read one corpus source (a value of manifest.csv's `source` column)."""

    reader: str  # "bvh", "asfamc", "cmu_expmap" or "h36m_expmap"
    joint_map: str  # key of `JOINT_MAPS`
    licence: str  # short licence note


SOURCES: dict[str, SourceSpec] = {
    "cmu_bvh_cgspeed": SourceSpec("bvh", "cmu_mb", "CMU (products allowed, credit)"),
    "cmu_bvh_aclstm": SourceSpec("bvh", "cmu_daz", "CMU (products allowed, credit)"),
    "cmu_bvh_cgspeed_daz": SourceSpec("bvh", "cmu_daz", "CMU (products allowed, credit)"),
    "cmu_bvh_cgspeed_max": SourceSpec("bvh", "cmu_max", "CMU (products allowed, credit)"),
    "cmu_expmap": SourceSpec("cmu_expmap", "cmu_expmap", "CMU (products allowed, credit)"),
    "hdm05": SourceSpec("asfamc", "hdm05", "CC BY-SA 3.0 (credit HDM05)"),
    "h36m_expmap": SourceSpec("h36m_expmap", "h36m", "research and non-commercial only"),
}
#: Sources whose licences allow a shipped model (DESIGN §11): all but Human3.6M.
LICENCE_CLEAN_SOURCES: tuple[str, ...] = tuple(s for s in SOURCES if s != "h36m_expmap")

#: Validation subjects for the licence-clean data (keys of `subject_key`): CMU 02 (walk,
#: run, jump, punch, bend, swordplay), CMU 08 (walks and strides), CMU 13 (jumps, reach,
#: tiptoe; Daz skeleton) and HDM05 actor dg (all 11 HDM05 motion classes: jog, hop, kick,
#: squat, throw, lie down, ...). About 11 % of the licence-clean frames; see
#: `split_by_subjects`. HDM05 actor mm is the separate hold-out test set (not in this
#: corpus).
DEFAULT_VAL_SUBJECTS: tuple[str, ...] = ("cmu:02", "cmu:08", "cmu:13", "hdm05:dg")

#: Files parsed by this process (a counter tests use to see that the cache was used).
PARSE_COUNT = {"files": 0}


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class Clip:
    """One take as the project's joints.

    positions  (T, 21, 3) float32, world frame (metres, Z up, right-handed, floor at
               z = 0, see `world`), joints in `core.skeleton.JOINT_NAMES` order
    fps        frames per second of `positions`
    source     corpus source name (manifest.csv `source`), e.g. "hdm05"
    subject    the manifest's subject (e.g. "02", "bd", "S1", or "unknown (...)")
    take       the manifest's take
    path       the file, relative to the mocap folder for corpus clips
    """

    positions: np.ndarray
    fps: float
    source: str
    subject: str
    take: str
    path: str

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])


# --- where the data are ------------------------------------------------------------------

def repo_root() -> Path:
    """The repository root: three folders above this package (backend/data)."""
    return Path(__file__).resolve().parents[3]


def shared_data_root() -> Path:
    """The shared data folder (holding ``mocap/``): ``$DIFFPOSE_SHARED/data`` if the
    variable is set (the path of the shared folder), else ``../shared/data`` beside the
    repository root. Raises `DiffPoseError` naming the places looked at."""
    env = os.environ.get(SHARED_ENV)
    if env:
        candidate = Path(env).expanduser() / "data"
        if candidate.is_dir():
            return candidate
        raise DiffPoseError.at(candidate, expected=(
            f"the shared data folder (from ${SHARED_ENV}={env}); it does not exist"))
    candidate = repo_root().parent / "shared" / "data"
    if candidate.is_dir():
        return candidate
    raise DiffPoseError.at(candidate, expected=(
        f"the shared data folder beside the repository; set ${SHARED_ENV} to the shared "
        f"folder if it lives elsewhere"))


def mocap_root(shared_root: PathLike) -> Path:
    """The mocap folder under a shared data root (or `shared_root` itself if it already
    is the mocap folder, i.e. holds manifest.csv)."""
    root = Path(shared_root)
    if (root / "manifest.csv").is_file():
        return root
    if (root / "mocap" / "manifest.csv").is_file():
        return root / "mocap"
    raise DiffPoseError.at(root, expected="a folder with mocap/manifest.csv")


@dataclass(frozen=True)
class ManifestRow:
    path: str  # relative to the mocap folder
    source: str
    subject: str
    take: str
    description: str
    fps: float
    frames: int


def read_manifest(mocap: PathLike) -> list[ManifestRow]:
    """Rows of ``manifest.csv`` in the mocap folder `mocap`."""
    path = Path(mocap) / "manifest.csv"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DiffPoseError.at(path, expected=f"a readable manifest ({exc})") from None
    rows = []
    for n, rec in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            rows.append(ManifestRow(rec["path"], rec["source"], rec["subject"], rec["take"],
                                    rec["description"], float(rec["fps"]),
                                    int(rec["frames"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise DiffPoseError.at(path, f"line {n}", expected=(
                f"path, source, subject, take, description, fps, frames ({exc})")) from None
    return rows


# --- one clip ----------------------------------------------------------------------------------

def _find_upwards(start: Path, name: str, levels: int = 4) -> Path:
    """`name` in `start`'s folder or up to `levels` folders above it."""
    folder = start.parent
    for _ in range(levels + 1):
        if (folder / name).is_file():
            return folder / name
        folder = folder.parent
    raise DiffPoseError.at(start, expected=f"'{name}' in its folder or one above it")


def _asf_for(amc: Path) -> Path:
    """The actor's ASF beside an HDM05 AMC ``HDM_<actor>_<class>_<n>_<fps>.amc.gz``."""
    parts = amc.name.split("_")
    if len(parts) >= 2:
        for ext in (".asf.gz", ".asf"):
            candidate = amc.with_name(f"{parts[0]}_{parts[1]}{ext}")
            if candidate.is_file():
                return candidate
    found = sorted(amc.parent.glob("*.asf.gz")) + sorted(amc.parent.glob("*.asf"))
    if len(found) == 1:
        return found[0]
    raise DiffPoseError.at(amc, expected="exactly one ASF skeleton file beside it")


def read_native(source: str, path: PathLike, native_fps: float | None = None,
                asf_cache: dict[Path, AsfSkeleton] | None = None) -> tuple[NativeMotion, float]:
    """Parse one file of `source` into its `NativeMotion` and metres per native unit.

    `native_fps` is needed where the file has no frame rate of its own (AMC, CMU exp-map;
    default 30, the corpus's rate); BVH and Human3.6M ignore it.
    """
    spec = _spec(source)
    jmap = JOINT_MAPS[spec.joint_map]
    p = Path(path)
    PARSE_COUNT["files"] += 1
    if spec.reader == "bvh":
        motion = read_bvh(p)
    elif spec.reader == "asfamc":
        asf_path = _asf_for(p)
        asf = asf_cache.get(asf_path) if asf_cache is not None else None
        if asf is None:
            asf = read_asf(asf_path)
            if asf_cache is not None:
                asf_cache[asf_path] = asf
        motion = read_amc(p, asf, native_fps or 30.0)
        return motion, asf.metres_per_unit
    elif spec.reader == "cmu_expmap":
        motion = read_cmu_expmap(p, _find_upwards(p, "cmu_expmap_kinematic_tree.json"),
                                 native_fps or 30.0)
    else:
        motion = read_h36m_expmap(p, _find_upwards(p, "h36m_kinematic_tree.json"))
    if jmap.metres_per_unit is None:  # only ASF sources leave the unit to the file
        raise DiffPoseError.at(p, expected=f"a length unit for joint map '{jmap.kind}'")
    return motion, jmap.metres_per_unit


def _spec(source: str) -> SourceSpec:
    try:
        return SOURCES[source]
    except KeyError:
        raise DiffPoseError.at("<mocap>", f"source '{source}'",
                               expected=f"one of {', '.join(SOURCES)}") from None


def load_file(source: str, path: PathLike, *, subject: str = "", take: str = "",
              rel_path: str | None = None, native_fps: float | None = None,
              fps: float | None = TRAIN_FPS,
              asf_cache: dict[Path, AsfSkeleton] | None = None) -> list[Clip]:
    """Read one file of `source` as clips (world metres, Z up, floor at 0) at `fps`
    (None keeps the file's own rate). Usually one clip; none or several where
    `cleaning.good_segments` cuts out implausible frames (several get takes
    ``<take>#0``, ``<take>#1``, ...). Malformed files raise `DiffPoseError`."""
    spec = _spec(source)
    jmap: JointMap = JOINT_MAPS[spec.joint_map]
    motion, metres = read_native(source, path, native_fps, asf_cache)
    if fps is not None:
        motion = resample(motion, fps)
    world = y_up_to_world(project_joints(motion, jmap), metres)  # (T, 21, 3) metres
    segments = good_segments(world, motion.fps)
    clips = []
    for k, seg in enumerate(segments):
        part = world[seg]
        # Levelling and the floor are per segment: a cut-out stretch must not decide them.
        part = level_to_floor(part, motion.fps) if spec.reader == "h36m_expmap" \
            else put_on_floor(part)
        clips.append(Clip(
            positions=part.astype(np.float32), fps=float(motion.fps), source=source,
            subject=subject, take=take if len(segments) == 1 else f"{take}#{k}",
            path=rel_path if rel_path is not None else str(path)))
    return clips


def load_clip(source: str, path: PathLike, *, subject: str = "", take: str = "",
              rel_path: str | None = None, native_fps: float | None = None,
              fps: float | None = TRAIN_FPS) -> Clip:
    """The one clip of a file (see `load_file`); a file that cleaning cut into several
    pieces or none raises `DiffPoseError`."""
    clips = load_file(source, path, subject=subject, take=take, rel_path=rel_path,
                      native_fps=native_fps, fps=fps)
    if len(clips) != 1:
        raise DiffPoseError.at(path, expected=(
            f"one clip of plausible frames, got {len(clips)} after cleaning"))
    return clips[0]


# --- the corpus and its cache ------------------------------------------------------------------

def _inputs(mocap: Path, rows: Sequence[ManifestRow], source: str) -> list[Path]:
    """Every file the clips of `source` are made from (clips, skeletons, root tracks)."""
    spec = _spec(source)
    files: set[Path] = set()
    for row in rows:
        p = mocap / row.path
        files.add(p)
        if spec.reader == "asfamc":
            files.add(_asf_for(p))
        elif spec.reader == "h36m_expmap":
            files.add(h36m_root_path(p))
            files.add(_find_upwards(p, "h36m_kinematic_tree.json"))
        elif spec.reader == "cmu_expmap":
            files.add(_find_upwards(p, "cmu_expmap_kinematic_tree.json"))
    return sorted(files)


def cache_key(mocap: Path, source: str, files: Iterable[Path]) -> str:
    """Hex digest naming one source's cache: file list, sizes, code version, frame rate."""
    h = hashlib.sha256(f"{source}|v{CODE_VERSION}|{TRAIN_FPS}".encode())
    for f in files:
        try:
            size = f.stat().st_size
        except OSError:
            raise DiffPoseError.at(f, expected="a file listed for the corpus") from None
        h.update(f"|{f.relative_to(mocap).as_posix()}:{size}".encode())
    return h.hexdigest()


def _save(path: Path, source: str, key: str, clips: Sequence[Clip]) -> None:
    starts = np.cumsum([0] + [c.num_frames for c in clips]).astype(np.int64)
    positions = (np.concatenate([c.positions for c in clips]) if clips
                 else np.zeros((0, NUM_JOINTS, 3), np.float32))
    with atomic_write(path) as fh:
        np.savez_compressed(
            fh, positions=positions.astype(np.float32), starts=starts,
            fps=np.array([c.fps for c in clips], dtype=np.float64),
            subject=np.array([c.subject for c in clips], dtype=str),
            take=np.array([c.take for c in clips], dtype=str),
            path=np.array([c.path for c in clips], dtype=str),
            joint_names=np.array(JOINT_NAMES, dtype=str),
            source=np.array(source), key=np.array(key),
            code_version=np.array(CODE_VERSION, dtype=np.int64))


def _load(path: Path, source: str, key: str) -> list[Clip] | None:
    """Clips from a cache file, or None when it is missing, stale or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if (str(z["key"]) != key or str(z["source"]) != source
                    or tuple(str(n) for n in z["joint_names"]) != JOINT_NAMES):
                return None
            positions, starts, fps = z["positions"], z["starts"], z["fps"]
            subject, take, rel = z["subject"], z["take"], z["path"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    n = len(fps)
    if (starts.shape != (n + 1,) or positions.shape != (int(starts[-1]), NUM_JOINTS, 3)
            or not (len(subject) == len(take) == len(rel) == n)):
        return None
    return [Clip(positions=positions[starts[i]:starts[i + 1]], fps=float(fps[i]),
                 source=source, subject=str(subject[i]), take=str(take[i]), path=str(rel[i]))
            for i in range(n)]


def load_source(source: str, *, shared_root: PathLike) -> list[Clip]:
    """Parse every manifest file of `source` (no cache), in manifest order."""
    mocap = mocap_root(shared_root)
    rows = [r for r in read_manifest(mocap) if r.source == source]
    asf_cache: dict[Path, AsfSkeleton] = {}
    clips: list[Clip] = []
    for r in rows:
        clips.extend(load_file(source, mocap / r.path, subject=r.subject, take=r.take,
                               rel_path=r.path, native_fps=r.fps, asf_cache=asf_cache))
    return clips


def load_corpus(sources: Sequence[str], cache_dir: PathLike, *,
                shared_root: PathLike) -> list[Clip]:
    """All clips of `sources` (manifest names), parsed once and cached in `cache_dir`.

    `shared_root` is the shared data folder (`shared_data_root()`; its ``mocap`` folder
    is used). One ``<source>-<key>.npz`` per source; a cache whose key no longer matches
    (files added, resized, `CODE_VERSION` bumped) is rebuilt and the stale file removed.
    """
    mocap = mocap_root(shared_root)
    manifest = read_manifest(mocap)
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    clips: list[Clip] = []
    for source in sources:
        _spec(source)
        rows = [r for r in manifest if r.source == source]
        if not rows:
            raise DiffPoseError.at(mocap / "manifest.csv", f"source '{source}'",
                                   expected="at least one file of this source")
        key = cache_key(mocap, source, _inputs(mocap, rows, source))
        path = folder / f"{source}-{key[:16]}.npz"
        cached = _load(path, source, key) if path.is_file() else None
        if cached is None:
            cached = load_source(source, shared_root=mocap)
            for stale in folder.glob(f"{source}-*.npz"):
                if stale != path and len(stale.stem) == len(source) + 17:
                    stale.unlink(missing_ok=True)
            _save(path, source, key, cached)
        clips.extend(cached)
    return clips


# --- the subject split ----------------------------------------------------------------------------

def subject_key(clip: Clip) -> str:
    """The person a clip shows, across sources: ``cmu:02`` for CMU subject 02 in any CMU
    conversion, ``hdm05:bd``, ``h36m:S1``. CMU exp-map clips (trial ids unpublished, some
    possibly CMU subjects in the BVH folders) are one group, ``cmu:expmap``, and each
    acLSTM group (salsa pair, martial, Indian dance) is one person key."""
    if clip.source.startswith("cmu_"):
        if clip.source == "cmu_expmap":
            return "cmu:expmap"
        subject = clip.subject.strip()
        return f"cmu:{int(subject):02d}" if subject.isdigit() else f"cmu:{subject}"
    if clip.source == "hdm05":
        return f"hdm05:{clip.subject}"
    if clip.source == "h36m_expmap":
        return f"h36m:{clip.subject}"
    return f"{clip.source}:{clip.subject}"


def split_by_subjects(clips: Sequence[Clip], val_subjects: Iterable[str]
                      ) -> tuple[list[Clip], list[Clip]]:
    """(train, val): clips whose `subject_key` is in `val_subjects` go to val."""
    chosen = set(val_subjects)
    train = [c for c in clips if subject_key(c) not in chosen]
    val = [c for c in clips if subject_key(c) in chosen]
    return train, val


def subject_positions(sources: Sequence[str], cache_dir: PathLike, split: str,
                      longer_than: int) -> list[np.ndarray]:
    """The (T, J, 3) float64 positions of the training ("train") or validation ("val")
    subjects' clips (`DEFAULT_VAL_SUBJECTS`) from `sources`, those longer than
    `longer_than` frames: what `evaluate` and the bench scripts draw windows from."""
    if split not in ("val", "train"):
        raise ValueError(f"split {split!r}; expected val or train")
    clips = load_corpus(list(sources), Path(cache_dir), shared_root=shared_data_root())
    train, val = split_by_subjects(clips, DEFAULT_VAL_SUBJECTS)
    return [c.positions.astype(np.float64) for c in (train if split == "train" else val)
            if len(c.positions) > longer_than]


def split_by_subject(clips: Sequence[Clip], val_fraction: float, seed: int
                     ) -> tuple[list[Clip], list[Clip]]:
    """(train, val) with no subject (`subject_key`) in both; deterministic for a seed.

    Subjects are shuffled by `seed` (from their sorted keys, so input order does not
    matter) and moved to val until it holds at least `val_fraction` of the frames; the
    last subject is never moved, so train is never empty.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DiffPoseError.at("<split>", expected=f"val_fraction in [0, 1), got {val_fraction}")
    frames: dict[str, int] = {}
    for c in clips:
        frames[subject_key(c)] = frames.get(subject_key(c), 0) + c.num_frames
    keys = sorted(frames)
    order = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
    total = sum(frames.values())
    val_keys: list[str] = []
    got = 0
    for key in order[:-1]:
        if got >= val_fraction * total:
            break
        val_keys.append(key)
        got += frames[key]
    return split_by_subjects(clips, val_keys)
