"""Read an armature object into core's `RestRig` (rest pose only, armature space).

Also the checks every operation that writes onto a rig makes first (`check_target`):
the object is an armature, it is not in edit mode, and neither it nor its armature data
is linked from a library (their animation could not be saved).
"""

from __future__ import annotations

import bpy
import numpy as np

from ..core.errors import DiffPoseError
from ..core.rig import RestBone, RestRig


def check_target(obj: bpy.types.Object | None) -> bpy.types.Object:
    """`obj` if it is an armature that can be read and animated; DiffPoseError if not."""
    if obj is None:
        raise DiffPoseError("no target armature: choose the rig to animate")
    where = f"object '{obj.name}'"
    if obj.type != "ARMATURE":
        raise DiffPoseError(f"{where}: expected an armature, got a {obj.type.lower()} "
                            f"object")
    if obj.mode == "EDIT":
        # Edit bones are not written back to data.bones until edit mode is left, so the
        # rest pose read here would be stale.
        raise DiffPoseError(f"{where}: the armature is in edit mode; leave edit mode "
                            f"(Tab) and try again")
    data = obj.data
    assert isinstance(data, bpy.types.Armature)
    if obj.library is not None or data.library is not None:
        library = obj.library or data.library
        assert library is not None
        raise DiffPoseError(f"{where}: the rig is linked from '{library.filepath}' and "
                            f"cannot be animated here; make a library override first "
                            f"(Object > Library Override > Make)")
    if not data.bones:
        raise DiffPoseError(f"{where}: the armature has no bones")
    return obj


def rest_rig(obj: bpy.types.Object | None) -> RestRig:
    """The rest pose of armature `obj` in armature space, metres, and its world matrix.

    Bones come in ``data.bones`` order (parents before children). Nothing of `obj` is
    changed.
    """
    obj = check_target(obj)
    data = obj.data
    assert isinstance(data, bpy.types.Armature)
    bones = []
    for bone in data.bones:
        matrix = np.array(bone.matrix_local, dtype=np.float64)
        bones.append(RestBone(
            name=bone.name,
            parent=bone.parent.name if bone.parent is not None else None,
            head=np.array(bone.head_local, dtype=np.float64),
            tail=np.array(bone.tail_local, dtype=np.float64),
            matrix=matrix[:3, :3],
            use_connect=bool(bone.use_connect),
            use_local_location=bool(bone.use_local_location),
        ))
    return RestRig(name=obj.name, bones=tuple(bones),
                   world_matrix=np.array(obj.matrix_world, dtype=np.float64))
