"""Reading a mocap text file whole, gzip-compressed or not.

The shared corpus stores every clip as ``gzip -9n`` text (``*.bvh.gz``, ``*.amc.gz``,
``*.txt.gz``); plain files are read the same way so that a user's own ``.bvh`` works too.
Bytes are decoded as Latin-1, which never fails: some HDM05 files carry Latin-1 bytes in
comments, and every number and keyword we read is ASCII anyway.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ...core.errors import DiffPoseError, PathLike


def read_text(path: PathLike) -> str:
    """The whole file as text, decompressed on the fly when it is gzip (by magic bytes,
    not by name). A missing, unreadable or corrupt file raises `DiffPoseError`."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DiffPoseError.at(p, expected=f"a readable file ({exc.strerror or exc})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DiffPoseError.at(p, expected=f"a complete gzip stream ({exc})") from None
    return raw.decode("latin-1")


def check_numbers(path: PathLike, parts: list[str], *where: str) -> None:
    """Raise `DiffPoseError` at `where` unless every text in `parts` is a finite number.
    Used after a fast bulk parse failed, to name the exact value that broke it."""
    for part in parts:
        try:
            ok = bool(np.isfinite(float(part)))
        except ValueError:
            ok = False
        if not ok:
            raise DiffPoseError.at(path, *where,
                                   expected=f"finite numbers, got '{part.strip()[:20]}'")
