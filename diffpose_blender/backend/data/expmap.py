"""Exponential-map text files of motion-prediction research: CMU and Human3.6M.

Both are gzip text, one frame per line, comma-separated; each joint's local rotation is an
exp-map (axis times angle, radians). The skeletons (parents, bone offsets) are not in the
files but in JSON files beside them (``cmu_expmap_kinematic_tree.json``,
``h36m_kinematic_tree.json``), one fixed skeleton per dataset.

Forward kinematics follows the JSON rules, which are written for row vectors::

    Rglob[j] = R(e_j) @ Rglob[p]        xyz[j] = offset_j @ Rglob[p] + xyz[p]
    Rglob[0] = R(e_root)                xyz[0] = offset_0 + root_position

Transposing gives this package's column-vector form with ``L_j = R(e_j)ᵀ`` (see
`kinematics`). The root position is added at the root only: the public reference
``fkl()`` also adds exp-map values to every bone offset, a known bug the JSON warns about.

- CMU (117 values): columns 0:3 the absolute root position (CMU units, y up), then joint i
  (0..37) at columns 3+3i : 6+3i, i = 0 being the root orientation.
- Human3.6M (99 values): joint j at columns ``expmap_channel_index[j]``; the root's own
  columns 0:6 are per-50-fps-frame deltas that cannot be integrated after the 4x
  subsampling, so the root position (mm) and orientation come from the
  ``<take>.root.txt.gz`` file beside each take (integrated on the full-rate originals).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...core.errors import DiffPoseError, PathLike
from .kinematics import NativeMotion, expmap_matrix
from .textfile import check_numbers, read_text

#: Names for the 38 joints of the CMU exp-map skeleton. The JSON has none; its parents
#: and offsets are, joint for joint, those of the cgspeed MotionBuilder-friendly BVH of
#: CMU subject 02 (e.g. 'LeftUpLeg' 1.65674 -1.80282 0.62477), end sites included, so the
#: BVH names apply (end sites as ``<parent>_end``, as `bvh.read_bvh` names them).
CMU_EXPMAP_JOINTS: tuple[str, ...] = (
    "Hips",
    "LHipJoint", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LeftToeBase_end",
    "RHipJoint", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightToeBase_end",
    "LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head", "Head_end",
    "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "LeftFingerBase",
    "LeftHandIndex1", "LeftHandIndex1_end", "LThumb", "LThumb_end",
    "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightFingerBase",
    "RightHandIndex1", "RightHandIndex1_end", "RThumb", "RThumb_end",
)


def _read_table(path: PathLike, n_cols: int) -> np.ndarray:
    """Comma-separated rows (T, n_cols) of a text file; wrong counts or non-numbers raise
    `DiffPoseError` with the line."""
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DiffPoseError.at(path, expected="at least one frame line")
    try:
        table = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
        if table.shape == (len(lines), n_cols) and np.isfinite(table).all():
            return table
    except ValueError:
        pass
    for n, line in enumerate(lines, start=1):
        parts = line.split(",")
        if len(parts) != n_cols:
            raise DiffPoseError.at(path, f"line {n}", f"frame {n - 1}",
                                   expected=f"{n_cols} comma-separated values, got {len(parts)}")
        check_numbers(path, parts, f"line {n}", f"frame {n - 1}")
    raise DiffPoseError.at(path, expected=f"{n_cols} comma-separated numbers per line")


def _load_tree(path: PathLike, offsets_key: str) -> tuple[np.ndarray, np.ndarray, dict]:
    try:
        tree = json.loads(read_text(path))
        parents = np.asarray(tree["parents"], dtype=np.int64)
        offsets = np.asarray(tree[offsets_key], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as exc:
        raise DiffPoseError.at(path, expected=(
            f"a kinematic-tree JSON with 'parents' and '{offsets_key}' ({exc})")) from None
    j = len(parents)
    if offsets.shape != (j, 3) or parents[0] != -1 or \
            any(not (0 <= parents[k] < k) for k in range(1, j)):
        raise DiffPoseError.at(path, expected=(
            "parents[0] = -1, every other parent an earlier joint, and one 3-vector offset "
            "per joint"))
    return parents, offsets, tree


def read_cmu_expmap(path: PathLike, tree_path: PathLike, fps: float = 30.0) -> NativeMotion:
    """A CMU exp-map clip (CMU units, y up) on the fixed skeleton of `tree_path`.

    The files carry no frame rate; the corpus's are 30 fps (every 4th row of CMU's 120).
    """
    parents, offsets, _ = _load_tree(tree_path, "offsets_cmu_units")
    j = len(parents)
    if j != len(CMU_EXPMAP_JOINTS):
        raise DiffPoseError.at(tree_path, expected=f"{len(CMU_EXPMAP_JOINTS)} joints, got {j}")
    rows = _read_table(path, 3 + 3 * j)
    t = rows.shape[0]
    rot = expmap_matrix(rows[:, 3:].reshape(t, j, 3))
    return NativeMotion(names=CMU_EXPMAP_JOINTS, parents=parents, offsets=offsets,
                        local_rot=np.swapaxes(rot, -1, -2), root_pos=rows[:, 0:3].copy(),
                        fps=float(fps), path=str(path))


def h36m_root_path(path: PathLike) -> Path:
    """The ``.root.txt.gz`` file that goes with a Human3.6M take ``X.txt.gz``."""
    p = Path(path)
    name = p.name
    stem = name[:-len(".txt.gz")] if name.endswith(".txt.gz") else name.rsplit(".", 1)[0]
    return p.with_name(stem + ".root.txt.gz")


def read_h36m_expmap(path: PathLike, tree_path: PathLike,
                     root_path: PathLike | None = None) -> NativeMotion:
    """A Human3.6M exp-map take (millimetres, native axes: +y up, frame = the first
    frame's pelvis frame, not gravity-aligned; `world.level_to_floor` fixes that) with its
    root trajectory from `root_path` (default: the ``.root.txt.gz`` beside it)."""
    parents, offsets, tree = _load_tree(tree_path, "offsets_mm")
    j = len(parents)
    try:
        cols = np.asarray(tree["expmap_channel_index"], dtype=np.int64)
        names = tuple(str(n) for n in tree["joint_names"])
        fps = float(tree.get("fps_in_this_folder", 12.5))
    except (KeyError, TypeError, ValueError) as exc:
        raise DiffPoseError.at(tree_path, expected=(
            f"'expmap_channel_index' and 'joint_names' for every joint ({exc})")) from None
    if cols.shape != (j,) or len(names) != j:
        raise DiffPoseError.at(tree_path, expected=f"one channel index and name per joint ({j})")
    rows = _read_table(path, 99)
    root_file = h36m_root_path(path) if root_path is None else Path(root_path)
    root = _read_table(root_file, 6)
    if root.shape[0] != rows.shape[0]:
        raise DiffPoseError.at(root_file, expected=(
            f"one row per frame of {Path(path).name} ({rows.shape[0]}), got {root.shape[0]}"))
    t = rows.shape[0]
    exp = rows[:, (cols[:, None] + np.arange(3)).ravel()].reshape(t, j, 3)
    exp[:, 0] = root[:, 3:6]  # absolute root orientation replaces the unusable deltas
    rot = expmap_matrix(exp)
    return NativeMotion(names=names, parents=parents, offsets=offsets,
                        local_rot=np.swapaxes(rot, -1, -2), root_pos=root[:, 0:3].copy(),
                        fps=fps, path=str(path))
