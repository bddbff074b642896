"""The project's one error type.

Every bad input anywhere (a file, a protocol message, a Blender property) raises
`DiffPoseError` with a message that names *what* was wrong, *where* (file, key, frame,
joint, line) and *what was expected*, e.g.::

    walk.json: frame 12, joint 'l_knee': expected 2 numbers, got 'null'

The command line maps it to exit code 2 ("bad input"); anything else is exit code 1.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable, Union

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


def exit_code(command: Callable[[], int]) -> int:
    """Run a command-line entry point and turn its outcome into the documented exit code:
    its own code when it returns, 2 for `DiffPoseError` (message on stderr), 1 for an
    interrupt or any other exception (traceback on stderr)."""
    try:
        return int(command())
    except DiffPoseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - the one place that turns crashes into exit code 1
        traceback.print_exc()
        return 1
