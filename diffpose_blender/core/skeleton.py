"""The project's joint set, as data (DESIGN §4).

The first 17 joints are Human3.6M's, in its standard order, so anything trained or
evaluated on the 17 keeps working; extra joints follow (toes from BlazePose's foot index
and the mocap toes, hand ends from the middle of the hand).

Frames of reference used across the project (each named where arrays cross a boundary):

- image: pixels, x right, y down, origin at the top-left corner;
- camera: metres, x right, y down, z forward (OpenCV convention);
- Blender world: metres, Z up, -Y forward (conversion lives in one module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import DiffPoseError

# (name, parent name or None). Order is the contract: index = joint id.
_JOINTS: tuple[tuple[str, str | None], ...] = (
    ("pelvis", None),
    ("r_hip", "pelvis"),
    ("r_knee", "r_hip"),
    ("r_ankle", "r_knee"),
    ("l_hip", "pelvis"),
    ("l_knee", "l_hip"),
    ("l_ankle", "l_knee"),
    ("spine", "pelvis"),
    ("thorax", "spine"),
    ("neck_nose", "thorax"),
    ("head_top", "neck_nose"),
    ("l_shoulder", "thorax"),
    ("l_elbow", "l_shoulder"),
    ("l_wrist", "l_elbow"),
    ("r_shoulder", "thorax"),
    ("r_elbow", "r_shoulder"),
    ("r_wrist", "r_elbow"),
    # Extras (after the Human3.6M 17).
    ("l_toe", "l_ankle"),
    ("r_toe", "r_ankle"),
    ("l_hand_end", "l_wrist"),
    ("r_hand_end", "r_wrist"),
)

H36M_JOINT_COUNT = 17


@dataclass(frozen=True)
class Skeleton:
    """A joint set: names, parent of each joint, left/right pairs and bones.

    `parents[j]` is the index of joint j's parent, -1 for the root; parents always come
    before their children, so a forward pass in index order visits the tree top-down.
    """

    names: tuple[str, ...]
    parents: tuple[int, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.parents):
            raise DiffPoseError(
                f"skeleton: {len(self.names)} names but {len(self.parents)} parents")
        if len(set(self.names)) != len(self.names):
            raise DiffPoseError("skeleton: joint names must be unique")
        for j, p in enumerate(self.parents):
            if p >= j or (p < 0 and p != -1):
                raise DiffPoseError(
                    f"skeleton: joint '{self.names[j]}' has parent index {p}; "
                    f"expected -1 or an earlier joint")
        object.__setattr__(self, "index", {n: i for i, n in enumerate(self.names)})

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(parent, child) index pairs, one per non-root joint, in joint order."""
        return tuple((p, j) for j, p in enumerate(self.parents) if p >= 0)

    @property
    def mirror(self) -> tuple[int, ...]:
        """For each joint, the index of its left/right counterpart (itself if central).

        Pairs are found by name: ``l_X`` <-> ``r_X``.
        """
        out = []
        for name in self.names:
            if name.startswith("l_"):
                other = "r_" + name[2:]
            elif name.startswith("r_"):
                other = "l_" + name[2:]
            else:
                other = name
            out.append(self.index.get(other, self.index[name]))
        return tuple(out)

    @property
    def left_right_pairs(self) -> tuple[tuple[int, int], ...]:
        """(left, right) index pairs."""
        return tuple((j, m) for j, m in enumerate(self.mirror)
                     if self.names[j].startswith("l_") and m != j)

    def indices(self, names: Sequence[str]) -> np.ndarray:
        """Indices of `names`; unknown names raise `DiffPoseError`."""
        try:
            return np.array([self.index[n] for n in names], dtype=np.int64)
        except KeyError as exc:
            raise DiffPoseError(f"skeleton: unknown joint name {exc.args[0]!r}; known: "
                                f"{', '.join(self.names)}") from None

    def subset(self, names: Sequence[str]) -> "Skeleton":
        """The skeleton restricted to `names` (each joint's parent is its nearest kept
        ancestor). Order follows `names`, which must list parents before children."""
        keep = [int(j) for j in self.indices(names)]
        pos = {j: i for i, j in enumerate(keep)}
        parents = []
        for j in keep:
            p = self.parents[j]
            while p >= 0 and p not in pos:
                p = self.parents[p]
            parents.append(pos[p] if p >= 0 else -1)
        return Skeleton(tuple(self.names[j] for j in keep), tuple(parents))


def _build_default() -> Skeleton:
    names = tuple(n for n, _ in _JOINTS)
    idx = {n: i for i, n in enumerate(names)}
    parents = tuple(-1 if p is None else idx[p] for _, p in _JOINTS)
    return Skeleton(names, parents)


#: The project's joint set (21 joints: Human3.6M's 17, then toes and hand ends).
SKELETON = _build_default()
#: Human3.6M's 17 joints alone, in the standard order.
H36M_SKELETON = SKELETON.subset(SKELETON.names[:H36M_JOINT_COUNT])

JOINT_NAMES = SKELETON.names
NUM_JOINTS = SKELETON.num_joints
