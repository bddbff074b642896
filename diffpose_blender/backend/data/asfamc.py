"""Acclaim ASF (skeleton) and AMC (motion) reader, as written by VICON for CMU and HDM05.

ASF describes bones, not joints: each bone has a rest ``direction`` (a unit vector in the
global rest frame), a ``length``, an ``axis`` line giving its local coordinate frame as
Euler angles plus an order, and the ``dof`` it moves in. AMC lists, per frame, the values
of each bone's dofs in that ``dof`` order.

Reading used here (the CMU/VICON convention, also the README's for HDM05):

- **units**: ``:units length s`` means one file unit is ``1/s`` inch, so
  ``metres_per_unit = 0.0254 / s`` (0.45 gives 0.056444 m, the CMU FAQ's figure);
  ``angle deg|rad`` sets the angle unit of the ``axis`` lines and, unless the AMC header
  says ``:DEGREES`` or ``:RADIANS``, of the motion values.
- **rotation order**: rotations are applied in the order their letters or dofs are
  listed, the first one first: ``axis a b c XYZ`` gives ``C = Rz(c) @ Ry(b) @ Rx(a)`` and
  ``dof rx ry rz`` with values (u, v, w) gives ``M = Rz(w) @ Ry(v) @ Rx(u)``.
- **bone rotation**: ``L = C @ M @ C⁻¹`` (the motion is expressed in the bone's own axes),
  composed down the tree, ``G = G_parent @ L``; a bone ends at
  ``start + G @ (length * direction)`` and its children start there.
- **root**: position ``position + (TX, TY, TZ)``; rotation ``C @ M @ C⁻¹`` with C from the
  ``orientation`` angles in the ``axis`` order and M from the R* values of ``order``.

The result is a BVH-like `NativeMotion`: joint ``root``, then one joint per bone placed at
the bone's *start* (so joint ``lfemur`` is the hip joint, ``ltibia`` the knee), and an end
site ``<bone>_end`` for every bone without children (``head_end`` is the top of the head).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.errors import DiffPoseError, PathLike
from .kinematics import NativeMotion, euler_matrix
from .textfile import read_text

_DOF = {"rx": "X", "ry": "Y", "rz": "Z"}


@dataclass
class AsfBone:
    """One ASF bone: direction (3,) unit vector in the global rest frame, length in file
    units, the rotation C (3, 3) of its local axes, its dofs in AMC value order."""

    name: str
    direction: np.ndarray
    length: float
    axis_matrix: np.ndarray
    dofs: list[str]
    children: list[str] = field(default_factory=list)


@dataclass
class AsfSkeleton:
    """A parsed ASF file. Lengths in file units; see `metres_per_unit`."""

    path: str
    metres_per_unit: float
    angles_in_degrees: bool
    root_order: list[str]  # e.g. ["TX", "TY", "TZ", "RX", "RY", "RZ"]
    root_axis: str  # e.g. "XYZ"
    root_position: np.ndarray  # (3,) file units
    root_axis_matrix: np.ndarray  # (3, 3) from `orientation` in `root_axis` order
    bones: dict[str, AsfBone]
    root_children: list[str]


def _floats(path: PathLike, line_no: int, parts: list[str], n: int, what: str) -> np.ndarray:
    if len(parts) < n:
        raise DiffPoseError.at(path, f"line {line_no}",
                               expected=f"{n} numbers for {what}, got {len(parts)}")
    try:
        out = np.array([float(p) for p in parts[:n]])
    except ValueError:
        raise DiffPoseError.at(path, f"line {line_no}",
                               expected=f"numbers for {what}, got '{' '.join(parts[:n])}'") \
            from None
    if not np.isfinite(out).all():
        raise DiffPoseError.at(path, f"line {line_no}", expected=f"finite numbers for {what}")
    return out


def _applied_in_order(angles: np.ndarray, axes: str) -> np.ndarray:
    """Rotation applying the listed axes first-to-last (the first letter acts first on a
    vector): ``R = R_last @ ... @ R_first``. `angles` (..., n) radians."""
    return euler_matrix(angles[..., ::-1], axes[::-1])


def read_asf(path: PathLike) -> AsfSkeleton:
    """Parse an ASF skeleton (plain or gzip). Malformed files raise `DiffPoseError`."""
    lines = read_text(path).splitlines()
    section = ""
    length_scale = None
    degrees = True
    root_order: list[str] = []
    root_axis = "XYZ"
    root_position = np.zeros(3)
    root_orientation = np.zeros(3)
    bones: dict[str, AsfBone] = {}
    current: _BoneEntry | None = None
    hierarchy: list[tuple[int, list[str]]] = []
    for n, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(":"):
            parts = line.split()
            section = parts[0][1:].lower()
            continue
        parts = line.split()
        key = parts[0].lower()
        if section == "units":
            if key == "length":
                length_scale = float(_floats(path, n, parts[1:], 1, "units length")[0])
            elif key == "angle":
                if len(parts) < 2 or parts[1].lower() not in ("deg", "rad"):
                    raise DiffPoseError.at(path, f"line {n}", expected="'angle deg' or 'angle rad'")
                degrees = parts[1].lower() == "deg"
        elif section == "root":
            if key == "order":
                root_order = [p.upper() for p in parts[1:]]
            elif key == "axis":
                root_axis = parts[1].upper() if len(parts) > 1 else ""
            elif key == "position":
                root_position = _floats(path, n, parts[1:], 3, "root position")
            elif key == "orientation":
                root_orientation = _floats(path, n, parts[1:], 3, "root orientation")
        elif section == "bonedata":
            if key == "begin":
                current = _BoneEntry(line=n)
            elif key == "end":
                if current is None:
                    raise DiffPoseError.at(path, f"line {n}", expected="'begin' before 'end'")
                bones_entry = _finish_bone(path, current, degrees)
                bones[bones_entry.name] = bones_entry
                current = None
            elif current is not None:
                if key == "name" and len(parts) > 1:
                    current.name = parts[1]
                elif key == "direction":
                    current.direction = _floats(path, n, parts[1:], 3, "direction")
                elif key == "length":
                    current.length = float(_floats(path, n, parts[1:], 1, "length")[0])
                elif key == "axis":
                    current.axis_line = n
                    current.axis_angles = _floats(path, n, parts[1:], 3, "axis")
                    current.axis_order = parts[4].upper() if len(parts) > 4 else ""
                elif key == "dof":
                    current.dofs = [p.lower() for p in parts[1:]]
        elif section == "hierarchy":
            if key in ("begin", "end"):
                continue
            hierarchy.append((n, parts))
    if length_scale is None or length_scale <= 0:
        raise DiffPoseError.at(path, expected="a ':units' section with a positive 'length'")
    if sorted(c for c in root_axis) != ["X", "Y", "Z"]:
        raise DiffPoseError.at(path, ":root", expected=f"'axis' as an order of XYZ, got '{root_axis}'")
    if not bones:
        raise DiffPoseError.at(path, expected="a ':bonedata' section with bones")
    root_children: list[str] = []
    for n, parts in hierarchy:
        parent, children = parts[0], parts[1:]
        for child in children:
            if child not in bones:
                raise DiffPoseError.at(path, f"line {n}",
                                       expected=f"a bone defined in :bonedata, got '{child}'")
        if parent == "root":
            root_children.extend(children)
        elif parent in bones:
            bones[parent].children.extend(children)
        else:
            raise DiffPoseError.at(path, f"line {n}",
                                   expected=f"'root' or a bone as parent, got '{parent}'")
    scale = np.pi / 180.0 if degrees else 1.0
    return AsfSkeleton(
        path=str(path), metres_per_unit=0.0254 / length_scale, angles_in_degrees=degrees,
        root_order=root_order, root_axis=root_axis, root_position=root_position,
        root_axis_matrix=_applied_in_order(root_orientation * scale, root_axis),
        bones=bones, root_children=root_children)


@dataclass
class _BoneEntry:
    """A ``begin ... end`` block of :bonedata while it is being read."""

    line: int
    name: str | None = None
    direction: np.ndarray | None = None
    length: float | None = None
    axis_line: int = 0
    axis_angles: np.ndarray | None = None
    axis_order: str = ""
    dofs: list[str] = field(default_factory=list)


def _finish_bone(path: PathLike, entry: _BoneEntry, degrees: bool) -> AsfBone:
    missing = [key for key, value in (("name", entry.name), ("direction", entry.direction),
                                      ("length", entry.length), ("axis", entry.axis_angles))
               if value is None]
    if missing or entry.name is None or entry.direction is None or entry.length is None \
            or entry.axis_angles is None:
        raise DiffPoseError.at(path, f"bone starting at line {entry.line}",
                               expected=f"a '{missing[0] if missing else 'name'}' entry")
    if sorted(entry.axis_order) != ["X", "Y", "Z"]:
        raise DiffPoseError.at(path, f"line {entry.axis_line}", expected=(
            f"an axis order made of X, Y, Z, got '{entry.axis_order}'"))
    for dof in entry.dofs:
        if dof not in _DOF:
            # Translation and length dofs (tx, l, ...) never occur in CMU/HDM05 bones.
            raise DiffPoseError.at(path, f"bone '{entry.name}'",
                                   expected=f"rotation dofs rx/ry/rz only, got '{dof}'")
    norm = float(np.linalg.norm(entry.direction))
    if norm < 1e-9:
        raise DiffPoseError.at(path, f"bone '{entry.name}'", expected="a non-zero direction")
    scale = np.pi / 180.0 if degrees else 1.0
    return AsfBone(name=entry.name, direction=entry.direction / norm, length=entry.length,
                   axis_matrix=_applied_in_order(entry.axis_angles * scale, entry.axis_order),
                   dofs=list(entry.dofs))


def read_amc(path: PathLike, skeleton: AsfSkeleton, fps: float) -> NativeMotion:
    """Read an AMC motion (plain or gzip) for `skeleton` into a `NativeMotion` (file units,
    file axes). AMC files carry no frame rate, so the caller gives `fps`.

    Every frame must list the root and every bone that has dofs, each with the right
    number of values; anything else raises `DiffPoseError` with the line and frame.
    """
    lines = read_text(path).splitlines()
    degrees = skeleton.angles_in_degrees
    moving = ["root"] + [b for b in _bone_order(skeleton) if skeleton.bones[b].dofs]
    counts = {"root": len(skeleton.root_order)}
    counts.update({b: len(skeleton.bones[b].dofs) for b in moving[1:]})
    columns = {b: [] for b in moving}  # type: dict[str, list[list[float]]]
    frame_no = -1
    seen: set[str] = set()
    frame_line = 0

    def close_frame() -> None:
        if frame_no >= 0 and len(seen) != len(moving):
            missing = [b for b in moving if b not in seen]
            raise DiffPoseError.at(path, f"frame starting at line {frame_line}",
                                   expected=f"values for every moving bone; missing "
                                            f"{', '.join(missing[:5])}")

    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            word = line.upper()
            if word.startswith(":DEGREES"):
                degrees = True
            elif word.startswith(":RADIANS"):
                degrees = False
            continue
        parts = line.split()
        if len(parts) == 1 and parts[0].isdigit():
            close_frame()
            frame_no += 1
            frame_line = n
            seen = set()
            continue
        name = parts[0]
        if frame_no < 0:
            raise DiffPoseError.at(path, f"line {n}", expected=f"a frame number, got '{name}'")
        if name not in counts:
            raise DiffPoseError.at(path, f"line {n}", f"frame {frame_no}",
                                   expected=f"a bone of the ASF skeleton, got '{name}'")
        if name in seen:
            raise DiffPoseError.at(path, f"line {n}", f"frame {frame_no}",
                                   expected=f"bone '{name}' once per frame")
        values = _floats(path, n, parts[1:], counts[name], f"bone '{name}'")
        if len(parts) - 1 != counts[name]:
            raise DiffPoseError.at(path, f"line {n}", f"frame {frame_no}", expected=(
                f"{counts[name]} values for bone '{name}', got {len(parts) - 1}"))
        columns[name].append(list(values))
        seen.add(name)
    close_frame()
    if frame_no < 0:
        raise DiffPoseError.at(path, expected="at least one frame")
    return _to_native(skeleton, {b: np.array(v) for b, v in columns.items()},
                      degrees, fps, str(path))


def _bone_order(skeleton: AsfSkeleton) -> list[str]:
    """Bones depth-first from the root (parents before children)."""
    order: list[str] = []
    stack = list(reversed(skeleton.root_children))
    while stack:
        b = stack.pop()
        order.append(b)
        stack.extend(reversed(skeleton.bones[b].children))
    return order


def _to_native(skeleton: AsfSkeleton, values: dict[str, np.ndarray], degrees: bool,
               fps: float, path: str) -> NativeMotion:
    scale = np.pi / 180.0 if degrees else 1.0
    root_vals = values["root"]
    t = root_vals.shape[0]
    order = _bone_order(skeleton)
    names = ["root"]
    parents = [-1]
    offsets = [np.zeros(3)]
    index = {"root": 0}
    parent_of = {c: "root" for c in skeleton.root_children}
    for b, bone in skeleton.bones.items():
        for c in bone.children:
            parent_of[c] = b
    eye = np.broadcast_to(np.eye(3), (t, 3, 3))
    rots: list[np.ndarray] = []
    for b in order:
        bone = skeleton.bones[b]
        p = parent_of[b]
        index[b] = len(names)
        names.append(b)
        parents.append(index[p])
        # A bone starts where its parent bone ends (root children start at the root).
        offsets.append(np.zeros(3) if p == "root"
                       else skeleton.bones[p].length * skeleton.bones[p].direction)
        if bone.dofs:
            axes = "".join(_DOF[d] for d in bone.dofs)
            m = _applied_in_order(values[b] * scale, axes)
            axis_m = bone.axis_matrix
            rots.append(axis_m @ m @ axis_m.T)
        else:
            rots.append(eye)
    for b in order:
        bone = skeleton.bones[b]
        if not bone.children:
            names.append(f"{b}_end")
            parents.append(index[b])
            offsets.append(bone.length * bone.direction)
            rots.append(eye)
    # Root: translation and rotation values by the names in ':root order'.
    root_pos = np.tile(skeleton.root_position, (t, 1))
    rot_axes, rot_cols = "", []
    for k, chan in enumerate(skeleton.root_order):
        if chan in ("TX", "TY", "TZ"):
            root_pos[:, "XYZ".index(chan[1])] += root_vals[:, k]
        elif chan in ("RX", "RY", "RZ"):
            rot_axes += chan[1]
            rot_cols.append(k)
    # Apply the root's rotation values in the ':root axis' order.
    ordered = [rot_cols[rot_axes.index(a)] for a in skeleton.root_axis if a in rot_axes]
    axes = "".join(a for a in skeleton.root_axis if a in rot_axes)
    root_c = skeleton.root_axis_matrix
    root_rot = (root_c @ _applied_in_order(root_vals[:, ordered] * scale, axes) @ root_c.T
                if axes else np.broadcast_to(np.eye(3), (t, 3, 3)))
    local_rot = np.stack([root_rot] + rots, axis=1)
    return NativeMotion(names=tuple(names), parents=np.array(parents, dtype=np.int64),
                        offsets=np.array(offsets), local_rot=local_rot, root_pos=root_pos,
                        fps=float(fps), path=path)
