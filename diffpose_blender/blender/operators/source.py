"""Load a source file and show what it is (format, frames, frame rate, image size)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import bpy

from ...core.errors import DiffPoseError
from ...core.media import VIDEO_EXTENSIONS

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems
else:
    OperatorReturnItems = str


class DIFFPOSE_OT_load_source(bpy.types.Operator):
    """Read the source file and show its format, frame count, frame rate and image size"""

    bl_idname = "diffpose.load_source"
    bl_label = "Load Source"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        scene = context.scene
        if scene is None or not scene.diffpose.source_path:  # type: ignore[attr-defined]
            cls.poll_message_set("Choose a video or a 2D keypoint file first")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        scene = context.scene
        assert scene is not None
        settings = scene.diffpose  # type: ignore[attr-defined]
        path = bpy.path.abspath(settings.source_path)
        if path.lower().endswith(VIDEO_EXTENSIONS):
            # Decoding video needs OpenCV, which lives in the backend process.
            settings.source_format = "Video"
            settings.source_frames = 0
            settings.source_frames_with_person = 0
            self.report({"INFO"}, f"{path}: video; frames are read by the backend")
            return {"FINISHED"}
        # Imported here: reading formats is core's work, kept out of registration time.
        from ...core.formats import FORMAT_LABELS, read_keypoints

        try:
            kp = read_keypoints(path)
        except DiffPoseError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        fmt = kp.source.split(":", 1)[0]
        settings.source_format = FORMAT_LABELS.get(fmt, fmt)
        settings.source_frames = kp.num_frames
        settings.source_frames_with_person = int(kp.valid.sum())
        if kp.fps is not None:
            settings.fps = kp.fps
        if kp.image_size is not None:
            settings.image_width, settings.image_height = kp.image_size
        self.report({"INFO"}, f"{path}: {settings.source_format}, {kp.num_frames} frames")
        return {"FINISHED"}
