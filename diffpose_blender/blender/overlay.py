"""The hypothesis preview: ghost skeletons of the active take drawn in the 3D viewport.

A ``POST_VIEW`` draw handler of ``SpaceView3D`` (so the GPU matrices are the view's:
positions are world metres) draws, at the current frame, the N hypotheses of the selected
take as thin skeletons where the baked rig stands, coloured by spread on `core.colors`'
scale. The numbers come from `core.ghosts` (tested without a GPU); this module only finds
the inputs in the scene and hands the segments to the ``gpu`` module.

Frames: take frame 0 sits at scene frame ``scene.diffpose.bake_start_frame``, the frame
the panel's Bake button bakes it to. Placement: ``core.world.take_to_world`` (the frame
``diffpose.bake`` retargets from); when an armature shows an action baked from this take,
its object matrix is applied too, so ghosts follow a rig that was moved after the bake.

Shader: ``POLYLINE_SMOOTH_COLOR``, built into both Blender 4.2 and 5.0 (wide lines of the
core profile are deprecated, the polyline shaders draw width themselves). Drawn without
depth test: the ghosts are a guide and must stay visible inside the character's mesh.

The handler is added in `register_handlers` and removed in `unregister_handlers`; it is
also removed on ``load_pre`` (with the cached ghosts of the old file) and added again on
``load_post``, so nothing of one file is drawn over the next.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar, cast

import bpy
import numpy as np
from bpy.app.handlers import persistent as _untyped_persistent
from numpy.typing import NDArray

from ..core.errors import DiffPoseError
from ..core.ghosts import Ghosts, ghost_lines, take_ghosts

#: Ghost line width in pixels.
LINE_WIDTH_PX = 2.0
#: Ghost colour with uncertainty colours off (sRGB).
PLAIN_RGB = (0.85, 0.85, 0.85)
#: Action custom property a bake writes with the take's name (`blender.bake`).
_ACTION_TAKE_KEY = "diffpose_take"

_F = TypeVar("_F", bound=Callable[..., Any])
#: `bpy.app.handlers.persistent` (keeps a handler across file loads), typed.
persistent = cast(Callable[[_F], _F], _untyped_persistent)

_handle: Any = None
# Ghosts of the last take drawn, by (file path, modification time): a take's world
# placement is computed once, not on every redraw.
_cache: dict[tuple[str, float], Ghosts] = {}


def ghosts_for(path: str, take: Any) -> Ghosts:
    """`core.ghosts.take_ghosts` of the take read from `path`, cached by path and mtime."""
    import os

    key = (path, os.path.getmtime(path))
    hit = _cache.get(key)
    if hit is None:
        _cache.clear()
        hit = _cache[key] = take_ghosts(take)
    return hit


def _take_names(item: Any) -> set[str]:
    """Names a bake of `item` carries in its action (`ACTION_TAKE_KEY`): the item's name
    (the panel's Bake passes it) or its file name without endings (the operator's
    default)."""
    import os

    stem = os.path.basename(item.filepath)
    for suffix in (".npz", ".take"):
        stem = stem.removesuffix(suffix)
    return {item.name, stem}


def baked_armature(scene: bpy.types.Scene, item: Any) -> bpy.types.Object | None:
    """The armature showing an action baked from take `item`: the panel's target rig
    first, then any armature of the scene; None when none shows one."""
    names = _take_names(item)
    target = scene.diffpose.target_armature  # type: ignore[attr-defined]
    candidates = [target] if target is not None else []
    candidates += [o for o in scene.objects if o.type == "ARMATURE" and o != target]
    for obj in candidates:
        anim = obj.animation_data
        action = anim.action if anim is not None else None
        if action is not None and action.get(_ACTION_TAKE_KEY) in names:
            found: bpy.types.Object = obj
            return found
    return None


def take_frame(scene: bpy.types.Scene) -> int:
    """The take frame shown at the scene's current frame (may be outside the take)."""
    return int(scene.frame_current) - int(scene.diffpose.bake_start_frame)  # type: ignore[attr-defined]


def scene_lines(scene: bpy.types.Scene
                ) -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
    """The ghost segments to draw for `scene` now: positions (2S, 3) world metres and
    colours (2S, 4) RGBA, or None when the preview is off, there is no readable take,
    or nothing to draw at this frame."""
    from . import takes

    settings = scene.diffpose  # type: ignore[attr-defined]
    if not settings.show_hypotheses:
        return None
    from .smooth import bake_path

    item = takes.active_item(scene)
    if item is None:
        return None
    # What the bake uses (the smoothed take); the raw one while that is being made.
    path = bake_path(scene, item) or takes.take_path(item)
    try:
        take = takes.read_cached(path)
        ghosts = ghosts_for(str(path), take)
    except (DiffPoseError, OSError, ValueError):
        return None
    rig = baked_armature(scene, item)
    matrix = np.array(rig.matrix_world) if rig is not None else None
    positions, colors = ghost_lines(ghosts, take_frame(scene),
                                    hypothesis=settings.preview_hypothesis,
                                    opacity=settings.ghost_opacity,
                                    colored=settings.ghost_colors, matrix=matrix,
                                    plain_rgb=PLAIN_RGB)
    if not len(positions):
        return None
    return positions, colors


def draw_lines(positions: NDArray[np.float32], colors: NDArray[np.float32],
               line_width: float = LINE_WIDTH_PX) -> None:
    """Draw segments (pairs of rows of `positions`, with per-vertex RGBA `colors`) with
    the current GPU matrices into the bound framebuffer, alpha-blended, no depth test."""
    import gpu
    from gpu_extras.batch import batch_for_shader

    shader = gpu.shader.from_builtin("POLYLINE_SMOOTH_COLOR")
    batch = batch_for_shader(shader, "LINES", {"pos": cast(Any, positions),
                                                 "color": cast(Any, colors)})
    _x, _y, width, height = gpu.state.viewport_get()
    shader.uniform_float("viewportSize", (float(width), float(height)))
    shader.uniform_float("lineWidth", float(line_width))
    gpu.state.blend_set("ALPHA")
    gpu.state.depth_test_set("NONE")
    try:
        batch.draw(shader)
    finally:
        gpu.state.blend_set("NONE")


def draw_scene(scene: bpy.types.Scene | None) -> None:
    """Draw `scene`'s ghosts with the current GPU matrices (what the handler does)."""
    if scene is None or not hasattr(scene, "diffpose"):
        return
    lines = scene_lines(scene)
    if lines is not None:
        draw_lines(*lines)


def _draw_handler() -> None:
    draw_scene(bpy.context.scene)


def add_draw_handler() -> None:
    global _handle
    if _handle is None:
        _handle = bpy.types.SpaceView3D.draw_handler_add(_draw_handler, (), "WINDOW",
                                                         "POST_VIEW")


def remove_draw_handler() -> None:
    global _handle
    if _handle is not None:
        bpy.types.SpaceView3D.draw_handler_remove(_handle, "WINDOW")
        _handle = None
    _cache.clear()


def is_drawing() -> bool:
    """Whether the draw handler is installed (for tests and the panel)."""
    return _handle is not None


@persistent
def _on_load_pre(*_args: Any) -> None:
    remove_draw_handler()


@persistent
def _on_load_post(*_args: Any) -> None:
    add_draw_handler()


def register_handlers() -> None:
    add_draw_handler()
    for handlers, fn in ((bpy.app.handlers.load_pre, _on_load_pre),
                         (bpy.app.handlers.load_post, _on_load_post)):
        if fn not in handlers:
            handlers.append(fn)


def unregister_handlers() -> None:
    for handlers, fn in ((bpy.app.handlers.load_pre, _on_load_pre),
                         (bpy.app.handlers.load_post, _on_load_post)):
        while fn in handlers:
            handlers.remove(fn)
    remove_draw_handler()
