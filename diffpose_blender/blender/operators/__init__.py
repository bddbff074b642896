"""Operators: gather inputs from the UI, call core, write results."""

from __future__ import annotations

from . import backend, bake, estimate, export, preview, smooth, takes
from .source import DIFFPOSE_OT_load_source

CLASSES: tuple[type, ...] = (
    DIFFPOSE_OT_load_source,
    *bake.classes,
    *export.classes,
    *takes.classes,
    *preview.classes,
    *smooth.classes,
    *estimate.classes,
    *backend.classes,
)
