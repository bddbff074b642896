"""Fixtures shared by the backend tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from diffpose_blender.backend.model.config import ModelConfig
from diffpose_blender.backend.model.lifter import BaselineModel, DiffPoseModel
from diffpose_blender.backend.model.weights import save_config, save_model

#: A model small enough to build in milliseconds; tests of the pipeline, not of accuracy.
SMALL = ModelConfig(window=9, d_model=16, heads=2, encoder_layers=1, context_dim=32,
                    denoiser_hidden=32, denoiser_blocks=1, diffusion_steps=20,
                    sample_steps=4)


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with randomly initialised DiffPose and baseline weights (seed 0)."""
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    save_config(folder, SMALL)
    save_model(folder, DiffPoseModel(SMALL))
    save_model(folder, BaselineModel(SMALL))
    return folder
