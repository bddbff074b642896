"""A rig's rest pose as plain data: what the retargeting math needs of an armature.

Blender's side (``blender/rigdata.py``) reads an armature into a `RestRig`; core never
imports ``bpy``. Everything here is in *armature space* (the armature object's local frame,
metres as the armature stores them, object transform not applied); `RestRig.world_matrix`
takes armature space to Blender world.

Conventions follow Blender's: a bone's rest orientation ``matrix`` is
``bone.matrix_local.to_3x3()``; its columns are the bone's X, Y, Z axes in armature space,
Y runs from head to tail, and X/Z carry the roll (whatever the rig's author chose). A pose
bone's ``rotation_quaternion`` is applied in that rest frame, after the parent's pose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DiffPoseError


@dataclass(frozen=True, eq=False)  # arrays inside: compare fields, not objects
class RestBone:
    """One bone at rest.

    name        the bone's name.
    parent      the parent bone's name, None for a root bone.
    head, tail  (3,) armature space, metres (armature object unscaled).
    matrix      (3, 3) rest orientation in armature space = ``bone.matrix_local.to_3x3()``:
                column 1 (Y) runs head -> tail, columns 0 and 2 hold the roll.
    use_connect the head is glued to the parent's tail (location keys have no effect).
    use_local_location  ``bone.use_local_location``: location keys are in the bone's own
                rest axes (Blender's default); False: in its parent's (armature axes for a
                bone without parent), as Rigify's IK hand controls have it.
    """

    name: str
    parent: str | None
    head: np.ndarray
    tail: np.ndarray
    matrix: np.ndarray
    use_connect: bool = False
    use_local_location: bool = True

    def __post_init__(self) -> None:
        for key, shape in (("head", (3,)), ("tail", (3,)), ("matrix", (3, 3))):
            value = np.array(getattr(self, key), dtype=np.float64)
            if value.shape != shape or not np.isfinite(value).all():
                raise DiffPoseError.at("<rig>", f"bone '{self.name}'", f"'{key}'",
                                       expected=f"expected finite numbers of shape {shape}, "
                                                f"got shape {value.shape}")
            value.flags.writeable = False  # rest data is never changed by anyone
            object.__setattr__(self, key, value)

    @property
    def length(self) -> float:
        """Head to tail, metres (armature units)."""
        return float(np.linalg.norm(self.tail - self.head))


@dataclass(frozen=True, eq=False)
class RestRig:
    """An armature at rest.

    name          the armature object's name.
    bones         every bone, parents before children (Blender's ``armature.bones`` order
                  satisfies this).
    world_matrix  (4, 4) the armature object's ``matrix_world`` (may hold scale): world =
                  world_matrix @ armature-space point.
    """

    name: str
    bones: tuple[RestBone, ...]
    world_matrix: np.ndarray = field(default_factory=lambda: np.eye(4))
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        wm = np.array(self.world_matrix, dtype=np.float64)
        if wm.shape != (4, 4) or not np.isfinite(wm).all():
            raise DiffPoseError.at("<rig>", f"armature '{self.name}'", "'world_matrix'",
                                   expected=f"expected a finite (4, 4) matrix, got shape "
                                            f"{wm.shape}")
        wm.flags.writeable = False
        object.__setattr__(self, "world_matrix", wm)
        object.__setattr__(self, "bones", tuple(self.bones))
        index: dict[str, int] = {}
        for i, bone in enumerate(self.bones):
            if bone.name in index:
                raise DiffPoseError.at("<rig>", f"armature '{self.name}'",
                                       expected=f"unique bone names, '{bone.name}' "
                                                f"appears twice")
            if bone.parent is not None and bone.parent not in index:
                raise DiffPoseError.at("<rig>", f"armature '{self.name}'",
                                       f"bone '{bone.name}'",
                                       expected=f"its parent '{bone.parent}' listed "
                                                f"before it")
            index[bone.name] = i
        object.__setattr__(self, "_index", index)

    def bone(self, name: str) -> RestBone:
        """The bone called `name`; DiffPoseError if the rig has none."""
        try:
            return self.bones[self._index[name]]
        except KeyError:
            raise DiffPoseError.at("<rig>", f"armature '{self.name}'",
                                   expected=f"a bone named '{name}'") from None

    def names(self) -> tuple[str, ...]:
        """Bone names in hierarchy order."""
        return tuple(b.name for b in self.bones)

    def __contains__(self, name: object) -> bool:
        return name in self._index
