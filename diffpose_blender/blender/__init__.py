"""The Blender side (DESIGN §2): properties, panels, operators, preferences.

Thin by design: operators gather inputs, call `core`, write results. This package may
import `bpy` and `core`, never torch, scipy or cv2 (a test enforces it).

Registration is one list: `CLASSES` registered in order, unregistered in reverse, and
every property pointer added in `register()` removed in `unregister()`.
"""

from __future__ import annotations

import bpy

from . import (backend_link, estimate, operators, overlay, panels, preferences, props, smooth,
               takes)

CLASSES: tuple[type, ...] = (
    preferences.DiffPosePreferences,
    takes.DiffPoseTakeItem,
    takes.DIFFPOSE_UL_takes,
    props.DiffPoseSceneSettings,
    *operators.CLASSES,
    *panels.CLASSES,
)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    props.attach()
    takes.register_handlers()
    estimate.register()
    smooth.register()
    backend_link.register()
    overlay.register_handlers()


def unregister() -> None:
    overlay.unregister_handlers()
    estimate.unregister()
    smooth.unregister()
    backend_link.unregister()
    takes.unregister_handlers()
    props.detach()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
