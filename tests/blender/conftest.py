"""The Blender tier: tests that need the real `bpy` module.

Run once per installed Blender version (tools/run_tests.sh runs it in .venv with bpy 5.0
and in .venv-blender-4.2 with bpy 4.2 LTS). Where bpy is missing the tier is skipped,
unless DIFFPOSE_REQUIRE_BLENDER=1 (set by the test command), where that is an error.
"""

from __future__ import annotations

import importlib.util
import os
import sys

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


# bpy 4.2.23 can crash in its own teardown when the interpreter exits, after every test
# has passed and the reports are written (seen in CI: "Segmentation fault" after
# "50 passed"), which turns a green run red. Once the session is over, leave with the
# session's status without running Blender's exit code; first remove the temporary
# Blender user folder that tests/conftest.py would otherwise remove at exit.
_session_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _session_status.append(int(exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    if not _session_status or "bpy" not in sys.modules:
        return
    from tests.conftest import cleanup_blender_home

    cleanup_blender_home()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_session_status[-1])
