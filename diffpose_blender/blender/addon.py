"""The add-on's identity inside Blender.

Installed as an extension, the package is ``bl_ext.<repo>.diffpose_blender``; loaded as a
legacy add-on or in tests it may be plain ``diffpose_blender``. Preferences are keyed by
that module name, so it is derived here rather than written out.
"""

from __future__ import annotations

# This module is ``<addon>.blender.addon``: the add-on module is two levels up.
ADDON_MODULE: str = __name__.rsplit(".", 2)[0]
