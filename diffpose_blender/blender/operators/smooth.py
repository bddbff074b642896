"""The Smooth Take button: smooth the selected take now (blender/smooth.py does the work).

The settings already re-smooth by themselves when they change; the button is there for a
take that has never been smoothed, after a failure, or after the backend changed.
It returns at once: the backend smooths while Blender stays live, and a timer keeps the
result beside the take.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bpy

from ...core.errors import DiffPoseError
from .. import smooth

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems
else:
    OperatorReturnItems = str


class DIFFPOSE_OT_smooth(bpy.types.Operator):
    """Remove jitter from the selected take with the settings above (the take as the
    model made it is kept; preview and bake use the smoothed one)"""

    bl_idname = "diffpose.smooth"
    bl_label = "Smooth Take"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        from ..takes import poll_take_selected

        scene = context.scene
        if scene is None or not poll_take_selected(cls, context):
            return False
        if scene.diffpose.smooth_method == "NONE":  # type: ignore[attr-defined]
            cls.poll_message_set("Smoothing is set to None")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        scene = context.scene
        assert scene is not None
        try:
            job = smooth.start(scene)
        except DiffPoseError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, "smoothing the take" if job is not None else
                    "the take is already smoothed with these settings")
        return {"FINISHED"}


classes: tuple[type, ...] = (DIFFPOSE_OT_smooth,)
