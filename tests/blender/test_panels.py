"""Every panel of the DiffPose tab draws in every state, and its buttons are the ones
that can run (with the properties the operators really have).

Headless `bpy` has no window, so no region ever draws a panel and no real `UILayout`
can be made. `CheckedLayout` stands in for it and checks every call against Blender's
own description of `UILayout` (``bpy.types.UILayout.bl_rna.functions``: the function
exists in this Blender version and takes those parameter names), every ``prop`` against
the data's RNA properties, every ``operator`` against the registered operator and every
property set on a button against that operator's RNA properties. The panels' `draw`
methods run unchanged with the real `bpy.context`.

Then the buttons are pressed: "Use Hypothesis" makes the chosen take, and the Bake
button's properties bake it onto a real rig.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import bpy
import numpy as np
import pytest

from diffpose_blender import blender as addon
from diffpose_blender.blender import panels, takes
from diffpose_blender.core.choice import CHOICES_KEY
from diffpose_blender.core.take import read_take, write_take
from tests.blender import rigs
from tests.core.test_take import make_take

_RNA_TYPES = {"STRING": str, "INT": int, "BOOLEAN": bool, "FLOAT": (float, int),
              "ENUM": str, "POINTER": object}


class Button:
    """The properties of one operator button; only the operator's own can be set."""

    def __init__(self, idname: str, enabled: bool) -> None:
        module, name = idname.split(".")
        assert hasattr(bpy.types, f"{module.upper()}_OT_{name}"), \
            f"operator {idname} drawn but not registered"
        rna = getattr(getattr(bpy.ops, module), name).get_rna_type()
        object.__setattr__(self, "_rna", rna.properties)
        object.__setattr__(self, "idname", idname)
        object.__setattr__(self, "enabled", enabled)
        object.__setattr__(self, "values", {})

    def __setattr__(self, key: str, value: Any) -> None:
        prop = self._rna.get(key)
        assert prop is not None, f"{self.idname} has no property {key!r}"
        assert isinstance(value, _RNA_TYPES[prop.type]), (self.idname, key, value)
        if prop.type == "ENUM":
            assert value in {i.identifier for i in prop.enum_items}, (key, value)
        self.values[key] = value


class CheckedLayout:
    """A `UILayout` stand-in that checks each call against the real one's RNA."""

    _FUNCTIONS = bpy.types.UILayout.bl_rna.functions
    _PROPERTIES = bpy.types.UILayout.bl_rna.properties

    def __init__(self, log: dict[str, list[Any]], parent: "CheckedLayout | None" = None
                 ) -> None:
        object.__setattr__(self, "log", log)
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "enabled", True)
        object.__setattr__(self, "alert", False)

    def is_enabled(self) -> bool:
        return self.enabled and (self.parent is None or self.parent.is_enabled())

    def __setattr__(self, key: str, value: Any) -> None:
        assert key in self._PROPERTIES, f"UILayout has no property {key!r}"
        object.__setattr__(self, key, value)

    def __getattr__(self, name: str) -> Any:
        function = self._FUNCTIONS.get(name)
        if function is None:  # so hasattr() answers as the real layout does
            raise AttributeError(name)
        params = [p.identifier for p in function.parameters if not p.is_output]

        def call(*args: Any, **kwargs: Any) -> Any:
            assert len(args) <= len(params), (name, args)
            unknown = set(kwargs) - set(params)
            assert not unknown, f"UILayout.{name} takes no {sorted(unknown)}"
            given = dict(zip(params, args), **kwargs)
            return getattr(self, f"_{name}", self._other)(name, given)

        return call

    def _other(self, name: str, given: dict[str, Any]) -> Any:
        self.log.setdefault(name, []).append(given)
        if name in ("row", "column", "box", "split", "column_flow", "grid_flow"):
            return CheckedLayout(self.log, self)
        return None

    def _prop(self, name: str, given: dict[str, Any]) -> None:
        data, prop = given["data"], given["property"]
        assert prop in data.bl_rna.properties, f"{data!r} has no property {prop!r}"
        self.log.setdefault("prop", []).append(prop)

    def _operator(self, name: str, given: dict[str, Any]) -> Button:
        button = Button(given["operator"], self.is_enabled())
        self.log.setdefault("operator", []).append(button)
        return button

    def _label(self, name: str, given: dict[str, Any]) -> None:
        assert isinstance(given.get("text", ""), str)
        self.log.setdefault("label", []).append(given.get("text", ""))

    def _template_list(self, name: str, given: dict[str, Any]) -> None:
        assert hasattr(bpy.types, given["listtype_name"]), given["listtype_name"]
        for data, prop in (("dataptr", "propname"), ("active_dataptr", "active_propname")):
            assert given[prop] in given[data].bl_rna.properties
        self.log.setdefault("template_list", []).append(given["propname"])


def draw(panel: type) -> dict[str, Any]:
    """Run `panel.draw` with a checked layout and the real context; what it drew."""
    log: dict[str, list[Any]] = {}
    panel.draw(SimpleNamespace(layout=CheckedLayout(log)), bpy.context)  # type: ignore[attr-defined]
    return log


def draw_all() -> dict[str, dict[str, Any]]:
    return {cls.__name__: draw(cls) for cls in panels.CLASSES}


def buttons(log: dict[str, Any]) -> dict[str, Button]:
    return {b.idname: b for b in log.get("operator", [])}


@pytest.fixture(scope="module")
def registered() -> Iterator[None]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon.register()
    yield
    addon.unregister()


@pytest.fixture
def settings(registered: None) -> Any:
    scene = bpy.context.scene
    s = scene.diffpose
    s.takes.clear()
    s.take_index = -1
    s.target_armature = None
    s.source_path = ""
    if _has_estimate(s):
        s.estimate_state = "IDLE"
    scene.use_preview_range = False
    s.smooth_method = "NONE"    # bake the take as it is (tests/blender/test_smooth_panel.py)
    return s


def _has_estimate(settings: Any) -> bool:
    """Whether the estimate part (helper U1's settings and operator) is registered; the
    panel draws without it, and these tests check that too."""
    return ("estimate_state" in settings.bl_rna.properties
            and hasattr(bpy.types, "DIFFPOSE_OT_estimate"))


def _needs_estimate(settings: Any) -> None:
    if not _has_estimate(settings):
        pytest.skip("the estimate settings and operator are not registered in this tree")


def _add_take(tmp_path: Path) -> Any:
    write_take(tmp_path / "walk.take.npz", make_take())
    return takes.add_take(bpy.context.scene, tmp_path / "walk.take.npz")


def test_every_panel_is_registered(registered: None) -> None:
    for cls in panels.CLASSES:
        assert hasattr(bpy.types, cls.__name__)
        assert cls.bl_category == "DiffPose"


def test_no_take(settings: Any) -> None:
    drawn = draw_all()
    preview = buttons(drawn["DIFFPOSE_PT_preview"])["diffpose.use_hypothesis"]
    bake = buttons(drawn["DIFFPOSE_PT_retarget"])["diffpose.bake"]
    assert not preview.enabled and not bake.enabled
    assert "Select a take in the Takes list first" in drawn["DIFFPOSE_PT_retarget"]["label"]
    assert "No take yet: estimate one above" in drawn["DIFFPOSE_PT_takes"]["label"]
    if _has_estimate(settings):
        estimate = buttons(drawn["DIFFPOSE_PT_estimate"])["diffpose.estimate"]
        assert not estimate.enabled  # no source chosen
        assert any("Choose a video" in t for t in drawn["DIFFPOSE_PT_estimate"]["label"])
    else:
        assert "diffpose.estimate is not available in this build" in \
            drawn["DIFFPOSE_PT_estimate"]["label"]
    assert not buttons(drawn["DIFFPOSE_PT_export"])["diffpose.export_fbx"].enabled


def test_running(settings: Any) -> None:
    _needs_estimate(settings)
    settings.source_path = str(Path(bpy.app.tempdir or "/tmp") / "walk.mp4")
    settings.estimate_state, settings.estimate_stage = "RUNNING", "lift"
    settings.estimate_done, settings.estimate_total = 40, 120
    drawn = draw_all()["DIFFPOSE_PT_estimate"]
    assert not buttons(drawn)["diffpose.estimate"].enabled
    assert buttons(drawn)["diffpose.estimate_cancel"].enabled
    if hasattr(bpy.types.UILayout, "progress"):
        assert drawn["progress"][0]["factor"] == pytest.approx(40 / 120)
        assert drawn["progress"][0]["text"] == "Lift: 40 / 120 frames"
    assert {"hypotheses", "steps", "seed", "device"} <= set(drawn["prop"])


def test_failed(settings: Any) -> None:
    _needs_estimate(settings)
    settings.source_path = str(Path(bpy.app.tempdir or "/tmp") / "walk.mp4")
    settings.estimate_state = "FAILED"
    settings.estimate_message = "backend: no person found\nin walk.mp4"
    drawn = draw_all()["DIFFPOSE_PT_estimate"]
    assert "backend: no person found" in drawn["label"]
    assert buttons(drawn)["diffpose.estimate"].enabled  # try again


def test_done_choose_and_bake(settings: Any, tmp_path: Path) -> None:
    scene = bpy.context.scene
    if _has_estimate(settings):
        settings.estimate_state, settings.estimate_message = "DONE", "new take 'walk'"
    item = _add_take(tmp_path)
    rig = rigs.build_family("ue5")
    settings.target_armature = rig
    settings.bake_start_frame = 1
    drawn = draw_all()
    assert drawn["DIFFPOSE_PT_takes"]["template_list"] == ["takes"]
    assert any(t.startswith("Rig: ") for t in drawn["DIFFPOSE_PT_retarget"]["label"])
    # The preview needs one hypothesis picked before it can be used.
    assert not buttons(drawn["DIFFPOSE_PT_preview"])["diffpose.use_hypothesis"].enabled
    settings.preview_hypothesis = 2
    scene.use_preview_range = True
    scene.frame_preview_start, scene.frame_preview_end = 5, 9
    drawn = draw_all()
    assert "Frames 5-9 (the preview range)" in drawn["DIFFPOSE_PT_preview"]["label"]
    assert buttons(drawn["DIFFPOSE_PT_preview"])["diffpose.use_hypothesis"].enabled

    # Press it: a new take, selected, frames 5-9 (take frames 4-8) carry hypothesis 2.
    assert bpy.ops.diffpose.use_hypothesis() == {"FINISHED"}
    assert len(settings.takes) == 2 and settings.take_index == 1
    chosen = read_take(takes.take_path(settings.takes[1]))
    assert chosen.params[CHOICES_KEY] == [{"hypothesis": 2, "first": 4, "last": 8}]
    np.testing.assert_allclose(chosen.spread[4:9], 0.0, atol=1e-6)
    assert settings.takes[0].name == item.name  # the original take stays

    # The Bake button bakes the selected (chosen) take onto the target rig.
    bake = buttons(draw(panels.DIFFPOSE_PT_retarget))["diffpose.bake"]
    assert bake.enabled
    assert bake.values["take_path"] == str(takes.take_path(settings.takes[1]))
    assert bpy.ops.diffpose.bake(**bake.values) == {"FINISHED"}
    assert rig.animation_data.action.get("diffpose_take") == settings.takes[1].name

    # Export can run now that the rig is animated and selected.
    bpy.context.view_layer.objects.active = rig
    export = buttons(draw(panels.DIFFPOSE_PT_export))
    assert export["diffpose.export_fbx"].enabled and export["diffpose.export_bvh"].enabled
    assert export["diffpose.export_fbx"].values == {"preset": "UNITY", "armature": rig.name}


def test_missing_take_file_and_unknown_rig(settings: Any, tmp_path: Path) -> None:
    item = _add_take(tmp_path)
    takes.take_path(item).unlink()
    takes.clear_cache()
    obj = bpy.data.objects.new("Blob", bpy.data.armatures.new("Blob"))
    bpy.context.scene.collection.objects.link(obj)
    settings.target_armature = obj
    drawn = draw_all()
    assert any("missing" in t for t in drawn["DIFFPOSE_PT_takes"]["label"])
    assert not buttons(drawn["DIFFPOSE_PT_retarget"])["diffpose.bake"].enabled
    assert "Rig not recognised" in drawn["DIFFPOSE_PT_retarget"]["label"]


def test_use_hypothesis_refuses_bad_input(settings: Any, tmp_path: Path) -> None:
    _add_take(tmp_path)
    settings.preview_hypothesis = -1
    with pytest.raises(RuntimeError, match="Hypothesis slider"):
        bpy.ops.diffpose.use_hypothesis()
    with pytest.raises(RuntimeError, match="hypotheses 0 to 4, got 7"):
        bpy.ops.diffpose.use_hypothesis(hypothesis=7)
    with pytest.raises(RuntimeError, match="frames 0 to 29"):
        bpy.ops.diffpose.use_hypothesis(hypothesis=0, use_panel_range=False, first=25,
                                        last=40)
    assert len(settings.takes) == 1


def test_bake_part_of_the_take(settings: Any, tmp_path: Path) -> None:
    item = _add_take(tmp_path)
    rig = rigs.build_family("ue5")
    settings.target_armature = rig
    settings.bake_start_frame = 101
    settings.bake_use_range = True
    settings.bake_first, settings.bake_last = 90, 110       # starts before the take
    bake = buttons(draw(panels.DIFFPOSE_PT_retarget))["diffpose.bake"]
    assert bake.enabled and (bake.values["frame_first"], bake.values["frame_last"]) == (90, 110)
    assert bpy.ops.diffpose.bake(**bake.values) == {"FINISHED"}
    action = rig.animation_data.action
    assert tuple(action.frame_range) == (101.0, 110.0)      # take frames 0-9 only
    assert action.get("diffpose_take") == item.name
    # A range that misses the take, and one backwards, are refused; the rig keeps its keys.
    with pytest.raises(RuntimeError, match="outside the take"):
        bpy.ops.diffpose.bake(**{**bake.values, "frame_first": 500, "frame_last": 510})
    settings.bake_first, settings.bake_last = 120, 110
    drawn = draw(panels.DIFFPOSE_PT_retarget)
    assert not buttons(drawn)["diffpose.bake"].enabled
    assert "Bake range: From is after To" in drawn["label"]
    with pytest.raises(RuntimeError, match="First .120. is after Last .110."):
        bpy.ops.diffpose.bake(**{**bake.values, "frame_first": 120, "frame_last": 110})
    assert rig.animation_data.action == action
    settings.bake_use_range = False
