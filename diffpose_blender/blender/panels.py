"""The DiffPose tab in the 3D Viewport sidebar, laid out as the workflow reads."""

from __future__ import annotations

import bpy


class DIFFPOSE_PT_main(bpy.types.Panel):
    bl_label = "DiffPose"
    bl_idname = "DIFFPOSE_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "DiffPose"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        if layout is None:
            return
        layout.label(text="Video or 2D keypoints to keyframes")


class DIFFPOSE_PT_source(bpy.types.Panel):
    bl_label = "Source"
    bl_idname = "DIFFPOSE_PT_source"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "DiffPose"
    bl_parent_id = "DIFFPOSE_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        scene = context.scene
        if layout is None or scene is None:
            return
        settings = scene.diffpose  # type: ignore[attr-defined]
        layout.prop(settings, "source_path", text="")
        layout.operator("diffpose.load_source", icon="FILE_REFRESH")
        if settings.source_format:
            col = layout.column(align=True)
            col.label(text=f"Format: {settings.source_format}")
            if settings.source_frames:
                col.label(text=f"Frames: {settings.source_frames} "
                               f"({settings.source_frames_with_person} with a person)")
            if settings.image_width:
                col.label(text=f"Image: {settings.image_width} x {settings.image_height} px")
        layout.prop(settings, "fps")


CLASSES: tuple[type, ...] = (DIFFPOSE_PT_main, DIFFPOSE_PT_source)
