"""Test-wide set-up.

Blender (the `bpy` module) reads and writes its user folders on import: point them at a
temporary folder before anything imports bpy, so tests never touch the home folder
(DESIGN §10).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

_BLENDER_HOME = tempfile.mkdtemp(prefix="diffpose-tests-blender-")
os.environ["BLENDER_USER_RESOURCES"] = _BLENDER_HOME
os.environ["XDG_CACHE_HOME"] = os.path.join(_BLENDER_HOME, "cache")
atexit.register(shutil.rmtree, _BLENDER_HOME, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    try:
        import bpy
    except ImportError:
        blender = "not installed in this environment (Blender tier skipped)"
    else:
        blender = f"{bpy.app.version_string} (bpy module)"
    import numpy
    return [f"Blender: {blender}", f"numpy: {numpy.__version__}",
            f"python: {sys.executable}"]
