"""The Blender tier: tests that need the real `bpy` module.

Run once per installed Blender version (tools/run_tests.sh runs it in .venv with bpy 5.0
and in .venv-blender-4.2 with bpy 4.2 LTS). Where bpy is missing the tier is skipped,
unless DIFFPOSE_REQUIRE_BLENDER=1 (set by the test command), where that is an error.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

if importlib.util.find_spec("bpy") is None:
    if os.environ.get("DIFFPOSE_REQUIRE_BLENDER") == "1":
        raise RuntimeError("DIFFPOSE_REQUIRE_BLENDER=1 but bpy is not importable: "
                           "run tools/setup_env.sh")
    collect_ignore_glob = ["test_*.py"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/blender/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.blender)
