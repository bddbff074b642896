"""A real backend process for the Blender tier's tests.

The backend runs in a Python that has torch: this one when it has (the main .venv), else
the main environment's (the Blender 4.2 environment has no torch). `session_backend`
registers the add-on in a factory-fresh Blender and makes a `LocalBackend` (``serve
--stdio``, CPU) the session's backend, as the preferences would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import bpy

import diffpose_blender as addon
from diffpose_blender.blender import backend_link
from diffpose_blender.client.process import LocalBackend

REPO = Path(__file__).resolve().parents[2]
#: A Python with torch for the backend: this one, or the main environment's.
BACKEND_PYTHON = (sys.executable if subprocess.run(
    [sys.executable, "-c", "import torch"], capture_output=True).returncode == 0
    else str(REPO / ".venv" / "bin" / "python"))
#: Seconds any one wait on the backend may take in a test.
TIMEOUT = 180.0


def use(backend: LocalBackend) -> None:
    """Make `backend` the session's backend for CPU estimates (again after a file load,
    which closes it: a closed LocalBackend starts a new process on its next request)."""
    backend_link.use_backend(backend, backend_link.settings_from_preferences(
        bpy.context, device="cpu"))


def session_backend() -> Iterator[LocalBackend]:
    """Body of a fixture: the add-on registered with a local CPU backend; unregistering
    at the end closes it."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon.register()
    local = LocalBackend(python=BACKEND_PYTHON, device="cpu")
    use(local)
    yield local
    addon.unregister()
    assert backend_link.current_backend() is None
