"""The DiffPose tab in the 3D Viewport sidebar, laid out as the workflow reads.

Source -> Estimate -> Takes -> Preview -> Smooth -> Retarget -> Export, one sub-panel
each under `DIFFPOSE_PT_main`. Panels only draw: every button is an operator, every
field a property of ``scene.diffpose`` (its description is the tooltip, written in an
animator's words). A button that cannot run is drawn greyed out with the reason on a
line under it (`_button`), since a tooltip alone is easy to miss; operators check the
same things again in their own ``poll`` / ``execute``.

Panels draw before every part of the add-on is there: a property or operator that is not
registered (yet) is left out (`_prop`, `_has_operator`) rather than drawn as an error.
"""

from __future__ import annotations

from typing import Any

import bpy

_CATEGORY = "DiffPose"


def _has_operator(idname: str) -> bool:
    """Whether operator `idname` ("diffpose.estimate") is registered."""
    module, name = idname.split(".")
    return hasattr(bpy.types, f"{module.upper()}_OT_{name}")


def _prop(layout: bpy.types.UILayout, data: Any, name: str, **kwargs: Any) -> None:
    """`layout.prop`, skipped when `data` has no property `name` (not registered yet)."""
    if name in data.bl_rna.properties:
        layout.prop(data, name, **kwargs)


def _button(layout: bpy.types.UILayout, idname: str, reason: str = "",
            **properties: Any) -> None:
    """An operator button with `properties` set, greyed out with `reason` shown under
    it when `reason` is not empty; nothing but a note when the operator is missing."""
    if not _has_operator(idname):
        layout.label(text=f"{idname} is not available in this build", icon="INFO")
        return
    row = layout.row()
    row.enabled = not reason
    op = row.operator(idname)
    for key, value in (properties.items() if op is not None else ()):
        setattr(op, key, value)
    if reason:
        layout.label(text=reason, icon="INFO")


def _settings(context: bpy.types.Context) -> Any:
    """``scene.diffpose``, or None (no scene, or the add-on half registered)."""
    scene = context.scene
    return getattr(scene, "diffpose", None) if scene is not None else None


class _SubPanel(bpy.types.Panel):
    """Common settings of the sub-panels (not registered itself)."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = _CATEGORY
    bl_parent_id = "DIFFPOSE_PT_main"


class DIFFPOSE_PT_main(bpy.types.Panel):
    bl_label = "DiffPose"
    bl_idname = "DIFFPOSE_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = _CATEGORY

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        if layout is None:
            return
        layout.label(text="Video or 2D keypoints to keyframes")


class DIFFPOSE_PT_source(_SubPanel):
    bl_label = "Source"
    bl_idname = "DIFFPOSE_PT_source"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = _settings(context)
        if layout is None or settings is None:
            return
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
        row = layout.row(align=True)
        _prop(row, settings, "frame_first", text="From")
        _prop(row, settings, "frame_last", text="To (0: end)")
        _prop(layout, settings, "camera_lens")
        lens = getattr(settings, "camera_lens", "DEFAULT")
        if lens == "FOV":
            layout.prop(settings, "fov_deg")
        elif lens == "FOCAL":
            layout.prop(settings, "focal_px")
        _prop(layout, settings, "subject_height_m")


class DIFFPOSE_PT_estimate(_SubPanel):
    bl_label = "Estimate"
    bl_idname = "DIFFPOSE_PT_estimate"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = _settings(context)
        if layout is None or settings is None:
            return
        col = layout.column()
        for name in ("hypotheses", "steps", "seed", "device", "model"):
            _prop(col, settings, name)
        state = getattr(settings, "estimate_state", "IDLE")
        running = state == "RUNNING"
        reason = ("An estimate is running; cancel it or wait" if running else
                  "" if settings.source_path else
                  "Choose a video or a 2D keypoint file in Source first")
        _button(layout, "diffpose.estimate", reason)
        if running:
            done = int(getattr(settings, "estimate_done", 0))
            total = int(getattr(settings, "estimate_total", 0))
            stage = getattr(settings, "estimate_stage", "") or "starting"
            text = f"{stage.capitalize()}: {done} / {total} frames" if total else \
                f"{stage.capitalize()}..."
            if hasattr(layout, "progress"):  # UILayout.progress: Blender 4.0+
                layout.progress(factor=done / total if total else 0.0, type="BAR",
                                text=text)
            else:
                layout.label(text=text)
            _button(layout, "diffpose.estimate_cancel")
        message = getattr(settings, "estimate_message", "")
        if state == "FAILED":
            box = layout.box()
            box.alert = True
            box.label(text="Estimate failed:", icon="ERROR")
            for line in (message or "see the Info log").splitlines()[:6]:
                box.label(text=line)
        elif state in ("DONE", "CANCELLED") and message:
            layout.label(text=message, icon="INFO")


class DIFFPOSE_PT_takes(_SubPanel):
    bl_label = "Takes"
    bl_idname = "DIFFPOSE_PT_takes"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = _settings(context)
        if layout is None or settings is None or "takes" not in settings.bl_rna.properties:
            return
        row = layout.row()
        if hasattr(bpy.types, "DIFFPOSE_UL_takes"):
            row.template_list("DIFFPOSE_UL_takes", "", settings, "takes", settings,
                              "take_index", rows=3)
        if _has_operator("diffpose.take_delete"):
            row.column().operator("diffpose.take_delete", text="", icon="X")
        item = _active_item(context)
        if item is None:
            layout.label(text="No take yet: estimate one above", icon="INFO")
            return
        problem = _take_problem(item)
        if problem:
            box = layout.box()
            box.alert = True
            box.label(text=problem, icon="ERROR")


def _active_item(context: bpy.types.Context) -> Any:
    from .takes import active_item

    scene = context.scene
    return active_item(scene) if scene is not None else None


def _take_problem(item: Any) -> str:
    from .takes import take_problem

    return take_problem(item)


def _take_reason(context: bpy.types.Context) -> str:
    """Why nothing can be done with the selected take ("" when something can)."""
    item = _active_item(context)
    if item is None:
        return "Select a take in the Takes list first"
    return _take_problem(item)


class DIFFPOSE_PT_preview(_SubPanel):
    bl_label = "Preview"
    bl_idname = "DIFFPOSE_PT_preview"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = _settings(context)
        scene = context.scene
        if layout is None or settings is None or scene is None:
            return
        layout.prop(settings, "show_hypotheses")
        col = layout.column()
        col.enabled = bool(settings.show_hypotheses)
        col.prop(settings, "preview_hypothesis",
                 text="Hypothesis (-1: all)" if settings.preview_hypothesis < 0 else None)
        col.prop(settings, "ghost_opacity")
        col.prop(settings, "ghost_colors")

        from .operators.preview import choice_frames

        box = layout.box()
        first, last = choice_frames(scene)
        if scene.use_preview_range:
            box.label(text=f"Frames {first}-{last} (the preview range)")
        else:
            row = box.row(align=True)
            row.prop(settings, "choice_first")
            row.prop(settings, "choice_last")
        reason = _take_reason(context)
        if not reason and settings.preview_hypothesis < 0:
            reason = "Pick one hypothesis with the slider above first"
        if not reason and first > last:
            reason = "From is after To"
        _button(box, "diffpose.use_hypothesis", reason)


class DIFFPOSE_PT_smooth(_SubPanel):
    bl_label = "Smooth"
    bl_idname = "DIFFPOSE_PT_smooth"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = _settings(context)
        if layout is None or settings is None:
            return
        layout.prop(settings, "smooth_method")
        method = settings.smooth_method
        col = layout.column()
        if method in ("SPLINE", "BUTTERWORTH"):
            col.prop(settings, "smooth_cutoff_hz")
        if method == "SPLINE":
            col.prop(settings, "smooth_strength")
        if method == "SAVGOL":
            _prop(col, settings, "smooth_window")
        reason = _take_reason(context)
        if not reason and method == "NONE":
            reason = "Smoothing is off: the take is baked as estimated"
        item = _active_item(context)
        scene = context.scene
        if not reason and item is not None and scene is not None:
            from .smooth import smoothing_status

            path, why = smoothing_status(scene, item)
            if path is not None:
                layout.label(text="Smoothed with these settings", icon="CHECKMARK")
            else:
                layout.label(text=why, icon="ERROR" if why.startswith("Smoothing failed")
                             else "INFO")
        _button(layout, "diffpose.smooth", reason)


_detections: dict[tuple[str, int], tuple[str, str]] = {}


def rig_report(obj: bpy.types.Object) -> tuple[str, str]:
    """(family label, mapping report) of armature `obj` by `core.rigmap.detect_rig` on
    its bone names, or ("", why not); cached by (name, bone count): detection reads the
    rig map files and the panel redraws often."""
    from ..core.errors import DiffPoseError
    from ..core.rigmap import detect_rig

    data = obj.data
    names = [b.name for b in data.bones] if isinstance(data, bpy.types.Armature) else []
    key = (obj.name, len(names))
    hit = _detections.get(key)
    if hit is None:
        try:
            detection = detect_rig(names)
            hit = (detection.rig_map.label, detection.report())
        except DiffPoseError as exc:
            hit = ("", str(exc))
        if len(_detections) > 32:
            _detections.clear()
        _detections[key] = hit
    return hit


class DIFFPOSE_PT_retarget(_SubPanel):
    bl_label = "Retarget"
    bl_idname = "DIFFPOSE_PT_retarget"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = _settings(context)
        if layout is None or settings is None:
            return
        layout.prop(settings, "target_armature")
        target = settings.target_armature
        if target is not None:
            family, report = rig_report(target)
            box = layout.box()
            if family:
                box.label(text=f"Rig: {family}", icon="ARMATURE_DATA")
                for line in report.splitlines()[1:4]:
                    box.label(text=line)
            else:
                box.alert = True
                box.label(text="Rig not recognised", icon="ERROR")
                box.label(text=report[:120])
        col = layout.column()
        col.prop(settings, "root_motion")
        col.prop(settings, "foot_lock")
        col.prop(settings, "bake_colors")
        col.prop(settings, "bake_start_frame")
        _prop(col, settings, "bake_use_range")
        if getattr(settings, "bake_use_range", False):
            row = col.row(align=True)
            row.prop(settings, "bake_first")
            row.prop(settings, "bake_last")
        reason = _take_reason(context)
        if not reason and target is None:
            reason = "Choose the target rig first"
        item = _active_item(context)
        scene = context.scene
        properties: dict[str, Any] = {}
        path = None
        if not reason and item is not None and scene is not None:
            from .smooth import smoothing_status

            path, reason = smoothing_status(scene, item)
        if path is not None and item is not None:
            properties = dict(take_path=str(path), armature=target.name,
                              root_motion=settings.root_motion,
                              foot_lock=settings.foot_lock, colors=settings.bake_colors,
                              start_frame=settings.bake_start_frame, action_name=item.name,
                              use_range=settings.bake_use_range,
                              frame_first=settings.bake_first, frame_last=settings.bake_last)
        if not reason and settings.bake_use_range and settings.bake_first > settings.bake_last:
            reason, properties = "Bake range: From is after To", {}
        _button(layout, "diffpose.bake", reason, **properties)
        if target is not None and _has_operator("diffpose.colors_clear"):
            clear = layout.operator("diffpose.colors_clear")
            if clear is not None:
                clear.armature = target.name  # type: ignore[attr-defined]


class DIFFPOSE_PT_export(_SubPanel):
    bl_label = "Export"
    bl_idname = "DIFFPOSE_PT_export"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = _settings(context)
        if layout is None or settings is None:
            return
        target = settings.target_armature
        obj = target if target is not None else context.active_object
        reason = ""
        if obj is None or obj.type != "ARMATURE":
            reason = "Choose the target rig (Retarget) or select an armature"
        elif obj.animation_data is None or obj.animation_data.action is None:
            reason = f"'{obj.name}' has no animation yet: bake a take onto it"
        elif context.active_object is None or context.active_object.type != "ARMATURE":
            # The export operators' poll asks for an active armature.
            reason = "Select the armature in the viewport first"
        name = obj.name if obj is not None and not reason else ""
        layout.prop(settings, "export_preset")
        _button(layout, "diffpose.export_fbx", reason, preset=settings.export_preset,
                armature=name)
        _button(layout, "diffpose.export_bvh", reason, armature=name)


CLASSES: tuple[type, ...] = (
    DIFFPOSE_PT_main,
    DIFFPOSE_PT_source,
    DIFFPOSE_PT_estimate,
    DIFFPOSE_PT_takes,
    DIFFPOSE_PT_preview,
    DIFFPOSE_PT_smooth,
    DIFFPOSE_PT_retarget,
    DIFFPOSE_PT_export,
)
