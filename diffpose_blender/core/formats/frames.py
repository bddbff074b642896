"""Frame numbers from frame names: AlphaPose image ids, OpenPose file names.

Rule: a name's frame number is its last run of digits (``"12.jpg"`` -> 12,
``"walk_000000000012_keypoints.json"`` -> 12); an integer id is its own number. If every
name has a number, frames run from the smallest number to the largest and numbers with
no name are missing frames (gaps, kept as invalid frames, not dropped). If some name has
no number, frames are the names in natural order ("frame2" before "frame10"), with no
gaps known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Hashable, Sequence, Union

import numpy as np

from ..errors import DiffPoseError, PathLike

#: More frames than this (9 hours at 30 fps) means the names are not frame numbers;
#: refusing them keeps a stray large id from allocating gigabytes.
MAX_FRAMES = 1_000_000

FrameName = Union[int, str]

_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class FrameNumbering:
    """Where each named frame goes.

    index    name -> frame index in [0, T)
    numbers  (T,) int64: the source's frame number of each frame (its position in
             natural order when names carry no numbers), for aligning with the video.
    """

    index: dict[Hashable, int]
    numbers: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.numbers.shape[0])


def _number(name: FrameName) -> int | None:
    if isinstance(name, int):
        return name
    runs = _DIGITS.findall(name)
    return int(runs[-1]) if runs else None


def _natural_key(name: FrameName) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", str(name)) if part)


def number_frames(names: Sequence[FrameName], source: PathLike, what: str) -> FrameNumbering:
    """Number the frames named by `names` (repeats allowed: several people per frame).

    `what` names the kind of name in messages (``"image_id"``, ``"file"``).
    """
    distinct = list(dict.fromkeys(names))
    numbers = {name: _number(name) for name in distinct}
    if all(n is not None for n in numbers.values()):
        owner: dict[int, FrameName] = {}
        for name, n in numbers.items():
            assert n is not None
            if n in owner:
                raise DiffPoseError.at(source, expected=f"{what}s {owner[n]!r} and {name!r} "
                                                        f"both give frame number {n}; "
                                                        f"expected one {what} per frame")
            owner[n] = name
        lo, hi = min(owner), max(owner)
        if hi - lo + 1 > MAX_FRAMES:
            raise DiffPoseError.at(source, expected=f"{what}s span frame numbers {lo} to "
                                                    f"{hi}; expected at most {MAX_FRAMES} "
                                                    f"frames (are these frame numbers?)")
        return FrameNumbering({name: n - lo for n, name in owner.items()},
                              np.arange(lo, hi + 1, dtype=np.int64))
    ordered = sorted(distinct, key=_natural_key)
    return FrameNumbering({name: i for i, name in enumerate(ordered)},
                          np.arange(len(ordered), dtype=np.int64))
