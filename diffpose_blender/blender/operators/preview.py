"""Resolve an ambiguous moment by choice: ``diffpose.use_hypothesis``.

The animator scrubs, sees the ghosts (`blender.overlay`) disagree, picks the right one
with the Hypothesis slider and runs this operator over frames A-B. It makes a new take
(`core.choice.with_choice`: those frames carry that hypothesis, spread 0 there), adds it
to the take list (`blender.takes.add_take`, which selects it) and leaves the original
take as it was, so the choice can be compared, undone or made again; baking the new take
(``diffpose.bake`` with its path, the panel's Bake button) puts it on the rig.

Frames: the operator takes *scene* frames (what the timeline shows); take frame 0 sits at
``scene.diffpose.bake_start_frame``, as for the bake and the ghosts.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

import bpy

from ...core.errors import DiffPoseError

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems
else:
    OperatorReturnItems = str


def choice_frames(scene: bpy.types.Scene) -> tuple[int, int]:
    """Scene frames A-B the panel offers: the preview range when it is on (the animator
    set it around the moment with Ctrl+P / Alt+P in the timeline), else From / To."""
    if scene.use_preview_range:
        return int(scene.frame_preview_start), int(scene.frame_preview_end)
    settings = scene.diffpose  # type: ignore[attr-defined]
    return int(settings.choice_first), int(settings.choice_last)


class DIFFPOSE_OT_use_hypothesis(bpy.types.Operator):
    """Make a new take that uses the chosen hypothesis for frames A to B (where the
    ghosts disagree and you know which one is right); bake it to see it on the rig"""

    bl_idname = "diffpose.use_hypothesis"
    bl_label = "Use Hypothesis for Frames"
    bl_options = {"REGISTER", "UNDO"}

    hypothesis: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Hypothesis",
        description="The hypothesis to keep (-1: the one the Hypothesis slider shows)",
        default=-1, min=-1)
    use_panel_range: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Panel Range",
        description="Frames from the scene's preview range, or the panel's From / To; "
                    "off: the First and Last frames below",
        default=True)
    first: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="First", description="First scene frame that gets the hypothesis", default=1)
    last: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Last", description="Last scene frame that gets the hypothesis (inclusive)",
        default=1)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        from ..takes import poll_take_selected

        return poll_take_selected(cls, context)

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        try:
            name = self._run(context)
        except DiffPoseError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"new take '{name}'; bake it to put the choice on the rig")
        return {"FINISHED"}

    def _run(self, context: bpy.types.Context) -> str:
        from ...core.choice import with_choice
        from ...core.take import write_take
        from ..takes import active_take, add_take, take_problem

        scene = context.scene
        assert scene is not None
        settings = scene.diffpose  # type: ignore[attr-defined]
        found = active_take(scene)
        if found is None:
            from ..takes import active_item

            item = active_item(scene)
            raise DiffPoseError(take_problem(item) if item is not None else
                                "no take selected: select a take in the list")
        item, take = found
        k = self.hypothesis if self.hypothesis >= 0 else settings.preview_hypothesis
        if k < 0:
            raise DiffPoseError("which hypothesis? Set the Hypothesis slider to the ghost "
                                "you want (0 and up) first")
        a, b = choice_frames(scene) if self.use_panel_range else (self.first, self.last)
        start = int(settings.bake_start_frame)
        chosen = with_choice(take, k, a - start, b - start)
        name = f"{item.name} h{k} {a}-{b}"
        # add_take copies the file into the take folder; write it somewhere temporary.
        with tempfile.TemporaryDirectory(prefix="diffpose-choice-") as folder:
            path = os.path.join(folder, "choice.take.npz")
            write_take(path, chosen)
            added = add_take(scene, path, name=name)
        return str(added.name)


classes: tuple[type, ...] = (DIFFPOSE_OT_use_hypothesis,)
