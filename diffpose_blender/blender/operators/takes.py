"""Take list operators: delete the selected take (undoable), move the selection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import bpy

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems
else:
    OperatorReturnItems = str


class DIFFPOSE_OT_take_delete(bpy.types.Operator):
    """Remove the selected take from this file's list (undo brings it back; its file is
    kept in the take folder)"""

    bl_idname = "diffpose.take_delete"
    bl_label = "Delete Take"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        from ..takes import poll_take_selected

        return poll_take_selected(cls, context)

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        scene = context.scene
        assert scene is not None
        settings = scene.diffpose  # type: ignore[attr-defined]
        index = settings.take_index
        name = settings.takes[index].name
        settings.takes.remove(index)
        settings.take_index = min(index, len(settings.takes) - 1)
        self.report({"INFO"}, f"Deleted take '{name}'")
        return {"FINISHED"}


classes: tuple[type, ...] = (DIFFPOSE_OT_take_delete,)
