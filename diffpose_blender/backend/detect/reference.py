"""The `mediapipe==0.10.21` package as a reference for tests and benchmarks only.

That package lives in its own environment (``.venv-mediapipe``, made by
tools/setup_env.sh from requirements/mediapipe.txt), so it is run as a subprocess:
``bench/mediapipe_reference.py`` writes its landmarks to an ``.npz`` that is compared
here. Nothing in the detector depends on it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

from ...core.errors import DiffPoseError

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "bench" / "mediapipe_reference.py"
#: BlazePose landmarks compared (issue 5): shoulders, elbows, wrists, hips, knees, ankles.
COMPARED = (11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def reference_python() -> Path | None:
    """The interpreter that has mediapipe: $DIFFPOSE_MEDIAPIPE_PYTHON, else the
    repository's ``.venv-mediapipe``; None when neither exists."""
    env = os.environ.get("DIFFPOSE_MEDIAPIPE_PYTHON")
    for candidate in ([Path(env)] if env else []) + [REPO / ".venv-mediapipe" / "bin" / "python"]:
        if candidate.is_file():
            return candidate
    return None


def run_reference(video: Path, out: Path, max_frames: int = 0,
                  timeout_s: float = 900.0) -> dict[str, np.ndarray]:
    """Run mediapipe's pose pipeline on `video`; its arrays (see the script's docstring)."""
    python = reference_python()
    if python is None:
        raise DiffPoseError("mediapipe reference environment not found (.venv-mediapipe "
                            "or $DIFFPOSE_MEDIAPIPE_PYTHON)")
    cmd = [str(python), str(SCRIPT), str(video), "-o", str(out)]
    if max_frames:
        cmd += ["--max-frames", str(max_frames)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise DiffPoseError(f"mediapipe reference failed on {video}: {proc.stderr[-2000:]}")
    with np.load(out, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def landmark_distance(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """(T, len(COMPARED)) px distance between two (T, 33, 2) landmark arrays in image
    px; NaN where either side has no pose."""
    idx = list(COMPARED)
    return np.linalg.norm(ours[:, idx] - theirs[:, idx], axis=-1)
