"""Export a baked armature as FBX (with presets for Unity, Unreal and Blender) or BVH.

Both exports run Blender's own exporters (``io_scene_fbx`` and ``io_anim_bvh``) with the
settings below; this module only chooses the settings, selects what goes into the file,
sets the frame range to the armature's action, and restores the user's selection, active
object and frame range afterwards. Files are written to a temporary name beside the
target and renamed into place, so a failed export leaves nothing half-written.

What goes into an FBX: the armature and the meshes it deforms (children of the armature
or meshes with an Armature modifier pointing at it), nothing else (``use_selection`` with
exactly those selected, ``object_types`` armature and mesh). The animation is the
armature's active action over its own frame range, baked at every frame
(``bake_anim_step`` 1) with ``bake_anim_simplify_factor`` 0: the exporter's curve
simplification would drop keys the bake wrote on purpose (an animator's edit points), so
it is off; ``bake_anim_use_all_actions`` and NLA strips are off so that exactly the baked
take is exported; ``bake_anim_force_startend_keying`` keeps the first and last frames
keyed. Leaf bones are never added (``add_leaf_bones`` off): they are an extra ``_end``
bone per chain that Unity and Unreal show as real bones and that a re-import into Blender
keeps. Bone axes stay Blender's (primary Y, secondary X) and no "apply transform" is
used: Blender documents ``bake_space_transform`` as broken with armatures.

Scale. Blender works in metres, FBX files declare their unit (``UnitScaleFactor``, in
centimetres). With ``apply_unit_scale`` on, ``apply_scale_options`` decides where the
factor 100 goes: FBX_SCALE_NONE writes centimetres, putting the 100 into the transforms of
the top-level objects (the armature object gets a scale of 100) and declaring
centimetres (factor 1); FBX_SCALE_ALL leaves the data in metres, with no extra scale on
any object, and declares metres (factor 100).

Presets (`FBX_PRESETS`; the test checks the axes and unit each one writes):

- **Unity**: up Y, forward -Z (Unity's importer expects Y up and turns the right-handed
  file into its left-handed space by mirroring X, so a character facing -Y in Blender
  faces Unity's +Z, its forward); FBX_SCALE_ALL, so the file is in metres, Unity's unit,
  and the armature imports at scale 1 instead of 100. The axis change stays on the
  armature object as a -90° rotation about X (removing it would need
  ``bake_space_transform``); Unity shows it on the root object, the animation is right.
  Deform bones only: a game engine needs the skin's bones, not Rigify's control and
  mechanism bones.
- **Unreal**: up Z, forward Y, i.e. Blender's own axes written as they are (Unreal is Z
  up; its importer mirrors Y into its left-handed space, so a character facing -Y in
  Blender faces +Y, as the Unreal mannequins do); FBX_SCALE_NONE, so the file is in
  centimetres, Unreal's unit, and needs no unit conversion on import. Deform bones only,
  as for Unity. Unreal turns the armature object into the skeleton's root bone (carrying
  the scale of 100): name the armature ``root`` for the usual Unreal skeleton layout.
- **Blender**: Blender's defaults (forward -Z, up Y, FBX_SCALE_NONE): Blender's importer
  reads the axes and the unit back, so the file re-imports at the same size and
  orientation; all bones, so a Rigify rig comes back whole. Keys keep Blender's frame
  numbers (frame f at time f / fps); Blender's FBX importer adds an "Animation Offset" of
  1 frame by default, so set it to 0 to get the same frames back.

The Unity and Unreal settings follow those engines' FBX import conventions; they are not
tested in those engines here. What is tested: the axes and unit each preset writes, and
that every preset's file re-imported into Blender reproduces the bone positions.

BVH: ``export_anim.bvh`` over the action's frame range, rotations in each bone's own
Euler order (``rotate_mode`` NATIVE), scale 1 (metres). Blender's BVH exporter writes
Blender's axes (Z up, character facing -Y); when importing the file into Blender, choose
forward Y and up Z (the importer's defaults assume a Y-up file).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import bpy

from ..core.errors import DiffPoseError


@dataclass(frozen=True)
class FbxPreset:
    """One FBX preset: a label for the UI and the exporter keywords it sets."""

    label: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)


# Settings every preset shares (see the module docstring for why).
_COMMON: dict[str, Any] = {
    "use_selection": True,
    "object_types": {"ARMATURE", "MESH"},
    "add_leaf_bones": False,
    "primary_bone_axis": "Y",
    "secondary_bone_axis": "X",
    "armature_nodetype": "NULL",
    "bake_space_transform": False,
    "global_scale": 1.0,
    "apply_unit_scale": True,
    "bake_anim": True,
    "bake_anim_use_all_bones": True,
    "bake_anim_use_nla_strips": False,
    "bake_anim_use_all_actions": False,
    "bake_anim_force_startend_keying": True,
    "bake_anim_step": 1.0,
    "bake_anim_simplify_factor": 0.0,
    "use_mesh_modifiers": True,
    "path_mode": "AUTO",
}

FBX_PRESETS: dict[str, FbxPreset] = {
    "UNITY": FbxPreset("Unity", "Y up, -Z forward, unit scale applied to the data "
                                "(imports at scale 1), deform bones only", {
        **_COMMON, "axis_forward": "-Z", "axis_up": "Y",
        "apply_scale_options": "FBX_SCALE_ALL", "use_armature_deform_only": True}),
    "UNREAL": FbxPreset("Unreal", "Z up (Blender's axes), metres in the file's unit "
                                  "scale, deform bones only", {
        **_COMMON, "axis_forward": "Y", "axis_up": "Z",
        "apply_scale_options": "FBX_SCALE_NONE", "use_armature_deform_only": True}),
    "BLENDER": FbxPreset("Blender", "Blender's FBX defaults; re-imports unchanged, all "
                                    "bones", {
        **_COMMON, "axis_forward": "-Z", "axis_up": "Y",
        "apply_scale_options": "FBX_SCALE_NONE", "use_armature_deform_only": False}),
}


def armature_action(obj: bpy.types.Object) -> bpy.types.Action:
    """The armature's active action, or `DiffPoseError` if it is not an animated
    armature."""
    if obj.type != "ARMATURE":
        raise DiffPoseError(f"object '{obj.name}': expected an armature, got {obj.type}")
    anim = obj.animation_data
    if anim is None or anim.action is None:
        raise DiffPoseError(f"armature '{obj.name}': has no action to export; bake a take "
                            f"onto it first")
    return anim.action


def action_frames(obj: bpy.types.Object) -> tuple[int, int]:
    """(first, last) frame of the armature's action, inclusive, as whole frames."""
    frame_range = armature_action(obj).frame_range
    start, end = float(frame_range[0]), float(frame_range[1])
    return int(round(start)), max(int(round(end)), int(round(start)))


def deformed_meshes(obj: bpy.types.Object) -> list[bpy.types.Object]:
    """Meshes that move with the armature: its child meshes and meshes whose Armature
    modifier points at it."""
    found = []
    for other in bpy.data.objects:
        if other.type != "MESH":
            continue
        child = other.parent == obj
        skinned = any(m.type == "ARMATURE" and getattr(m, "object", None) == obj
                      for m in other.modifiers)
        if child or skinned:
            found.append(other)
    return found


def export_fbx(obj: bpy.types.Object, filepath: str, preset: str = "BLENDER") -> None:
    """Write the armature `obj` (its action, and the meshes it deforms) to `filepath` as
    FBX with one of `FBX_PRESETS`. Raises `DiffPoseError` for a bad preset, an armature
    without an action or a failed write."""
    try:
        settings = FBX_PRESETS[preset].settings
    except KeyError:
        raise DiffPoseError(f"FBX preset {preset!r}; expected one of "
                            f"{', '.join(FBX_PRESETS)}") from None
    first, last = action_frames(obj)
    with _export_state(obj, deformed_meshes(obj), first, last), \
            _atomic_path(filepath, ".fbx") as tmp:
        result = bpy.ops.export_scene.fbx(filepath=tmp, **settings)
        if result != {"FINISHED"}:
            raise DiffPoseError(f"{filepath}: the FBX exporter returned {result}")


def export_bvh(obj: bpy.types.Object, filepath: str) -> None:
    """Write the armature `obj`'s action to `filepath` as BVH (metres, Blender's axes,
    see the module docstring)."""
    first, last = action_frames(obj)
    with _export_state(obj, [], first, last), _atomic_path(filepath, ".bvh") as tmp:
        result = bpy.ops.export_anim.bvh(filepath=tmp, frame_start=first, frame_end=last,
                                         global_scale=1.0, rotate_mode="NATIVE",
                                         root_transform_only=False)
        if result != {"FINISHED"}:
            raise DiffPoseError(f"{filepath}: the BVH exporter returned {result}")


@contextmanager
def _export_state(obj: bpy.types.Object, extra: list[bpy.types.Object], first: int,
                  last: int) -> Iterator[None]:
    """Select exactly `obj` and `extra`, make `obj` active, in object mode, with the
    scene's frame range set to [first, last]; put everything back afterwards."""
    context = bpy.context
    scene = context.scene
    view_layer = context.view_layer
    if scene is None or view_layer is None:
        raise DiffPoseError("no scene to export from")
    if obj.name not in view_layer.objects:
        raise DiffPoseError(f"armature '{obj.name}' is not in the current view layer")
    if context.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    selected = [o for o in view_layer.objects if o.select_get()]
    active = view_layer.objects.active
    frames = (scene.frame_start, scene.frame_end, scene.frame_current)
    try:
        for o in selected:
            o.select_set(False)
        for o in [obj, *extra]:
            if o.name in view_layer.objects:
                o.select_set(True)
        view_layer.objects.active = obj
        scene.frame_start, scene.frame_end = first, last
        yield
    finally:
        for o in view_layer.objects:
            o.select_set(o in selected)
        view_layer.objects.active = active
        scene.frame_start, scene.frame_end = frames[0], frames[1]
        scene.frame_set(frames[2])


@contextmanager
def _atomic_path(filepath: str, suffix: str) -> Iterator[str]:
    """A temporary path beside `filepath`, renamed to it when the block succeeds and
    removed when it fails."""
    target = os.path.abspath(filepath)
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise DiffPoseError(f"{filepath}: the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix=".diffpose-", dir=folder)
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the permissions of any new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except RuntimeError as exc:  # bpy.ops raise RuntimeError on an operator error
        raise DiffPoseError(f"{filepath}: export failed: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
