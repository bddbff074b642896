"""Smoothing from the panel against a real backend process, driven step by step.

`SmoothJob.step()` is what the add-on's timer calls; here a loop calls it. The backend
is a real ``serve --stdio`` subprocess (the main environment's Python: SciPy is there,
not in Blender). What is checked is what the animator sees: the Smooth section's status
line and button, the Bake button's take, the ghosts' take, and that the smoothed take
travels with the saved .blend and is still current after reopening it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import bpy
import numpy as np
import pytest

from diffpose_blender.blender import panels, smooth, takes
from diffpose_blender.client.process import LocalBackend
from diffpose_blender.core.take import read_take, write_take
from tests.blender import backends, rigs
from tests.blender.backends import TIMEOUT, session_backend
from tests.blender.test_panels import buttons, draw
from tests.core.test_take import make_take


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    yield from session_backend()
    assert not bpy.app.timers.is_registered(smooth._tick)


@pytest.fixture
def settings(backend: LocalBackend, tmp_path: Path) -> Any:
    s = bpy.context.scene.diffpose
    s.takes.clear()
    s.smooth_method, s.smooth_cutoff_hz, s.smooth_strength = "SPLINE", 4.0, 1.0
    s.device = "cpu"             # the backend of the fixture
    smooth.stop()
    backends.use(backend)        # again: the save/reopen test's file load closed it
    return s


def _take(tmp_path: Path, name: str = "walk") -> Any:
    """A jittery 30-frame take (independent noise per frame and hypothesis) in the list."""
    path = tmp_path / f"{name}.take.npz"
    write_take(path, make_take())
    return takes.add_take(bpy.context.scene, path, name=name)


def _drive(job: smooth.SmoothJob) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not job.step():
        assert time.monotonic() < deadline, "smoothing did not end"
        time.sleep(0.02)


def _status_lines() -> list[str]:
    return list(draw(panels.DIFFPOSE_PT_smooth).get("label", []))


def test_smoothing_makes_the_file_the_bake_and_ghosts_use(settings: Any,
                                                           tmp_path: Path) -> None:
    scene = bpy.context.scene
    item = _take(tmp_path)
    raw = takes.take_path(item)
    rig = rigs.build_family("ue5")
    settings.target_armature = rig
    assert "Not smoothed yet: press Smooth Take" in _status_lines()
    assert not buttons(draw(panels.DIFFPOSE_PT_retarget))["diffpose.bake"].enabled
    assert buttons(draw(panels.DIFFPOSE_PT_smooth))["diffpose.smooth"].enabled

    job = smooth.start(scene)
    assert job is not None and smooth.running() is job
    assert "Smoothing the take..." in _status_lines()
    _drive(job)
    assert job.state == "DONE", job.message

    done = takes.smoothed_path(raw)
    assert done == raw.with_name(raw.name.replace(".take.npz", ".smoothed.take.npz"))
    assert done.is_file()
    assert "Smoothed with these settings" in _status_lines()
    smoothed, original = read_take(done), read_take(raw)
    assert smoothed.params["smoothing"]["method"] == "spline"
    # Smoother: less frame-to-frame acceleration than the jittery estimate.
    def jitter(t: Any) -> float:
        v = t.pose[t.valid]
        return float(np.abs(np.diff(v, n=2, axis=0)).mean())
    assert jitter(smoothed) < 0.5 * jitter(original)
    np.testing.assert_array_equal(read_take(raw).hypotheses, original.hypotheses)

    # The Bake button and the ghosts now use the smoothed take.
    bake = buttons(draw(panels.DIFFPOSE_PT_retarget))["diffpose.bake"]
    assert bake.enabled and bake.values["take_path"] == str(done)
    assert smooth.bake_path(scene, item) == done
    assert bpy.ops.diffpose.bake(**bake.values) == {"FINISHED"}
    assert rig.animation_data.action.get("diffpose_take") == item.name

    # Another setting: out of date until smoothed again (from the raw take, not twice).
    settings.smooth_cutoff_hz = 2.0
    assert "Smoothing settings changed: press Smooth Take" in _status_lines()
    assert not buttons(draw(panels.DIFFPOSE_PT_retarget))["diffpose.bake"].enabled
    job = smooth.start(scene)
    assert job is not None
    _drive(job)
    assert job.item_raw == raw                  # made from the raw take, not twice
    assert read_take(done).params["smoothing"]["cutoff_hz"] == 2.0
    assert smooth.start(scene) is None          # already current: nothing sent

    # None: the raw take is baked, no backend needed.
    settings.smooth_method = "NONE"
    assert smooth.bake_path(scene, item) == raw
    assert not buttons(draw(panels.DIFFPOSE_PT_smooth))["diffpose.smooth"].enabled
    assert buttons(draw(panels.DIFFPOSE_PT_retarget))["diffpose.bake"].values[
        "take_path"] == str(raw)


def test_a_failure_shows_the_backends_message_and_keeps_the_old_file(
        settings: Any, tmp_path: Path) -> None:
    scene = bpy.context.scene
    item = _take(tmp_path)
    job = smooth.start(scene)
    assert job is not None
    _drive(job)
    done = takes.smoothed_path(takes.take_path(item))
    before = done.read_bytes()
    # A Savitzky-Golay window longer than the take's runs of frames cannot work.
    settings.smooth_method, settings.smooth_window = "SAVGOL", 61
    job = smooth.start(scene)
    assert job is not None
    _drive(job)
    assert job.state == "FAILED"
    lines = _status_lines()
    assert any(t.startswith("Smoothing failed:") and "61" in t for t in lines), lines
    assert done.read_bytes() == before
    assert not buttons(draw(panels.DIFFPOSE_PT_retarget))["diffpose.bake"].enabled
    settings.smooth_window = 0


def test_cancel_keeps_the_previous_result(settings: Any, tmp_path: Path) -> None:
    scene = bpy.context.scene
    item = _take(tmp_path)
    job = smooth.start(scene)
    assert job is not None
    job.cancel()
    assert job.state == "CANCELLED" and job.step() is True
    assert smooth.running() is None
    assert not takes.smoothed_path(takes.take_path(item)).exists()
    # The backend still answers: the cancelled request ended there too.
    assert smooth.start(scene) is not None
    _drive(smooth._State.job)  # type: ignore[arg-type]


def test_the_smoothed_take_travels_with_the_blend(settings: Any, tmp_path: Path) -> None:
    scene = bpy.context.scene
    item = _take(tmp_path)
    job = smooth.start(scene)
    assert job is not None
    _drive(job)
    blend = tmp_path / "shot" / "shot.blend"
    blend.parent.mkdir()
    assert bpy.ops.wm.save_as_mainfile(filepath=str(blend)) == {"FINISHED"}
    raw_name = takes.take_path(item).name          # walk.take.npz (or walk_2...)
    carried = blend.parent / "shot_takes" / takes.smoothed_path(Path(raw_name)).name
    assert carried.is_file()
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene = bpy.context.scene
    item = takes.active_item(scene)
    assert item is not None
    path, why = smooth.smoothing_status(scene, item)
    assert why == "" and path == carried
    assert scene.diffpose.smooth_method == "SPLINE"


def test_the_button_and_live_settings(settings: Any, tmp_path: Path) -> None:
    scene = bpy.context.scene
    _take(tmp_path)
    # A setting change asks for smoothing after a short pause (a timer; headless Blender
    # runs no timers, so the pending request is checked, then played by hand).
    settings.smooth_cutoff_hz = 5.0
    assert bpy.app.timers.is_registered(smooth._debounced)
    assert smooth._State.pending == scene.name
    bpy.app.timers.unregister(smooth._debounced)
    smooth._debounced()
    job = smooth.running()
    assert job is not None and bpy.app.timers.is_registered(smooth._tick)
    _drive(job)
    assert smooth._tick() is None and smooth._State.job is None
    assert "Smoothed with these settings" in _status_lines()
    # The operator: nothing to do now; and it refuses with smoothing off.
    assert bpy.ops.diffpose.smooth() == {"FINISHED"}
    settings.smooth_method = "NONE"
    assert bpy.ops.diffpose.smooth.poll() is False
