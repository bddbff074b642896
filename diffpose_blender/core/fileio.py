"""Writing files so that nothing is ever half-written.

Outputs go to a temporary file in the destination folder and are renamed into place
only when complete (`os.replace` is atomic on POSIX and Windows for the same volume).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from .errors import DiffPoseError, PathLike


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb") -> Iterator[IO]:  # type: ignore[type-arg]
    """Open a temporary file beside `path`; on success rename it to `path`.

    On any exception the temporary file is removed and `path` is left as it was.
    """
    dest = Path(path)
    folder = dest.parent if str(dest.parent) else Path(".")
    if not folder.is_dir():
        raise DiffPoseError.at(dest, expected=f"output folder '{folder}' does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file private (0600); give it the permissions a plain
        # open() would have, so takes and caches stay readable as users expect.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
