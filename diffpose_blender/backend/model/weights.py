"""Saving and loading weights without pickle: one .npz of float arrays per model plus
the config as JSON beside it (``config.json``).

A model folder (for example ``bundled_models/diffpose-cmu-hdm05/``) holds::

    config.json       ModelConfig (and the training config that made it)
    diffpose.npz      DiffPose weights (encoder + denoiser)
    baseline.npz      the deterministic baseline (same encoder)
    MODEL_CARD.md
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...core.errors import DiffPoseError
from ...core.fileio import atomic_write
from .config import ModelConfig
from .lifter import BaselineModel, DiffPoseModel

MODEL_CLASSES = {"diffpose": DiffPoseModel, "baseline": BaselineModel}


def save_model(folder: Path, model: torch.nn.Module, dtype: str = "float32") -> Path:
    """Write `<folder>/<kind>.npz` (float arrays only) atomically; return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {name: t.detach().cpu().numpy().astype(dtype)
              for name, t in model.state_dict().items()}
    path = folder / f"{model.kind}.npz"  # type: ignore[operator]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_write(path) as fh:
        fh.write(buffer.getvalue())
    return path


def save_config(folder: Path, cfg: ModelConfig, extra: dict[str, Any] | None = None) -> None:
    data = {"model": json.loads(cfg.to_json())}
    data.update(extra or {})
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / "config.json", "w") as fh:
        fh.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_config(folder: Path) -> ModelConfig:
    path = folder / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ModelConfig.from_dict(data["model"])
    except FileNotFoundError:
        raise DiffPoseError.at(path, expected="model config not found") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DiffPoseError.at(path, expected=f"a model config ({exc})") from exc


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_model(folder: Path, kind: str = "diffpose") -> tuple[torch.nn.Module, str]:
    """The model of `kind` from `folder`, in eval mode, and its weights' sha256."""
    if kind not in MODEL_CLASSES:
        raise DiffPoseError(f"unknown model kind {kind!r}; expected one of "
                            f"{', '.join(MODEL_CLASSES)}")
    cfg = load_config(folder)
    model = MODEL_CLASSES[kind](cfg)
    path = folder / f"{kind}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            state = {name: torch.from_numpy(data[name].astype(np.float32))
                     for name in data.files}
    except FileNotFoundError:
        raise DiffPoseError.at(path, expected="weights not found") from None
    except (ValueError, OSError) as exc:
        raise DiffPoseError.at(path, expected=f"a weights .npz ({exc})") from exc
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DiffPoseError.at(path, expected=f"weights matching the config; missing "
                                              f"{missing[:5]}, unexpected {unexpected[:5]}")
    model.eval()
    return model, file_hash(path)
