"""Reading ``.npz`` archives that may hold pickled object arrays, without pickle's danger.

``np.load`` with pickles allowed would let a file run any code it names. Here the archive
is opened with `zipfile`, each ``.npy`` header is parsed with `numpy.lib.format`, plain
arrays are read with ``allow_pickle=False``, and object arrays are rebuilt by
`_RestrictedUnpickler`, which admits only the callables numpy's own pickles of arrays,
dtypes and scalars name. Dicts, lists, strings and numbers need no callables at all.
Anything else (``os.system``, ``collections.OrderedDict``, ...) is refused by name
before it is imported or called.
"""

from __future__ import annotations

import codecs
import io
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, cast

import numpy as np
import numpy.lib.format as npy_format

from ..errors import DiffPoseError

#: A member larger than this is refused before it is decompressed (2D keypoints of a
#: long video are megabytes; this guards against zip bombs).
MAX_MEMBER_BYTES = 2 << 30

# Looked up from the running numpy, so the same entries serve numpy 1.x
# (numpy.core.multiarray) and 2.x (numpy._core.multiarray) whichever wrote the file.
_reconstruct = cast(Callable[..., Any], np.empty(0).__reduce__()[0])
_scalar = cast(Callable[..., Any], np.float64(0).__reduce__()[0])
_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Pickle protocol 2 (Python 2 era files) spells bytes as _codecs.encode(text, 'latin1').
    ("_codecs", "encode"): codecs.encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, dicts, lists, strings and numbers; refuses everything else."""

    def __init__(self, file: io.BytesIO, source: Path, key: str) -> None:
        # latin1: how numpy itself reads arrays pickled by Python 2.
        super().__init__(file, encoding="latin1")
        self._source, self._key = source, key

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DiffPoseError.at(self._source, f"key '{self._key}'",
                                   expected=f"refusing to unpickle {module}.{name}; "
                                            f"expected only numpy arrays, dicts, lists, "
                                            f"strings and numbers") from None

    def persistent_load(self, pid: Any) -> Any:
        raise DiffPoseError.at(self._source, f"key '{self._key}'",
                               expected="refusing a pickle with persistent ids")


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError as exc:
        raise DiffPoseError.at(path, expected="file not found") from exc
    except IsADirectoryError as exc:
        raise DiffPoseError.at(path, expected="expected a file, found a folder") from exc
    except zipfile.BadZipFile as exc:
        raise DiffPoseError.at(path, expected="expected a .npz (zip) archive; the file "
                                              "is not one") from exc
    except OSError as exc:
        raise DiffPoseError.at(path, expected=f"cannot read the file: {exc}") from exc


def npz_keys(path: Path) -> list[str]:
    """The array names in the archive (members ending in ``.npy``, without it)."""
    with _open(path) as zf:
        return [n[:-4] for n in zf.namelist() if n.endswith(".npy")]


def _read_npy(data: bytes, source: Path, key: str) -> Any:
    f = io.BytesIO(data)
    try:
        version = npy_format.read_magic(f)  # type: ignore[no-untyped-call]
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(f)  # type: ignore[no-untyped-call]
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(f)  # type: ignore[no-untyped-call]
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except ValueError as exc:
        raise DiffPoseError.at(source, f"key '{key}'",
                               expected=f"expected a .npy array: {exc}") from exc
    if not dtype.hasobject:
        f.seek(0)
        try:
            return npy_format.read_array(f, allow_pickle=False)  # type: ignore[no-untyped-call]
        except (ValueError, OSError, EOFError) as exc:
            raise DiffPoseError.at(source, f"key '{key}'",
                                   expected=f"expected a readable array: {exc}") from exc
    try:
        array = _RestrictedUnpickler(f, source, key).load()
    except DiffPoseError:
        raise
    except Exception as exc:  # a damaged pickle fails in many ways; all are bad input
        raise DiffPoseError.at(source, f"key '{key}'", expected=f"expected a readable "
                                                                f"pickled array: {exc!r}"
                               ) from exc
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise DiffPoseError.at(source, f"key '{key}'",
                               expected=f"expected a pickled array of shape {shape}")
    return array


def load_npz(path: Path) -> dict[str, Any]:
    """All arrays of the archive by name; object arrays via the restricted unpickler."""
    out: dict[str, Any] = {}
    with _open(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            key = info.filename[:-4]
            if info.file_size > MAX_MEMBER_BYTES:
                raise DiffPoseError.at(path, f"key '{key}'",
                                       expected=f"expected at most {MAX_MEMBER_BYTES} "
                                                f"bytes, got {info.file_size}")
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                raise DiffPoseError.at(path, f"key '{key}'",
                                       expected=f"expected an intact archive member: "
                                                f"{exc}") from exc
            out[key] = _read_npy(data, path, key)
    return out
