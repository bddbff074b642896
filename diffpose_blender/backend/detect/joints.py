"""BlazePose's 33 landmarks and their mapping to the project's joint set.

Landmark order and meaning are MediaPipe's (``pose_landmark_by_roi_cpu.pbtxt``,
google-ai-edge/mediapipe). "Left" is the person's left, as in the project. The mapping
uses the rules of `core.formats.convert` (one rule table for every 2D source):
hips, knees, ankles, shoulders, elbows, wrists copied; ``neck_nose`` from the nose; the
toes from the foot index; pelvis, thorax, spine, head top and the hand ends derived,
with the lower score those rules give.
"""

from __future__ import annotations

import numpy as np

from ...core.formats.convert import Layout
from ...core.skeleton import JOINT_NAMES

BLAZEPOSE33 = Layout("blazepose33", "BlazePose-33", (
    "nose", "l_eye_inner", "l_eye", "l_eye_outer", "r_eye_inner", "r_eye", "r_eye_outer",
    "l_ear", "r_ear", "mouth_left", "mouth_right", "l_shoulder", "r_shoulder",
    "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_pinky", "r_pinky", "l_index",
    "r_index", "l_thumb", "r_thumb", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
    "r_ankle", "l_heel", "r_heel",
    # BlazePose's "foot index" (the tip of the foot) is the project's toe.
    "l_toe", "r_toe"))


def copied_sources() -> np.ndarray:
    """(J,) for each project joint the BlazePose landmark it is copied from, -1 where
    the joint is derived (its mixture then comes from `derived_mixture`)."""
    out = np.full(len(JOINT_NAMES), -1, dtype=np.int64)
    for j, name in enumerate(JOINT_NAMES):
        source = "nose" if name == "neck_nose" else name
        k = BLAZEPOSE33.position(source)
        if k is not None:
            out[j] = k
    return out
