#!/usr/bin/env bash
# Creates the project's virtual environments at the repository root (DESIGN §3):
#   .venv               backend + tests + bpy 5.0.1 (the newest bpy for Python 3.11)
#   .venv-blender-4.2   bpy 4.2 LTS (the oldest supported Blender) + pytest
#   .venv-typecheck     fake-bpy-module + mypy, apart so the stubs never shadow real bpy
#   .venv-mediapipe     mediapipe 0.10.21: the detector tests' reference (issue 5), apart
#                       because it pins numpy<2/protobuf and ships opencv-contrib-python
# Idempotent: an environment is rebuilt only when its requirement file changed.
# Needs Python 3.11 (`PYTHON=python3.11 tools/setup_env.sh` to pick one).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" - <<'PYEOF'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"diffpose-blender: Python 3.11 is required (the bpy 4.2-5.0 wheels exist only "
             f"for 3.11); got {sys.version.split()[0]} from {sys.executable}")
PYEOF

# make_env DIR REQFILE [pre-install args...]
make_env() {
    local dir=$1 req=$2; shift 2
    local stamp="$dir/.requirements.sha256"
    local want
    want=$(sha256sum < "$req" | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        echo "[setup] $dir is up to date"
        return
    fi
    echo "[setup] building $dir from $req"
    rm -rf "$dir"
    "$PY" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip
    if [[ $# -gt 0 ]]; then
        "$dir/bin/python" -m pip install -q "$@"
    fi
    # One pip command per environment: a later command could silently upgrade numpy
    # past the <2 pin that bpy 5.0.1 needs (DESIGN §10).
    "$dir/bin/python" -m pip install -q -r "$req"
    echo "$want" > "$stamp"
}

# torch first, from its exact CPU build, so nothing later pulls a CUDA build.
make_env .venv requirements/main.txt torch==2.13.0
make_env .venv-blender-4.2 requirements/blender-4.2.txt
make_env .venv-typecheck requirements/typecheck.txt
make_env .venv-mediapipe requirements/mediapipe.txt
echo "[setup] done"
