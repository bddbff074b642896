"""Source joint layouts and their conversion to the project's joint set (DESIGN §4, §5).

Every 2D reader parses its format into arrays in the format's own *source layout*:
``xy (T, K, 2)`` image pixels (x right, y down, origin top-left), NaN where unknown, and
``conf (T, K)`` in [0, 1], 0 where unknown. `to_keypoints2d` turns those into a
`Keypoints2D` on the project's joint set, so the rules below hold for every format.

Source layouts (joints carry canonical names so that one rule table serves all):

- COCO-17: COCO keypoints, AlphaPose's default output;
- Halpe-26: AlphaPose; COCO-17 then head (top of the head), neck, hip centre, big toes,
  small toes, heels;
- BODY_25: OpenPose; has Neck, MidHip and the feet;
- COCO-18: OpenPose; COCO-17 plus Neck, in OpenPose's order;
- Human3.6M-17: VideoPose3D's ``'h36m'`` layout, the project's first 17 joints;
- BlazePose-33: the backend's own detector (``backend/detect/joints.py``); its foot
  index is the toe, and it has the index and little-finger knuckles.

Rules, per frame and joint, in this order:

1. **Copied** (score unchanged): hips, knees, ankles, shoulders, elbows and wrists by
   name; ``neck_nose`` <- nose; ``pelvis`` <- hip centre (Halpe ``hip``, BODY_25
   ``MidHip``); ``thorax`` <- neck (Halpe, BODY_25, COCO-18); ``head_top`` <- Halpe
   ``head``; ``l_toe``/``r_toe`` <- big toes (Halpe, BODY_25).
2. **Derived**, only where still unknown after step 1:

   - ``pelvis   = (l_hip + r_hip) / 2``
   - ``thorax   = (l_shoulder + r_shoulder) / 2``
   - ``spine    = (pelvis + thorax) / 2``
   - ``head_top = c + HEAD_TOP_K * (c - thorax)`` where the head centre ``c`` is the
     midpoint of the ears, or of the eyes in frames where an ear is unknown.
   - ``l_hand_end = (l_index + l_pinky) / 2`` (the middle of the knuckles), likewise
     right, for layouts that have those points (BlazePose).

   A derived joint's score is ``DERIVED_SCORE_FACTOR * min(scores of its sources)``,
   and it is unknown if any source is unknown. A joint derived from derived joints
   carries the factor once per step (``spine`` from COCO-17: 0.8 * 0.8 * min(hips,
   shoulders)), which is fair: each step adds a guess.
3. **Unknown** (NaN, score 0): whatever no rule gives: the hand ends for every layout
   but BlazePose, the toes for COCO-17 and COCO-18.

Confidence: COCO ``v`` values are visibility flags (0, 1, 2) in ground-truth annotations
and scores in detector results; see `confidence_from_coco_v`. Detector scores may exceed
1 slightly (OpenPose, AlphaPose) and are clipped to [0, 1].
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import DiffPoseError, PathLike
from ..keypoints import Keypoints2D
from ..skeleton import H36M_JOINT_COUNT, JOINT_NAMES, NUM_JOINTS, SKELETON

#: Score multiplier for a joint derived from others (rule 2): lower confidence, not zero.
DERIVED_SCORE_FACTOR = 0.8

#: head_top lies this fraction of the thorax -> head-centre distance beyond the head
#: centre. Standing adult proportions (of stature): shoulder line ~0.82, ear canal
#: ~0.93, vertex 1.0, so (1 - 0.93) / (0.93 - 0.82) ~ 0.65.
HEAD_TOP_K = 0.65


@dataclass(frozen=True)
class Layout:
    """A source joint layout: the joints a format stores, in its order."""

    name: str
    label: str  # for messages: "COCO-17"
    joints: tuple[str, ...]  # canonical names, index = the format's joint id

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def position(self, joint: str) -> int | None:
        """Index of `joint` in this layout, None if the layout lacks it."""
        return self.joints.index(joint) if joint in self.joints else None


_COCO17_JOINTS = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder",
    "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee",
    "l_ankle", "r_ankle",
)

COCO17 = Layout("coco17", "COCO-17", _COCO17_JOINTS)
# Halpe's "Head" is the top of the head, hence head_top.
HALPE26 = Layout("halpe26", "Halpe-26", _COCO17_JOINTS + (
    "head_top", "neck", "mid_hip", "l_big_toe", "r_big_toe", "l_small_toe",
    "r_small_toe", "l_heel", "r_heel"))
BODY25 = Layout("body25", "BODY_25", (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
    "l_wrist", "mid_hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear", "l_big_toe", "l_small_toe", "l_heel",
    "r_big_toe", "r_small_toe", "r_heel"))
COCO18 = Layout("coco18", "COCO-18", (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
    "l_wrist", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye",
    "l_eye", "r_ear", "l_ear"))
H36M17 = Layout("h36m17", "Human3.6M-17", JOINT_NAMES[:H36M_JOINT_COUNT])

# Rule 1: project joint -> source joints that mean the same thing (the first one the
# layout has is copied). Joints not listed are copied from the same name.
_COPY_FROM: dict[str, tuple[str, ...]] = {
    "pelvis": ("pelvis", "mid_hip"),
    "thorax": ("thorax", "neck"),
    "neck_nose": ("neck_nose", "nose"),
    "l_toe": ("l_toe", "l_big_toe"),
    "r_toe": ("r_toe", "r_big_toe"),
}

_Point = tuple[np.ndarray, np.ndarray]  # xy (T, 2) px, score (T,)


def confidence_from_coco_v(v: np.ndarray) -> np.ndarray:
    """Confidence in [0, 1] from COCO ``v`` values (any shape, all of one file).

    If every value is 0, 1 or 2 and at least one is 2, they are visibility flags
    (ground truth): 2 (visible) -> 1.0, 1 (labelled but hidden) -> 0.5, 0 (not
    labelled) -> 0. Otherwise they are detector scores, clipped to [0, 1].
    """
    v = np.asarray(v, dtype=np.float64)
    if v.size and np.isin(v, (0.0, 1.0, 2.0)).all() and (v == 2.0).any():
        return v * 0.5
    return np.clip(v, 0.0, 1.0)


def to_project(layout: Layout, xy: np.ndarray, conf: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Map a source layout to the project's joints by the rules of this module.

    xy (T, K, 2) image px and conf (T, K) in [0, 1] on `layout`; a joint is known where
    its confidence is > 0 and its coordinates are finite. Returns keypoints
    (T, J, 2) px, NaN where unknown, and scores (T, J), 0 where unknown.
    """
    T, K = conf.shape
    if xy.shape != (T, K, 2) or K != layout.num_joints:
        raise ValueError(f"{layout.label}: xy {xy.shape} / conf {conf.shape} do not match "
                         f"{layout.num_joints} joints")
    known = (conf > 0) & np.isfinite(xy).all(axis=-1)
    xy = np.where(known[..., None], xy, np.nan)
    conf = np.where(known, conf, 0.0)

    out_xy = np.full((T, NUM_JOINTS, 2), np.nan)
    out_s = np.zeros((T, NUM_JOINTS))
    for j, name in enumerate(JOINT_NAMES):
        for src in _COPY_FROM.get(name, (name,)):
            k = layout.position(src)
            if k is not None:
                out_xy[:, j] = xy[:, k]
                out_s[:, j] = conf[:, k]
                break

    def ours(name: str) -> _Point:
        j = SKELETON.index[name]
        return out_xy[:, j], out_s[:, j]  # views: later rules see earlier results

    def theirs(name: str) -> _Point:
        k = layout.position(name)
        if k is None:
            return np.full((T, 2), np.nan), np.zeros(T)
        return xy[:, k], conf[:, k]

    def derive(target: str, a: _Point, b: _Point, t: float) -> None:
        """target = a + t * (b - a) where target is unknown and a, b are known."""
        j = SKELETON.index[target]
        (a_xy, a_s), (b_xy, b_s) = a, b
        fill = (out_s[:, j] == 0) & (a_s > 0) & (b_s > 0)
        out_xy[fill, j] = a_xy[fill] + t * (b_xy[fill] - a_xy[fill])
        out_s[fill, j] = DERIVED_SCORE_FACTOR * np.minimum(a_s, b_s)[fill]

    derive("pelvis", ours("l_hip"), ours("r_hip"), 0.5)
    derive("thorax", ours("l_shoulder"), ours("r_shoulder"), 0.5)
    derive("spine", ours("pelvis"), ours("thorax"), 0.5)
    # head_top = c + k (c - thorax) = thorax + (1 + k) (c - thorax).
    derive("head_top", ours("thorax"), _head_centre(theirs), 1.0 + HEAD_TOP_K)
    for side in ("l_", "r_"):
        derive(side + "hand_end", theirs(side + "index"), theirs(side + "pinky"), 0.5)
    return out_xy, out_s


def _head_centre(theirs: Callable[[str], _Point]) -> _Point:
    """Ear midpoint, or eye midpoint in frames where an ear is unknown; score = min."""
    (le, les), (re, res) = theirs("l_ear"), theirs("r_ear")
    (ly, lys), (ry, rys) = theirs("l_eye"), theirs("r_eye")
    ears_s = np.minimum(les, res)
    eyes_s = np.minimum(lys, rys)
    use_ears = ears_s > 0
    centre = np.where(use_ears[:, None], (le + re) / 2, (ly + ry) / 2)
    score = np.where(use_ears, ears_s, eyes_s)
    return centre, score


def checked_fps(fps: Any, source: PathLike) -> float | None:
    """`fps` as a positive float, or None; anything else raises `DiffPoseError`."""
    if fps is None:
        return None
    if (isinstance(fps, bool) or not isinstance(fps, numbers.Real)
            or not np.isfinite(float(fps)) or float(fps) <= 0):
        raise DiffPoseError.at(source, "fps", expected=f"expected a positive number of "
                                                       f"frames per second, got {fps!r}")
    return float(fps)


def checked_image_size(size: Any, source: PathLike, *where: str) -> tuple[int, int] | None:
    """`size` as (width, height) positive integer pixels, or None."""
    if size is None:
        return None
    where = where or ("image_size",)
    expected = f"expected (width, height) as two positive whole numbers of pixels, got {size!r}"
    try:
        w, h = size
    except (TypeError, ValueError) as exc:
        raise DiffPoseError.at(source, *where, expected=expected) from exc
    for v in (w, h):
        if (isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real)
                or not float(v).is_integer() or v <= 0):
            raise DiffPoseError.at(source, *where, expected=expected)
    return int(w), int(h)


def to_keypoints2d(*, format_name: str, path: PathLike, layout: Layout, xy: np.ndarray,
                   conf: np.ndarray, valid: np.ndarray, fps: float | None,
                   image_size: tuple[int, int] | None,
                   extra: dict[str, np.ndarray] | None = None) -> Keypoints2D:
    """Convert one person's source-layout arrays to a checked `Keypoints2D`.

    xy (T, K, 2) image px, conf (T, K) in [0, 1], valid (T,) bool: frames holding the
    person. A frame whose person has no joint on the project's set is invalid too;
    invalid frames get NaN keypoints and score 0.
    """
    keypoints, scores = to_project(layout, xy, conf)
    valid = np.asarray(valid, dtype=bool) & (scores > 0).any(axis=1)
    keypoints[~valid] = np.nan
    scores[~valid] = 0.0
    return Keypoints2D(keypoints=keypoints, scores=scores, valid=valid, fps=fps,
                       image_size=image_size, source=f"{format_name}:{os.fspath(path)}",
                       extra=dict(extra or {})).check()
