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


def cleanup_blender_home() -> None:
    shutil.rmtree(_BLENDER_HOME, ignore_errors=True)


atexit.register(cleanup_blender_home)


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


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with randomly initialised DiffPose and baseline weights (seed 0): a model
    small enough to build in milliseconds, for tests of the pipeline, not of accuracy.
    (torch is imported here, not at the top: the Blender-4.2 environment has none.)"""
    import torch

    from diffpose_blender.backend.model.config import ModelConfig
    from diffpose_blender.backend.model.lifter import BaselineModel, DiffPoseModel
    from diffpose_blender.backend.model.weights import save_config, save_model

    small = ModelConfig(window=9, d_model=16, heads=2, encoder_layers=1, context_dim=32,
                        denoiser_hidden=32, denoiser_blocks=1, diffusion_steps=20,
                        sample_steps=4)
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    save_config(folder, small)
    save_model(folder, DiffPoseModel(small))
    save_model(folder, BaselineModel(small))
    return folder
