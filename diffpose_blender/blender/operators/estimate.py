"""The Estimate button: a modal operator that drains the backend while Blender stays live.

All of the work is `blender.estimate.EstimateJob`; this operator starts it, calls its
`step()` on a 0.1 s timer event, cancels it on Esc (or when diffpose.estimate_cancel is
pressed), and reports the ending in the info log. One estimate runs at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bpy


from ...core.errors import DiffPoseError
from .. import backend_link, estimate

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems
else:
    OperatorReturnItems = str

#: Seconds between the modal operator's looks at the backend's queue.
TICK_S = 0.1


class DIFFPOSE_OT_estimate(bpy.types.Operator):
    """Lift the source to 3D with the model (in the backend process) and keep the result
    as a new take; Esc cancels"""

    bl_idname = "diffpose.estimate"
    bl_label = "Estimate"
    bl_options = {"REGISTER"}

    _timer: bpy.types.Timer | None = None
    _job: estimate.EstimateJob | None = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        scene = context.scene
        if scene is None:
            return False
        if estimate.running() is not None:
            cls.poll_message_set("An estimate is already running; cancel it first")
            return False
        if not scene.diffpose.source_path:  # type: ignore[attr-defined]
            cls.poll_message_set("Choose a video or a 2D keypoint file first")
            return False
        return True

    def _start(self, context: bpy.types.Context) -> estimate.EstimateJob | None:
        scene = context.scene
        assert scene is not None
        device = str(scene.diffpose.device)  # type: ignore[attr-defined]
        try:
            backend = backend_link.get_backend(
                backend_link.settings_from_preferences(context, device=device))
            job = estimate.EstimateJob.start(scene, backend)
        except DiffPoseError as exc:       # BackendError is one
            settings = scene.diffpose  # type: ignore[attr-defined]
            settings.estimate_state, settings.estimate_message = "FAILED", str(exc)
            self.report({"ERROR"}, str(exc))
            return None
        estimate.set_running(job)
        return job

    def invoke(self, context: bpy.types.Context,
               event: bpy.types.Event) -> set[OperatorReturnItems]:
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        self._job = job
        wm = context.window_manager
        assert wm is not None
        self._timer = wm.event_timer_add(TICK_S, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        # Without a window (scripts): start it and let the caller drive estimate.running().
        return {"FINISHED"} if self._start(context) is not None else {"CANCELLED"}

    def modal(self, context: bpy.types.Context,
              event: bpy.types.Event) -> set[OperatorReturnItems]:
        job = self._job
        assert job is not None
        if event.type == "ESC":
            job.cancel()
        elif event.type != "TIMER":
            return {"PASS_THROUGH"}
        if not job.step():
            _redraw_sidebars(context)
            return {"PASS_THROUGH"}
        self._end(context)
        if job.state == "DONE":
            # The new take becomes its own undo step (a modal operator makes none).
            bpy.ops.ed.undo_push(message=f"DiffPose estimate: {job.take_name}")
            self.report({"INFO"}, job.message)
            return {"FINISHED"}
        self.report({"ERROR"} if job.state == "FAILED" else {"WARNING"}, job.message)
        return {"CANCELLED"}

    def cancel(self, context: bpy.types.Context) -> None:
        # Blender ends the modal (window closed, file loaded): stop the backend's work.
        if self._job is not None:
            self._job.cancel()
        self._end(context)

    def _end(self, context: bpy.types.Context) -> None:
        if self._timer is not None and context.window_manager is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        if estimate.running() is self._job:
            estimate.set_running(None)
        _redraw_sidebars(context)


class DIFFPOSE_OT_estimate_cancel(bpy.types.Operator):
    """Stop the running estimate; the scene keeps its takes as they were"""

    bl_idname = "diffpose.estimate_cancel"
    bl_label = "Cancel Estimate"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if estimate.running() is None:
            cls.poll_message_set("No estimate is running")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        estimate.cancel_running()
        return {"FINISHED"}


def _redraw_sidebars(context: bpy.types.Context) -> None:
    screen = context.screen
    for area in (screen.areas if screen is not None else ()):
        if area.type == "VIEW_3D":
            area.tag_redraw()


classes: tuple[type, ...] = (DIFFPOSE_OT_estimate, DIFFPOSE_OT_estimate_cancel)


