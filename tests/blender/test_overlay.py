"""The hypothesis preview draws ghost skeletons where the hypotheses project.

The drawing code runs for real into a `gpu.types.GPUOffScreen`: the `bpy` module starts
without a GPU context in background mode (every `gpu` call raises "GPU functions for
drawing are not available in background mode"), and rendering one tiny Workbench frame
makes Blender create one (software Mesa EGL here, DESIGN §10). On 4.2 drawing after
``GPUOffScreen.bind()`` leaves the texture as cleared, so the test binds a
`gpu.types.GPUFrameBuffer` over the offscreen's colour texture, which works on 4.2 and 5.0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import bpy
import numpy as np
import pytest
from mathutils import Matrix

from diffpose_blender import blender as addon
from diffpose_blender.blender import overlay, takes
from diffpose_blender.core.ghosts import take_ghosts
from diffpose_blender.core.skeleton import SKELETON
from diffpose_blender.core.take import write_take
from tests.core.test_take import EMPTY_FRAME, make_take

SIZE = 200  # offscreen width and height, pixels
START = 11  # scene frame of the take's first frame
FRAME = 3   # take frame drawn


@pytest.fixture(scope="module")
def registered() -> Iterator[None]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon.register()
    yield
    addon.unregister()


@pytest.fixture(scope="module")
def gpu_context() -> None:
    # A scratch scene with a camera, rendered once and removed.
    scene = bpy.data.scenes.new("gpu context")
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = 8
    try:
        bpy.ops.render.render(write_still=False, scene=scene.name)
    finally:
        bpy.data.scenes.remove(scene)
        bpy.data.objects.remove(camera)
    import gpu

    gpu.shader.from_builtin("POLYLINE_SMOOTH_COLOR")  # raises if there is no context


@pytest.fixture
def scene(registered: None, tmp_path: Path) -> bpy.types.Scene:
    sc = bpy.context.scene
    settings = sc.diffpose
    settings.takes.clear()
    write_take(tmp_path / "walk.take.npz", make_take())
    takes.add_take(sc, tmp_path / "walk.take.npz")
    settings.bake_start_frame = START
    sc.frame_set(START + FRAME)
    settings.show_hypotheses, settings.preview_hypothesis = True, -1
    settings.ghost_opacity, settings.ghost_colors = 1.0, True
    return sc


def _projection(points: np.ndarray) -> np.ndarray:
    """A front view (looking along +Y) fitting `points` (world metres) into clip space."""
    lo, hi = np.nanmin(points, axis=0), np.nanmax(points, axis=0)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2 * 1.2
    return np.array([[1 / half, 0, 0, -centre[0] / half],
                     [0, 0, 1 / half, -centre[2] / half],
                     [0, 0.01 / half, 0, 0],
                     [0, 0, 0, 1]])


def _render(scene: bpy.types.Scene, projection: np.ndarray) -> np.ndarray:
    """(SIZE, SIZE, 4) RGBA floats of the overlay drawn alone, row 0 at the bottom."""
    import gpu

    offscreen = gpu.types.GPUOffScreen(SIZE, SIZE)
    try:
        framebuffer = gpu.types.GPUFrameBuffer(color_slots=(offscreen.texture_color,))
        with framebuffer.bind():
            framebuffer.clear(color=(0.0, 0.0, 0.0, 0.0))
            gpu.state.viewport_set(0, 0, SIZE, SIZE)
            with gpu.matrix.push_pop(), gpu.matrix.push_pop_projection():
                gpu.matrix.load_matrix(Matrix.Identity(4))
                gpu.matrix.load_projection_matrix(Matrix(projection.tolist()))
                overlay.draw_scene(scene)
            pixels = framebuffer.read_color(0, 0, SIZE, SIZE, 4, 0, "FLOAT")
        return np.array(pixels.to_list(), dtype=np.float32).reshape(SIZE, SIZE, 4)
    finally:
        offscreen.free()


def _pixel(projection: np.ndarray, point: np.ndarray) -> tuple[int, int]:
    """(row, column) of world `point` in the offscreen image."""
    clip = projection @ np.append(point, 1.0)
    x, y = (clip[:2] / clip[3] + 1.0) / 2.0 * SIZE
    return int(y), int(x)


def _lit(image: np.ndarray, rc: tuple[int, int], radius: int = 2) -> bool:
    r, c = rc
    return bool(image[max(r - radius, 0):r + radius + 1,
                      max(c - radius, 0):c + radius + 1, 3].max() > 0.5)


def test_ghost_pixels_appear_where_the_hypotheses_project(
        scene: bpy.types.Scene, gpu_context: None) -> None:
    ghosts = take_ghosts(make_take())
    joints = ghosts.hypotheses[FRAME]  # (N, J, 3) world metres
    projection = _projection(joints.reshape(-1, 3))
    image = _render(scene, projection)
    print(f"Blender {bpy.app.version_string}: {int((image[..., 3] > 0.5).sum())} ghost "
          f"pixels")
    # The middle of every bone of every hypothesis is drawn ...
    for n in range(ghosts.num_hypotheses):
        for parent, child in SKELETON.bones:
            mid = (joints[n, parent] + joints[n, child]) / 2
            assert _lit(image, _pixel(projection, mid)), (n, parent, child)
    # ... and far from the skeleton nothing is: the corners of the image are empty.
    for rc in ((2, 2), (2, SIZE - 3), (SIZE - 3, 2), (SIZE - 3, SIZE - 3)):
        assert not _lit(image, rc)
    # The colours are the spread's: green-to-red hues, no blue.
    drawn = image[image[..., 3] > 0.5]
    assert (drawn[:, 2] < 0.2).all()

    # One hypothesis alone: its bones are drawn, and fewer pixels in all.
    scene.diffpose.preview_hypothesis = 2
    single = _render(scene, projection)
    for parent, child in SKELETON.bones:
        assert _lit(single, _pixel(projection, (joints[2, parent] + joints[2, child]) / 2))
    assert (single[..., 3] > 0.5).sum() < (image[..., 3] > 0.5).sum()

    # Preview off, or a frame without a pose: nothing.
    scene.diffpose.preview_hypothesis = -1
    scene.diffpose.show_hypotheses = False
    assert (_render(scene, projection)[..., 3] == 0).all()
    scene.diffpose.show_hypotheses = True
    scene.frame_set(START + EMPTY_FRAME)
    assert (_render(scene, projection)[..., 3] == 0).all()


def test_lines_follow_frames_and_the_baked_rig(scene: bpy.types.Scene) -> None:
    ghosts = take_ghosts(make_take())
    lines = overlay.scene_lines(scene)
    assert lines is not None
    positions, colors = lines
    B, N = len(SKELETON.bones), ghosts.num_hypotheses
    assert positions.shape == (2 * B * N, 3)
    np.testing.assert_allclose(positions[1], ghosts.hypotheses[FRAME, 0, SKELETON.bones[0][1]],
                               atol=1e-5)
    assert (colors[:, 3] == pytest.approx(1.0))
    scene.frame_set(START - 1)  # before the take
    assert overlay.scene_lines(scene) is None

    # An armature showing an action baked from this take carries the ghosts along.
    scene.frame_set(START + FRAME)
    arm = bpy.data.objects.new("Rig", bpy.data.armatures.new("Rig"))
    scene.collection.objects.link(arm)
    action = bpy.data.actions.new("walk")
    action["diffpose_take"] = "walk"
    arm.animation_data_create().action = action
    arm.location = (5.0, 0.0, 0.0)
    bpy.context.view_layer.update()
    try:
        moved = overlay.scene_lines(scene)
        assert moved is not None
        np.testing.assert_allclose(moved[0], positions + (5.0, 0.0, 0.0), atol=1e-5)
    finally:
        bpy.data.objects.remove(arm)
        bpy.data.actions.remove(action)


def test_handler_follows_register_and_file_load(registered: None) -> None:
    assert overlay.is_drawing()
    bpy.ops.wm.read_homefile(use_empty=True)  # load_pre removes it, load_post adds it
    assert overlay.is_drawing()
    addon.unregister()
    try:
        assert not overlay.is_drawing()
        assert overlay._on_load_pre not in bpy.app.handlers.load_pre
        assert overlay._on_load_post not in bpy.app.handlers.load_post
    finally:
        addon.register()
    assert overlay.is_drawing()


def test_ghosts_stand_where_the_baked_rig_stands(scene: bpy.types.Scene) -> None:
    """Baked with the panel's settings onto a rig moved away from the origin, the ghosts'
    mean pelvis follows the rig's pelvis (within the retarget's own floor and leg-length
    adjustments: 2 cm measured)."""
    from tests.blender import rigs

    item = takes.active_item(scene)
    rig = rigs.build_family("ue5")
    rig.location = (1.0, 2.0, 0.0)
    scene.diffpose.target_armature = rig
    try:
        assert bpy.ops.diffpose.bake(take_path=str(takes.take_path(item)), armature=rig.name,
                                     action_name=item.name, start_frame=START) == {"FINISHED"}
        B = len(SKELETON.bones)
        for frame in (0, FRAME, 20):
            scene.frame_set(START + frame)
            lines = overlay.scene_lines(scene)
            assert lines is not None
            positions = lines[0].reshape(-1, B, 2, 3)  # (N, B, 2, 3)
            assert SKELETON.bones[0][0] == SKELETON.index["pelvis"]
            ghost_pelvis = positions[:, 0, 0].mean(axis=0)
            rig_pelvis = np.array(rig.matrix_world @ rig.pose.bones["pelvis"].head)
            assert np.linalg.norm(ghost_pelvis - rig_pelvis) < 0.05, (frame, ghost_pelvis,
                                                                      rig_pelvis)
    finally:
        scene.diffpose.target_armature = None
        action = rig.animation_data.action
        bpy.data.objects.remove(rig)
        bpy.data.actions.remove(action)
