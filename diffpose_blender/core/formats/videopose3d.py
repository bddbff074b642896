"""VideoPose3D's 2D keypoint archives (``data_2d_*.npz``).

VideoPose3D writes ``np.savez_compressed(path, positions_2d=..., metadata=...)`` with two
dicts, which numpy stores as pickled object arrays; they are read here through
`npzfile`'s restricted unpickler, never by ``np.load`` with pickles allowed.

- ``positions_2d``: ``{subject: {action: [one array (T, J, 2) per camera]}}``, image
  pixels (x right, y down). An array (T, J, 3) is read as x, y, confidence. Without a
  confidence column every finite joint gets score 1 (the format has none); NaN joints
  are unknown.
- ``metadata``: ``layout_name`` (``'h36m'``: Human3.6M's 17 joints in the project's
  order; ``'coco'``: COCO-17, converted by the rules of `convert`), ``num_joints``,
  ``keypoints_symmetry`` and, for custom videos, ``video_metadata
  {subject: {'w': px, 'h': px}}``, used as the image size.

Subject, action and camera are chosen with the ``subject=``, ``action=`` and ``camera=``
keywords; each may be left out when the file has only one.

Coordinates: pixels are expected. If every finite coordinate lies within
±`NORMALISED_LIMIT`, the data are taken to be VideoPose3D's normalised screen
coordinates (``normalize_screen_coordinates``: ``x / w * 2 - 1``, ``y / w * 2 - h / w``)
and converted back to pixels with the image size (the ``image_size=`` keyword, else the
file's ``video_metadata``); without an image size that is an error, not a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DiffPoseError, PathLike
from ..keypoints import Keypoints2D
from .convert import COCO17, H36M17, checked_fps, checked_image_size, to_keypoints2d
from .npzfile import load_npz

FORMAT_NAME = "videopose3d_npz"
LAYOUTS = {"h36m": H36M17, "coco": COCO17}
#: No real pose in pixels fits in a box this small; normalised coordinates always do
#: (|x| <= 1, |y| <= h / w, with room for joints just outside the image).
NORMALISED_LIMIT = 4.0


def _unwrap(arrays: dict[str, Any], key: str, path: Path) -> dict[Any, Any]:
    """A dict stored as a 0-d object array under `key`."""
    if key not in arrays:
        raise DiffPoseError.at(path, expected=f"expected a key '{key}', found "
                                              f"{sorted(arrays) or 'none'}")
    value = arrays[key]
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.hasobject:
        value = value.item()
    if not isinstance(value, dict):
        raise DiffPoseError.at(path, f"key '{key}'", expected=f"expected a pickled dict, "
                                                              f"got {type(value).__name__}")
    return value


def _choose(options: Sequence[Any], wanted: Any, what: str, path: Path, *where: str) -> Any:
    listed = ", ".join(repr(o) for o in options)
    if wanted is None:
        if len(options) == 1:
            return options[0]
        raise DiffPoseError.at(path, *where, expected=f"{len(options)} {what}s; choose one "
                                                      f"with {what}=: {listed}")
    if wanted not in options:
        raise DiffPoseError.at(path, *where, expected=f"no {what} {wanted!r}; expected "
                                                      f"one of {listed}")
    return wanted


def read_videopose3d_npz(path: PathLike, *, fps: float | None = None,
                         image_size: tuple[int, int] | None = None,
                         subject: str | None = None, action: str | None = None,
                         camera: int | None = None) -> Keypoints2D:
    """Read one subject / action / camera of a VideoPose3D 2D archive."""
    path = Path(path)
    fps = checked_fps(fps, path)
    image_size = checked_image_size(image_size, path)
    arrays = load_npz(path)
    positions = _unwrap(arrays, "positions_2d", path)
    metadata = _unwrap(arrays, "metadata", path)

    layout_name = metadata.get("layout_name")
    if layout_name not in LAYOUTS:
        raise DiffPoseError.at(path, "key 'metadata', 'layout_name'",
                               expected=f"expected one of {', '.join(map(repr, LAYOUTS))}, "
                                        f"got {layout_name!r}")
    layout = LAYOUTS[layout_name]
    num_joints = metadata.get("num_joints", layout.num_joints)
    if num_joints != layout.num_joints:
        raise DiffPoseError.at(path, "key 'metadata', 'num_joints'",
                               expected=f"expected {layout.num_joints} for layout "
                                        f"{layout_name!r}, got {num_joints!r}")

    if not positions:
        raise DiffPoseError.at(path, "key 'positions_2d'", expected="expected at least "
                                                                    "one subject")
    subject = _choose(sorted(positions, key=str), subject, "subject", path,
                      "key 'positions_2d'")
    actions = positions[subject]
    where = ["key 'positions_2d'", f"subject {subject!r}"]
    if not isinstance(actions, Mapping) or not actions:
        raise DiffPoseError.at(path, *where, expected="expected a dict of actions")
    action = _choose(sorted(actions, key=str), action, "action", path, *where)
    cameras = actions[action]
    where.append(f"action {action!r}")
    if not isinstance(cameras, (list, tuple)) or not cameras:
        raise DiffPoseError.at(path, *where, expected="expected a list of per-camera arrays")
    camera = _choose(list(range(len(cameras))), camera, "camera", path, *where)
    where.append(f"camera {camera}")
    arr = cameras[camera]
    if (not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iuf" or arr.ndim != 3
            or arr.shape[1:] not in ((layout.num_joints, 2), (layout.num_joints, 3))):
        got = (f"shape {arr.shape} dtype {arr.dtype}" if isinstance(arr, np.ndarray)
               else type(arr).__name__)
        raise DiffPoseError.at(path, *where, expected=f"expected a numeric array of shape "
                                                      f"(T, {layout.num_joints}, 2), got {got}")

    xy = arr[..., :2].astype(np.float64)
    finite = np.isfinite(xy).all(axis=-1)
    if arr.shape[2] == 3:
        conf = arr[..., 2].astype(np.float64)
        bad = ~np.isfinite(conf) | ((conf != 0) & ~finite)
        if bad.any():
            t, j = np.argwhere(bad)[0]
            raise DiffPoseError.at(path, *where, f"frame {t}", f"joint '{layout.joints[j]}'",
                                   expected=f"expected a finite confidence and finite x, y "
                                            f"where it is nonzero, got {arr[t, j].tolist()}")
        conf = np.clip(conf, 0.0, 1.0)
    else:
        conf = finite.astype(np.float64)

    if image_size is None:
        video = metadata.get("video_metadata", {})
        size = video.get(subject) if isinstance(video, Mapping) else None
        if isinstance(size, Mapping) and "w" in size and "h" in size:
            image_size = checked_image_size((size["w"], size["h"]), path, "key 'metadata'",
                                            f"video_metadata {subject!r}")
    if finite.any() and np.abs(xy[finite]).max() <= NORMALISED_LIMIT:
        if image_size is None:
            raise DiffPoseError.at(path, *where, expected="coordinates look normalised to "
                                                          "[-1, 1]; pass image_size=(width, "
                                                          "height) to convert them to pixels")
        w, h = image_size
        # Inverse of VideoPose3D's normalize_screen_coordinates.
        xy = (xy + np.array([1.0, h / w])) * (w / 2)

    return to_keypoints2d(format_name=FORMAT_NAME, path=path, layout=layout, xy=xy,
                          conf=conf, valid=(conf > 0).any(axis=1), fps=fps,
                          image_size=image_size)
