#!/usr/bin/env python3
"""Bake time: bulk F-Curve writing against ``keyframe_insert`` per frame, in one run.

    .venv/bin/python bench/bake.py [--frames 1800] [--repeats 3]
    .venv-blender-4.2/bin/python bench/bake.py

Rigs: the Rigify generated rig (built with Rigify's own operators; its controls mix
quaternion and Euler rotation modes) and the MakeHuman Mixamo character (glTF import),
both from ``tests/blender/rigs.py``. Driven bones: those of the rig map that
``core.rigmap.detect_rig`` picks for the rig, i.e. what a real bake keys. The motion is a
smooth swing of every driven bone plus root motion (the writer's cost does not depend on
what the motion is).

Both sides write the same keys into a new action: every driven bone's rotation in its own
rotation mode and the root bone's location, `frames` frames.

- bulk:  ``blender.bake.bake`` (``keyframe_points.add`` + ``foreach_set``), colours off;
- bulk + colours: the same with the uncertainty colour keys (3 colours x RGB per bone);
- naive: per frame, set each pose bone's rotation (and the root's location) and call
  ``pose_bone.keyframe_insert`` for it, as a frame-by-frame script would.

Prints the best of `repeats` runs (seconds) and the naive / bulk ratio (issue 4 asks for
at least 20x).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402
from mathutils import Quaternion  # noqa: E402

from diffpose_blender.blender.animdata import assign_action, new_action  # noqa: E402
from diffpose_blender.blender.bake import bake  # noqa: E402
from diffpose_blender.blender.rigdata import rest_rig  # noqa: E402
from diffpose_blender.core.rigmap import detect_rig  # noqa: E402
from tests.blender import rigs  # noqa: E402
from tests.blender.test_bake import known_motion  # noqa: E402


def naive_bake(obj: bpy.types.Object, motion, name: str) -> bpy.types.Action:  # type: ignore[no-untyped-def]
    """The same keys with one ``keyframe_insert`` per bone and frame."""
    action = new_action(obj, name)
    assign_action(obj, action)
    bones = [obj.pose.bones[n] for n in motion.bone_names]
    root = obj.pose.bones[motion.root_bone]
    for t, offset in enumerate(motion.frames):
        frame = 1 + int(offset)
        for b, pb in enumerate(bones):
            q = Quaternion(motion.rotations[t, b])
            if pb.rotation_mode == "QUATERNION":
                pb.rotation_quaternion = q
                pb.keyframe_insert("rotation_quaternion", frame=frame, group=pb.name)
            elif pb.rotation_mode == "AXIS_ANGLE":
                axis, angle = q.to_axis_angle()
                pb.rotation_axis_angle = (angle, *axis)
                pb.keyframe_insert("rotation_axis_angle", frame=frame, group=pb.name)
            else:
                pb.rotation_euler = q.to_euler(pb.rotation_mode, pb.rotation_euler)
                pb.keyframe_insert("rotation_euler", frame=frame, group=pb.name)
        root.location = motion.root_location[t]
        root.keyframe_insert("location", frame=frame, group=root.name)
    return action


def best_of(repeats: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=1800)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    targets = {"Rigify generated rig": rigs.build_rigify_generated(),
               "Mixamo (MakeHuman glTF)": rigs.build_mixamo()}
    rows = []
    for label, obj in targets.items():
        rig = rest_rig(obj)
        rig_map = detect_rig(rig.names()).rig_map
        driven = tuple(n for n in rig.names() if n in rig_map.bones)
        motion = known_motion(rig, driven, frames=args.frames)
        # The root bone of the map takes the location keys, as in a real bake.
        motion = type(motion)(motion.bone_names, motion.rotations, rig_map.root,
                              motion.root_location, motion.frames, motion.spread)
        modes = sorted({obj.pose.bones[n].rotation_mode for n in driven})
        bulk = best_of(args.repeats, lambda: bake(obj, motion, "bulk", colors=False))
        colours = best_of(args.repeats, lambda: bake(obj, motion, "bulk_colours"))
        naive = best_of(args.repeats, lambda: naive_bake(obj, motion, "naive"))
        rows.append((label, len(driven), "/".join(modes), bulk, colours, naive))

    print(f"\nBake of {args.frames} frames, Blender {bpy.app.version_string}, "
          f"best of {args.repeats}")
    print(f"| rig | driven bones | rotation modes | bulk (s) | bulk + colours (s) | "
          f"naive keyframe_insert (s) | naive / bulk |")
    print("|---|---|---|---|---|---|---|")
    for label, n, modes, bulk, colours, naive in rows:
        print(f"| {label} | {n} | {modes} | {bulk:.3f} | {colours:.3f} | {naive:.2f} | "
              f"{naive / bulk:.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
