"""Headless runs (DESIGN §7): video or 2D keypoints to an animated rig, without the UI.

    python -m diffpose_blender.cli run INPUT --rig NAME|FILE.blend -o out.blend
                                   [--armature NAME] [--fbx F [--fbx-preset P]] [--bvh F]
                                   [--smooth METHOD] [--model NAME] [--hypotheses N]
                                   [--device auto|cpu|cuda] [--backend-python PY]
    python -m diffpose_blender.cli demo [-o FOLDER]

``run`` works in two processes, as the add-on does: the heavy steps (detection, lifting,
smoothing) run in the backend, ``python -m diffpose_blender.backend lift`` and then
``smooth``, as subprocesses (by default this same interpreter; ``--backend-python`` or
``$DIFFPOSE_BACKEND_PYTHON`` names another), so the process that imports ``bpy`` never
imports torch or SciPy. Then, with ``bpy`` in this interpreter, it loads the rig, registers
the add-on and calls the same operators as the panel: ``diffpose.bake`` and
``diffpose.export_fbx`` / ``diffpose.export_bvh``; it saves the ``.blend`` last.

Rigs (``--rig``): ``rigify`` is Rigify's human metarig and the rig Rigify generates from
it (built with Rigify's own operators, ~30 s; the take is baked onto the generated rig's
FK controls, and its limbs' IK/FK switches are set to FK), ``metarig`` the metarig
alone, or a ``.blend`` file, opened as it is (its
armature chosen by ``--armature`` when it has several) and saved under the new name.

``demo`` runs ``run`` on the bundled sample video (examples/sample_walk.mp4: the CC0
MakeHuman character walking, rendered by tools/make_sample_clip.py), detection included,
with the bundled model onto a Rigify rig and writes ``demo.blend``, ``demo.fbx`` (Blender preset)
and a short Workbench preview (a few PNG frames, 320x240) into the output folder
(default ``./diffpose-demo``).

Exit codes: 0 done, 2 bad input (the message names what and where), 1 anything else.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .core.errors import DiffPoseError, exit_code

if TYPE_CHECKING:
    import bpy

#: The package's import name (``diffpose_blender`` from a checkout).
PACKAGE = __package__ or "diffpose_blender"
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent
BUILTIN_RIGS: tuple[str, ...] = ("rigify", "metarig")
FBX_PRESET_NAMES: tuple[str, ...] = ("unity", "unreal", "blender")
SMOOTH_METHODS: tuple[str, ...] = ("none", "butterworth", "savgol", "spline")
BACKEND_PYTHON_ENV = "DIFFPOSE_BACKEND_PYTHON"
#: The bundled sample `demo` runs (2D keypoints until the sample video exists).
DEMO_INPUT = _PACKAGE_PARENT / "examples" / "sample_walk.mp4"
#: Preview render: frames, size (pixels).
PREVIEW_FRAMES = 6
PREVIEW_SIZE = (320, 240)


@dataclass
class RunOptions:
    """Everything `run` needs; paths as given on the command line."""

    input: str
    rig: str
    output: str
    armature: str = ""
    fbx: str = ""
    fbx_preset: str = "blender"
    bvh: str = ""
    smooth: str = "spline"
    model: str = ""
    hypotheses: int = 5
    device: str = "auto"
    backend_python: str = ""


@dataclass
class RunResult:
    """What `run` made: the armature's name, the new action's name and frame range."""

    armature: str
    action: str
    frames: tuple[int, int]


def _say(message: str) -> None:
    print(f"[diffpose] {message}", file=sys.stderr, flush=True)


# --- checks before anything slow -------------------------------------------------------

def check_options(opt: RunOptions) -> None:
    """Raise `DiffPoseError` for a missing input, an unknown rig or output folders that do
    not exist, before the slow steps start."""
    if not os.path.exists(opt.input):
        raise DiffPoseError(f"{opt.input}: file not found (the video or 2D keypoint file "
                            f"to animate from)")
    if opt.rig not in BUILTIN_RIGS:
        if not opt.rig.lower().endswith(".blend"):
            raise DiffPoseError(f"--rig {opt.rig!r}: expected one of "
                                f"{', '.join(BUILTIN_RIGS)} or a .blend file")
        if not os.path.isfile(opt.rig):
            raise DiffPoseError(f"{opt.rig}: file not found (the .blend with the rig)")
    if opt.smooth not in SMOOTH_METHODS:
        raise DiffPoseError(f"--smooth {opt.smooth!r}: expected one of "
                            f"{', '.join(SMOOTH_METHODS)}")
    if opt.fbx_preset not in FBX_PRESET_NAMES:
        raise DiffPoseError(f"--fbx-preset {opt.fbx_preset!r}: expected one of "
                            f"{', '.join(FBX_PRESET_NAMES)}")
    if not opt.output.lower().endswith(".blend"):
        raise DiffPoseError(f"-o {opt.output}: expected a .blend file name")
    for path in (opt.output, opt.fbx, opt.bvh):
        folder = os.path.dirname(os.path.abspath(path)) if path else ""
        if path and not os.path.isdir(folder):
            raise DiffPoseError(f"{path}: the folder {folder} does not exist")


# --- the backend, as a subprocess -----------------------------------------------------

def backend(args: Sequence[str], python: str = "") -> None:
    """Run ``python -m <package>.backend ARGS``, showing its output (progress bars
    included) on our stderr as it comes. A backend exit code 2 (bad input) becomes
    `DiffPoseError` with the backend's message; any other failure raises `RuntimeError`
    with the tail of its output."""
    exe = python or os.environ.get(BACKEND_PYTHON_ENV) or sys.executable
    env = dict(os.environ)
    # The backend imports the package from the same checkout as this process.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p)
    cmd = [exe, "-m", f"{PACKAGE}.backend", *args]
    # One stream (stdout folded into stderr), read in small pieces so that the
    # carriage-return progress bar shows live, and kept to find the error message.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    output = []
    for chunk in iter(lambda: proc.stdout.read(256), ""):  # type: ignore[union-attr]
        sys.stderr.write(chunk)
        sys.stderr.flush()
        output.append(chunk)
    code = proc.wait()
    if code == 0:
        return
    lines = "".join(output).splitlines()
    errors = [ln[len("error: "):] for ln in lines if ln.startswith("error: ")]
    if code == 2 and errors:
        raise DiffPoseError(errors[-1])
    tail = "\n".join(lines[-20:])
    raise RuntimeError(f"backend {args[0]} failed (exit code {code}):\n{tail}")


def lift_and_smooth(opt: RunOptions, folder: Path) -> Path:
    """The take for `opt.input`, lifted and smoothed in the backend, in `folder`."""
    take = folder / (Path(opt.input).stem.replace(".", "_") + ".npz")
    lift = ["lift", opt.input, "-o", str(take), "--hypotheses", str(opt.hypotheses),
            "--device", opt.device]
    if opt.model:
        lift += ["--model", opt.model]
    _say(f"lifting {opt.input} (backend)")
    backend(lift, opt.backend_python)
    _say(f"smoothing ({opt.smooth})")
    backend(["smooth", str(take), "-o", str(take), "--method", opt.smooth],
            opt.backend_python)
    return take


# --- Blender side ------------------------------------------------------------------------

def require_bpy() -> None:
    """`DiffPoseError` unless Blender's Python module can be imported here."""
    import importlib.util

    if importlib.util.find_spec("bpy") is None:
        raise DiffPoseError("this command needs Blender's Python module (bpy); run it "
                            "with the .venv interpreter made by tools/setup_env.sh")


def _op(group: str, name: str) -> Any:
    """``bpy.ops.<group>.<name>``, for operators the type stubs cannot know (the add-on's
    own, Rigify's)."""
    import bpy

    return getattr(getattr(bpy.ops, group), name)


def _scene() -> "bpy.types.Scene":
    import bpy

    scene = bpy.context.scene
    if scene is None:
        raise RuntimeError("Blender has no current scene")
    return scene


def _view_layer() -> "bpy.types.ViewLayer":
    import bpy

    view_layer = bpy.context.view_layer
    if view_layer is None:
        raise RuntimeError("Blender has no current view layer")
    return view_layer


def _pose_bones(obj: "bpy.types.Object") -> Any:
    if obj.pose is None:
        raise RuntimeError(f"'{obj.name}' has no pose (not an armature)")
    return obj.pose.bones


def register_addon() -> None:
    """Register the add-on in this Blender session (idempotent), as enabling it would."""
    import bpy

    try:
        _op("diffpose", "bake").get_rna_type()
    except KeyError:
        import importlib

        importlib.import_module(PACKAGE).register()


def _object_mode() -> None:
    import bpy

    if bpy.context.mode != "OBJECT" and bpy.context.active_object is not None:
        bpy.ops.object.mode_set(mode="OBJECT")


def build_metarig() -> "bpy.types.Object":
    """Rigify's human metarig in the current scene."""
    import addon_utils

    import bpy

    addon_utils.enable("rigify", default_set=True)
    _object_mode()
    _op("object", "armature_human_metarig_add")()
    obj = bpy.context.object
    assert obj is not None and obj.type == "ARMATURE"
    return obj


def build_rigify() -> "bpy.types.Object":
    """The rig Rigify generates from its human metarig (the metarig is hidden)."""
    import bpy

    metarig = build_metarig()
    for o in bpy.context.selected_objects:
        o.select_set(False)
    _view_layer().objects.active = metarig
    metarig.select_set(True)
    if _op("pose", "rigify_generate")() != {"FINISHED"}:
        raise RuntimeError("Rigify could not generate its rig")
    _object_mode()
    rig = bpy.context.object
    assert rig is not None and rig is not metarig and rig.type == "ARMATURE"
    metarig.hide_set(True)
    metarig.hide_render = True
    # The take is keyed on the FK controls (rig_maps/rigify_fk.json); Rigify builds its
    # limbs in IK mode, where the FK keys would not show. This rig is ours, so switch it.
    for pb in _pose_bones(rig):
        if "IK_FK" in pb.keys():
            pb["IK_FK"] = 1.0
    return rig


def load_rig(spec: str, armature: str = "") -> "bpy.types.Object":
    """A fresh scene with the rig `spec` (see module docstring); returns the armature."""
    import bpy

    if spec in BUILTIN_RIGS:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        obj = build_rigify() if spec == "rigify" else build_metarig()
    else:
        try:
            bpy.ops.wm.open_mainfile(filepath=os.path.abspath(spec))
        except RuntimeError as exc:
            raise DiffPoseError(f"{spec}: Blender could not open it ({exc})") from None
        arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
        if armature:
            found = bpy.data.objects.get(armature)
            if found is None or found.type != "ARMATURE":
                raise DiffPoseError(f"{spec}: no armature named '{armature}'; armatures: "
                                    f"{', '.join(o.name for o in arms) or 'none'}")
            obj = found
        elif len(arms) == 1:
            obj = arms[0]
        else:
            raise DiffPoseError(
                f"{spec}: " + ("no armature in this file" if not arms else
                               f"{len(arms)} armatures ({', '.join(o.name for o in arms)})"
                               f"; choose one with --armature"))
    _object_mode()
    return obj


def _operator(op: Any, **kwargs: Any) -> None:
    """Call an operator; its error report becomes `DiffPoseError` (the operators report
    bad input, such as an unrecognisable rig, as errors)."""
    try:
        result = op(**kwargs)
    except RuntimeError as exc:
        message = str(exc).strip()
        crashed = "Traceback (most recent call last)" in message
        if message.startswith("Error: ") and not crashed:
            # A report the operator made on purpose: bad input, said in its own words.
            raise DiffPoseError(message[len("Error: "):]) from None
        raise  # a crash inside the operator: exit code 1 with its traceback
    if result != {"FINISHED"}:
        raise RuntimeError(f"{op.idname_py()} returned {result}")


def bake_and_export(opt: RunOptions, take: Path, obj: "bpy.types.Object") -> RunResult:
    """Bake `take` onto `obj` with the panel's operator, export, save the .blend."""
    import bpy

    register_addon()
    view_layer = _view_layer()
    for o in bpy.context.selected_objects:
        o.select_set(False)
    view_layer.objects.active = obj
    obj.select_set(True)
    _say(f"baking onto '{obj.name}'")
    _operator(_op("diffpose", "bake"), take_path=str(take), armature=obj.name)
    action = obj.animation_data.action if obj.animation_data else None
    if action is None:
        raise RuntimeError(f"diffpose.bake finished but '{obj.name}' has no action")
    frames = (int(action.frame_range[0]), int(action.frame_range[1]))
    if opt.fbx:
        _say(f"exporting {opt.fbx} ({opt.fbx_preset} preset)")
        _operator(_op("diffpose", "export_fbx"), filepath=os.path.abspath(opt.fbx),
                  preset=opt.fbx_preset.upper(), armature=obj.name)
    if opt.bvh:
        _say(f"exporting {opt.bvh}")
        _operator(_op("diffpose", "export_bvh"), filepath=os.path.abspath(opt.bvh),
                  armature=obj.name)
    _save(opt.output)
    return RunResult(obj.name, action.name, frames)


def _save(path: str) -> None:
    import bpy

    target = os.path.abspath(path)
    # Blender writes the file under a temporary name and renames it itself.
    if bpy.ops.wm.save_as_mainfile(filepath=target, check_existing=False) != {"FINISHED"}:
        raise RuntimeError(f"{path}: could not save the .blend")
    _say(f"saved {path}")


def run(opt: RunOptions) -> RunResult:
    """The whole headless run (see module docstring)."""
    require_bpy()
    check_options(opt)
    started = time.monotonic()
    # The rig first: a wrong file or armature name is reported before the slow lifting.
    _say(f"loading rig '{opt.rig}'")
    obj = load_rig(opt.rig, opt.armature)
    with tempfile.TemporaryDirectory(prefix="diffpose-run-") as tmp:
        take = lift_and_smooth(opt, Path(tmp))
        result = bake_and_export(opt, take, obj)
    _say(f"done in {time.monotonic() - started:.0f} s: action '{result.action}' on "
         f"'{result.armature}', frames {result.frames[0]} to {result.frames[1]}")
    return result


# --- demo: preview render --------------------------------------------------------------

def add_bone_shapes(obj: "bpy.types.Object") -> list["bpy.types.Object"]:
    """A stand-in body for the preview: an octahedron on every deform bone, parented to
    the bone (so it follows the animation). Returns the new mesh objects."""
    import bpy

    arm = obj.data
    assert isinstance(arm, bpy.types.Armature)
    shapes = []
    for bone in arm.bones:
        if not bone.use_deform or bone.length < 0.03:
            continue
        length = bone.length
        r = min(max(0.18 * length, 0.02), 0.07)
        # Bone space: Y runs head (0) to tail (length); the widest point at 20 %.
        verts = [(0, 0, 0), (0, length, 0), (r, 0.2 * length, 0), (-r, 0.2 * length, 0),
                 (0, 0.2 * length, r), (0, 0.2 * length, -r)]
        faces = [(0, 2, 4), (0, 4, 3), (0, 3, 5), (0, 5, 2),
                 (1, 4, 2), (1, 3, 4), (1, 5, 3), (1, 2, 5)]
        mesh = bpy.data.meshes.new(f"preview_{bone.name}")
        mesh.from_pydata(verts, [], faces)
        shape = bpy.data.objects.new(mesh.name, mesh)
        _scene().collection.objects.link(shape)
        shape.parent = obj
        shape.parent_type = "BONE"
        shape.parent_bone = bone.name
        # A bone child sits at the bone's tail: move it back to the head.
        shape.location = (0.0, -length, 0.0)
        shapes.append(shape)
    return shapes


def render_preview(obj: "bpy.types.Object", folder: Path, frames: tuple[int, int],
                   count: int = PREVIEW_FRAMES) -> list[Path]:
    """Render `count` frames spread over `frames` with Workbench, PNGs in `folder`,
    through a fixed camera that sees the whole motion from the side of its path."""
    import bpy

    scene = _scene()
    shapes = add_bone_shapes(obj)
    picks = sorted({int(round(f)) for f in
                    (frames[0] + i * (frames[1] - frames[0]) / max(count - 1, 1)
                     for i in range(count))})
    # The body's extent over the picked frames (deform bones: Rigify's widget and
    # mechanism bones can sit far from the body).
    body = [pb for pb in _pose_bones(obj) if pb.bone.use_deform] or list(_pose_bones(obj))
    points = []
    for f in picks:
        scene.frame_set(f)
        points += [obj.matrix_world @ p for pb in body for p in (pb.head, pb.tail)]
    lo = [min(p[i] for p in points) for i in range(3)]
    hi = [max(p[i] for p in points) for i in range(3)]
    centre = [(a + b) / 2 for a, b in zip(lo, hi)]
    cam_data = bpy.data.cameras.new("preview_camera")
    cam = bpy.data.objects.new("preview_camera", cam_data)
    scene.collection.objects.link(cam)
    # Look across the path: along X when the motion runs mostly along Y, else along Y.
    along_x = (hi[1] - lo[1]) > (hi[0] - lo[0])
    across, depth = ((hi[1] - lo[1]), (hi[0] - lo[0])) if along_x else \
        ((hi[0] - lo[0]), (hi[1] - lo[1]))
    # 50 mm on a 36 mm sensor: 39.6° across; fit width and height with a margin.
    half = math.atan(18.0 / cam_data.lens)
    aspect = PREVIEW_SIZE[1] / PREVIEW_SIZE[0]
    need = max(across / 2, (hi[2] - lo[2]) / 2 / aspect) * 1.15
    distance = need / math.tan(half) + depth / 2
    if along_x:
        cam.location = (centre[0] + distance, centre[1], centre[2])
        cam.rotation_euler = (math.pi / 2, 0.0, math.pi / 2)  # looking along -X, Z up
    else:
        cam.location = (centre[0], centre[1] - distance, centre[2])
        cam.rotation_euler = (math.pi / 2, 0.0, 0.0)  # looking along +Y, Z up
    scene.camera = cam
    world = scene.world
    if world is None:
        world = scene.world = bpy.data.worlds.new("preview_world")
    world.color = (0.18, 0.19, 0.21)
    # The stubs' engine literal lists only EEVEE; Workbench is always built in.
    scene.render.engine = "BLENDER_WORKBENCH"  # type: ignore[assignment]
    display = scene.display
    assert display is not None and display.shading is not None
    shading = display.shading
    shading.light = "STUDIO"
    shading.color_type = "SINGLE"
    shading.single_color = (0.85, 0.6, 0.35)
    scene.render.resolution_x, scene.render.resolution_y = PREVIEW_SIZE
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    written = []
    try:
        for f in picks:
            scene.frame_set(f)
            path = folder / f"preview_{f:04d}.png"
            scene.render.filepath = str(path)
            bpy.ops.render.render(write_still=True)
            written.append(path)
    finally:
        # The preview helpers stay out of the saved .blend.
        bpy.data.objects.remove(cam)
        bpy.data.cameras.remove(cam_data)
        for shape in shapes:
            mesh = shape.data
            bpy.data.objects.remove(shape)
            if isinstance(mesh, bpy.types.Mesh):
                bpy.data.meshes.remove(mesh)
    return written


def demo(folder: str) -> RunResult:
    """The bundled sample onto a Rigify rig: .blend, FBX and a preview in `folder`."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if not DEMO_INPUT.is_file():
        raise DiffPoseError(f"{DEMO_INPUT}: the bundled sample is missing; the "
                            f"installation is incomplete")
    opt = RunOptions(input=str(DEMO_INPUT), rig="rigify", output=str(out / "demo.blend"),
                     fbx=str(out / "demo.fbx"))
    result = run(opt)
    import bpy

    obj = bpy.data.objects[result.armature]
    _say("rendering the preview (Workbench)")
    images = render_preview(obj, out, result.frames)
    _say(f"demo written to {out}: demo.blend, demo.fbx, {len(images)} preview frames")
    return result


# --- command line -----------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {PACKAGE}.cli",
                                     description="Headless DiffPose: video or 2D keypoints "
                                                 "to keyframes on a rig")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="lift, smooth, bake onto a rig, export, save a .blend")
    p.add_argument("input", help="video or 2D keypoint file (COCO JSON, OpenPose folder, "
                                 "VideoPose3D or keypoint .npz)")
    p.add_argument("--rig", required=True,
                   help=f"{' or '.join(BUILTIN_RIGS)} (built with Rigify), or a .blend "
                        f"file")
    p.add_argument("--armature", default="", help="the armature in a .blend with several")
    p.add_argument("-o", "--output", required=True, help=".blend file to write")
    p.add_argument("--fbx", default="", help="also export this FBX file")
    p.add_argument("--fbx-preset", default="blender", choices=FBX_PRESET_NAMES)
    p.add_argument("--bvh", default="", help="also export this BVH file")
    p.add_argument("--smooth", default="spline", choices=SMOOTH_METHODS,
                   help="smoothing method (default spline; see the backend's smooth)")
    p.add_argument("--model", default="", help="bundled model name or folder")
    p.add_argument("--hypotheses", type=int, default=5)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--backend-python", default="",
                   help=f"Python with torch and SciPy for the backend (default: "
                        f"${BACKEND_PYTHON_ENV} or this interpreter)")
    p = sub.add_parser("demo", help="the bundled sample onto a Rigify rig: .blend, FBX "
                                    "and a preview render")
    p.add_argument("-o", "--output", default="diffpose-demo", help="folder to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> int:
        if args.command == "demo":
            demo(args.output)
        else:
            run(RunOptions(
                input=args.input, rig=args.rig, output=args.output, armature=args.armature,
                fbx=args.fbx, fbx_preset=args.fbx_preset, bvh=args.bvh, smooth=args.smooth,
                model=args.model, hypotheses=args.hypotheses, device=args.device,
                backend_python=args.backend_python))
        return 0

    return exit_code(command)


if __name__ == "__main__":
    sys.exit(main())
