"""The project's one error type.

Every bad input anywhere (a file, a protocol message, a Blender property) raises
`DiffPoseError` with a message that names *what* was wrong, *where* (file, key, frame,
joint, line) and *what was expected*, e.g.::

    walk.json: frame 12, joint 'l_knee': expected 2 numbers, got 'null'

The command line maps it to exit code 2 ("bad input"); anything else is exit code 1.
"""

from __future__ import annotations

import os
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]


class DiffPoseError(Exception):
    """Bad input or a failed operation, with a message fit to show a user."""

    @classmethod
    def at(cls, source: PathLike | None, *where: str, expected: str) -> "DiffPoseError":
        """Build the standard message ``SOURCE: PLACE, PLACE: EXPECTED``.

        `source` is a file path (or a short description such as ``'<protocol>'``);
        `where` are places inside it from coarse to fine (``"key 'pose'"``, ``"frame 3"``).
        """
        parts = [os.fspath(source)] if source is not None else []
        place = ", ".join(w for w in where if w)
        if place:
            parts.append(place)
        parts.append(expected)
        return cls(": ".join(parts))
