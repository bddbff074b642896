"""Render the bundled sample clip: the CC0 MakeHuman character walking a CMU motion.

    .venv/bin/python tools/make_sample_clip.py [-o examples]

Writes ``sample_walk.mp4`` (the demo's default input and the detector's self-contained
test video) and ``sample_walk_truth.npz`` (its ground truth) into the output folder.

How: Blender (the `bpy` module) imports ``makehuman_male_game_engine.glb`` from the shared
character folder, the training motion CMU 05_01 ("walk", subject 05 is a training
subject) is read with the project's own mocap reader, retargeted onto the character with
the project's own retargeting (`core.retarget`, foot locking off: the mocap is clean) and
baked with the add-on's writer; a fixed camera films it with Workbench in software
(no GPU), and OpenCV encodes the frames.

Ground truth (``sample_walk_truth.npz``), per frame, for the joints the character's rig
represents (NaN for the others):

- ``joints_world (T, J, 3)`` Blender world metres (Z up) of the posed rig, as rendered;
- ``joints_camera (T, J, 3)`` camera metres (x right, y down, z forward);
- ``joints_2d (T, J, 2)`` image pixels (x right, y down), the projection of the above;
- ``mocap_world (T, J, 3)`` the mocap clip's own joints (what the rig was driven with);
- ``focal_px``, ``image_size (w, h)``, ``fps``, ``joint_names``, ``source`` text.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import bpy  # noqa: E402
from mathutils import Matrix, Vector  # noqa: E402

from diffpose_blender.backend.data.corpus import load_clip, shared_data_root  # noqa: E402
from diffpose_blender.blender.bake import bake  # noqa: E402
from diffpose_blender.blender.rigdata import rest_rig  # noqa: E402
from diffpose_blender.core.fileio import atomic_write  # noqa: E402
from diffpose_blender.core.retarget import (RetargetOptions, pose_world_joints,  # noqa: E402
                                            retarget)
from diffpose_blender.core.rigmap import detect_rig  # noqa: E402
from diffpose_blender.core.skeleton import JOINT_NAMES  # noqa: E402
from diffpose_blender.core.world import WorldMotion  # noqa: E402

CLIP = "cmu_bvh/cgspeed_mb/05/05_01.bvh.gz"
CHARACTER = "makehuman_male_game_engine.glb"
WIDTH, HEIGHT = 640, 480
LENS_MM, SENSOR_MM = 35.0, 36.0
FPS = 30


def load_motion(shared: Path) -> tuple[np.ndarray, str]:
    """(T, J, 3) world metres of the CMU clip, centred on the floor and facing -Y."""
    clip = load_clip("cmu_bvh_cgspeed", shared / "mocap" / CLIP, subject="05", take="01")
    joints = clip.positions.astype(np.float64)
    pelvis = joints[:, 0]
    joints[..., :2] -= pelvis[:, :2].mean(axis=0)        # walk centred under the camera
    return joints, f"CMU motion capture 05_01 (walk), via {CLIP}"


def build_scene(shared: Path) -> bpy.types.Object:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.import_scene.gltf(filepath=str(shared / "character" / CHARACTER)) \
        == {"FINISHED"}
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = WIDTH, HEIGHT
    scene.render.resolution_percentage = 100
    scene.render.fps = FPS
    scene.render.image_settings.file_format = "PNG"
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "MATERIAL"
    world = bpy.data.worlds.new("backdrop")
    world.color = (0.55, 0.58, 0.62)
    scene.world = world
    # A floor, so the figure stands on something, as in real footage.
    bpy.ops.mesh.primitive_plane_add(size=40.0, location=(0.0, 0.0, 0.0))
    floor_mat = bpy.data.materials.new("floor")
    floor_mat.diffuse_color = (0.35, 0.33, 0.30, 1.0)
    bpy.context.object.data.materials.append(floor_mat)
    return arm


def add_camera(target: Vector, distance: float, height: float) -> bpy.types.Object:
    cam_data = bpy.data.cameras.new("camera")
    cam_data.lens, cam_data.sensor_width, cam_data.sensor_fit = LENS_MM, SENSOR_MM, \
        "HORIZONTAL"
    cam = bpy.data.objects.new("camera", cam_data)
    bpy.context.scene.collection.objects.link(cam)
    # In front of the walk (-Y is the character's forward), a little to the side.
    cam.location = Vector((distance * 0.35, -distance, height))
    direction = target - cam.location
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    bpy.context.scene.camera = cam
    return cam


def camera_projection(cam: bpy.types.Object) -> tuple[np.ndarray, float]:
    """World -> camera (OpenCV axes) 4x4 matrix, and the focal length in pixels."""
    bpy.context.view_layer.update()
    world_to_blender_cam = np.array(cam.matrix_world.inverted())
    # Blender's camera looks down -Z with Y up; OpenCV's looks down +Z with Y down.
    flip = np.diag([1.0, -1.0, -1.0, 1.0])
    focal = LENS_MM / SENSOR_MM * WIDTH
    return flip @ world_to_blender_cam, focal


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=str(REPO / "examples"))
    args = ap.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    shared = shared_data_root()

    mocap, source = load_motion(shared)
    arm = build_scene(shared)
    rig = rest_rig(arm)
    detection = detect_rig([b.name for b in arm.data.bones])
    motion = WorldMotion.from_positions(mocap, FPS)
    result = retarget(motion, rig, detection.rig_map, RetargetOptions(foot_lock=False))
    bake(arm, result, "sample_walk", start_frame=1, colors=False)
    T = len(mocap)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, T

    posed = pose_world_joints(rig, detection.rig_map, result)          # (T, J, 3) world
    centre = np.nanmean(posed[:, 0], axis=0)
    cam = add_camera(Vector((centre[0], centre[1], 0.95)), distance=5.5, height=1.3)
    world_to_cam, focal = camera_projection(cam)
    homo = np.concatenate([posed, np.ones(posed.shape[:2] + (1,))], axis=-1)
    cam_pts = homo @ world_to_cam.T
    joints_camera = cam_pts[..., :3]
    joints_2d = focal * joints_camera[..., :2] / joints_camera[..., 2:3] + \
        np.array([WIDTH / 2.0, HEIGHT / 2.0])

    import cv2

    with tempfile.TemporaryDirectory() as tmp:
        # OpenCV picks the container from the name: write .mp4 in the temporary folder,
        # then move it into place.
        video_tmp = Path(tmp) / "sample_walk.mp4"
        writer = cv2.VideoWriter(str(video_tmp),
                                 cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
        try:
            for f in range(1, T + 1):
                scene.frame_set(f)
                scene.render.filepath = str(Path(tmp) / f"f{f:04d}.png")
                bpy.ops.render.render(write_still=True)
                frame = cv2.imread(scene.render.filepath)
                writer.write(frame)
                print(f"\rrendered {f}/{T}", end="", file=sys.stderr)
        finally:
            writer.release()
        print(file=sys.stderr)
        if not video_tmp.is_file() or video_tmp.stat().st_size == 0:
            raise SystemExit("OpenCV wrote no video (no mp4v encoder in this build?)")
        with atomic_write(out / "sample_walk.mp4") as fh:
            fh.write(video_tmp.read_bytes())

    with atomic_write(out / "sample_walk_truth.npz") as fh:
        np.savez_compressed(
            fh, joints_world=posed.astype(np.float32),
            joints_camera=joints_camera.astype(np.float32),
            joints_2d=joints_2d.astype(np.float32), mocap_world=mocap.astype(np.float32),
            focal_px=np.float64(focal), image_size=np.array([WIDTH, HEIGHT]),
            fps=np.float64(FPS), joint_names=np.array(JOINT_NAMES),
            source=np.array(json.dumps({"motion": source, "character": CHARACTER,
                                        "rig_map": detection.rig_map.family})))
    size = (out / "sample_walk.mp4").stat().st_size
    print(f"wrote {out / 'sample_walk.mp4'} ({T} frames, {size / 1e6:.2f} MB) and "
          f"{out / 'sample_walk_truth.npz'}; rig map {detection.rig_map.family}, "
          f"camera {math.degrees(2 * math.atan(WIDTH / 2 / focal)):.0f} deg horizontal FOV")


if __name__ == "__main__":
    main()
