"""The take file: the one thing that crosses from the backend to Blender (DESIGN §5).

A take is one lifted clip of one person: the 2D input it was lifted from, the N pose
hypotheses DiffPose sampled for every frame, their mean (the pose Blender keys), how far
the hypotheses spread, where the root sits in the camera, and how the model was run.

On disk a take is an ``.npz`` (a zip of ``.npy`` members, one per key), written with
``np.savez_compressed`` through `atomic_write` and read member by member with
``allow_pickle=False``: no pickles in either direction, and no key's size is believed
before it has been checked against the bytes that are really there.

Keys (T frames, N hypotheses, J joints; frames are 0-based indices into the take)::

    format        ()            str      "diffpose-take"
    version       ()            int64    TAKE_FORMAT_VERSION
    joint_names   (J,)          str      unique joint names (a unicode array, not objects)
    fps           ()            float64  frames per second, > 0
    image_size    (2,)          int64    (width, height) in pixels, > 0
    focal_px      ()            float64  focal length in pixels, > 0
    keypoints_2d  (T, J, 2)     float64  image pixels (x right, y down); NaN allowed where
                                         scores_2d == 0, never inf
    scores_2d     (T, J)        float64  confidence in [0, 1]
    source_2d     ()            str      where the 2D came from, "<format>:<path>"
    hypotheses    (T, N, J, 3)  float32  camera-frame metres (x right, y down, z forward),
                                         root-relative: joint 0 (the root, pelvis in the
                                         project's skeleton) at the origin in valid frames
    pose          (T, J, 3)     float32  mean of the hypotheses over N
    spread        (T, J)        float32  RMS distance of the hypotheses to their mean,
                                         metres (see `compute_spread`)
    root_cam      (T, 3)        float64  root joint in camera metres; z > 0 in valid frames
    valid         (T,)          bool     the frame has a pose (detected or bridged)
    gap_filled    (T,)          bool     that pose was bridged over a detection gap
    model_name    ()            str      non-empty
    weights_hash  ()            str      sha256 of the weights, 64 lowercase hex, or ""
    params        ()            str      JSON object: num_hypotheses, steps, seed, ...

Semantics `Take.validate` enforces (and why):

- ``pose`` *is* the mean of ``hypotheses`` (within `POSE_TOLERANCE_M`), in every frame.
  There is no "chosen hypothesis" mode: a tool that wants one hypothesis picks it from
  ``hypotheses`` itself, so a reader never has to guess what ``pose`` means.
- ``spread[t, j] = sqrt(mean_n |h[t, n, j] - m[t, j]|²)`` with ``m = h.mean(axis=1)``
  (population RMS, so N = 1 gives 0), within `SPREAD_TOLERANCE_M`; checked >= 0 first.
- ``valid`` marks frames that have a pose, ``gap_filled`` the subset whose pose was
  bridged over a detection gap. So ``gap_filled`` implies ``valid``; a frame that is
  valid and not gap-filled is an original detection and has some 2D score > 0; at least
  one frame is valid.
- The 3D arrays (``hypotheses``, ``pose``, ``spread``, ``root_cam``) are finite in
  *every* frame, so Blender never meets a NaN. Invalid frames hold zeros by convention
  (any finite value passes); the mean and spread agreement holds there too, while the
  physical checks (root at the origin, root in front of the camera) apply to valid
  frames only.
- Extra keys in a file are ignored (room for debug arrays); any change to the meaning
  of a key above bumps `TAKE_FORMAT_VERSION`.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import DiffPoseError, PathLike
from .fileio import atomic_write
from .skeleton import JOINT_NAMES

TAKE_FORMAT = "diffpose-take"
#: The take format version this build writes and the newest it reads.
TAKE_FORMAT_VERSION = 1

#: How far `pose` may be from the mean of `hypotheses` (metres, per joint). float32
#: storage alone is ~1e-7 m off at a few metres; anything near this bound is a real bug.
POSE_TOLERANCE_M = 1e-4
#: How far `spread` may be from `compute_spread(hypotheses)` (metres).
SPREAD_TOLERANCE_M = 1e-4
#: How far the root joint of a hypothesis may be from the origin in a valid frame (metres).
ROOT_TOLERANCE_M = 1e-4
#: Refuse files whose arrays would unpack to more than this (bytes): a zip can claim any
#: size, and a take of 100k frames x 20 hypotheses x 21 joints is ~0.5 GB.
MAX_TAKE_BYTES = 4 * 1024**3

_Array = NDArray[Any]  # any dtype; the key table says which

# The source named in messages about a take that is not (yet) a file.
_IN_MEMORY = "<take>"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# Per-frame arrays: key -> (symbolic shape, dtype kind in memory, dtype on disk).
# Floats are checked by kind in memory and cast to one storage dtype on disk: float32 for
# the model's root-relative output (its own precision), float64 for pixels and root_cam.
_FRAME_ARRAYS: dict[str, tuple[tuple[str | int, ...], str, type[np.generic]]] = {
    "keypoints_2d": (("T", "J", 2), "f", np.float64),
    "scores_2d": (("T", "J"), "f", np.float64),
    "hypotheses": (("T", "N", "J", 3), "f", np.float32),
    "pose": (("T", "J", 3), "f", np.float32),
    "spread": (("T", "J"), "f", np.float32),
    "root_cam": (("T", 3), "f", np.float64),
    "valid": (("T",), "b", np.bool_),
    "gap_filled": (("T",), "b", np.bool_),
}
#: Every key of a version-1 take file.
TAKE_KEYS: tuple[str, ...] = (
    "format", "version", "joint_names", "fps", "image_size", "focal_px", "source_2d",
    "model_name", "weights_hash", "params", *_FRAME_ARRAYS)
_KIND_WORDS = {"f": "floating-point numbers", "b": "booleans", "U": "text",
               "i": "integers"}


@dataclass(eq=False)  # arrays inside: == would be ambiguous, compare fields instead
class Take:
    """One lifted clip of one person; the key table in the module docstring is the
    contract for every field.

    joint_names   (J,) unique names; joint 0 is the root.
    fps           frames per second.
    image_size    (width, height) pixels.
    focal_px      focal length in pixels (pinhole camera, principal point at the centre
                  unless a later version says otherwise).
    keypoints_2d  (T, J, 2) image pixels, x right, y down; NaN where scores_2d == 0.
    scores_2d     (T, J) in [0, 1].
    source_2d     "<format>:<path>" of the 2D input.
    hypotheses    (T, N, J, 3) camera metres (x right, y down, z forward), root-relative.
    pose          (T, J, 3) camera metres, root-relative: hypotheses.mean(axis=1).
    spread        (T, J) metres: `compute_spread(hypotheses)`.
    root_cam      (T, 3) camera metres: where the root joint is; z > 0 in valid frames.
    valid         (T,) bool: the frame has a pose (detected or bridged).
    gap_filled    (T,) bool: that pose was bridged over a detection gap (implies valid).
    model_name    which model lifted it.
    weights_hash  sha256 hex of the weights file, or "" when unknown.
    params        JSON-able dict: num_hypotheses, steps, seed and anything else.

    Build one with `Take.from_hypotheses` (computes pose and spread), check it with
    `validate`, store it with `write_take`, load it with `read_take`.
    """

    joint_names: tuple[str, ...]
    fps: float
    image_size: tuple[int, int]
    focal_px: float
    keypoints_2d: NDArray[np.floating[Any]]
    scores_2d: NDArray[np.floating[Any]]
    source_2d: str
    hypotheses: NDArray[np.floating[Any]]
    pose: NDArray[np.floating[Any]]
    spread: NDArray[np.floating[Any]]
    root_cam: NDArray[np.floating[Any]]
    valid: NDArray[np.bool_]
    gap_filled: NDArray[np.bool_]
    model_name: str
    weights_hash: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        """T."""
        return int(np.shape(self.hypotheses)[0])

    @property
    def num_hypotheses(self) -> int:
        """N."""
        return int(np.shape(self.hypotheses)[1])

    @property
    def num_joints(self) -> int:
        """J."""
        return len(self.joint_names)

    @classmethod
    def from_hypotheses(
        cls,
        hypotheses: ArrayLike,
        root_cam: ArrayLike,
        valid: ArrayLike,
        *,
        keypoints_2d: ArrayLike,
        scores_2d: ArrayLike,
        fps: float,
        image_size: tuple[int, int],
        focal_px: float,
        source_2d: str,
        model_name: str,
        weights_hash: str = "",
        params: dict[str, Any] | None = None,
        gap_filled: ArrayLike | None = None,
        joint_names: Sequence[str] = JOINT_NAMES,
    ) -> "Take":
        """A validated take whose `pose` and `spread` are computed from `hypotheses`.

        hypotheses  (T, N, J, 3) camera metres, root-relative (stored as float32).
        root_cam    (T, 3) camera metres.
        valid       (T,) bool; `gap_filled` (T,) bool defaults to all False.
        `params` gains ``num_hypotheses = N`` unless it already says (and then must agree).
        Arrays are copied into the storage dtypes, so the result round-trips exactly.
        """
        hyp = np.array(hypotheses, dtype=np.float32)
        if hyp.ndim != 4 or hyp.shape[-1] != 3:
            raise DiffPoseError.at(_IN_MEMORY, "key 'hypotheses'",
                                   expected=f"expected shape (T, N, J, 3), got {hyp.shape}")
        valid_arr = np.array(valid, dtype=bool)
        gaps = (np.zeros_like(valid_arr) if gap_filled is None
                else np.array(gap_filled, dtype=bool))
        take = cls(
            joint_names=tuple(joint_names),
            fps=float(fps),
            image_size=(int(image_size[0]), int(image_size[1])),
            focal_px=float(focal_px),
            keypoints_2d=np.array(keypoints_2d, dtype=np.float64),
            scores_2d=np.array(scores_2d, dtype=np.float64),
            source_2d=source_2d,
            hypotheses=hyp,
            # Mean and spread in float64, then stored as float32 like the hypotheses.
            pose=hyp.mean(axis=1, dtype=np.float64).astype(np.float32),
            spread=compute_spread(hyp).astype(np.float32),
            root_cam=np.array(root_cam, dtype=np.float64),
            valid=valid_arr,
            gap_filled=gaps,
            model_name=model_name,
            weights_hash=weights_hash,
            params={"num_hypotheses": int(hyp.shape[1]), **(params or {})},
        )
        return take.validate()

    def validate(self, source: PathLike | None = None) -> "Take":
        """Return self, or raise `DiffPoseError` naming the key, frame and joint at fault.

        `source` names the take in messages: its file path, or ``"<take>"`` by default.
        Checks, in order: the scalar fields; every array's dtype kind and shape (T, N and
        J agreeing across keys, T >= 1, N >= 1); finiteness and ranges frame by frame;
        then the cross-field rules in the module docstring.
        """
        src: PathLike = _IN_MEMORY if source is None else source
        names = _check_joint_names(self.joint_names, src)
        _check_positive(self.fps, "fps", "frames per second", src)
        _check_positive(self.focal_px, "focal_px", "pixels", src)
        _check_image_size(self.image_size, src)
        for key in ("source_2d", "model_name", "weights_hash"):
            _check_text(getattr(self, key), key, src)
        if not self.model_name:
            raise DiffPoseError.at(src, "key 'model_name'", expected="expected a model "
                                                                     "name, got ''")
        if self.weights_hash and not _SHA256_HEX.fullmatch(self.weights_hash):
            raise DiffPoseError.at(src, "key 'weights_hash'",
                                   expected=f"expected 64 lowercase hex digits (sha256) or "
                                            f"'', got {self.weights_hash!r}")
        _params_to_json(self.params, src)

        arrays = {key: np.asarray(getattr(self, key)) for key in _FRAME_ARRAYS}
        dims = _check_shapes(arrays, len(names), src)
        _check_values(arrays, names, src)
        _check_semantics(arrays, names, self.params, dims["N"], src)
        return self


def compute_spread(hypotheses: ArrayLike) -> NDArray[np.float64]:
    """Per-joint spread of the hypotheses: RMS distance to their mean, in their units.

    hypotheses (..., N, J, 3) -> (..., J) float64:
    ``sqrt(mean_n |h[..., n, j, :] - mean_n h[..., n, j, :]|²)``. Population RMS (divided
    by N, not N - 1), so a single hypothesis has spread 0 and two hypotheses ±d apart
    along one axis have spread d.
    """
    h = np.asarray(hypotheses, dtype=np.float64)
    offsets = h - h.mean(axis=-3, keepdims=True)
    result: NDArray[np.float64] = np.sqrt((offsets ** 2).sum(axis=-1).mean(axis=-2))
    return result


def write_take(path: PathLike, take: Take) -> None:
    """Validate `take` and write it to `path` (an ``.npz``; the name is used as given).

    The file appears complete or not at all: a take that fails validation, or a failed
    write, leaves whatever was at `path` untouched. Raises `DiffPoseError` naming `path`.
    """
    src = os.fspath(path)
    arrays = take_to_arrays(take, src)
    for key, value in arrays.items():
        # Nothing above makes objects, but the promise is "no pickles", so keep it here.
        assert not value.dtype.hasobject, key
    try:
        with atomic_write(path) as fh:
            np.savez_compressed(fh, **arrays)
    except OSError as exc:
        raise DiffPoseError.at(src, expected=f"could not write the take: {exc}") from exc


def take_to_arrays(take: Take, src: str = _IN_MEMORY) -> dict[str, _Array]:
    """The take file's keys for `take`, validated (what `write_take` stores; the backend
    protocol sends these arrays). `src` names the destination in messages."""
    take.validate(src)
    arrays = _to_arrays(take)
    # Validate exactly what will be read back (after the cast to the storage dtypes, which
    # could overflow float32 to inf), so what is written or sent here always reads.
    _from_arrays(arrays, src).validate(src)
    return arrays


def take_from_arrays(arrays: dict[str, _Array], src: str) -> Take:
    """A validated `Take` from the take file's keys; `src` names their origin in messages."""
    fmt = arrays.get("format")
    if fmt is None or fmt.shape != () or fmt.dtype.kind != "U" or \
            str(fmt[()]) != TAKE_FORMAT:
        raise DiffPoseError.at(src, expected=f"not a take (expected format "
                                             f"'{TAKE_FORMAT}')")
    missing = [key for key in TAKE_KEYS if key not in arrays]
    if missing:
        raise DiffPoseError.at(src, expected=f"expected take key(s) {', '.join(missing)}")
    return _from_arrays({key: arrays[key] for key in TAKE_KEYS}, src).validate(src)


def read_take(path: PathLike) -> Take:
    """Read and validate the take at `path`; raise `DiffPoseError` naming `path`, the key
    and frame on anything wrong (not a zip, truncated, pickled arrays, missing keys, a
    newer format version, bad values)."""
    src = os.fspath(path)
    return _from_arrays(_read_members(path, src), src).validate(src)


# --- Reading the zip, trusting nothing ------------------------------------------------

def _read_members(path: PathLike, src: str) -> dict[str, _Array]:
    """The take's keys as arrays, after the format and version checks."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DiffPoseError.at(src, expected="file not found") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DiffPoseError.at(src, expected=f"expected a take file (an .npz zip archive); "
                                             f"could not open it as a zip, it may be "
                                             f"truncated or not a take ({exc})") from None
    with archive:
        members = {info.filename[:-len(".npy")]: info for info in archive.infolist()
                   if info.filename.endswith(".npy")}
        if "format" not in members:
            raise DiffPoseError.at(src, expected=f"not a take file (no 'format' key; "
                                                 f"expected '{TAKE_FORMAT}')")
        fmt = _read_member(archive, members["format"], "format", src)
        if fmt.shape != () or fmt.dtype.kind != "U" or str(fmt[()]) != TAKE_FORMAT:
            raise DiffPoseError.at(src, expected=f"not a take file (format is "
                                                 f"{_describe(fmt)}, expected "
                                                 f"'{TAKE_FORMAT}')")
        if "version" not in members:
            raise DiffPoseError.at(src, "key 'version'", expected="missing")
        version = _read_member(archive, members["version"], "version", src)
        if version.shape != () or version.dtype.kind not in "iu":
            raise DiffPoseError.at(src, "key 'version'",
                                   expected=f"expected an integer, got "
                                            f"{_describe(version)}")
        number = int(version[()])
        if number > TAKE_FORMAT_VERSION:
            raise DiffPoseError.at(src, "key 'version'",
                                   expected=f"take format version {number} is newer than "
                                            f"this build reads (version "
                                            f"{TAKE_FORMAT_VERSION}); update "
                                            f"diffpose-blender")
        if number < 1:
            raise DiffPoseError.at(src, "key 'version'",
                                   expected=f"expected a format version from 1 to "
                                            f"{TAKE_FORMAT_VERSION}, got {number}")
        for key in TAKE_KEYS:
            if key not in members:
                raise DiffPoseError.at(src, f"key '{key}'",
                                       expected=f"missing (a version-{number} take has "
                                                f"it)")
        total = sum(members[key].file_size for key in TAKE_KEYS)
        if total > MAX_TAKE_BYTES:
            raise DiffPoseError.at(src, expected=f"expected at most {MAX_TAKE_BYTES} bytes "
                                                 f"of arrays, the archive claims {total}")
        return {key: _read_member(archive, members[key], key, src) for key in TAKE_KEYS}


# numpy ships no type hints for np.lib.format; these say what we rely on.
_NpyHeader = tuple[tuple[int, ...], bool, np.dtype[Any]]
_npy_read_magic: Callable[[IO[bytes]], tuple[int, int]] = np.lib.format.read_magic
_npy_header_1_0: Callable[[IO[bytes]], _NpyHeader] = np.lib.format.read_array_header_1_0
_npy_header_2_0: Callable[[IO[bytes]], _NpyHeader] = np.lib.format.read_array_header_2_0
_npy_read_array: Callable[..., _Array] = np.lib.format.read_array


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str,
                 src: str) -> _Array:
    """One ``.npy`` member, its header checked before anything is allocated."""
    where = f"key '{key}'"
    try:
        with archive.open(info) as fh:
            npy_version = _npy_read_magic(fh)
            if npy_version == (1, 0):
                shape, _, dtype = _npy_header_1_0(fh)
            elif npy_version == (2, 0):
                shape, _, dtype = _npy_header_2_0(fh)
            else:
                raise DiffPoseError.at(src, where, expected=f"expected an .npy array of "
                                                            f"format 1.0 or 2.0, got "
                                                            f"{npy_version}")
            if dtype.hasobject:
                raise DiffPoseError.at(src, where, expected="expected a plain numeric or "
                                                            "text array, got an object "
                                                            "array (pickled data is "
                                                            "refused)")
            # The header may claim any shape; believe it only if the member holds
            # exactly that many bytes (this also bounds the allocation below).
            claimed = math.prod(shape) * dtype.itemsize
            present = info.file_size - fh.tell()
            if claimed != present:
                raise DiffPoseError.at(src, where, expected=f"header says shape {shape} "
                                                            f"of {dtype} ({claimed} bytes) "
                                                            f"but {present} bytes follow")
        with archive.open(info) as fh:
            return _npy_read_array(fh, allow_pickle=False)
    except DiffPoseError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        raise DiffPoseError.at(src, where, expected=f"expected a readable .npy array, the "
                                                    f"member is damaged ({exc})") from None


def _describe(array: _Array) -> str:
    """A short description of an array for messages: the value if 0-d, else the shape."""
    if array.shape == () and array.dtype.kind in "Uiufb":
        return repr(array[()].item())
    return f"an array of shape {array.shape} and dtype {array.dtype}"


# --- Between a Take and its arrays ----------------------------------------------------

def _to_arrays(take: Take) -> dict[str, _Array]:
    """The take's keys in their storage dtypes (see the module docstring)."""
    arrays: dict[str, _Array] = {
        "format": np.array(TAKE_FORMAT),
        "version": np.array(TAKE_FORMAT_VERSION, dtype=np.int64),
        # dtype=str: a fixed-width unicode array, which needs no pickle.
        "joint_names": np.array(take.joint_names, dtype=str),
        "fps": np.array(take.fps, dtype=np.float64),
        "image_size": np.array(take.image_size, dtype=np.int64),
        "focal_px": np.array(take.focal_px, dtype=np.float64),
        "source_2d": np.array(take.source_2d, dtype=str),
        "model_name": np.array(take.model_name, dtype=str),
        "weights_hash": np.array(take.weights_hash, dtype=str),
        "params": np.array(_params_to_json(take.params, _IN_MEMORY), dtype=str),
    }
    with np.errstate(over="ignore"):  # overflow to inf is caught by the validate after
        for key, (_, _, dtype) in _FRAME_ARRAYS.items():
            arrays[key] = np.asarray(getattr(take, key), dtype=dtype)
    return arrays


def _from_arrays(arrays: dict[str, _Array], src: str) -> Take:
    """A `Take` from its keys, checking each key's rank and dtype kind on the way."""
    def text(key: str) -> str:
        a = arrays[key]
        if a.shape != () or a.dtype.kind != "U":
            raise DiffPoseError.at(src, f"key '{key}'",
                                   expected=f"expected text, got {_describe(a)}")
        return str(a[()])

    def number(key: str) -> float:
        a = arrays[key]
        if a.shape != () or a.dtype.kind not in "fiu":
            raise DiffPoseError.at(src, f"key '{key}'",
                                   expected=f"expected a number, got {_describe(a)}")
        return float(a[()])

    names = arrays["joint_names"]
    if names.ndim != 1 or names.dtype.kind != "U":
        raise DiffPoseError.at(src, "key 'joint_names'",
                               expected=f"expected a 1-D text array, got "
                                        f"{_describe(names)}")
    size = arrays["image_size"]
    if size.shape != (2,) or size.dtype.kind not in "iu":
        raise DiffPoseError.at(src, "key 'image_size'",
                               expected=f"expected 2 integers (width, height), got "
                                        f"{_describe(size)}")
    params_text = text("params")
    try:
        params = json.loads(params_text)
    except ValueError as exc:
        raise DiffPoseError.at(src, "key 'params'",
                               expected=f"expected JSON text, got {params_text!r} "
                                        f"({exc})") from None
    if not isinstance(params, dict):
        raise DiffPoseError.at(src, "key 'params'",
                               expected=f"expected a JSON object, got {params_text!r}")

    frame_arrays: dict[str, _Array] = {}
    with np.errstate(over="ignore"):
        for key, (_, kind, dtype) in _FRAME_ARRAYS.items():
            a = arrays[key]
            if a.dtype.kind != kind:
                raise DiffPoseError.at(src, f"key '{key}'",
                                       expected=f"expected {_KIND_WORDS[kind]}, got dtype "
                                                f"{a.dtype}")
            frame_arrays[key] = a.astype(dtype, copy=False)

    return Take(
        joint_names=tuple(str(n) for n in names),
        fps=number("fps"),
        image_size=(int(size[0]), int(size[1])),
        focal_px=number("focal_px"),
        source_2d=text("source_2d"),
        model_name=text("model_name"),
        weights_hash=text("weights_hash"),
        params=params,
        **frame_arrays,
    )


def _params_to_json(params: Any, src: PathLike) -> str:
    """`params` as JSON text, if it survives a JSON round trip unchanged."""
    if not isinstance(params, dict):
        raise DiffPoseError.at(src, "key 'params'",
                               expected=f"expected a dict, got {type(params).__name__}")
    try:
        # allow_nan=False: NaN and inf are not JSON and other readers would choke.
        text = json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DiffPoseError.at(src, "key 'params'",
                               expected=f"expected JSON values (str, int, float, bool, "
                                        f"None, lists, dicts with str keys): "
                                        f"{exc}") from None
    if json.loads(text) != params:
        # Tuples come back as lists and int keys as strings: refuse rather than change.
        raise DiffPoseError.at(src, "key 'params'",
                               expected=f"expected values that survive a JSON round trip "
                                        f"(lists not tuples, str keys), got {params!r}")
    return text


# --- The checks behind Take.validate ---------------------------------------------------

def _check_joint_names(names: Any, src: PathLike) -> tuple[str, ...]:
    where = "key 'joint_names'"
    if isinstance(names, str) or not isinstance(names, (tuple, list)):
        raise DiffPoseError.at(src, where, expected=f"expected a tuple of names, got "
                                                    f"{type(names).__name__}")
    if not names:
        raise DiffPoseError.at(src, where, expected="expected at least one joint")
    for j, name in enumerate(names):
        # NUL: numpy's unicode arrays drop trailing NULs, so such a name would not
        # round-trip.
        if not isinstance(name, str) or not name or "\0" in name:
            raise DiffPoseError.at(src, where, f"joint {j}",
                                   expected=f"expected a non-empty name, got {name!r}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DiffPoseError.at(src, where, expected=f"expected unique names, "
                                                        f"'{name}' appears twice")
        seen.add(name)
    return tuple(names)


def _is_number(value: Any) -> bool:
    # bool is an int to Python, but True is no frame rate.
    return isinstance(value, (int, float, np.integer, np.floating)) and \
        not isinstance(value, (bool, np.bool_))


def _check_positive(value: Any, key: str, unit: str, src: PathLike) -> None:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise DiffPoseError.at(src, f"key '{key}'",
                               expected=f"expected a finite number > 0 ({unit}), got "
                                        f"{value!r}")


def _check_image_size(size: Any, src: PathLike) -> None:
    ok = (isinstance(size, (tuple, list)) and len(size) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                  and v > 0 for v in size))
    if not ok:
        raise DiffPoseError.at(src, "key 'image_size'",
                               expected=f"expected (width, height), two integers > 0 "
                                        f"(pixels), got {size!r}")


def _check_text(value: Any, key: str, src: PathLike) -> None:
    if not isinstance(value, str) or "\0" in value:
        raise DiffPoseError.at(src, f"key '{key}'",
                               expected=f"expected text without NUL characters, got "
                                        f"{value!r}")


def _check_shapes(arrays: dict[str, _Array], J: int,
                  src: PathLike) -> dict[str, int]:
    """Check kinds and shapes; return the dimensions {"T", "N", "J"}."""
    for key, (_, kind, _) in _FRAME_ARRAYS.items():
        if arrays[key].dtype.kind != kind:
            raise DiffPoseError.at(src, f"key '{key}'",
                                   expected=f"expected {_KIND_WORDS[kind]}, got dtype "
                                            f"{arrays[key].dtype}")
    hyp = arrays["hypotheses"]
    # T and N are read off the hypotheses; J off joint_names.
    if hyp.ndim != 4 or hyp.shape[2:] != (J, 3):
        raise DiffPoseError.at(src, "key 'hypotheses'",
                               expected=f"expected shape (T, N, J, 3) with J = {J} "
                                        f"(len(joint_names)), got {hyp.shape}")
    T, N = hyp.shape[:2]
    if T == 0:
        raise DiffPoseError.at(src, "key 'hypotheses'",
                               expected="expected at least one frame, got 0")
    if N == 0:
        raise DiffPoseError.at(src, "key 'hypotheses'",
                               expected="expected at least one hypothesis per frame, got 0")
    dims = {"T": T, "N": N, "J": J}
    for key, (symbolic, _, _) in _FRAME_ARRAYS.items():
        want = tuple(dims[d] if isinstance(d, str) else d for d in symbolic)
        if arrays[key].shape != want:
            sym = ", ".join(str(d) for d in symbolic) + ("," if len(symbolic) == 1 else "")
            raise DiffPoseError.at(src, f"key '{key}'",
                                   expected=f"expected shape ({sym}) = {want}, got "
                                            f"{arrays[key].shape}")
    return dims


def _num(value: Any) -> str:
    """A number for messages: float32 noise hidden (-0.01, not -0.009999999776)."""
    return f"{float(value):.6g}"


def _xyz(values: Any) -> str:
    return "(" + ", ".join(_num(v) for v in np.ravel(values)) + ")"


def _first(mask: NDArray[np.bool_]) -> tuple[int, ...] | None:
    """Index of the first True in `mask` (frame order), or None."""
    hits = np.argwhere(mask)
    return tuple(int(i) for i in hits[0]) if len(hits) else None


def _places(names: tuple[str, ...], index: tuple[int, ...], axes: str) -> list[str]:
    """Message places for an index whose axes are named by letters of `axes`
    (t: frame, n: hypothesis, j: joint; others are not named)."""
    out = []
    for axis, i in zip(axes, index):
        if axis == "t":
            out.append(f"frame {i}")
        elif axis == "n":
            out.append(f"hypothesis {i}")
        elif axis == "j":
            out.append(f"joint '{names[i]}'")
    return out


def _fail(src: PathLike, key: str, places: list[str], expected: str) -> DiffPoseError:
    return DiffPoseError.at(src, f"key '{key}'", *places, expected=expected)


def _check_values(arrays: dict[str, _Array], names: tuple[str, ...],
                  src: PathLike) -> None:
    """Finiteness and ranges, frame by frame."""
    axes = {"hypotheses": "tnjc", "pose": "tjc", "spread": "tj", "root_cam": "tc"}
    for key, ax in axes.items():
        hit = _first(~np.isfinite(arrays[key]))
        if hit is not None:
            raise _fail(src, key, _places(names, hit, ax),
                        f"expected finite numbers, got {_num(arrays[key][hit])}")
    spread = arrays["spread"]
    hit = _first(spread < 0)
    if hit is not None:
        raise _fail(src, "spread", _places(names, hit, "tj"),
                    f"expected a spread >= 0 m, got {_num(spread[hit])}")

    scores = arrays["scores_2d"]
    hit = _first(~(np.isfinite(scores) & (scores >= 0) & (scores <= 1)))
    if hit is not None:
        raise _fail(src, "scores_2d", _places(names, hit, "tj"),
                    f"expected a score in [0, 1], got {_num(scores[hit])}")
    kp = arrays["keypoints_2d"]
    # NaN marks an unknown joint (score 0); inf is never a pixel.
    hit = _first(np.isinf(kp) | (np.isnan(kp) & (scores > 0)[..., None]))
    if hit is not None:
        raise _fail(src, "keypoints_2d", _places(names, hit, "tjc"),
                    f"expected finite pixels (NaN only where scores_2d is 0), got "
                    f"{_num(kp[hit])}")


def _check_semantics(arrays: dict[str, _Array], names: tuple[str, ...],
                     params: dict[str, Any], N: int, src: PathLike) -> None:
    """The cross-field rules of the module docstring."""
    valid, gaps = arrays["valid"], arrays["gap_filled"]
    hit = _first(gaps & ~valid)
    if hit is not None:
        raise _fail(src, "gap_filled", _places(names, hit, "t"),
                    "expected gap-filled frames to be valid (a bridged frame has a pose), "
                    "but 'valid' is False")
    if not valid.any():
        raise _fail(src, "valid", [], "expected at least one valid frame, got none")
    detected = valid & ~gaps
    hit = _first(detected & ~(arrays["scores_2d"] > 0).any(axis=1))
    if hit is not None:
        raise _fail(src, "scores_2d", _places(names, hit, "t"),
                    "the frame is valid and not gap-filled (an original detection) but "
                    "every score is 0; expected a detection, or gap_filled True")

    root = arrays["root_cam"]
    hit = _first(valid & (root[:, 2] <= 0))
    if hit is not None:
        raise _fail(src, "root_cam", _places(names, hit, "t"),
                    f"expected z > 0 m (in front of the camera) in a valid frame, got "
                    f"z = {_num(root[hit[0], 2])}")

    hyp = arrays["hypotheses"].astype(np.float64)
    root_off = np.linalg.norm(hyp[:, :, 0, :], axis=-1)  # (T, N)
    hit = _first(valid[:, None] & (root_off > ROOT_TOLERANCE_M))
    if hit is not None:
        raise _fail(src, "hypotheses", _places(names, hit + (0,), "tnj"),
                    f"expected the root joint at the origin (root-relative, within "
                    f"{ROOT_TOLERANCE_M} m), got {_xyz(hyp[hit][0])}")

    mean = hyp.mean(axis=1)
    pose = arrays["pose"].astype(np.float64)
    miss = np.linalg.norm(pose - mean, axis=-1)  # (T, J)
    hit = _first(miss > POSE_TOLERANCE_M)
    if hit is not None:
        raise _fail(src, "pose", _places(names, hit, "tj"),
                    f"expected the mean of the hypotheses {_xyz(mean[hit])} (within "
                    f"{POSE_TOLERANCE_M} m), got {_xyz(pose[hit])}, "
                    f"{_num(miss[hit])} m away")

    want = compute_spread(hyp)
    spread = arrays["spread"].astype(np.float64)
    hit = _first(np.abs(spread - want) > SPREAD_TOLERANCE_M)
    if hit is not None:
        raise _fail(src, "spread", _places(names, hit, "tj"),
                    f"expected the RMS distance of the hypotheses to their mean, "
                    f"{_num(want[hit])} m (within {SPREAD_TOLERANCE_M} m), got "
                    f"{_num(spread[hit])}")

    stated = params.get("num_hypotheses")
    if stated is not None and stated != N:
        raise _fail(src, "params", [],
                    f"params say num_hypotheses = {stated!r} but 'hypotheses' holds {N}")
