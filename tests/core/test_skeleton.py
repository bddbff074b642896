from __future__ import annotations

import numpy as np
import pytest

from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.skeleton import (H36M_SKELETON, JOINT_NAMES, SKELETON,
                                            Skeleton)

H36M_ORDER = ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
              "spine", "thorax", "neck_nose", "head_top", "l_shoulder", "l_elbow",
              "l_wrist", "r_shoulder", "r_elbow", "r_wrist")


def test_h36m_joints_come_first_in_standard_order() -> None:
    assert JOINT_NAMES[:17] == H36M_ORDER
    assert H36M_SKELETON.names == H36M_ORDER
    assert set(JOINT_NAMES[17:]) == {"l_toe", "r_toe", "l_hand_end", "r_hand_end"}


def test_h36m_parents_match_the_standard_tree() -> None:
    # The parent array used by VideoPose3D for Human3.6M's 17 joints.
    assert H36M_SKELETON.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)


def test_parents_precede_children_and_bones_cover_tree() -> None:
    for j, p in enumerate(SKELETON.parents):
        assert p < j
    assert len(SKELETON.bones) == SKELETON.num_joints - 1
    assert SKELETON.parents[SKELETON.index["l_toe"]] == SKELETON.index["l_ankle"]
    assert SKELETON.parents[SKELETON.index["r_hand_end"]] == SKELETON.index["r_wrist"]


def test_mirror_swaps_left_and_right() -> None:
    mirror = np.array(SKELETON.mirror)
    assert (mirror[mirror] == np.arange(SKELETON.num_joints)).all()
    for left, right in SKELETON.left_right_pairs:
        assert JOINT_NAMES[left] == "l_" + JOINT_NAMES[right][2:]
    assert len(SKELETON.left_right_pairs) == 8
    assert SKELETON.mirror[SKELETON.index["spine"]] == SKELETON.index["spine"]
    # Mirroring keeps the tree: the mirror of a joint's parent is the mirror's parent.
    for j, p in enumerate(SKELETON.parents):
        if p >= 0:
            assert SKELETON.parents[mirror[j]] == mirror[p]


def test_bad_skeletons_and_names_are_refused() -> None:
    with pytest.raises(DiffPoseError, match="parent index 1"):
        Skeleton(("a", "b"), (1, -1))
    with pytest.raises(DiffPoseError, match="unique"):
        Skeleton(("a", "a"), (-1, 0))
    with pytest.raises(DiffPoseError, match="unknown joint name 'nose'"):
        SKELETON.indices(["pelvis", "nose"])
