"""Dropping frames that are not the subject's motion, before a clip enters the corpus.

Three kinds of bad frames occur in the shared corpus:

- **reference frames**: many CMU files start with a calibration pose (zero joint angles)
  that jumps to the real motion at frame 1 (09_10 has two such frames, with a 1.8 m root
  jump between them);
- **pops**: a few frames where the solver lost track and the limbs teleport (CMU exp-map
  directing_traffic_1 around frames 430 and 680);
- **impossible heads**: in two acLSTM salsa files (06 throughout, 07 from ~20 s on) the
  head joint's rotation is flipped by ~180 degrees, putting the top of the head below the
  neck.

A *pop* is a step between consecutive frames in which the root-relative pose moves by more
than `POP_POSE_M` and 6x the clip's median step (mean over joints), or the whole body by
more than `POP_BODY_M` and 6x the median; clips are cut there. A frame is *implausible*
when the thorax-to-head-top direction points away from the trunk axis (pelvis to
thorax), a head folded more than 90 degrees, which no neck does (dancers' backbends in
CMU 05 stay just inside it). What is left is split into runs of good frames; runs shorter
than `MIN_SEGMENT_S` (so reference frames and the frames inside a pop) are dropped
unless the run is the whole clip (HDM05's cut clips are often under a second), and so
are runs whose median head-to-trunk cosine is below `MIN_MEDIAN_HEAD_COS` (a stretch
between flips where a broken head only happens to point up-ish: 0.36 in salsa 07,
against >= 0.74 in every other clip).

All inputs are (T, 21, 3) positions in world metres (any frame; only distances and the
trunk axis are used).
"""

from __future__ import annotations

import numpy as np

from ...core.skeleton import SKELETON

#: Shortest run of good frames kept as a clip (seconds).
MIN_SEGMENT_S = 1.0
#: A segment's median cosine between the trunk axis and the thorax-to-head-top direction
#: must reach this.
MIN_MEDIAN_HEAD_COS = 0.5
#: Pop thresholds per frame step (metres, mean over joints), each also at least
#: `POP_MEDIAN_FACTOR` times the clip's median step: root-relative pose, whole body.
POP_POSE_M = 0.15
POP_BODY_M = 0.5
POP_MEDIAN_FACTOR = 6.0

_PELVIS = SKELETON.index["pelvis"]
_THORAX = SKELETON.index["thorax"]
_HEAD_TOP = SKELETON.index["head_top"]


def pops(positions: np.ndarray) -> np.ndarray:
    """(T-1,) bool: True where the step from frame t to t+1 is a pop (see module doc)."""
    if positions.shape[0] < 2:
        return np.zeros(0, dtype=bool)
    rel = positions - positions[:, _PELVIS:_PELVIS + 1]
    pose_step = np.linalg.norm(np.diff(rel, axis=0), axis=-1).mean(axis=1)
    body_step = np.linalg.norm(np.diff(positions, axis=0), axis=-1).mean(axis=1)
    return ((pose_step > max(POP_POSE_M, POP_MEDIAN_FACTOR * float(np.median(pose_step))))
            | (body_step > max(POP_BODY_M,
                               POP_MEDIAN_FACTOR * float(np.median(body_step)))))


def head_trunk_cosine(positions: np.ndarray) -> np.ndarray:
    """(T,) cosine of the angle between the trunk axis (pelvis to thorax) and the
    thorax-to-head-top direction: ~0.95 upright, 0 for a head folded 90 degrees."""
    trunk = positions[:, _THORAX] - positions[:, _PELVIS]
    head = positions[:, _HEAD_TOP] - positions[:, _THORAX]
    norms = np.linalg.norm(trunk, axis=-1) * np.linalg.norm(head, axis=-1)
    return np.einsum("tc,tc->t", trunk, head) / np.maximum(norms, 1e-9)


def plausible_frames(positions: np.ndarray) -> np.ndarray:
    """(T,) bool: False where the head is folded past 90 degrees from the trunk axis."""
    return head_trunk_cosine(positions) > 0.0


def good_segments(positions: np.ndarray, fps: float) -> list[slice]:
    """Slices of `positions` to keep, in order: runs of plausible frames between pops,
    at least `MIN_SEGMENT_S` long and with a plausible median head pose."""
    cos = head_trunk_cosine(positions)
    ok = cos > 0.0
    # A pop between t and t+1 ends one run and starts another: mark a break there.
    run_id = np.concatenate([[0], np.cumsum(pops(positions))])
    edges = np.flatnonzero(np.diff(np.concatenate([[-1], np.where(ok, run_id, -1), [-1]])))
    min_len = max(1, int(round(MIN_SEGMENT_S * fps)))
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        whole = a == 0 and b == len(ok)  # a short clip with nothing cut stays
        if ok[a] and (b - a >= min_len or whole) \
                and np.median(cos[a:b]) >= MIN_MEDIAN_HEAD_COS:
            out.append(slice(int(a), int(b)))
    return out
