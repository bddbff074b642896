"""The preferences' backend buttons: check, release the model, set up the environment.

Each returns at once: the check and the set-up are polled by timers in
`blender.backend_link`, which redraw the preferences as they move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bpy

from ...client.jobs import BackendError
from .. import backend_link

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems
else:
    OperatorReturnItems = str


class DIFFPOSE_OT_backend_check(bpy.types.Operator):
    """Start the backend if needed and show its versions and device (GPU name or CPU)"""

    bl_idname = "diffpose.backend_check"
    bl_label = "Check Backend"
    bl_options = {"REGISTER"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        try:
            backend = backend_link.current_backend() or backend_link.get_backend(
                backend_link.settings_from_preferences(context))
        except BackendError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        backend_link.start_check(backend)
        return {"FINISHED"}


class DIFFPOSE_OT_backend_release(bpy.types.Operator):
    """Free the memory the model takes in the backend (GPU memory included); the next
    estimate loads it again"""

    bl_idname = "diffpose.backend_release"
    bl_label = "Release Model"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        backend = backend_link.current_backend()
        if backend is None or not backend.alive:
            cls.poll_message_set("The backend is not running")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        backend = backend_link.current_backend()
        assert backend is not None
        backend.submit("release")      # its answer is not needed: fire and forget
        self.report({"INFO"}, "Asked the backend to release the model")
        return {"FINISHED"}


class DIFFPOSE_OT_backend_setup(bpy.types.Operator):
    """Create the add-on's own Python environment and install the backend's requirements
    into it with pip (needs the internet; torch is large: minutes). Blender stays usable"""

    bl_idname = "diffpose.backend_setup"
    bl_label = "Set Up Backend"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        job = backend_link.setup_job()
        if job is not None and job.state == "RUNNING":
            cls.poll_message_set("The set-up is already running")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        venv = backend_link.managed_venv_dir()
        steps, labels = backend_link.setup_commands(venv)
        job = backend_link.SetupJob(steps, venv.parent / "backend-setup.log", labels)
        try:
            backend_link.start_setup(job)
        except BackendError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Setting up the backend in {venv}; log: {job.log_path}")
        return {"FINISHED"}


class DIFFPOSE_OT_backend_setup_cancel(bpy.types.Operator):
    """Stop the running set-up (press Set Up Backend again to start over)"""

    bl_idname = "diffpose.backend_setup_cancel"
    bl_label = "Cancel Set-Up"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        job = backend_link.setup_job()
        return job is not None and job.state == "RUNNING"

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        job = backend_link.setup_job()
        if job is not None:
            job.cancel()
        return {"FINISHED"}


classes: tuple[type, ...] = (DIFFPOSE_OT_backend_check, DIFFPOSE_OT_backend_release,
                             DIFFPOSE_OT_backend_setup, DIFFPOSE_OT_backend_setup_cancel)
