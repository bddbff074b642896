"""Export operators: the baked armature as FBX (Unity / Unreal / Blender presets) or BVH.

The work and the reasons for every exporter setting live in `blender.export`; these
operators only take the file path, the preset and the armature (by name, defaulting to
the active object) and report errors.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import bpy
from bpy.props import EnumProperty, StringProperty

from ...core.errors import DiffPoseError

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems
else:
    OperatorReturnItems = str


def _armature(context: bpy.types.Context, name: str) -> bpy.types.Object:
    """The armature called `name`, or the active object when `name` is empty."""
    obj = bpy.data.objects.get(name) if name else context.active_object
    if obj is None:
        raise DiffPoseError(f"no object named '{name}'" if name else
                            "no active object: select the baked armature")
    if obj.type != "ARMATURE":
        raise DiffPoseError(f"object '{obj.name}': expected an armature, got {obj.type}")
    return obj


def _poll_armature(cls: type[bpy.types.Operator], context: bpy.types.Context) -> bool:
    obj = context.active_object
    if obj is None or obj.type != "ARMATURE":
        cls.poll_message_set("Select the baked armature first")
        return False
    return True


def _open_file_browser(op: bpy.types.Operator, context: bpy.types.Context, ext: str
                       ) -> set[OperatorReturnItems]:
    """Show Blender's file browser for `op`, suggesting <blend file name><ext>."""
    if not op.filepath:  # type: ignore[attr-defined]
        stem = os.path.splitext(bpy.data.filepath)[0] if bpy.data.filepath else "untitled"
        op.filepath = stem + ext  # type: ignore[attr-defined]
    wm = context.window_manager
    assert wm is not None
    wm.fileselect_add(op)
    return {"RUNNING_MODAL"}


def _preset_items() -> list[tuple[str, str, str]]:
    from ..export import FBX_PRESETS

    return [(key, p.label, p.description) for key, p in FBX_PRESETS.items()]


class DIFFPOSE_OT_export_fbx(bpy.types.Operator):
    """Export the baked armature and its meshes as FBX for Unity, Unreal or Blender"""

    bl_idname = "diffpose.export_fbx"
    bl_label = "Export FBX"
    bl_options = {"REGISTER"}

    filepath: StringProperty(  # type: ignore[valid-type]
        name="File", description="FBX file to write", subtype="FILE_PATH", default="")
    filter_glob: StringProperty(  # type: ignore[valid-type]
        default="*.fbx", options={"HIDDEN"})
    preset: EnumProperty(  # type: ignore[valid-type]
        name="Preset", description="Target application: axes, scale and bones",
        items=_preset_items(), default="BLENDER")
    armature: StringProperty(  # type: ignore[valid-type]
        name="Armature", description="Armature object to export (empty: the active "
                                     "object)", default="")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _poll_armature(cls, context)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event
               ) -> set[OperatorReturnItems]:
        return _open_file_browser(self, context, ".fbx")

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        from ..export import export_fbx

        try:
            obj = _armature(context, self.armature)
            export_fbx(obj, bpy.path.abspath(self.filepath), self.preset)
        except DiffPoseError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"wrote {self.filepath} ({self.preset.title()} preset)")
        return {"FINISHED"}


class DIFFPOSE_OT_export_bvh(bpy.types.Operator):
    """Export the baked armature's action as BVH (Z up, metres)"""

    bl_idname = "diffpose.export_bvh"
    bl_label = "Export BVH"
    bl_options = {"REGISTER"}

    filepath: StringProperty(  # type: ignore[valid-type]
        name="File", description="BVH file to write", subtype="FILE_PATH", default="")
    filter_glob: StringProperty(  # type: ignore[valid-type]
        default="*.bvh", options={"HIDDEN"})
    armature: StringProperty(  # type: ignore[valid-type]
        name="Armature", description="Armature object to export (empty: the active "
                                     "object)", default="")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _poll_armature(cls, context)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event
               ) -> set[OperatorReturnItems]:
        return _open_file_browser(self, context, ".bvh")

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        from ..export import export_bvh

        try:
            obj = _armature(context, self.armature)
            export_bvh(obj, bpy.path.abspath(self.filepath))
        except DiffPoseError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"wrote {self.filepath}")
        return {"FINISHED"}


classes: tuple[type, ...] = (DIFFPOSE_OT_export_fbx, DIFFPOSE_OT_export_bvh)
