"""Actions and F-Curves across Blender 4.2 to 5.0: the only module that checks versions.

Where the versions differ (DESIGN §9):

- 4.2, 4.3: an action holds its F-Curves directly (``Action.fcurves``, groups in
  ``Action.groups``); there are no slots.
- 4.4, 4.5: slotted (layered) actions. A data-block is animated by an action *and* a
  slot (``AnimData.action_slot``); F-Curves live in the channelbag of a keyframe strip
  for that slot. ``Action.fcurves`` still exists there as a legacy shim, but it is not
  used here so that 4.4+ takes one path.
- 5.0: ``Action.fcurves`` is gone; ``bpy_extras.anim_utils.action_ensure_channelbag_for_slot``
  creates the layer, strip and channelbag.

Everything else in the add-on goes through `new_action`, `fcurves_for` and
`write_fcurve` and never asks which Blender it runs in.

Keys are written in bulk (DESIGN §9): ``keyframe_points.add(n)``, one ``foreach_set``
for the coordinates and one for the interpolation, then ``FCurve.update()``; never
``keyframe_insert`` per frame.
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np
from numpy.typing import ArrayLike

#: Slotted actions (``Action.slots``, ``AnimData.action_slot``) exist from 4.4 on.
SLOTTED_ACTIONS: bool = bpy.app.version >= (4, 4, 0)

# Keyframe.interpolation as the integer foreach_set wants; looked up from RNA rather
# than written out, because enum values are not part of the documented API.
_INTERPOLATION = {
    name: bpy.types.Keyframe.bl_rna.properties["interpolation"]
    .enum_items[name].value  # type: ignore[attr-defined]
    for name in ("CONSTANT", "LINEAR", "BEZIER")
}


def new_action(obj: bpy.types.Object, name: str) -> bpy.types.Action:
    """Create a new, empty action for `obj` (with a slot for it on 4.4+), not assigned.

    The name is made unique by Blender (``walk``, ``walk.001``...); the caller reads
    ``action.name`` back. Nothing of `obj` changes here: `assign_action` does that once
    the keys are written, so that a failed bake can simply remove the action.
    """
    action = bpy.data.actions.new(name)
    if SLOTTED_ACTIONS:
        # The slot is named after the object, as Blender names the slots it creates.
        action.slots.new(id_type="OBJECT", name=obj.name)  # type: ignore[attr-defined]
    return action


def _slot(action: bpy.types.Action, obj: bpy.types.Object | None = None) -> Any:
    """The slot `obj` is animated through, else the action's first (ours have one)."""
    anim = obj.animation_data if obj is not None else None
    if anim is not None and anim.action == action and anim.action_slot:  # type: ignore[attr-defined]
        return anim.action_slot  # type: ignore[attr-defined]
    return action.slots[0]  # type: ignore[attr-defined]


def fcurves_for(action: bpy.types.Action, obj: bpy.types.Object | None = None) -> Any:
    """The F-Curve collection of `action` that animates `obj` (4.4+: that slot's
    channelbag; without `obj`, or where `obj` does not use `action`, the first slot's).

    It supports ``new(data_path, index=...)``, ``remove(fcurve)`` and iteration on every
    supported version.
    """
    if SLOTTED_ACTIONS:
        from bpy_extras import anim_utils

        return anim_utils.action_ensure_channelbag_for_slot(  # type: ignore[attr-defined]
            action, _slot(action, obj)).fcurves
    return action.fcurves  # type: ignore[attr-defined]


def _groups_for(action: bpy.types.Action) -> Any:
    if SLOTTED_ACTIONS:
        from bpy_extras import anim_utils

        return anim_utils.action_ensure_channelbag_for_slot(  # type: ignore[attr-defined]
            action, _slot(action)).groups
    return action.groups  # type: ignore[attr-defined]


class FCurveWriter:
    """Writes whole F-Curves into one new action, grouped (one group per bone).

    The channel collections are looked up once: on 4.4+ ``action_ensure_channelbag_for_slot``
    walks layers and strips on every call.
    """

    def __init__(self, action: bpy.types.Action) -> None:
        self.action = action
        self.fcurves = fcurves_for(action)
        self._all_groups = _groups_for(action)
        self._groups: dict[str, Any] = {}

    def group(self, name: str) -> Any:
        group = self._groups.get(name)
        if group is None:
            group = self._groups[name] = self._all_groups.new(name)
        return group

    def write(self, data_path: str, index: int, frames: ArrayLike, values: ArrayLike,
              group: str, interpolation: str = "LINEAR") -> bpy.types.FCurve:
        """One F-Curve: keys at `frames` (T,) scene frames with `values` (T,)."""
        return write_fcurve(self.fcurves, data_path, index, frames, values,
                            self.group(group), interpolation)


def write_fcurve(fcurves: Any, data_path: str, index: int, frames: ArrayLike,
                 values: ArrayLike, group: Any = None,
                 interpolation: str = "LINEAR") -> bpy.types.FCurve:
    """Create one F-Curve in `fcurves` and key it in bulk.

    frames  (T,) scene frame numbers, increasing (floats allowed).
    values  (T,) the property's values at those frames, in the property's own units
            (radians for rotations, metres for locations, 0..1 for colours).
    group   an action group (``FCurveWriter.group``) or None.
    """
    times = np.asarray(frames, dtype=np.float32)
    keys = np.asarray(values, dtype=np.float32)
    if times.shape != keys.shape or times.ndim != 1:
        raise ValueError(f"{data_path}[{index}]: frames {times.shape} and values "
                         f"{keys.shape} must be two 1-D arrays of one length")
    fcurve: bpy.types.FCurve = fcurves.new(data_path, index=index)
    if group is not None:
        fcurve.group = group
    points = fcurve.keyframe_points
    points.add(len(times))
    # co is (frame, value) interleaved; float32 is what Blender stores.
    points.foreach_set("co", np.column_stack((times, keys)).ravel())
    points.foreach_set("interpolation",
                       np.full(len(times), _INTERPOLATION[interpolation], dtype=np.int32))
    # Computes the handles from the new points (they start at the origin otherwise).
    fcurve.update()
    return fcurve


def assign_action(obj: bpy.types.Object, action: bpy.types.Action) -> None:
    """Make `action` (and its slot on 4.4+) the one that animates `obj`.

    The action `obj` had before is not edited; if nothing else uses it, it gets a fake
    user so that saving the file does not drop the user's animation.
    """
    anim = obj.animation_data or obj.animation_data_create()
    assert anim is not None
    previous = anim.action
    if previous is not None and previous != action and previous.users <= 1:
        previous.use_fake_user = True
    anim.action = action
    if SLOTTED_ACTIONS:
        anim.action_slot = _slot(action)  # type: ignore[attr-defined]


def remove_fcurves(action: bpy.types.Action, data_path_prefixes: tuple[str, ...],
                   data_path_suffixes: tuple[str, ...]) -> int:
    """Remove the F-Curves whose data path starts and ends as given; returns how many."""
    fcurves = fcurves_for(action)
    doomed = [fc for fc in fcurves if fc.data_path.startswith(data_path_prefixes)
              and fc.data_path.endswith(data_path_suffixes)]
    for fc in doomed:
        fcurves.remove(fc)
    return len(doomed)
