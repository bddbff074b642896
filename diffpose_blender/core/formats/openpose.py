"""OpenPose JSON output: a folder with one ``<name>_000000000012_keypoints.json`` per frame.

Each file holds ``{"people": [{"person_id": [-1], "pose_keypoints_2d": [x, y, c, ...]},
...]}`` in image pixels (x right, y down). The layout comes from the length: 75 numbers
is BODY_25, 54 is COCO-18; a folder must use one. The frame number is the last number
in the file name (OpenPose writes 12 digits); numbers without a file are missing frames
(invalid, not dropped). OpenPose writes joints it did not find (or outside the image)
as ``0, 0, 0``: confidence 0 means unknown. A ``person_id`` other than -1 is a track id;
one person is kept per frame (see `people`), a person's score being the mean confidence
of its joints. Confidences are clipped to [0, 1]; joints become the project's by the
rules of `convert`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DiffPoseError, PathLike
from ..keypoints import Keypoints2D
from .convert import BODY25, COCO18, Layout, checked_fps, checked_image_size, to_keypoints2d
from .frames import number_frames
from .jsonfile import describe, load_json, parse_track_id, parse_triplets
from .people import Candidate, pick_one_person

FORMAT_NAME = "openpose_dir"
FILE_SUFFIX = "_keypoints.json"


def keypoint_files(folder: Path) -> list[Path]:
    """The OpenPose frame files in `folder` (``*_keypoints.json``), by name."""
    return sorted(p for p in folder.glob("*" + FILE_SUFFIX) if p.is_file())


def read_openpose_dir(path: PathLike, *, fps: float | None = None,
                      image_size: tuple[int, int] | None = None) -> Keypoints2D:
    """Read an OpenPose output folder (or the folder of one of its files)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not path.exists():
        raise DiffPoseError.at(path, expected="file or folder not found")
    fps = checked_fps(fps, folder)
    image_size = checked_image_size(image_size, folder)
    files = keypoint_files(folder)
    if not files:
        raise DiffPoseError.at(folder, expected=f"expected OpenPose frame files named "
                                                f"*{FILE_SUFFIX}, found none")
    numbering = number_frames([f.name for f in files], folder, "file")
    frames: list[list[Candidate]] = [[] for _ in range(numbering.num_frames)]
    layout: Layout | None = None
    for f in files:
        data = load_json(f)
        if not isinstance(data, dict) or not isinstance(data.get("people"), list):
            got = "an object without a list 'people'" if isinstance(data, dict) \
                else describe(data)
            raise DiffPoseError.at(f, expected=f"expected an OpenPose frame: an object "
                                               f"with a list 'people', got {got}")
        for p, person in enumerate(data["people"]):
            where = f"person {p}"
            if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
                raise DiffPoseError.at(f, where, expected="expected an object with "
                                                          "'pose_keypoints_2d'")
            person_layout, triplets = parse_triplets(
                person["pose_keypoints_2d"], (BODY25, COCO18), f, where,
                "key 'pose_keypoints_2d'")
            if layout is not None and person_layout is not layout:
                raise DiffPoseError.at(f, where, "key 'pose_keypoints_2d'",
                                       expected=f"expected {3 * layout.num_joints} numbers "
                                                f"({layout.label}) like the files before, "
                                                f"got {3 * person_layout.num_joints}")
            layout = person_layout
            track = parse_track_id(person.get("person_id"), f, where, "key 'person_id'")
            conf = np.clip(triplets[:, 2], 0.0, 1.0)
            xy = np.where(conf[:, None] > 0, triplets[:, :2], np.nan)
            frames[numbering.index[f.name]].append(
                Candidate(xy, conf, float(conf.mean()), track))
    layout = layout or BODY25
    xy, conf, valid = pick_one_person(frames, layout.num_joints)
    return to_keypoints2d(format_name=FORMAT_NAME, path=folder, layout=layout, xy=xy,
                          conf=conf, valid=valid, fps=fps, image_size=image_size,
                          extra={"frame_numbers": numbering.numbers})
