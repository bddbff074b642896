"""Choosing one person across frames when a file holds several people per frame.

The rule, the same for every format:

1. **Track ids.** If every detection carries a track id and no frame holds the same id
   twice, take the track present in the most frames; ties go to the higher mean
   detection score, then to the lower id. Frames without that track are invalid.
   (AlphaPose without tracking writes ``idx`` 0 for everyone; the "no id twice in a
   frame" test sends such files to rule 2.)
2. **Continuity** otherwise. Start from the highest-scoring detection of the whole file
   and walk forwards and backwards from its frame. In each frame choose the candidate
   with the lowest ``cost = d - SCORE_WEIGHT * score / best_score``, where ``d`` is the
   mean image distance between the joints known in both the candidate and the last
   chosen pose (their centroids if they share none) divided by the larger bounding-box
   diagonal of the two. If that candidate's ``d`` exceeds ``MAX_STEP`` per frame
   elapsed since the last chosen pose, the frame is left invalid: our person is missing
   and someone else is in view. The allowance grows with the gap, so the person is
   found again after a cut or an occlusion.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: How much a full detection score outweighs distance (in bounding-box diagonals).
SCORE_WEIGHT = 0.1
#: Largest believable move between consecutive frames, in bounding-box diagonals.
MAX_STEP = 0.5


@dataclass(frozen=True)
class Candidate:
    """One detected person in one frame, in the format's source layout.

    xy     (K, 2) image px (x right, y down), NaN where unknown.
    conf   (K,) in [0, 1], 0 where unknown; at least one joint known.
    score  the detection's score on the format's own scale (only compared within a file).
    track  the format's track id, None when it has none.
    """

    xy: np.ndarray
    conf: np.ndarray
    score: float
    track: int | None = None


def choose_person(frames: Sequence[Sequence[Candidate]]) -> list[int | None]:
    """For each frame, the index of the chosen candidate, or None (see module rule)."""
    if not any(frames):
        return [None] * len(frames)
    if all(c.track is not None for cands in frames for c in cands) and all(
            len({c.track for c in cands}) == len(cands) for cands in frames):
        return _by_track(frames)
    return _by_continuity(frames)


def pick_one_person(frames: Sequence[Sequence[Candidate]], num_joints: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack the chosen person of each frame.

    Returns xy (T, K, 2) image px and conf (T, K) in the source layout (NaN / 0 in
    frames without the person) and valid (T,) bool.
    """
    # A candidate with no known joint cannot be compared with anything.
    frames = [[c for c in cands if (c.conf > 0).any()] for cands in frames]
    T = len(frames)
    xy = np.full((T, num_joints, 2), np.nan)
    conf = np.zeros((T, num_joints))
    valid = np.zeros(T, dtype=bool)
    for t, i in enumerate(choose_person(frames)):
        if i is not None:
            xy[t], conf[t], valid[t] = frames[t][i].xy, frames[t][i].conf, True
    return xy, conf, valid


def _by_track(frames: Sequence[Sequence[Candidate]]) -> list[int | None]:
    scores: dict[int, list[float]] = defaultdict(list)
    for cands in frames:
        for c in cands:
            assert c.track is not None
            scores[c.track].append(c.score)
    best = min(scores, key=lambda k: (-len(scores[k]), -float(np.mean(scores[k])), k))
    return [next((i for i, c in enumerate(cands) if c.track == best), None)
            for cands in frames]


def _diagonal(c: Candidate) -> float:
    known = c.xy[c.conf > 0]
    return float(np.linalg.norm(known.max(axis=0) - known.min(axis=0)))


def _relative_distance(a: Candidate, b: Candidate) -> float:
    """Mean joint distance in units of the larger bounding-box diagonal (>= 1 px)."""
    ka, kb = a.conf > 0, b.conf > 0
    both = ka & kb
    if both.any():
        d = float(np.mean(np.linalg.norm(a.xy[both] - b.xy[both], axis=1)))
    else:
        d = float(np.linalg.norm(a.xy[ka].mean(axis=0) - b.xy[kb].mean(axis=0)))
    return d / max(_diagonal(a), _diagonal(b), 1.0)


def _by_continuity(frames: Sequence[Sequence[Candidate]]) -> list[int | None]:
    T = len(frames)
    t0, i0 = max(((t, i) for t, cands in enumerate(frames) for i in range(len(cands))),
                 key=lambda ti: frames[ti[0]][ti[1]].score)
    top = frames[t0][i0].score
    scale = top if top > 0 else 1.0
    chosen: list[int | None] = [None] * T
    chosen[t0] = i0
    for order in (range(t0 + 1, T), range(t0 - 1, -1, -1)):
        last, elapsed = frames[t0][i0], 0
        for t in order:
            elapsed += 1
            if not frames[t]:
                continue
            dists = [_relative_distance(c, last) for c in frames[t]]
            costs = [d - SCORE_WEIGHT * c.score / scale for d, c in zip(dists, frames[t])]
            i = int(np.argmin(costs))
            if dists[i] > MAX_STEP * elapsed:
                continue
            chosen[t], last, elapsed = i, frames[t][i], 0
    return chosen
