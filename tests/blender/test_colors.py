"""Uncertainty colours: the documented scale, keyed per frame on the rig, and a way back.

The scale itself (`core.colors`) needs no Blender but sits here with the colours' only
consumer; the rest uses real bpy rigs from `rigs.py`.
"""

from __future__ import annotations

from typing import Iterator

import bpy
import numpy as np
import pytest

from diffpose_blender.blender import animdata
from diffpose_blender.blender.bake import bake
from diffpose_blender.blender.colors import SAVED_KEY, restore_user_colors
from diffpose_blender.blender.rigdata import rest_rig
from diffpose_blender.core.colors import (NO_ESTIMATE_RGB, SCALE_STOPS, bone_state_colors,
                                          spread_to_rgb)
from diffpose_blender.core.errors import DiffPoseError
from tests.blender import rigs
from tests.blender.test_bake import Motion, known_motion

GREEN, YELLOW, RED = (np.array(c) for _, c in SCALE_STOPS)


def test_scale_stops_and_interpolation() -> None:
    # Thresholds as documented: green up to 20 mm, yellow at 50 mm, red from 100 mm.
    assert [s for s, _ in SCALE_STOPS] == [0.020, 0.050, 0.100]
    rgb = spread_to_rgb(np.array([0.0, 0.020, 0.035, 0.050, 0.075, 0.100, 0.5, np.nan]))
    assert rgb.shape == (8, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[0], GREEN, atol=1e-6)
    np.testing.assert_allclose(rgb[1], GREEN, atol=1e-6)
    np.testing.assert_allclose(rgb[2], (GREEN + YELLOW) / 2, atol=1e-6)
    np.testing.assert_allclose(rgb[3], YELLOW, atol=1e-6)
    np.testing.assert_allclose(rgb[4], (YELLOW + RED) / 2, atol=1e-6)
    np.testing.assert_allclose(rgb[5], RED, atol=1e-6)
    np.testing.assert_allclose(rgb[6], RED, atol=1e-6)
    np.testing.assert_allclose(rgb[7], NO_ESTIMATE_RGB, atol=1e-6)
    normal, select, active = bone_state_colors(rgb)
    assert (select >= normal).all() and (active >= select).all() and active.max() <= 1.0


def test_scale_is_monotonic_from_green_to_red() -> None:
    rgb = spread_to_rgb(np.linspace(0.0, 0.15, 300))
    # Red never falls and green never rises past yellow: no colour means two things.
    assert (np.diff(rgb[:, 0]) >= -1e-6).all()
    assert (np.diff(rgb[120:, 1]) <= 1e-6).all()


@pytest.fixture
def rig() -> bpy.types.Object:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return rigs.build_family("vrm1")


def _colors_at(obj: bpy.types.Object, name: str) -> tuple[np.ndarray, ...]:
    custom = obj.pose.bones[name].color.custom
    return tuple(np.array(getattr(custom, s)) for s in ("normal", "select", "active"))


def test_colors_keyed_per_frame(rig: bpy.types.Object) -> None:
    motion = known_motion(rest_rig(rig), ("hips", "leftUpperLeg", "rightLowerArm"))
    # A different spread per bone and frame: bone b at frame t has (t + 10 b) mm.
    spread = (np.arange(40)[:, None] + 10.0 * np.arange(3)[None]) / 1000.0
    motion = Motion(motion.bone_names, motion.rotations, motion.root_bone,
                    motion.root_location, motion.frames, spread)
    action = bake(rig, motion, "coloured", start_frame=5)
    assert rig.data.show_bone_colors
    assert {pb.name for pb in rig.pose.bones if pb.color.palette == "CUSTOM"} == set(
        motion.bone_names)
    colour_curves = [fc for fc in animdata.fcurves_for(action, rig)
                     if ".color.custom." in fc.data_path]
    assert len(colour_curves) == 3 * 3 * 3  # bones x (normal, select, active) x RGB
    assert all(len(fc.keyframe_points) == 40 for fc in colour_curves)
    for t in (0, 9, 25, 39):
        bpy.context.scene.frame_set(5 + t)
        for b, name in enumerate(motion.bone_names):
            want = bone_state_colors(spread_to_rgb(spread[t, b]))
            for got, expected in zip(_colors_at(rig, name), want):
                # Blender stores bone colours in 8 bits per channel.
                np.testing.assert_allclose(got, expected, atol=0.5 / 255 + 1e-6)


def test_clear_restores_the_users_colours(rig: bpy.types.Object) -> None:
    # The user's own setup: bone colours hidden, one bone on a theme colour set, one on
    # a custom set of their own.
    rig.data.show_bone_colors = False
    rig.pose.bones["hips"].color.palette = "THEME03"
    spine = rig.pose.bones["spine"].color
    spine.palette = "CUSTOM"
    spine.custom.normal, spine.custom.select, spine.custom.active = (
        (0.2, 0.3, 0.9), (0.4, 0.5, 1.0), (0.6, 0.7, 1.0))
    before = {pb.name: (pb.color.palette, *_colors_at(rig, pb.name)) for pb in rig.pose.bones}

    names = rest_rig(rig).names()
    first = bake(rig, known_motion(rest_rig(rig), names), "one")
    second = bake(rig, known_motion(rest_rig(rig), names, seed=1), "two")
    assert rig.data.show_bone_colors and spine.palette == "CUSTOM"
    bpy.context.scene.frame_set(30)
    assert not np.allclose(_colors_at(rig, "spine")[0], (0.2, 0.3, 0.9))

    removed = restore_user_colors(rig)
    assert removed == 2 * len(names) * 9
    for action in (first, second):
        assert not [fc for fc in animdata.fcurves_for(action) if ".color." in fc.data_path]
        # The motion itself stays.
        assert [fc for fc in animdata.fcurves_for(action) if "rotation" in fc.data_path]
    bpy.context.scene.frame_set(12)
    after = {pb.name: (pb.color.palette, *_colors_at(rig, pb.name)) for pb in rig.pose.bones}
    assert after.keys() == before.keys()
    for name, (palette, *colours) in before.items():
        assert after[name][0] == palette
        for got, want in zip(after[name][1:], colours):
            np.testing.assert_allclose(got, want, atol=1e-6)  # same 8-bit values back
    assert not rig.data.show_bone_colors
    assert SAVED_KEY not in rig
    with pytest.raises(DiffPoseError, match="no DiffPose colours to clear"):
        restore_user_colors(rig)


@pytest.fixture
def operators() -> Iterator[None]:
    from diffpose_blender.blender.operators import bake as bake_operators

    for cls in bake_operators.classes:
        bpy.utils.register_class(cls)
    yield
    for cls in reversed(bake_operators.classes):
        bpy.utils.unregister_class(cls)


def test_clear_operator(rig: bpy.types.Object, operators: None) -> None:
    rig.pose.bones["head"].color.palette = "THEME07"
    bake(rig, known_motion(rest_rig(rig), ("head", "neck")), "take")
    assert rig.pose.bones["head"].color.palette == "CUSTOM"
    assert bpy.ops.diffpose.colors_clear(armature=rig.name) == {"FINISHED"}
    assert rig.pose.bones["head"].color.palette == "THEME07"
    # Nothing left to clear: refused with the reason (bpy raises the operator's report).
    with pytest.raises(RuntimeError, match="no DiffPose colours to clear"):
        bpy.ops.diffpose.colors_clear(armature=rig.name)


def test_colours_off_leaves_colours_alone(rig: bpy.types.Object) -> None:
    names = rest_rig(rig).names()
    action = bake(rig, known_motion(rest_rig(rig), names), "plain", colors=False)
    assert not [fc for fc in animdata.fcurves_for(action) if ".color." in fc.data_path]
    assert all(pb.color.palette == "DEFAULT" for pb in rig.pose.bones)
    assert SAVED_KEY not in rig
