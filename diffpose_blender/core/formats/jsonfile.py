"""Reading JSON keypoint files (COCO results, OpenPose frames) with precise errors.

Every failure names the file and the place: line and column for bad text, detection /
person and joint for bad numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DiffPoseError
from .convert import Layout

_COMPONENTS = ("x", "y", "confidence")


def load_json(path: Path) -> Any:
    """Parse `path` as UTF-8 JSON (a byte-order mark is allowed)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DiffPoseError.at(path, expected="file not found") from exc
    except IsADirectoryError as exc:
        raise DiffPoseError.at(path, expected="expected a file, found a folder") from exc
    except OSError as exc:
        raise DiffPoseError.at(path, expected=f"cannot read the file: {exc.strerror}") from exc
    if not raw.strip():
        raise DiffPoseError.at(path, expected="the file is empty; expected JSON")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DiffPoseError.at(path, f"line {line}, column {column}",
                               expected=f"expected UTF-8 text, got byte "
                                        f"0x{raw[exc.start]:02x}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (the file ends early: truncated?)" if exc.pos >= len(text.rstrip()) else ""
        raise DiffPoseError.at(path, f"line {exc.lineno}, column {exc.colno}",
                               expected=f"expected valid JSON: {exc.msg}{hint}") from exc
    except RecursionError as exc:
        raise DiffPoseError.at(path, expected="expected JSON nested less deeply") from exc


def describe(value: Any) -> str:
    """A short JSON-flavoured description of `value` for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return repr(value)


def as_int(value: Any) -> int | None:
    """`value` as an int if it is a JSON whole number (1 or 1.0), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def parse_triplets(values: Any, layouts: Sequence[Layout], source: Path, *where: str
                   ) -> tuple[Layout, np.ndarray]:
    """Parse a flat ``[x0, y0, c0, x1, y1, c1, ...]`` list; the layout comes from its length.

    Returns the layout and an array (K, 3) float64: image px x, y and the raw
    confidence value. Refuses anything but numbers, a non-finite confidence, and
    non-finite coordinates for a joint with nonzero confidence.
    """
    by_length = {3 * layout.num_joints: layout for layout in layouts}
    expected = " or ".join(f"{n} numbers ({layout.label})" for n, layout in by_length.items())
    if not isinstance(values, list):
        raise DiffPoseError.at(source, *where, expected=f"expected a list of {expected}, "
                                                        f"got {describe(values)}")
    layout = by_length.get(len(values))
    if layout is None:
        raise DiffPoseError.at(source, *where, expected=f"expected {expected}, got "
                                                        f"{len(values)} numbers")

    def place(n: int) -> str:
        return f"joint '{layout.joints[n // 3]}' {_COMPONENTS[n % 3]}"

    for n, v in enumerate(values):
        # type() rather than isinstance(): JSON true/false are bools, which are ints.
        if type(v) is not float and type(v) is not int:
            raise DiffPoseError.at(source, *where, place(n),
                                   expected=f"expected a number, got {describe(v)}")
    try:
        triplets = np.array(values, dtype=np.float64).reshape(-1, 3)
    except OverflowError as exc:
        raise DiffPoseError.at(source, *where, expected="expected numbers within the "
                                                        "floating-point range") from exc
    bad_conf = ~np.isfinite(triplets[:, 2])
    if bad_conf.any():
        k = int(np.argmax(bad_conf))
        raise DiffPoseError.at(source, *where, place(3 * k + 2),
                               expected=f"expected a finite number, got {triplets[k, 2]}")
    bad_xy = (triplets[:, 2] != 0) & ~np.isfinite(triplets[:, :2]).all(axis=1)
    if bad_xy.any():
        k = int(np.argmax(bad_xy))
        raise DiffPoseError.at(source, *where, f"joint '{layout.joints[k]}'",
                               expected=f"expected finite x, y for a joint with nonzero "
                                        f"confidence, got ({triplets[k, 0]}, "
                                        f"{triplets[k, 1]})")
    return layout, triplets


def parse_track_id(value: Any, source: Path, *where: str) -> int | None:
    """A track id from ``5``, ``5.0`` or ``[5]`` (OpenPose writes ``[-1]``); -1 and a
    missing value (None) mean no track."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return None
    track = as_int(value)
    if track is None:
        raise DiffPoseError.at(source, *where, expected=f"expected a whole-number track "
                                                        f"id, got {describe(value)}")
    return None if track == -1 else track
