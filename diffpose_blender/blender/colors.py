"""Uncertainty colours on the rig: each driven bone's custom colour keyed per frame.

``pose.bones["NAME"].color.custom.normal`` / ``.select`` / ``.active`` are animatable
through the armature object's F-Curves (DESIGN §10), so the colours are keys in the bake's
action, written in bulk like the rotations. The colour *set* (``color.palette``) is not
animatable: it is switched to ``'CUSTOM'`` once, after the keys are written, and
``armature.show_bone_colors`` is turned on.

The user's own colours are kept on the object (custom property `SAVED_KEY`, JSON) the
first time a bake changes them, and `restore_user_colors` puts them back: palettes,
custom colours, ``show_bone_colors``, and removes the colour keys from the bakes' actions.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import bpy
from numpy.typing import ArrayLike

from ..core.colors import bone_state_colors, spread_to_rgb
from ..core.errors import DiffPoseError
from .animdata import FCurveWriter, remove_fcurves

#: Object custom property holding the user's colours from before the first coloured bake.
SAVED_KEY = "diffpose_saved_colors"
#: Action custom property naming the armature object a bake's action was made for.
ACTION_OWNER_KEY = "diffpose_armature"

_STATES = ("normal", "select", "active")


def bone_path(name: str) -> str:
    """Data path of pose bone `name` on the armature object."""
    return f'pose.bones["{bpy.utils.escape_identifier(name)}"]'


def key_colors(writer: FCurveWriter, bone_names: Sequence[str], frames: ArrayLike,
               spread_m: ArrayLike) -> None:
    """Key the custom colours of `bone_names` at `frames` from their spread.

    frames    (T,) scene frames.
    spread_m  (T, B) metres, one column per name in `bone_names`; colours follow the
              scale of `core.colors`. Keys are CONSTANT: a colour belongs to one frame.
    """
    states = bone_state_colors(spread_to_rgb(spread_m))  # type: ignore[arg-type]  # 3 x (T, B, 3)
    for b, name in enumerate(bone_names):
        path = bone_path(name)
        for state, rgb in zip(_STATES, states):
            for k in range(3):
                writer.write(f"{path}.color.custom.{state}", k, frames, rgb[:, b, k],
                             group=name, interpolation="CONSTANT")


def _armature(obj: bpy.types.Object) -> bpy.types.Armature:
    data = obj.data
    assert isinstance(data, bpy.types.Armature)
    return data


def _color(pose_bone: bpy.types.PoseBone) -> bpy.types.BoneColor:
    color = pose_bone.color
    assert color is not None  # pose bones always have one (4.0+)
    return color


def show_colors(obj: bpy.types.Object, bone_names: Sequence[str]) -> None:
    """Switch `bone_names` to their custom colours and turn bone colours on, saving the
    user's colours first (once: a second bake does not save the first bake's colours)."""
    armature = _armature(obj)
    pose = obj.pose
    assert pose is not None
    if obj.get(SAVED_KEY) is None:
        bones: dict[str, Any] = {}
        for pb in pose.bones:
            color = _color(pb)
            bones[pb.name] = {"palette": color.palette,
                              **{s: list(getattr(color.custom, s)) for s in _STATES}}
        obj[SAVED_KEY] = json.dumps({"show_bone_colors": bool(armature.show_bone_colors),
                                     "bones": bones})
    for name in bone_names:
        _color(pose.bones[name]).palette = "CUSTOM"
    armature.show_bone_colors = True


def restore_user_colors(obj: bpy.types.Object) -> int:
    """Undo what coloured bakes did to `obj`'s colours; returns the F-Curves removed.

    Colour keys go first (they would override restored values on the next frame change),
    from every action a bake made for this object; then palettes, custom colours and
    ``show_bone_colors`` are set back to what they were before the first coloured bake.
    DiffPoseError if there is nothing to restore.
    """
    if obj.type != "ARMATURE":
        raise DiffPoseError(f"object '{obj.name}': expected an armature, got a "
                            f"{obj.type.lower()} object")
    if obj.get(SAVED_KEY) is None:
        raise DiffPoseError(f"object '{obj.name}': no DiffPose colours to clear")
    try:
        saved = json.loads(obj[SAVED_KEY])
        bones = saved["bones"]
        show = bool(saved["show_bone_colors"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DiffPoseError(f"object '{obj.name}': custom property '{SAVED_KEY}' is "
                            f"damaged ({exc}); remove it and set the colours by hand") from exc
    removed = 0
    for action in bpy.data.actions:
        if action.get(ACTION_OWNER_KEY) == obj.name and action.library is None:
            removed += remove_fcurves(action, ("pose.bones[",),
                                      tuple(f".color.custom.{s}" for s in _STATES))
    pose = obj.pose
    assert pose is not None
    for name, colors in bones.items():
        pb = pose.bones.get(name)
        if pb is None:  # renamed or deleted since: nothing to restore it to
            continue
        color = _color(pb)
        color.palette = colors["palette"]
        for state in _STATES:
            setattr(color.custom, state, colors[state])
    _armature(obj).show_bone_colors = show
    del obj[SAVED_KEY]
    return removed
