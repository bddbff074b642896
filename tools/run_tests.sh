#!/usr/bin/env bash
# The project's test command (README, .ci/run): builds the environments if needed, then
#   1. all tests in .venv (core, backend, client, Blender tier on bpy 5.0),
#   2. the Blender tier again in .venv-blender-4.2 (bpy 4.2 LTS, the oldest supported),
#   3. the static check of the Blender-facing code against fake-bpy-module (mypy --strict).
# Ends with one summary line over all runs. Extra arguments go to both pytest runs.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh || exit 1

export DIFFPOSE_REQUIRE_BLENDER=1
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
status=0

echo "=== tests: .venv (Blender 5.0) ==="
.venv/bin/python -m pytest tests --junitxml="$reports/blender-5.0.xml" "$@" || status=1

echo "=== tests: Blender tier on .venv-blender-4.2 (Blender 4.2 LTS) ==="
.venv-blender-4.2/bin/python -m pytest tests/blender --junitxml="$reports/blender-4.2.xml" "$@" \
    || status=1

echo "=== static check: mypy --strict against fake-bpy-module ==="
.venv-typecheck/bin/mypy || status=1

.venv/bin/python tools/summarize_junit.py "$reports"/*.xml || status=1
exit $status
