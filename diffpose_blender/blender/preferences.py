"""Add-on preferences: where the backend (the model process) runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import bpy

from .addon import ADDON_MODULE

BACKEND_MODES = (
    ("MANAGED", "Managed environment",
     "A Python environment that the add-on creates in its own user folder and fills "
     "with the backend's requirements"),
    ("INTERPRETER", "Existing Python",
     "A Python interpreter you already have, with torch, SciPy and OpenCV installed"),
    ("REMOTE", "Remote server",
     "A backend already running on another machine (for example a GPU server), "
     "reached over TCP with a shared token"),
)


class DiffPosePreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_MODULE

    backend_mode: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Backend",
        description="Where the pose model runs; Blender itself never runs it",
        items=BACKEND_MODES,
        default="MANAGED",
    )
    python_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Python",
        description="Path of the Python interpreter that runs the backend "
                    "(Existing Python mode)",
        subtype="FILE_PATH",
        default="",
    )
    remote_host: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Host",
        description="Name or address of the machine that runs the backend server",
        default="127.0.0.1",
    )
    remote_port: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Port",
        description="TCP port the backend server listens on",
        default=8765, min=1, max=65535,
    )
    token_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Token file",
        description="File holding the shared secret the server was started with; the "
                    "token itself is never stored in the .blend",
        subtype="FILE_PATH",
        default="",
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        if layout is None:
            return
        layout.prop(self, "backend_mode")
        if self.backend_mode == "INTERPRETER":
            layout.prop(self, "python_path")
        elif self.backend_mode == "REMOTE":
            col = layout.column(align=True)
            col.prop(self, "remote_host")
            col.prop(self, "remote_port")
            col.prop(self, "token_path")
        self._draw_backend(layout)

    def _draw_backend(self, layout: bpy.types.UILayout) -> None:
        """Set-up (managed mode), check and release; their state is polled by timers in
        backend_link, which redraw this panel."""
        # Imported here: backend_link imports this module (get_preferences).
        from . import backend_link

        if self.backend_mode == "MANAGED":
            box = layout.box()
            venv = backend_link.managed_venv_dir()
            ready = backend_link.venv_python(venv).is_file()
            box.label(text=f"Environment: {venv}" + ("" if ready else " (not set up)"),
                      icon="CHECKMARK" if ready else "ERROR")
            row = box.row(align=True)
            row.operator("diffpose.backend_setup",
                         text="Set Up Backend Again" if ready else "Set Up Backend",
                         icon="IMPORT")
            job = backend_link.setup_job()
            if job is not None:
                if job.state == "RUNNING":
                    row.operator("diffpose.backend_setup_cancel", icon="CANCEL")
                col = box.column(align=True)
                col.label(text=f"{job.state.title()}: {job.message}")
                col.label(text=f"Log: {job.log_path}")
                for line in job.log_tail():
                    col.label(text=line[:120])
        box = layout.box()
        row = box.row(align=True)
        row.operator("diffpose.backend_check", icon="PLUGIN")
        row.operator("diffpose.backend_release", icon="TRASH")
        for line in backend_link.check_lines():
            box.label(text=line)


def get_preferences(context: bpy.types.Context) -> DiffPosePreferences | None:
    """The add-on's preferences, or None when the add-on is not enabled by module name."""
    prefs = context.preferences
    if prefs is None:
        return None
    addon = prefs.addons.get(ADDON_MODULE)
    if addon is None:
        return None
    result = addon.preferences
    if TYPE_CHECKING:
        assert isinstance(result, DiffPosePreferences)
    return result  # type: ignore[return-value]
