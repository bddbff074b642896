"""COCO keypoint detection results (JSON), as written by top-down detectors and AlphaPose.

The file is a list of detections::

    [{"image_id": 12 | "12.jpg", "category_id": 1,
      "keypoints": [x, y, v] * 17 (COCO-17) or * 26 (AlphaPose Halpe-26),
      "score": 2.7, "track_id" | "idx": 3 (optional)}, ...]

with image pixels (x right, y down). Frames come from ``image_id`` (see `frames`):
AlphaPose's ``"12.jpg"`` is frame 12, an integer is its own frame number, and numbers
that no detection names are invalid frames. Detections whose ``category_id`` is not 1
(person) are skipped. One person is kept per frame (see `people`); a detection's score
is its ``score`` when every detection has one, otherwise the mean of its keypoint
confidences. ``v`` values are flags or scores (see `convert.confidence_from_coco_v`).
Joints become the project's by the rules of `convert`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DiffPoseError, PathLike
from ..keypoints import Keypoints2D
from .convert import (COCO17, HALPE26, Layout, checked_fps, checked_image_size,
                      confidence_from_coco_v, to_keypoints2d)
from .frames import FrameName, number_frames
from .jsonfile import as_int, describe, load_json, parse_track_id, parse_triplets
from .people import Candidate, pick_one_person

FORMAT_NAME = "coco_json"
_PERSON_CATEGORY = 1


@dataclass(frozen=True)
class _Detection:
    image_id: FrameName
    triplets: np.ndarray  # (K, 3): x, y px and the raw v value
    score: float | None
    track: int | None


def read_coco_json(path: PathLike, *, fps: float | None = None,
                   image_size: tuple[int, int] | None = None) -> Keypoints2D:
    """Read COCO / AlphaPose detection results; one person, on the project's joints."""
    path = Path(path)
    fps = checked_fps(fps, path)
    image_size = checked_image_size(image_size, path)
    data = load_json(path)
    if not isinstance(data, list):
        raise DiffPoseError.at(path, expected=f"expected a JSON list of detections (COCO "
                                              f"results), got {describe(data)}")
    if not data:
        raise DiffPoseError.at(path, expected="expected at least one detection, got an "
                                              "empty list")
    image_ids: list[FrameName] = []
    people: list[_Detection] = []
    layout: Layout | None = None
    for i, det in enumerate(data):
        where = f"detection {i}"
        if not isinstance(det, dict):
            raise DiffPoseError.at(path, where, expected=f"expected an object, got "
                                                         f"{describe(det)}")
        image_id = det.get("image_id")
        if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
            raise DiffPoseError.at(path, where, "key 'image_id'",
                                   expected=f"expected a frame number or an image file "
                                            f"name, got {describe(image_id)}")
        image_ids.append(image_id)
        where = f"detection {i} (image_id {image_id!r})"
        category = det.get("category_id", _PERSON_CATEGORY)
        if as_int(category) is None:
            raise DiffPoseError.at(path, where, "key 'category_id'",
                                   expected=f"expected a whole number, got "
                                            f"{describe(category)}")
        if as_int(category) != _PERSON_CATEGORY:
            continue
        if "keypoints" not in det:
            raise DiffPoseError.at(path, where, expected="expected a key 'keypoints'")
        det_layout, triplets = parse_triplets(det["keypoints"], (COCO17, HALPE26), path,
                                              where, "key 'keypoints'")
        if layout is not None and det_layout is not layout:
            raise DiffPoseError.at(path, where, "key 'keypoints'",
                                   expected=f"expected {3 * layout.num_joints} numbers "
                                            f"({layout.label}) like the detections before, "
                                            f"got {3 * det_layout.num_joints}")
        layout = det_layout
        score = det.get("score")
        if score is not None and (type(score) not in (int, float) or not np.isfinite(score)):
            raise DiffPoseError.at(path, where, "key 'score'",
                                   expected=f"expected a finite number, got {describe(score)}")
        track_key = "track_id" if "track_id" in det else "idx"
        track = parse_track_id(det.get(track_key), path, where, f"key '{track_key}'")
        people.append(_Detection(image_id, triplets, score, track))

    numbering = number_frames(image_ids, path, "image_id")
    layout = layout or COCO17
    # Flags or scores is decided once for the whole file, as the file is one or the other.
    conf = confidence_from_coco_v(np.array([d.triplets[:, 2] for d in people])
                                  .reshape(len(people), layout.num_joints))
    use_given_score = all(d.score is not None for d in people)
    frames: list[list[Candidate]] = [[] for _ in range(numbering.num_frames)]
    for d, c in zip(people, conf):
        xy = np.where(c[:, None] > 0, d.triplets[:, :2], np.nan)
        score = float(d.score) if use_given_score and d.score is not None else float(c.mean())
        frames[numbering.index[d.image_id]].append(Candidate(xy, c, score, d.track))
    xy, person_conf, valid = pick_one_person(frames, layout.num_joints)
    return to_keypoints2d(format_name=FORMAT_NAME, path=path, layout=layout, xy=xy,
                          conf=person_conf, valid=valid, fps=fps, image_size=image_size,
                          extra={"frame_numbers": numbering.numbers})
