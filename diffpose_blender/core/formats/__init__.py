"""Readers for every 2D keypoint input of DESIGN §5, and the writer of the project's own.

Each reader returns one person's `Keypoints2D` on the project's joint set (image pixels,
x right, y down; scores in [0, 1]; frames without the person invalid, with NaN keypoints
and score 0), checked with `Keypoints2D.check`. Joints a format lacks are derived by the
rules in `convert`; one person is chosen across frames by the rule in `people`; frames
are numbered by the rule in `frames`. Every bad input raises `DiffPoseError` naming the
file, the place and what was expected.

Formats (keys of `FORMAT_LABELS`):

- ``"coco_json"``: COCO keypoint results / AlphaPose (`coco_json`);
- ``"openpose_dir"``: a folder of OpenPose ``*_keypoints.json`` files (`openpose`);
- ``"videopose3d_npz"``: VideoPose3D 2D archives; options ``subject=``, ``action=``,
  ``camera=`` (`videopose3d`);
- ``"keypoints_npz"``: the project's own archive (`keypoints_npz`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import DiffPoseError, PathLike
from ..keypoints import Keypoints2D
from .coco_json import read_coco_json
from .jsonfile import describe, load_json
from .keypoints_npz import (keypoints_from_arrays, keypoints_to_arrays, read_keypoints_npz,
                            write_keypoints_npz)
from .npzfile import npz_keys
from .openpose import FILE_SUFFIX, keypoint_files, read_openpose_dir
from .videopose3d import read_videopose3d_npz

__all__ = ["FORMAT_LABELS", "detect_format", "read_keypoints", "write_keypoints_npz",
           "read_coco_json", "read_openpose_dir", "read_videopose3d_npz",
           "read_keypoints_npz", "keypoints_from_arrays", "keypoints_to_arrays"]

#: Format name -> what the UI shows.
FORMAT_LABELS: dict[str, str] = {
    "coco_json": "COCO keypoints JSON (AlphaPose, detectors)",
    "openpose_dir": "OpenPose JSON folder",
    "videopose3d_npz": "VideoPose3D 2D keypoints (.npz)",
    "keypoints_npz": "DiffPose 2D keypoints (.npz)",
}

_READERS: dict[str, Callable[..., Keypoints2D]] = {
    "coco_json": read_coco_json,
    "openpose_dir": read_openpose_dir,
    "videopose3d_npz": read_videopose3d_npz,
    "keypoints_npz": read_keypoints_npz,
}

#: Format-specific keyword options `read_keypoints` passes on.
_OPTIONS: dict[str, frozenset[str]] = {
    "videopose3d_npz": frozenset({"subject", "action", "camera"}),
}

# How much of a .json file to look at for its first character before parsing it all.
_SNIFF_BYTES = 4096


def detect_format(path: PathLike) -> str:
    """The format of `path`, one of `FORMAT_LABELS`.

    A folder holding ``*_keypoints.json`` is OpenPose. A ``.json`` file holding a list
    is COCO results; one holding an object with ``people`` is an OpenPose frame (its
    folder is read). A ``.npz`` with ``positions_2d`` is VideoPose3D's, one with
    ``keypoints`` the project's own.
    """
    p = Path(path)
    if p.is_dir():
        if keypoint_files(p):
            return "openpose_dir"
        raise DiffPoseError.at(p, expected=f"expected a folder of OpenPose "
                                           f"*{FILE_SUFFIX} files, found none")
    if not p.exists():
        raise DiffPoseError.at(p, expected="file or folder not found")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        keys = npz_keys(p)
        if "positions_2d" in keys:
            return "videopose3d_npz"
        if "keypoints" in keys:
            return "keypoints_npz"
        raise DiffPoseError.at(p, expected=f"expected key 'positions_2d' (VideoPose3D) or "
                                           f"'keypoints' (DiffPose 2D), found "
                                           f"{', '.join(keys) or 'none'}")
    if suffix == ".json":
        with open(p, "rb") as fh:
            head = fh.read(_SNIFF_BYTES).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"["):
            return "coco_json"  # parsed once, by the reader
        data = load_json(p)  # gives the precise error for empty or broken files
        if isinstance(data, list):
            return "coco_json"
        if isinstance(data, dict) and "people" in data:
            return "openpose_dir"
        raise DiffPoseError.at(p, expected=f"expected a list of COCO detections or an "
                                           f"OpenPose frame (an object with 'people'), got "
                                           f"{describe(data)}")
    raise DiffPoseError.at(p, expected=f"expected a .json file, a .npz file or a folder of "
                                       f"OpenPose *{FILE_SUFFIX} files")


def read_keypoints(path: PathLike, *, format: str | None = None, fps: float | None = None,
                   image_size: tuple[int, int] | None = None, **options: Any) -> Keypoints2D:
    """Read 2D keypoints of one person from `path` in any supported format.

    format      one of `FORMAT_LABELS`, or None to use `detect_format`.
    fps         frames per second; overrides the file's (only the project's own
                archive stores it).
    image_size  (width, height) px; overrides the file's (own archive, VideoPose3D
                ``video_metadata``); needed for normalised VideoPose3D coordinates.
    options     format-specific (VideoPose3D: subject, action, camera).
    """
    fmt = detect_format(path) if format is None else format
    if fmt not in _READERS:
        raise DiffPoseError.at(path, expected=f"unknown format {fmt!r}; expected one of "
                                              f"{', '.join(_READERS)}")
    unknown = sorted(set(options) - _OPTIONS.get(fmt, frozenset()))
    if unknown:
        allowed = ", ".join(sorted(_OPTIONS.get(fmt, ()))) or "none"
        raise DiffPoseError.at(path, expected=f"unknown option(s) {', '.join(unknown)} for "
                                              f"{FORMAT_LABELS[fmt]}; expected: {allowed}")
    return _READERS[fmt](path, fps=fps, image_size=image_size, **options)
