"""Bake a take onto the user's rig, and clear the uncertainty colours again.

``diffpose.bake`` is what the panel's button and the headless ``cli run`` both call:
read the take (core), place it in the world (core.world), find out which rig it is
(core.rigmap), retarget (core.retarget), then write a new action (blender.bake).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import bpy

from ...core.errors import DiffPoseError

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems
else:
    OperatorReturnItems = str


def _target(context: bpy.types.Context, name: str) -> bpy.types.Object | None:
    """The object called `name`, or the active object when `name` is empty."""
    if name:
        return bpy.data.objects.get(name)
    return context.active_object


def _take_name(path: str) -> str:
    """The take's name from its file: ``walk.take.npz`` and ``walk.npz`` give ``walk``."""
    name = os.path.basename(path)
    for suffix in (".npz", ".take"):
        name = name.removesuffix(suffix)
    return name or "take"


class DIFFPOSE_OT_bake(bpy.types.Operator):
    """Retarget a take onto an armature and key it as a new action named after the take"""

    bl_idname = "diffpose.bake"
    bl_label = "Bake Take onto Rig"
    bl_options = {"REGISTER", "UNDO"}

    take_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Take", description="The take file (.npz) written by the lifting step",
        subtype="FILE_PATH", default="")
    armature: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Armature",
        description="Name of the armature object to animate; empty: the active object",
        default="")
    rig_map_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Rig map",
        description="A rig map JSON file (schema in rig_maps/README.md); empty: detect "
                    "the rig from its bone names",
        subtype="FILE_PATH", default="")
    root_motion: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Root motion",
        description="Move the character through the scene as in the video; off: in place",
        default=True)
    foot_lock: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Foot lock",
        description="Keep feet still while they touch the ground (removes foot sliding)",
        default=True)
    colors: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Uncertainty colours",
        description="Colour each driven bone per frame by how unsure the model was "
                    "(green: within 2 cm, yellow: 5 cm, red: 10 cm or more)",
        default=True)
    start_frame: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Start frame", description="Scene frame of the take's first frame",
        default=1)
    action_name: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Action", description="Name of the new action; empty: the take's file name",
        default="")
    use_range: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Part of the take",
        description="Bake only the scene frames First to Last; off: the whole take",
        default=False)
    frame_first: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="First", description="First scene frame to bake (with Part of the take)",
        default=1)
    frame_last: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Last", description="Last scene frame to bake, inclusive (with Part of the "
                                 "take)",
        default=250)
    set_frame_range: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Set frame range",
        description="Set the scene's frame range to the baked frames", default=True)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if context.scene is None:
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        scene = context.scene
        assert scene is not None
        try:
            action, notes = self._bake(context)
        except DiffPoseError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for note in notes:
            self.report({"INFO"}, note)
        frame_range = action.frame_range
        if self.set_frame_range:
            scene.frame_start, scene.frame_end = int(frame_range[0]), int(frame_range[1])
        self.report({"INFO"}, f"baked '{action.name}': frames {int(frame_range[0])} to "
                              f"{int(frame_range[1])}")
        return {"FINISHED"}

    def _bake(self, context: bpy.types.Context) -> tuple[bpy.types.Action, list[str]]:
        # Imported here: core's readers and math are not needed to register the add-on.
        from ...core.retarget import RetargetOptions, retarget
        from ...core.rigmap import detect_rig, load_rig_map
        from ...core.take import read_take
        from ...core.world import take_to_world
        from ..bake import bake
        from ..rigdata import rest_rig

        if not self.take_path:
            raise DiffPoseError("no take file: choose the take to bake")
        path = bpy.path.abspath(self.take_path)
        obj = _target(context, self.armature)
        if obj is None:
            raise DiffPoseError(f"no object named '{self.armature}'" if self.armature
                                else "no target armature: select the rig to animate")
        rig = rest_rig(obj)  # checks it is an armature that can be animated
        take = read_take(path)
        motion = take_to_world(take)
        if self.rig_map_path:
            detection = detect_rig(rig.names(),
                                   [load_rig_map(bpy.path.abspath(self.rig_map_path))])
        else:
            detection = detect_rig(rig.names())
        result = retarget(motion, rig, detection.rig_map,
                          RetargetOptions(root_motion=self.root_motion,
                                          foot_lock=self.foot_lock))
        if self.use_range:
            from ...core.retarget import select_frames

            if self.frame_first > self.frame_last:
                raise DiffPoseError(f"bake range: First ({self.frame_first}) is after Last "
                                    f"({self.frame_last})")
            result = select_frames(result, self.frame_first - self.start_frame,
                                   self.frame_last - self.start_frame)
        name = self.action_name or _take_name(path)
        action = bake(obj, result, name, start_frame=self.start_frame, colors=self.colors)
        return action, [detection.report(), *result.report]


class DIFFPOSE_OT_colors_clear(bpy.types.Operator):
    """Remove the uncertainty colours and give the rig back the bone colours it had"""

    bl_idname = "diffpose.colors_clear"
    bl_label = "Clear Uncertainty Colours"
    bl_options = {"REGISTER", "UNDO"}

    armature: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Armature",
        description="Name of the armature object; empty: the active object", default="")

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        from ..colors import restore_user_colors

        obj = _target(context, self.armature)
        try:
            if obj is None:
                raise DiffPoseError("no armature: select the rig to clear")
            removed = restore_user_colors(obj)
        except DiffPoseError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"'{obj.name}': bone colours restored, {removed} colour "
                              f"curves removed")
        return {"FINISHED"}


classes: tuple[type, ...] = (DIFFPOSE_OT_bake, DIFFPOSE_OT_colors_clear)
