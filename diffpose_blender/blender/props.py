"""Per-scene settings of the add-on (``scene.diffpose``)."""

from __future__ import annotations

from typing import Any

import bpy

from .takes import DiffPoseTakeItem


def _smooth_changed(self: Any, context: bpy.types.Context) -> None:
    """A Smooth setting or the selected take changed: re-smooth soon (live)."""
    from .smooth import on_settings_changed

    on_settings_changed(self, context)


# --- U2: helpers of the preview/retarget settings below ----------------------------
def redraw_viewports(_self: Any, context: bpy.types.Context) -> None:
    """Ghost settings change what the viewport draws: redraw every 3D view (the sidebar
    that changed redraws itself, the main region would not)."""
    wm = context.window_manager
    for window in (wm.windows if wm is not None else ()):
        screen = window.screen
        for area in (screen.areas if screen is not None else ()):
            if area.type == "VIEW_3D":
                area.tag_redraw()


def _is_armature(_self: Any, obj: bpy.types.Object) -> bool:
    return obj.type == "ARMATURE"


class DiffPoseSceneSettings(bpy.types.PropertyGroup):
    source_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Source",
        description="A video of one person, or a 2D keypoint file (COCO JSON, OpenPose "
                    "folder, VideoPose3D .npz or a DiffPose keypoint .npz)",
        subtype="FILE_PATH",
        default="",
    )
    # Filled by "Load source": what the file turned out to be.
    source_format: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Format", description="The detected format of the source file", default="")
    source_frames: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Frames", description="Number of frames in the source", default=0, min=0)
    source_frames_with_person: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Frames with a person",
        description="Frames in which a person was found", default=0, min=0)
    fps: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Frame rate",
        description="Frames per second of the source; used when the file does not say",
        default=30.0, min=1.0, max=1000.0)
    frame_first: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="From Frame",
        description="First frame of the source to estimate (the source's own frame "
                    "numbers, starting at 1)",
        default=1, min=1)
    frame_last: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="To Frame",
        description="Last frame of the source to estimate; 0: to the end (a shorter "
                    "range estimates faster)",
        default=0, min=0)
    camera_lens: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Camera Lens",
        description="How wide the camera saw; it sets how deep the motion comes out "
                    "(a wrong guess stretches or flattens movement toward the camera)",
        items=(("DEFAULT", "Typical (65 degrees)",
                "A typical phone or camera lens: 65 degrees across the image width"),
               ("FOV", "Field of View", "You know the angle the image spans"),
               ("FOCAL", "Focal Length (pixels)",
                "You know the focal length in pixels (from a camera calibration)")),
        default="DEFAULT")
    fov_deg: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Field of View",
        description="Angle across the image width, in degrees (phones: about 65-75 "
                    "for the main camera, 100-120 for the ultra-wide)",
        default=65.0, min=5.0, max=170.0)
    focal_px: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Focal Length",
        description="Focal length in pixels of the source images",
        default=1000.0, min=1.0, soft_max=10000.0)
    subject_height_m: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Person's Height",
        description="How tall the filmed person is; sets the size of the motion and how "
                    "far they travel",
        default=1.70, min=0.5, max=2.8, unit="LENGTH")
    image_width: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Width", description="Image width of the source in pixels", default=0, min=0)
    image_height: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Height", description="Image height of the source in pixels", default=0, min=0)

    # --- Takes (U1, blender/takes.py): the estimates kept with this file -------------
    takes: bpy.props.CollectionProperty(  # type: ignore[valid-type]
        type=DiffPoseTakeItem, name="Takes",
        description="The estimates kept with this file; files beside the saved .blend")
    take_index: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Take", description="The selected take: previewed, smoothed and baked",
        default=-1, min=-1, update=_smooth_changed)

    # --- Estimate (U1, blender/estimate.py): what to ask the model, and its progress --
    hypotheses: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Hypotheses",
        description="How many possible 3D poses the model draws for every frame; where "
                    "they disagree the pose is uncertain (more: slower, better colours)",
        default=5, min=1, max=20)
    steps: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Steps",
        description="Denoising steps per hypothesis; 0 uses the model's own default "
                    "(more: slower, sometimes steadier)",
        default=0, min=0, max=1000)
    seed: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Seed",
        description="Random seed: the same seed and source give the same take",
        default=0, min=0)
    device: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Device",
        description="Where the backend runs the model",
        items=(("auto", "Automatic", "The GPU when the backend sees one, else the CPU"),
               ("cpu", "CPU", "Always the processor (slower, works everywhere)"),
               ("cuda", "GPU (CUDA)", "An NVIDIA GPU; fails with a clear message if the "
                                      "backend sees none")),
        default="auto")
    model: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Model",
        description="A model folder to use instead of the bundled one (leave empty)",
        subtype="DIR_PATH", default="")
    estimate_state: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Estimate state", description="Where the last estimate stands",
        items=(("IDLE", "Idle", "No estimate has run"),
               ("RUNNING", "Running", "The backend is working on it"),
               ("DONE", "Done", "The last estimate became a take"),
               ("FAILED", "Failed", "The last estimate failed; see the message"),
               ("CANCELLED", "Cancelled", "The last estimate was cancelled")),
        default="IDLE")
    estimate_stage: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Stage", description="What the backend is doing: detect (finding the person "
                                  "in the video), lift (the 3D model), saving",
        default="")
    estimate_done: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Done", description="Frames of the current stage finished", default=0, min=0)
    estimate_total: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Total", description="Frames of the current stage", default=0, min=0)
    estimate_message: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Message", description="The last estimate's outcome, or the backend's message "
                                    "when it failed",
        default="")

    # --- Preview, smooth, retarget, export (U2: blender/overlay.py, panels.py) --------
    show_hypotheses: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Show Hypotheses",
        description="Draw the poses the model thought possible at this frame as ghost "
                    "skeletons where the rig stands; where they disagree, the pose is "
                    "a guess",
        default=True, update=redraw_viewports)
    preview_hypothesis: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Hypothesis",
        description="Which ghost to show: -1 shows all of them, 0 and up shows only that "
                    "one (the one \"Use Hypothesis\" puts on the chosen frames)",
        default=-1, min=-1, soft_max=19, update=redraw_viewports)
    ghost_opacity: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Ghost Opacity",
        description="How solid the ghost skeletons look: 0 invisible, 1 opaque",
        default=0.4, min=0.0, max=1.0, subtype="FACTOR", update=redraw_viewports)
    ghost_colors: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Uncertainty Colours",
        description="Colour the ghosts by how much the hypotheses disagree at each joint "
                    "(green: within 2 cm, yellow: 5 cm, red: 10 cm or more); off: grey",
        default=True, update=redraw_viewports)
    choice_first: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="From",
        description="First scene frame that gets the chosen hypothesis",
        default=1)
    choice_last: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="To",
        description="Last scene frame that gets the chosen hypothesis (inclusive)",
        default=1)
    smooth_method: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Smoothing",
        description="How to remove jitter from the estimated motion",
        items=(("SPLINE", "Spline (uncertainty-weighted)",
                "Follows confident frames closely and lets unsure ones follow their "
                "neighbours; the default"),
               ("BUTTERWORTH", "Low-pass", "Removes motion faster than the cutoff evenly "
                                           "over the clip"),
               ("SAVGOL", "Savitzky-Golay", "Keeps sharp peaks (hits, footfalls) better, "
                                            "smooths less"),
               ("NONE", "None", "Keep the motion as estimated")),
        default="SPLINE", update=_smooth_changed)
    smooth_cutoff_hz: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Cutoff",
        description="Motion faster than this many cycles per second is smoothed away "
                    "(lower: smoother, but quick moves get softer)",
        default=4.0, min=0.1, soft_max=15.0, unit="NONE", update=_smooth_changed)
    smooth_strength: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Trust Confident Frames",
        description="Spline only: how much more the confident frames count than the "
                    "unsure ones (0: all frames count the same)",
        default=1.0, min=0.0, soft_max=2.0, update=_smooth_changed)
    smooth_window: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Window",
        description="Savitzky-Golay only: how many frames each smoothed frame looks at "
                    "(more: smoother); 0 picks about a third of a second",
        default=0, min=0, soft_max=61, update=_smooth_changed)
    target_armature: bpy.props.PointerProperty(  # type: ignore[valid-type]
        name="Target Rig",
        description="The character rig to animate with the take",
        type=bpy.types.Object, poll=_is_armature)
    root_motion: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Root Motion",
        description="Move the character through the scene as in the video; off: the "
                    "character moves in place",
        default=True)
    foot_lock: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Foot Locking",
        description="Keep feet planted while they touch the ground (removes foot "
                    "sliding)",
        default=True)
    bake_colors: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Colour Bones by Uncertainty",
        description="Key each bone's colour per frame by how sure the model was (green: "
                    "sure, red: a guess); the rig's own colours come back with Clear",
        default=True)
    bake_start_frame: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Start Frame",
        description="Scene frame where the take's first frame lands (the ghosts and "
                    "\"Use Hypothesis\" count frames from here too)",
        default=1)
    bake_use_range: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Bake Part of the Take",
        description="Bake only the scene frames From to To (the rest of the take is not "
                    "keyed); off: the whole take",
        default=False)
    bake_first: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="From", description="First scene frame to bake", default=1)
    bake_last: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="To", description="Last scene frame to bake (inclusive)", default=250)
    export_preset: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="FBX Preset",
        description="The application the FBX is for: sets axes, scale and bone options",
        items=(("UNITY", "Unity", "For Unity: Y up, imports at scale 1, only the bones "
                                  "that move the mesh"),
               ("UNREAL", "Unreal", "For Unreal Engine: Z up, only the bones that move "
                                    "the mesh"),
               ("BLENDER", "Blender", "To bring back into Blender unchanged, all bones")),
        default="UNITY")


def attach() -> None:
    bpy.types.Scene.diffpose = bpy.props.PointerProperty(  # type: ignore[attr-defined]
        type=DiffPoseSceneSettings)


def detach() -> None:
    del bpy.types.Scene.diffpose  # type: ignore[attr-defined]
