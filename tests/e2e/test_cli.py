"""The headless command line, end to end in real subprocesses: `cli run` lifts the bundled
2D sample in the backend, bakes it onto a rig with the panel's operators, exports FBX and
BVH and saves a .blend; `cli demo` does the README's first run; bad input exits with 2
and a message that says what was wrong."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "walk_keypoints.npz"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None,
                                reason="needs bpy in this interpreter")

# Reads a .blend (and optionally imports an FBX into a clean scene) in its own Blender
# process and prints what the test checks, as JSON.
INSPECT = r"""
import json, sys, bpy
blend, fbx = sys.argv[1], sys.argv[2]
bpy.ops.wm.open_mainfile(filepath=blend)
out = {"actions": {a.name: [round(x) for x in a.frame_range] for a in bpy.data.actions},
       "armatures": {o.name: (o.animation_data.action.name
                              if o.animation_data and o.animation_data.action else None)
                     for o in bpy.data.objects if o.type == "ARMATURE"}}
if fbx:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=fbx, anim_offset=0.0)
    out["fbx"] = {o.name: [round(x) for x in o.animation_data.action.frame_range]
                  for o in bpy.data.objects
                  if o.type == "ARMATURE" and o.animation_data and o.animation_data.action}
print("INSPECT " + json.dumps(out))
"""


def cli(*args: str, cwd: Path = REPO, timeout: int = 600
        ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "diffpose_blender.cli", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def inspect(blend: Path, fbx: Path | None = None) -> dict:
    res = subprocess.run([sys.executable, "-c", INSPECT, str(blend), str(fbx or "")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("INSPECT "))
    return json.loads(line[len("INSPECT "):])


def test_run_bakes_exports_and_saves(tmp_path: Path) -> None:
    out, fbx, bvh = tmp_path / "walk.blend", tmp_path / "walk.fbx", tmp_path / "walk.bvh"
    res = cli("run", str(SAMPLE), "--rig", "metarig", "-o", str(out), "--fbx", str(fbx),
              "--fbx-preset", "unity", "--bvh", str(bvh), "--smooth", "butterworth",
              "--device", "cpu")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "baking onto 'metarig'" in res.stderr
    seen = inspect(out, fbx)
    # A new action named after the take, on the metarig, over the sample's 121 frames.
    assert seen["armatures"] == {"metarig": "walk_keypoints"}, seen
    assert seen["actions"]["walk_keypoints"] == [1, 121]
    assert list(seen["fbx"].values()) == [[1, 121]], seen
    assert bvh.read_text().count("\n") > 121


def test_run_onto_a_blend_file(tmp_path: Path) -> None:
    # The user's own file: opened as it is, the armature chosen by name, saved anew.
    rig = tmp_path / "rig.blend"
    make = ("import bpy, addon_utils\n"
            "bpy.ops.wm.read_factory_settings(use_empty=True)\n"
            "addon_utils.enable('rigify', default_set=True)\n"
            "bpy.ops.object.armature_human_metarig_add()\n"
            "bpy.context.object.name = 'Hero'\n"
            "bpy.ops.object.armature_add()\n"
            f"bpy.ops.wm.save_as_mainfile(filepath={str(rig)!r})\n")
    assert subprocess.run([sys.executable, "-c", make], capture_output=True,
                          timeout=300).returncode == 0
    out = tmp_path / "hero.blend"
    res = cli("run", str(SAMPLE), "--rig", str(rig), "-o", str(out), "--device", "cpu")
    assert res.returncode == 2
    assert "2 armatures (Armature, Hero); choose one with --armature" in res.stderr
    res = cli("run", str(SAMPLE), "--rig", str(rig), "--armature", "Hero", "-o", str(out),
              "--smooth", "none", "--device", "cpu")
    assert res.returncode == 0, res.stderr[-3000:]
    seen = inspect(out)
    assert seen["armatures"] == {"Hero": "walk_keypoints", "Armature": None}, seen


@pytest.mark.parametrize("args, message", [
    (["run", "nothing_here.npz", "--rig", "metarig", "-o", "{tmp}/o.blend"],
     "nothing_here.npz: file not found"),
    (["run", str(SAMPLE), "--rig", "gorilla", "-o", "{tmp}/o.blend"],
     "--rig 'gorilla': expected one of rigify, metarig or a .blend file"),
    (["run", str(SAMPLE), "--rig", "{tmp}/missing.blend", "-o", "{tmp}/o.blend"],
     "missing.blend: file not found"),
    (["run", str(SAMPLE), "--rig", "metarig", "-o", "{tmp}/no/such/dir/o.blend"],
     "does not exist"),
])
def test_bad_input_exits_2(args: list[str], message: str, tmp_path: Path) -> None:
    res = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args], timeout=120)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert not list(tmp_path.glob("*.blend"))


def test_backend_bad_input_exits_2(tmp_path: Path) -> None:
    # A file the backend refuses: its message comes through, exit code 2.
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    res = cli("run", str(junk), "--rig", "metarig", "-o", str(tmp_path / "o.blend"))
    assert res.returncode == 2, res.stderr
    assert "junk.npz" in res.stderr.splitlines()[-1]


def test_demo(tmp_path: Path) -> None:
    res = cli("demo", "-o", "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "out"
    assert (out / "demo.fbx").stat().st_size > 10_000
    previews = sorted(out.glob("preview_*.png"))
    assert len(previews) >= 4
    seen = inspect(out / "demo.blend")
    assert seen["armatures"]["rig"] == "sample_walk", seen
    assert not any(name.startswith("preview") for name in seen["armatures"])


def test_input_shorter_than_the_smoothing_window_exits_2(tmp_path: Path) -> None:
    # Ten frames of the sample: Butterworth smoothing needs 16; the backend says so and
    # nothing is saved.
    from diffpose_blender.core.formats import read_keypoints, write_keypoints_npz

    kp = read_keypoints(SAMPLE)
    kp.keypoints, kp.scores, kp.valid = kp.keypoints[:10], kp.scores[:10], kp.valid[:10]
    short = tmp_path / "short.npz"
    write_keypoints_npz(short, kp)
    out = tmp_path / "o.blend"
    res = cli("run", str(short), "--rig", "metarig", "-o", str(out), "--smooth",
              "butterworth", "--device", "cpu")
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert "longest run of valid frames is 10, but butterworth smoothing needs at least " \
           "16" in last, last
    assert not out.exists()
