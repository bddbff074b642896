"""Per-scene settings of the add-on (``scene.diffpose``)."""

from __future__ import annotations

import bpy

from .takes import DiffPoseTakeItem


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
        default=-1, min=-1)


def attach() -> None:
    bpy.types.Scene.diffpose = bpy.props.PointerProperty(  # type: ignore[attr-defined]
        type=DiffPoseSceneSettings)


def detach() -> None:
    del bpy.types.Scene.diffpose  # type: ignore[attr-defined]
