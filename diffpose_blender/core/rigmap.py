"""Rig maps: which bones of a rig family the motion drives, and how (rig_maps/README.md).

A rig map is one JSON file per rig family (Mixamo, Rigify, Unreal mannequins, ...). It
says, in the family's own bone names:

- ``joints``: where each of the project's joints (`core.skeleton`) sits on the rig at rest,
  as a bone's head or tail (or the mean of several), so that the rig's rest directions
  between joints can be measured whatever the bones' rolls or tail placement;
- ``bones``: for each driven bone, the pair of joints whose direction its rotation carries
  (``dir``) and what fixes the rotation about that direction (``twist``); IK controls and
  poles get location keys instead (``place``, ``pole``);
- ``root``: the bone that receives root motion.

`detect_rig` scores every map against an armature's bone names, resolving a common
prefix (``mixamorig:``, ``mixamorig1:``, ``Armature|``...), and returns the best map with
its bone names made concrete. User maps use the same schema (`load_rig_map`).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import DiffPoseError, PathLike
from .resources import data_dir
from .skeleton import JOINT_NAMES

RIG_MAP_SCHEMA = "diffpose-rig-map"
RIG_MAP_VERSION = 1
#: A map must find at least this fraction of its required bones to be chosen.
MIN_SCORE = 0.75
TWIST_KINDS = ("parent", "vector", "plane")
BEND_HINTS = ("forward", "back")

Joints = tuple[str, ...]  # joint names whose mean is one point


@dataclass(frozen=True)
class BoneTarget:
    """What drives one bone (see rig_maps/README.md).

    dir       (from, to): the rotation takes the rig's rest direction between these
              points onto the take's; empty when the bone gets no rotation.
    twist     "parent" (the smallest swing from where the parent carried the bone),
              "vector" (a reference direction between `twist_joints[0]` and
              `twist_joints[1]`) or "plane" (the normal of the plane through the three
              points `twist_joints`, with `bend` telling which way the limb bends when
              the rig's rest limb is too straight to tell).
    place     a joint whose position the bone's head follows (location keys: IK targets).
    pole      three joints (root, middle, end of a limb): the head goes in front of the
              middle one, in the limb's bend plane (location keys: IK poles).
    parent    the driven bone this one moves with in the rig, where that is not its
              hierarchy parent (Rigify's controls follow each other through constraints);
              None: the hierarchy decides.
    optional  the bone may be missing from a rig of the family.
    """

    dir: tuple[Joints, Joints] | tuple[()] = ()
    twist: str = "parent"
    twist_joints: tuple[Joints, ...] = ()
    bend: str | None = None
    place: str | None = None
    pole: tuple[str, str, str] | None = None
    parent: str | None = None
    optional: bool = False

    @property
    def joints(self) -> tuple[str, ...]:
        """Every joint this bone depends on (for its uncertainty colour)."""
        out: list[str] = []
        for group in (*self.dir, *self.twist_joints):
            out += [j for j in group if j not in out]
        for j in ((self.place,) if self.place else ()) + (self.pole or ()):
            if j not in out:
                out.append(j)
        return tuple(out)


@dataclass(frozen=True)
class RigMap:
    """One rig family's map (one rig_maps/<family>.json).

    family   short identifier ("mixamo", "rigify_fk", ...).
    label    what a user reads ("Mixamo").
    root     the bone that receives root motion (location keys).
    optional bones a rig of the family may lack (not counted by detection).
    identify bones not driven but required, so that detection tells look-alike families
             apart (MakeHuman's 'Root' against the UE4 mannequin).
    auto_detect  False: `detect_rig` never picks it (Rigify's IK map, chosen by name, for
             a rig that the FK map fits as well).
    bones    bone name -> `BoneTarget`, in the file's order.
    joints   joint name -> ((bone, "head" | "tail"), ...): the rig's rest point for the
             joint (the mean of the listed points).
    source   the file it was read from.
    prefix   the prefix resolved by `detect_rig` ("" in a map read from a file).
    properties  object data path -> value the bake holds over the take: switches the rig
             needs so the keyed controls drive it (Rigify's IK/FK and follow sliders).
    """

    family: str
    label: str
    root: str
    bones: dict[str, BoneTarget]
    joints: dict[str, tuple[tuple[str, str], ...]]
    optional: tuple[str, ...] = ()
    identify: tuple[str, ...] = ()
    auto_detect: bool = True
    source: str = ""
    prefix: str = ""
    properties: dict[str, float] = field(default_factory=dict)

    def bone_names(self) -> tuple[str, ...]:
        """Every bone the map names (driven bones and the bones of its joint table)."""
        out = list(self.bones)
        for points in self.joints.values():
            out += [b for b, _ in points if b not in out]
        out += [b for b in (self.root, *self.identify) if b not in out]
        return tuple(out)

    def required(self) -> tuple[str, ...]:
        """The bones a rig of this family must have (all but the optional ones)."""
        optional = {n for n, b in self.bones.items() if b.optional} | set(self.optional)
        return tuple(n for n in self.bone_names() if n not in optional)

    def with_prefix(self, prefix: str) -> "RigMap":
        """This map with every bone name prefixed (the names a prefixed rig uses)."""
        if not prefix:
            return self
        return replace(
            self, root=prefix + self.root, prefix=prefix,
            optional=tuple(prefix + n for n in self.optional),
            identify=tuple(prefix + n for n in self.identify),
            bones={prefix + n: replace(b, parent=prefix + b.parent if b.parent else None)
                   for n, b in self.bones.items()},
            joints={j: tuple((prefix + b, end) for b, end in pts)
                    for j, pts in self.joints.items()})

    def without(self, missing: Iterable[str]) -> "RigMap":
        """This map without the bones in `missing`, the joints placed on them, and the
        bones that needed those joints (a foot without its toe bone is not driven)."""
        gone = set(missing)
        joints = {j: pts for j, pts in self.joints.items()
                  if not any(b in gone for b, _ in pts)}
        keep = {n: b for n, b in self.bones.items()
                if n not in gone and all(j in joints for j in b.joints)}
        return replace(
            self, joints=joints,
            bones={n: replace(b, parent=b.parent if b.parent in keep or
                              b.parent == self.root else None) for n, b in keep.items()})


# --- reading -------------------------------------------------------------------------------

def _fail(path: PathLike, where: str, expected: str) -> DiffPoseError:
    return DiffPoseError.at(path, where, expected=expected)


def _joint_group(value: Any, path: PathLike, where: str) -> Joints:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _fail(path, where, f"expected a joint name or a list of joint names, got "
                                 f"{value!r}")
    for n in names:
        if n not in JOINT_NAMES:
            raise _fail(path, where, f"expected joint names of the project's skeleton "
                                     f"({', '.join(JOINT_NAMES)}), got {n!r}")
    return tuple(names)


def _bone_target(name: str, spec: Any, path: PathLike) -> BoneTarget:
    where = f"bones.{name}"
    if not isinstance(spec, dict):
        raise _fail(path, where, f"expected an object, got {spec!r}")
    known = {"dir", "twist", "place", "pole", "parent", "optional", "note"}
    extra = set(spec) - known
    if extra:
        raise _fail(path, where, f"expected only the keys {', '.join(sorted(known))}, got "
                                 f"{', '.join(sorted(extra))}")
    direction: tuple[Joints, Joints] | tuple[()] = ()
    if "dir" in spec:
        d = spec["dir"]
        if not isinstance(d, list) or len(d) != 2:
            raise _fail(path, where + ".dir", f"expected [from, to], got {d!r}")
        direction = (_joint_group(d[0], path, where + ".dir[0]"),
                     _joint_group(d[1], path, where + ".dir[1]"))
    twist: str = "parent"
    twist_joints: tuple[Joints, ...] = ()
    bend: str | None = None
    t = spec.get("twist", "parent")
    if t != "parent":
        if not isinstance(t, dict) or len(set(t) & {"vector", "plane"}) != 1:
            raise _fail(path, where + ".twist",
                        f"expected \"parent\", {{\"vector\": [from, to]}} or "
                        f"{{\"plane\": [a, b, c], \"bend\": \"forward\"|\"back\"}}, got {t!r}")
        twist = "vector" if "vector" in t else "plane"
        pts = t[twist]
        n = 2 if twist == "vector" else 3
        if not isinstance(pts, list) or len(pts) != n:
            raise _fail(path, where + f".twist.{twist}", f"expected {n} joints, got {pts!r}")
        twist_joints = tuple(_joint_group(p, path, where + f".twist.{twist}") for p in pts)
        if twist == "plane":
            bend = t.get("bend")
            if bend not in BEND_HINTS:
                raise _fail(path, where + ".twist.bend",
                            f"expected one of {', '.join(BEND_HINTS)}, got {bend!r}")
    place = spec.get("place")
    if place is not None:
        place = _joint_group(place, path, where + ".place")
        if len(place) != 1:
            raise _fail(path, where + ".place", "expected one joint name")
        place = place[0]
    pole = spec.get("pole")
    if pole is not None:
        if not isinstance(pole, list) or len(pole) != 3:
            raise _fail(path, where + ".pole", f"expected three joint names, got {pole!r}")
        pole = tuple(_joint_group(p, path, where + ".pole")[0] for p in pole)
    if not direction and place is None and pole is None:
        raise _fail(path, where, "expected at least one of 'dir', 'place' or 'pole'")
    parent = spec.get("parent")
    if parent is not None and (not isinstance(parent, str) or not parent):
        raise _fail(path, where + ".parent", f"expected a bone name, got {parent!r}")
    optional = spec.get("optional", False)
    if not isinstance(optional, bool):
        raise _fail(path, where + ".optional", f"expected true or false, got {optional!r}")
    return BoneTarget(direction, twist, twist_joints, bend, place, pole, parent, optional)


def _points(value: Any, path: PathLike, where: str) -> tuple[tuple[str, str], ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise _fail(path, where, f"expected \"Bone\", \"Bone:tail\" or a list of them, got "
                                 f"{value!r}")
    out = []
    for item in items:
        bone, _, end = item.rpartition(":") if item.endswith((":head", ":tail")) \
            else (item, "", "head")
        if not bone:
            raise _fail(path, where, f"expected a bone name before ':{end}', got {item!r}")
        out.append((bone, end))
    return tuple(out)


def rig_map_from_dict(data: Any, source: PathLike = "<rig map>") -> RigMap:
    """A `RigMap` from parsed JSON; `DiffPoseError` naming the key that is wrong."""
    if not isinstance(data, dict):
        raise _fail(source, "top level", "expected a JSON object")
    if data.get("schema") != RIG_MAP_SCHEMA:
        raise _fail(source, "key 'schema'", f"expected {RIG_MAP_SCHEMA!r}, got "
                                            f"{data.get('schema')!r}")
    if data.get("version") != RIG_MAP_VERSION:
        raise _fail(source, "key 'version'", f"expected {RIG_MAP_VERSION}, got "
                                             f"{data.get('version')!r}")
    for key in ("family", "label", "root"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _fail(source, f"key '{key}'", f"expected non-empty text, got "
                                                f"{data.get(key)!r}")
    joints_raw = data.get("joints")
    if not isinstance(joints_raw, dict) or not joints_raw:
        raise _fail(source, "key 'joints'", "expected an object: joint name -> bone point")
    joints = {}
    for j, v in joints_raw.items():
        if j not in JOINT_NAMES:
            raise _fail(source, f"joints.{j}", f"expected a joint of the project's skeleton "
                                               f"({', '.join(JOINT_NAMES)})")
        joints[j] = _points(v, source, f"joints.{j}")
    bones_raw = data.get("bones")
    if not isinstance(bones_raw, dict) or not bones_raw:
        raise _fail(source, "key 'bones'", "expected an object: bone name -> target")
    bones = {n: _bone_target(n, s, source) for n, s in bones_raw.items()}
    for n, b in bones.items():
        for j in b.joints:
            if j not in joints:
                raise _fail(source, f"bones.{n}", f"joint '{j}' is used but has no entry in "
                                                  f"'joints' (where it sits on the rig)")
    optional = data.get("optional", [])
    if not isinstance(optional, list) or not all(isinstance(n, str) for n in optional):
        raise _fail(source, "key 'optional'", f"expected a list of bone names, got "
                                              f"{optional!r}")
    identify = data.get("identify", [])
    if not isinstance(identify, list) or not all(isinstance(n, str) for n in identify):
        raise _fail(source, "key 'identify'", f"expected a list of bone names, got "
                                              f"{identify!r}")
    for n, b in bones.items():
        if b.parent is not None and b.parent not in bones and b.parent != data["root"]:
            raise _fail(source, f"bones.{n}.parent",
                        f"expected a bone driven by this map, got '{b.parent}'")
    auto = data.get("auto_detect", True)
    if not isinstance(auto, bool):
        raise _fail(source, "key 'auto_detect'", f"expected true or false, got {auto!r}")
    props = data.get("properties", {})
    if not isinstance(props, dict) or not all(
            isinstance(k, str) and k and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v) for k, v in props.items()):
        raise _fail(source, "key 'properties'", f"expected an object: data path -> number, "
                                                f"got {props!r}")
    return RigMap(data["family"], data["label"], data["root"], bones, joints,
                  tuple(optional), tuple(identify), auto, source=os.fspath(source),
                  properties={k: float(v) for k, v in props.items()})


def load_rig_map(path: PathLike) -> RigMap:
    """Read one rig map file (the schema in rig_maps/README.md)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DiffPoseError.at(path, expected=f"a readable UTF-8 JSON file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DiffPoseError.at(path, f"line {exc.lineno}, column {exc.colno}",
                               expected=f"valid JSON ({exc.msg})") from None
    return rig_map_from_dict(data, path)


def builtin_rig_maps(folder: PathLike | None = None) -> list[RigMap]:
    """Every map in `folder` (default: the rig_maps/ folder shipped with the add-on)."""
    root = Path(folder) if folder is not None else data_dir("rig_maps")
    maps = [load_rig_map(p) for p in sorted(root.glob("*.json"))]
    if not maps:
        raise DiffPoseError.at(root, expected="at least one rig map (*.json)")
    return maps


def rig_map_by_family(family: str, maps: Sequence[RigMap] | None = None) -> RigMap:
    """The built-in map of `family` (e.g. "rigify_ik"); DiffPoseError naming the known ones."""
    maps = list(maps) if maps is not None else builtin_rig_maps()
    for m in maps:
        if m.family == family:
            return m
    raise DiffPoseError.at("<rig maps>", f"family '{family}'",
                           expected=f"one of {', '.join(m.family for m in maps)}")


def resolve_for_rig(rig_map: RigMap, bone_names: Sequence[str]) -> Detection:
    """`rig_map` made concrete for a rig (prefix resolved, missing bones dropped), as
    `detect_rig` does for the map it picks; for a map the user chose."""
    score, _, pm, mapped, missing = _score(rig_map, [str(n) for n in bone_names])
    return _detection(pm, score, mapped, missing, ())


def _detection(pm: RigMap, score: float, mapped: tuple[str, ...], missing: tuple[str, ...],
               others: tuple[tuple[str, float], ...]) -> Detection:
    reduced = pm.without(missing)
    undriven = tuple(n for n in pm.bones if n not in missing and n not in reduced.bones)
    return Detection(reduced, score, mapped, missing, others, undriven)


# --- detection -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Detection:
    """The best rig map for an armature.

    rig_map  the map with concrete bone names (prefix applied, missing optional bones
             and the joints placed on them dropped).
    score    fraction of the map's required bones the rig has, 0..1.
    mapped   bones of the map found in the rig (concrete names).
    missing  bones of the map not found (concrete names; optional ones included).
    others   (label, score) of the runners-up, best first.
    undriven bones the rig has but the map cannot drive (a joint they need is on a
             missing bone).
    """

    rig_map: RigMap
    score: float
    mapped: tuple[str, ...]
    missing: tuple[str, ...]
    others: tuple[tuple[str, float], ...] = field(default=())
    undriven: tuple[str, ...] = ()

    def report(self) -> str:
        m = self.rig_map
        lines = [f"Rig map: {m.label} ({Path(m.source).name or m.family}), "
                 f"score {self.score:.2f}, {len(self.mapped)} bones mapped"
                 + (f", prefix '{m.prefix}'" if m.prefix else "")]
        if self.missing:
            lines.append("Missing: " + ", ".join(self.missing))
        if self.undriven:
            lines.append("Not driven (a joint they need is missing): "
                         + ", ".join(self.undriven))
        if self.others:
            lines.append("Other candidates: " + ", ".join(
                f"{label} {score:.2f}" for label, score in self.others[:3]))
        return "\n".join(lines)


def _best_prefix(names: Sequence[str], wanted: Sequence[str]) -> str:
    """The prefix (maybe "") under which most of `wanted` appear in `names`."""
    present = set(names)
    counts: Counter[str] = Counter()
    for w in wanted:
        prefixes = {n[: len(n) - len(w)] for n in names if n.endswith(w)}
        for p in prefixes:
            # A prefix ends at a separator (':' '|' '_' '.'), or is empty: 'Hips' in
            # 'MyHips' is not a prefixed 'Hips'.
            if p == "" or p[-1] in ":|_. " and p + w in present:
                counts[p] += 1
    if not counts:
        return ""
    best = max(counts.values())
    return min((p for p, c in counts.items() if c == best), key=len)


def _score(m: RigMap, names: Sequence[str]) -> tuple[float, int, RigMap, tuple[str, ...],
                                                      tuple[str, ...]]:
    prefix = _best_prefix(names, m.bone_names())
    pm = m.with_prefix(prefix)
    present = set(names)
    required = pm.required()
    found = [n for n in required if n in present]
    score = len(found) / len(required) if required else 0.0
    if pm.root not in present:
        score = min(score, MIN_SCORE - 1e-6)  # no root, no root motion: never chosen
    mapped = tuple(n for n in pm.bone_names() if n in present)
    missing = tuple(n for n in pm.bone_names() if n not in present)
    return score, len(found), pm, mapped, missing


def detect_rig(bone_names: Sequence[str], maps: Sequence[RigMap] | None = None) -> Detection:
    """The rig map that fits `bone_names` best; `DiffPoseError` when none fits.

    Each map is scored by the fraction of its required bones present (under the best
    common prefix); ties go to the map that finds more bones (UE5's five spine bones
    beat UE4's three on a UE5 rig), then to the shorter prefix.
    """
    names = [str(n) for n in bone_names]
    maps = [m for m in (maps if maps is not None else builtin_rig_maps()) if m.auto_detect]
    if not maps:
        raise DiffPoseError.at("<rig maps>", expected="at least one map open to detection")
    if not names:
        raise DiffPoseError.at("<rig>", expected="an armature with bones, got none")
    scored = sorted((_score(m, names) for m in maps),
                    key=lambda s: (s[0], s[1], -len(s[2].prefix)), reverse=True)
    score, _, pm, mapped, missing = scored[0]
    others = tuple((s[2].label, s[0]) for s in scored[1:])
    if score < MIN_SCORE:
        looked = "; ".join(f"{s[2].label} ({s[0]:.0%}: needs {', '.join(s[2].required()[:8])}"
                           f"{', ...' if len(s[2].required()) > 8 else ''})"
                           for s in scored[:3])
        families = ", ".join(m.label for m in maps)
        sample = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise DiffPoseError.at(
            "<rig>", f"bones {sample}",
            expected=f"a rig of a known family (at least {MIN_SCORE:.0%} of a map's bones); "
                     f"best matches: {looked}; known families: {families}. Write a rig map "
                     f"for this rig "
                     f"(rig_maps/README.md) and choose it instead of auto")
    return _detection(pm, score, mapped, missing, others)
