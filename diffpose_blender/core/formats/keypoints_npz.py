"""The project's own 2D keypoint archive (``.npz``, read and written with allow_pickle=False).

Keys (T frames, J joints, M mixture components):

- ``keypoints (T, J, 2)`` image pixels (x right, y down), NaN where unknown;
- ``scores (T, J)`` in [0, 1], 0 where unknown;
- ``joint_names (J,)`` text: joints are matched by name and reordered to the project's
  set; project joints the file lacks are unknown, names the project lacks are ignored,
  and a file with no project joint at all is refused;
- optional ``fps ()`` frames per second and ``image_size (2,)`` width, height in pixels;
- optional ``valid (T,)`` bool (default: frames with any score > 0);
- optional detector heatmap mixtures, all three or none: ``gmm_weights (T, J, M)``,
  ``gmm_means (T, J, M, 2)`` pixels, ``gmm_covs (T, J, M, 2, 2)`` px² (project joints the
  file lacks get weight 0 and NaN means and covariances);
- optional ``extra.<name>``: `Keypoints2D.extra` arrays, kept as they are.

Invalid frames and joints with score 0 read back as NaN keypoints, so any `Keypoints2D`
that keeps to its own contract (NaN where the score is 0) round-trips exactly.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DiffPoseError, PathLike
from ..fileio import atomic_write
from ..keypoints import Keypoints2D
from ..skeleton import JOINT_NAMES, NUM_JOINTS, SKELETON
from .convert import checked_fps, checked_image_size

FORMAT_NAME = "keypoints_npz"
EXTRA_PREFIX = "extra."
_GMM_KEYS = ("gmm_weights", "gmm_means", "gmm_covs")


def _describe(a: np.ndarray) -> str:
    return f"shape {a.shape} dtype {a.dtype}"


def _numeric(arrays: dict[str, np.ndarray], key: str, shape: tuple[int | None, ...],
             path: Path, *, kinds: str = "iuf") -> np.ndarray:
    """arrays[key], checked to be of `kinds` and of `shape` (None: any length)."""
    a = arrays[key]
    text = "(" + ", ".join("n" if s is None else str(s) for s in shape) + \
           ("," if len(shape) == 1 else "") + ")"
    if a.dtype.kind not in kinds:
        kind = "booleans" if kinds == "b" else "numbers"
        raise DiffPoseError.at(path, f"key '{key}'", expected=f"expected {kind} of shape "
                                                              f"{text}, got {_describe(a)}")
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        raise DiffPoseError.at(path, f"key '{key}'", expected=f"expected shape {text}, "
                                                              f"got {_describe(a)}")
    return a


def _load(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DiffPoseError.at(path, expected="file not found" if not path.exists()
                               else "expected a file, found a folder")
    if not zipfile.is_zipfile(path):
        raise DiffPoseError.at(path, expected="expected a .npz (zip) archive; the file is "
                                              "not one")
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DiffPoseError.at(path, expected=f"expected a .npz archive: {exc}") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DiffPoseError.at(path, expected="expected a .npz archive, got a single .npy "
                                              "array")
    arrays: dict[str, np.ndarray] = {}
    with npz:
        for key in npz.files:
            try:
                arrays[key] = npz[key]
            except ValueError as exc:  # numpy refuses object arrays without allow_pickle
                raise DiffPoseError.at(path, f"key '{key}'",
                                       expected="expected a plain array; object (pickled) "
                                                "arrays are not allowed") from exc
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                raise DiffPoseError.at(path, f"key '{key}'",
                                       expected=f"expected an intact array: {exc}") from exc
    return arrays


def read_keypoints_npz(path: PathLike, *, fps: float | None = None,
                       image_size: tuple[int, int] | None = None) -> Keypoints2D:
    """Read the project's 2D archive; `fps` and `image_size`, if given, override the file's."""
    path = Path(path)
    return keypoints_from_arrays(_load(path), path, fps=fps, image_size=image_size)


def keypoints_from_arrays(arrays: dict[str, np.ndarray], path: PathLike, *,
                          fps: float | None = None,
                          image_size: tuple[int, int] | None = None) -> Keypoints2D:
    """`Keypoints2D` from the archive's keys (as `read_keypoints_npz`, without the file;
    the backend protocol sends these arrays). `path` names the source in messages."""
    path = Path(path)
    fps = checked_fps(fps, path)
    image_size = checked_image_size(image_size, path)
    missing = [k for k in ("keypoints", "scores", "joint_names") if k not in arrays]
    if missing:
        raise DiffPoseError.at(path, expected=f"expected key(s) {', '.join(missing)}; "
                                              f"found {', '.join(sorted(arrays)) or 'none'}")
    keypoints = _numeric(arrays, "keypoints", (None, None, 2), path)
    T, J = keypoints.shape[:2]
    if arrays["scores"].ndim >= 1 and arrays["scores"].shape[0] != T:
        raise DiffPoseError.at(path, "key 'scores'", expected=f"expected {T} frames like key "
                                                              f"'keypoints', got "
                                                              f"{arrays['scores'].shape[0]}")
    scores = _numeric(arrays, "scores", (T, J), path)
    names = _numeric(arrays, "joint_names", (J,), path, kinds="US")
    names_list = [n.decode("ascii", "replace") if isinstance(n, bytes) else str(n)
                  for n in names.tolist()]
    if len(set(names_list)) != J:
        dup = next(n for n in names_list if names_list.count(n) > 1)
        raise DiffPoseError.at(path, "key 'joint_names'",
                               expected=f"expected unique names, got {dup!r} twice")
    ours = [j for j, n in enumerate(names_list) if n in SKELETON.index]
    if not ours:
        raise DiffPoseError.at(path, "key 'joint_names'",
                               expected=f"expected names from the project's joint set "
                                        f"({', '.join(JOINT_NAMES)}), got "
                                        f"{', '.join(names_list) or 'none'}")
    if "valid" in arrays:
        valid = _numeric(arrays, "valid", (T,), path, kinds="b").astype(bool)
    else:
        valid = (scores > 0).any(axis=1)
    if fps is None and "fps" in arrays:
        fps_array = _numeric(arrays, "fps", (), path)
        fps = checked_fps(fps_array.item(), path)
    if image_size is None and "image_size" in arrays:
        size = _numeric(arrays, "image_size", (2,), path)
        image_size = checked_image_size(size.tolist(), path, "key 'image_size'")

    # Reorder to the project's joints: file joint ours[i] goes to project joint dest[i].
    src = np.array(ours)
    dest = SKELETON.indices([names_list[j] for j in ours])
    out_xy = np.full((T, NUM_JOINTS, 2), np.nan)
    out_s = np.zeros((T, NUM_JOINTS))
    out_xy[:, dest] = keypoints[:, src]
    out_s[:, dest] = scores[:, src]
    unknown = (out_s == 0) | ~valid[:, None]
    out_xy[unknown] = np.nan
    out_s[~valid] = 0.0

    gmm: dict[str, np.ndarray | None] = dict.fromkeys(_GMM_KEYS)
    present = [k for k in _GMM_KEYS if k in arrays]
    if present and len(present) != len(_GMM_KEYS):
        raise DiffPoseError.at(path, expected=f"expected all of {', '.join(_GMM_KEYS)} or "
                                              f"none, found only {', '.join(present)}")
    if present:
        weights = _numeric(arrays, "gmm_weights", (T, J, None), path)
        M = weights.shape[2]
        tails: dict[str, tuple[int, ...]] = {"gmm_weights": (), "gmm_means": (2,),
                                             "gmm_covs": (2, 2)}
        for key, tail in tails.items():
            a = _numeric(arrays, key, (T, J, M) + tail, path)
            out = np.full((T, NUM_JOINTS, M) + tail, 0.0 if key == "gmm_weights" else np.nan)
            out[:, dest] = a[:, src]
            gmm[key] = out

    extra = {k[len(EXTRA_PREFIX):]: a for k, a in arrays.items() if k.startswith(EXTRA_PREFIX)}
    return Keypoints2D(keypoints=out_xy, scores=out_s, valid=valid, fps=fps,
                       image_size=image_size, source=f"{FORMAT_NAME}:{path}",
                       gmm_weights=gmm["gmm_weights"], gmm_means=gmm["gmm_means"],
                       gmm_covs=gmm["gmm_covs"], extra=extra).check()


def write_keypoints_npz(path: PathLike, kp: Keypoints2D) -> None:
    """Write `kp` to `path` atomically (a temporary file renamed into place).

    Refuses (`DiffPoseError`) a `kp` that fails `Keypoints2D.check` or whose mixtures or
    extras the reader would refuse, so what is written can always be read back.
    """
    arrays = keypoints_to_arrays(kp, path)
    with atomic_write(path) as fh:
        np.savez_compressed(fh, **arrays)


def keypoints_to_arrays(kp: Keypoints2D, path: PathLike = "<keypoints>"
                        ) -> dict[str, np.ndarray]:
    """The archive's keys for `kp` (what `write_keypoints_npz` stores); `path` names the
    destination in messages."""
    path = Path(path)
    kp.check()
    T, J = kp.scores.shape
    arrays: dict[str, np.ndarray] = {
        "keypoints": np.asarray(kp.keypoints, dtype=np.float64),
        "scores": np.asarray(kp.scores, dtype=np.float64),
        "valid": np.asarray(kp.valid, dtype=bool),
        "joint_names": np.array(kp.joint_names, dtype=str),
    }
    if kp.fps is not None:
        arrays["fps"] = np.array(checked_fps(kp.fps, path), dtype=np.float64)
    if kp.image_size is not None:
        arrays["image_size"] = np.array(checked_image_size(kp.image_size, path), np.int64)
    mixtures = {"gmm_weights": kp.gmm_weights, "gmm_means": kp.gmm_means,
                "gmm_covs": kp.gmm_covs}
    if any(a is not None for a in mixtures.values()):
        if kp.gmm_weights is None or any(a is None for a in mixtures.values()):
            raise DiffPoseError.at(path, expected=f"expected all of {', '.join(_GMM_KEYS)} "
                                                  f"or none")
        M = np.shape(kp.gmm_weights)[-1]
        shapes = {"gmm_weights": (T, J, M), "gmm_means": (T, J, M, 2),
                  "gmm_covs": (T, J, M, 2, 2)}
        for key, a in mixtures.items():
            a = np.asarray(a, dtype=np.float64)
            if a.shape != shapes[key]:
                raise DiffPoseError.at(path, key, expected=f"expected shape {shapes[key]}, "
                                                           f"got {a.shape}")
            arrays[key] = a
    for name, a in kp.extra.items():
        a = np.asarray(a)
        if a.dtype.hasobject:
            raise DiffPoseError.at(path, f"extra {name!r}",
                                   expected="expected a plain array, got objects")
        arrays[EXTRA_PREFIX + name] = a
    return arrays
