"""Where the data files that ship with the extension are.

Installed from the extension zip, ``rig_maps/`` and ``bundled_models/`` sit inside the
package folder; in a source checkout they sit at the repository root, beside it.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DiffPoseError

_PACKAGE = Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Path:
    """The folder `name` (``rig_maps`` or ``bundled_models``) shipped with the add-on."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise DiffPoseError(f"{name}/ not found beside the package ({_PACKAGE}); the "
                        f"installation is incomplete")


def bundled_model(name: str) -> Path:
    """A bundled model folder by name, or `name` itself when it is a folder path."""
    as_path = Path(name)
    if as_path.is_dir():
        return as_path
    folder = data_dir("bundled_models") / name
    if not folder.is_dir():
        known = sorted(p.name for p in data_dir("bundled_models").iterdir() if p.is_dir())
        raise DiffPoseError(f"model {name!r} not found; bundled models: "
                            f"{', '.join(known) or 'none'}")
    return folder


#: The model used when none is named.
DEFAULT_MODEL = "diffpose-cmu-hdm05"
