"""The animator's whole path in one session, through the panel's own buttons.

Load the bundled sample video, estimate with 5 hypotheses (the bundled model, detection
included, in a real backend subprocess), let the live smoothing finish, bake onto a Rigify
rig, scrub and see the ghosts (drawn into an offscreen buffer) and the bone colours, pick
one hypothesis for the most ambiguous stretch, bake that, export an FBX.

Each button is the one the panel draws (`tests.blender.test_panels.draw` runs the panels'
`draw` and hands back the operator buttons with the properties the panel set), pressed
with those properties. What a window would do by itself is played by hand: the estimate
operator's timer (`EstimateJob.step`, as in test_estimate.py) and the smoothing timers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import bpy
import numpy as np
import pytest

from diffpose_blender.blender import animdata, estimate, overlay, panels, smooth, takes
from diffpose_blender.client.process import LocalBackend
from diffpose_blender.core.choice import CHOICES_KEY
from diffpose_blender.core.take import read_take
from tests.blender import rigs
from tests.blender.backends import TIMEOUT, session_backend
from tests.blender.test_estimate import SAMPLE_VIDEO
from tests.blender.test_overlay import SIZE, _lit, _pixel, _projection, _render
from tests.blender.test_overlay import gpu_context  # noqa: F401  (a fixture)
from tests.blender.test_panels import buttons, draw

pytestmark = pytest.mark.skipif(not SAMPLE_VIDEO.is_file(),
                                reason="the bundled sample clip is missing")


@pytest.fixture(scope="module")
def session() -> Iterator[LocalBackend]:
    yield from session_backend()


def press(panel: type, idname: str, **extra: Any) -> set[str]:
    """Draw `panel`, check its `idname` button is enabled, press it with the panel's
    properties (and `extra`, what a file browser would add)."""
    button = buttons(draw(panel))[idname]
    assert button.enabled, draw(panel).get("label")
    module, name = idname.split(".")
    result: set[str] = getattr(getattr(bpy.ops, module), name)(**button.values, **extra)
    return result


def wait_for_smoothing() -> None:
    """Play the live smoothing's timers: the pending request, then the job's ticks."""
    if bpy.app.timers.is_registered(smooth._debounced):
        bpy.app.timers.unregister(smooth._debounced)
        smooth._debounced()
    deadline = time.monotonic() + TIMEOUT
    while smooth._tick() is not None:
        assert time.monotonic() < deadline, "smoothing did not end"
        time.sleep(0.02)


def test_video_to_fbx_in_one_session(session: LocalBackend, gpu_context: None,  # noqa: F811
                                     tmp_path: Path) -> None:
    scene = bpy.context.scene
    s = scene.diffpose

    # Source: the bundled sample video.
    s.source_path = str(SAMPLE_VIDEO)
    assert press(panels.DIFFPOSE_PT_source, "diffpose.load_source") == {"FINISHED"}
    assert s.source_format == "Video"

    # Estimate with 5 hypotheses, the bundled model, on the CPU.
    s.hypotheses, s.device, s.model = 5, "cpu", ""
    assert press(panels.DIFFPOSE_PT_estimate, "diffpose.estimate") == {"FINISHED"}
    job = estimate.running()
    assert job is not None
    deadline = time.monotonic() + 2 * TIMEOUT
    stages = set()
    while not job.step():
        stages.add(s.estimate_stage)
        assert time.monotonic() < deadline, "the estimate did not end"
        time.sleep(0.05)
    assert job.state == "DONE", job.message
    assert "detect" in stages          # (the lift may end between two looks)
    assert len(s.takes) == 1
    item = s.takes[0]
    assert item.hypotheses == 5 and item.frames > 60

    # Smoothing follows by itself (the new take was selected).
    wait_for_smoothing()
    smoothed = smooth.bake_path(scene, item)
    assert smoothed is not None and smoothed != takes.take_path(item)

    # Bake onto a Rigify rig.
    rig = rigs.build_rigify_generated()
    s.target_armature = rig
    s.bake_start_frame = 1
    assert press(panels.DIFFPOSE_PT_retarget, "diffpose.bake") == {"FINISHED"}
    first_action = rig.animation_data.action
    assert first_action.get("diffpose_take") == item.name
    assert scene.frame_end == item.frames

    # Scrub: ghosts at every frame with a pose, drawn where they project; bone colours
    # keyed per frame and following the uncertainty.
    take = read_take(smoothed)
    seen_colours = set()
    colour_curves = [fc for fc in animdata.fcurves_for(first_action)
                     if ".color.custom.normal" in fc.data_path]
    assert colour_curves
    for t in range(0, item.frames, 7):
        scene.frame_set(1 + t)
        lines = overlay.scene_lines(scene)
        assert (lines is not None) == bool(take.valid[t]), t
        seen_colours.update(round(fc.evaluate(1 + t), 3) for fc in colour_curves)
    assert len(seen_colours) > 3          # the colours change with the spread
    t = int(np.flatnonzero(take.valid)[len(take.valid) // 2])
    scene.frame_set(1 + t)
    lines = overlay.scene_lines(scene)
    assert lines is not None
    positions = lines[0]
    projection = _projection(positions)
    image = _render(scene, projection)
    for a, b in positions.reshape(-1, 2, 3)[::5]:
        assert _lit(image, _pixel(projection, (a + b) / 2)), (a, b)
    assert (image[..., 3] > 0.5).sum() < 0.5 * SIZE * SIZE

    # The most ambiguous stretch (largest spread over 10 frames): keep hypothesis 1 there.
    raw = read_take(takes.take_path(item))
    spread = np.where(raw.valid, raw.spread.mean(axis=1), 0.0)
    window = np.convolve(spread, np.ones(10), mode="valid")
    a = int(window.argmax())
    scene.use_preview_range = True
    scene.frame_preview_start, scene.frame_preview_end = 1 + a, 10 + a
    s.preview_hypothesis = 1
    assert press(panels.DIFFPOSE_PT_preview, "diffpose.use_hypothesis") == {"FINISHED"}
    assert len(s.takes) == 2 and s.take_index == 1
    chosen = s.takes[1]
    assert read_take(takes.take_path(chosen)).params[CHOICES_KEY] == [
        {"hypothesis": 1, "first": a, "last": a + 9}]
    scene.use_preview_range = False
    wait_for_smoothing()
    assert press(panels.DIFFPOSE_PT_retarget, "diffpose.bake") == {"FINISHED"}
    assert rig.animation_data.action.get("diffpose_take") == chosen.name
    assert rig.animation_data.action != first_action

    # Export for Unity.
    bpy.context.view_layer.objects.active = rig
    fbx = tmp_path / "walk.fbx"
    s.export_preset = "UNITY"
    assert press(panels.DIFFPOSE_PT_export, "diffpose.export_fbx",
                 filepath=str(fbx)) == {"FINISHED"}
    assert fbx.is_file() and fbx.stat().st_size > 10_000
    with open(fbx, "rb") as f:
        assert f.read(18) == b"Kaydara FBX Binary"
