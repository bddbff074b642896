"""diffpose-blender: video or 2D keypoints to editable keyframes on your own rig.

This file is the Blender extension's entry point. It must stay importable in a plain
Python without Blender (the backend process imports the package), so `bpy` is imported
only inside `register()` / `unregister()`, through the `blender` subpackage.
"""

from __future__ import annotations

__version__ = "0.1.0"


def register() -> None:
    from . import blender

    blender.register()


def unregister() -> None:
    from . import blender

    blender.unregister()
