"""Write a retargeted take onto an armature as a new action (the thin writer of DESIGN §2).

core's `RetargetResult` holds, per driven bone and frame, the pose bone's rotation as a
quaternion relative to the bone's rest (``pose_bone.rotation_quaternion`` values) and the
root bone's location. `bake` turns those into F-Curves of a new action, in bulk, in each
pose bone's own rotation mode (quaternion, any Euler order, or axis-angle), so the keys are
the ones an animator edits. It never changes the rest pose, bone rolls, rotation modes or
an existing action; if anything fails, the new action is removed and nothing else has been
touched (the object's assignment and colours change only after every key is written).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import bpy
import numpy as np
from numpy.typing import ArrayLike, NDArray
from mathutils import Euler, Quaternion

from ..core.errors import DiffPoseError
from ..core.rotations import quaternions_to_axis_angle
from .animdata import FCurveWriter, assign_action, new_action
from .colors import ACTION_OWNER_KEY, bone_path, key_colors, show_colors
from .rigdata import check_target

if TYPE_CHECKING:
    from ..core.retarget import RetargetResult

#: Action custom property: the take the action was baked from.
ACTION_TAKE_KEY = "diffpose_take"

EulerOrder = Literal["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"]


def _check_result(obj: bpy.types.Object, result: RetargetResult) -> None:
    """DiffPoseError naming the first thing in `result` that cannot be baked onto `obj`."""
    where = f"bake onto '{obj.name}'"
    names = tuple(result.bone_names)
    rotations = np.asarray(result.rotations)
    frames = np.asarray(result.frames)
    num_frames = len(frames)
    if num_frames == 0:
        raise DiffPoseError(f"{where}: the take has no frames")
    if frames.ndim != 1 or not np.isfinite(frames).all():
        raise DiffPoseError(f"{where}: frames must be one finite frame number per frame")
    if len(set(names)) != len(names):
        raise DiffPoseError(f"{where}: a bone is driven twice in {names}")
    if rotations.shape != (num_frames, len(names), 4):
        raise DiffPoseError(f"{where}: rotations have shape {rotations.shape}, expected "
                            f"({num_frames}, {len(names)}, 4)")
    if np.shape(result.spread) != (num_frames, len(names)):
        raise DiffPoseError(f"{where}: spread has shape {np.shape(result.spread)}, "
                            f"expected ({num_frames}, {len(names)})")
    locations = _locations(result)
    for name, location in locations.items():
        if np.shape(location) != (num_frames, 3):
            raise DiffPoseError(f"{where}: location of '{name}' has shape "
                                f"{np.shape(location)}, expected ({num_frames}, 3)")
    for key, array in (("rotations", rotations),
                       *((f"location of '{n}'", v) for n, v in locations.items())):
        bad = ~np.isfinite(np.asarray(array)).reshape(num_frames, -1).all(axis=1)
        if bad.any():
            raise DiffPoseError(f"{where}: {key}, frame {int(np.argmax(bad))}: expected "
                                f"finite numbers, got NaN or infinity")
    pose = obj.pose
    assert pose is not None
    missing = [n for n in (*names, *locations) if n not in pose.bones]
    if missing:
        raise DiffPoseError(f"{where}: the rig has no bone named "
                            f"{', '.join(repr(n) for n in missing[:5])}")
    for path, value in _properties(result).items():
        try:
            current = obj.path_resolve(path)
        except ValueError:
            raise DiffPoseError(f"{where}: the rig has no property {path}") from None
        if not isinstance(current, (int, float)) or not np.isfinite(value):
            raise DiffPoseError(f"{where}: property {path} = {value!r}: expected a finite "
                                f"number for a number property")


def _locations(result: RetargetResult) -> dict[str, ArrayLike]:
    """Bone -> (T, 3) ``pose_bone.location`` keys: the root bone's (root motion) and any
    others the retarget poses by location (IK targets and poles)."""
    out: dict[str, ArrayLike] = {result.root_bone: result.root_location}
    for name, location in getattr(result, "bone_locations", {}).items():
        out.setdefault(name, location)
    return out


def _properties(result: RetargetResult) -> dict[str, float]:
    """Object data path -> value held over the whole take (``result.properties``, when
    the retarget sets any): switches the rig needs to show the keyed controls, such as
    Rigify's ``pose.bones["upper_arm_parent.L"]["IK_FK"]`` = 1.0 for FK."""
    return dict(getattr(result, "properties", {}) or {})


def quaternions_to_euler(quats: NDArray[np.float64], order: EulerOrder
                         ) -> NDArray[np.float64]:
    """(T, 4) w, x, y, z -> (T, 3) Euler angles, radians, in Blender's `order` ('XYZ'...).

    Each frame's angles are the equivalent set closest to the previous frame's
    (``to_euler(order, compatible)``), so the curves have no 360° jumps or gimbal flips
    that are not in the motion.
    """
    out = np.empty((len(quats), 3))
    previous: Euler | None = None
    for t, q in enumerate(quats):
        euler = (Quaternion(q).to_euler(order, previous) if previous is not None
                 else Quaternion(q).to_euler(order))
        out[t] = euler
        previous = euler
    return out


def _write_rotation(writer: FCurveWriter, pose_bone: bpy.types.PoseBone,
                    frames: NDArray[np.float64], quats: NDArray[np.float64]) -> None:
    """Key `pose_bone`'s rotation in the rotation mode it already has."""
    path = bone_path(pose_bone.name)
    mode = pose_bone.rotation_mode
    if mode == "QUATERNION":
        prop, values = "rotation_quaternion", quats
    elif mode == "AXIS_ANGLE":
        prop, values = "rotation_axis_angle", quaternions_to_axis_angle(quats)
    else:  # one of the six Euler orders
        prop, values = "rotation_euler", quaternions_to_euler(quats, mode)
    for k in range(values.shape[1]):
        writer.write(f"{path}.{prop}", k, frames, values[:, k], group=pose_bone.name)


def bake(obj: bpy.types.Object | None, result: RetargetResult, action_name: str,
         start_frame: int = 1, colors: bool = True) -> bpy.types.Action:
    """Bake `result` onto armature `obj` as a new action named (after) `action_name`.

    Keys go on scene frames ``start_frame + result.frames``: every driven bone's rotation
    (in its own rotation mode), the root bone's location (metres, in its rest frame) and
    those of other located bones (``result.bone_locations``: IK targets, poles), the
    rig's switches in ``result.properties`` (one constant key each), and
    with `colors` each driven bone's custom colour from its spread (`core.colors`).
    Returns the new action, assigned to `obj` (with its slot on 4.4+). DiffPoseError for
    an object or result that cannot be baked; the scene is then unchanged.
    """
    obj = check_target(obj)
    _check_result(obj, result)
    pose = obj.pose
    assert pose is not None
    frames = start_frame + np.asarray(result.frames, dtype=np.float64)
    rotations = np.asarray(result.rotations, dtype=np.float64)
    anim = obj.animation_data
    action_before = anim.action if anim is not None else None
    action = new_action(obj, action_name)
    try:
        writer = FCurveWriter(action)
        for b, name in enumerate(result.bone_names):
            _write_rotation(writer, pose.bones[name], frames, rotations[:, b])
        for name, values in _locations(result).items():
            location = np.asarray(values, dtype=np.float64)
            for k in range(3):
                writer.write(f"{bone_path(name)}.location", k, frames, location[:, k],
                             group=name)
        for path, value in _properties(result).items():
            # One key: constant extrapolation holds it over the take and beyond.
            writer.write(path, 0, frames[:1], [value], group="Properties",
                         interpolation="CONSTANT")
        if colors:
            key_colors(writer, result.bone_names, frames, np.asarray(result.spread))
        action[ACTION_OWNER_KEY] = obj.name
        action[ACTION_TAKE_KEY] = action_name
        assign_action(obj, action)
        if colors:
            show_colors(obj, result.bone_names)
    except BaseException:
        # Whatever failed, the user's scene must not keep a half-written action.
        anim = obj.animation_data
        if anim is not None and anim.action == action:
            anim.action = action_before
        bpy.data.actions.remove(action)
        raise
    return action
