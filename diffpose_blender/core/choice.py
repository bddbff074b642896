"""Resolving an ambiguous moment by choice: one hypothesis for a range of frames.

DiffPose samples N hypotheses per frame; the take's `pose` is their mean, which is what
Blender bakes. Where the hypotheses disagree (an arm behind the body, a foot seen
edge-on) the mean can be a pose none of them is, and the animator, who sees the ghosts
in the viewport, may know which one is right. `with_choice` makes a new take in which
the chosen hypothesis *is* every hypothesis over the chosen frames, so that:

- the take stays a valid take (`core.take`: ``pose`` is the mean of ``hypotheses``,
  ``spread`` is `compute_spread` of them); nothing downstream needs a "chosen" mode;
- ``pose`` there equals the chosen hypothesis, so a re-bake keys exactly that pose;
- ``spread`` there is 0 (the colours say "decided", green), which is true of the take:
  after the choice there is no more disagreement to show;
- the choice is recorded in ``params["choices"]`` (a list, one entry per choice, in the
  order they were made: ``{"hypothesis": k, "first": a, "last": b}``), so the file says
  how it was edited.

Frames are 0-based indices into the take, `first` and `last` inclusive (as the panel
shows a range "frames A-B"). Units are unchanged (camera metres, root-relative).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .errors import DiffPoseError
from .take import Take

#: Key in `Take.params` listing the choices made on a take, oldest first.
CHOICES_KEY = "choices"


def _index(value: Any, what: str) -> int:
    """`value` as an int (numpy integers too), or DiffPoseError; bools are refused."""
    if isinstance(value, (bool, np.bool_)):
        raise DiffPoseError(f"choose a hypothesis: {what} must be a whole number, got "
                            f"{value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise DiffPoseError(f"choose a hypothesis: {what} must be a whole number, got "
                            f"{value!r}") from None


def with_choice(take: Take, hypothesis: int, first: int, last: int) -> Take:
    """A new take in which take frames `first`..`last` (inclusive, 0-based) carry
    hypothesis `hypothesis` in every hypothesis slot; see the module docstring.

    The input take is not changed. Frames outside the range keep their hypotheses. The
    result is validated (`Take.from_hypotheses`), with the take's other fields as they
    were and ``params["choices"]`` extended by this choice. DiffPoseError, saying the
    valid range, for a hypothesis outside 0..N-1 or a frame range outside 0..T-1 or
    reversed.
    """
    k = _index(hypothesis, "the hypothesis")
    a = _index(first, "the first frame")
    b = _index(last, "the last frame")
    N, T = take.num_hypotheses, take.num_frames
    if not 0 <= k < N:
        raise DiffPoseError(f"choose a hypothesis: the take has hypotheses 0 to {N - 1}, "
                            f"got {k}")
    if not (0 <= a < T and 0 <= b < T):
        raise DiffPoseError(f"choose a hypothesis: the take has frames 0 to {T - 1}, got "
                            f"frames {a} to {b}")
    if a > b:
        raise DiffPoseError(f"choose a hypothesis: the first frame ({a}) is after the "
                            f"last ({b})")

    hyp = np.array(take.hypotheses, dtype=np.float32)  # (T, N, J, 3) camera metres
    hyp[a:b + 1] = hyp[a:b + 1, k:k + 1]
    params = dict(take.params)
    choices = list(params.get(CHOICES_KEY) or [])
    choices.append({"hypothesis": k, "first": a, "last": b})
    params[CHOICES_KEY] = choices
    return Take.from_hypotheses(
        hyp, take.root_cam, take.valid,
        keypoints_2d=take.keypoints_2d, scores_2d=take.scores_2d, fps=take.fps,
        image_size=take.image_size, focal_px=take.focal_px, source_2d=take.source_2d,
        model_name=take.model_name, weights_hash=take.weights_hash, params=params,
        gap_filled=take.gap_filled, joint_names=take.joint_names)
