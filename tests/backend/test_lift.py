"""`lift`: every 2D format to a valid take, through the real command line.

The weights here are a small randomly initialised model (the `small_model` fixture)
saved with the project's own writer: these tests check the pipeline (reading, gaps, windows, pose space to camera,
the take), not accuracy, which `evaluate` measures on the trained model.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffpose_blender.backend.lift import Lifter, LiftOptions, bridge_gaps
from diffpose_blender.core.formats import read_keypoints, write_keypoints_npz
from diffpose_blender.core.take import read_take
from tests.samples import (BODY25_NAMES, H36M_METADATA, openpose_folder,
                           sample_keypoints, savez_like_videopose3d, two_people_coco)

REPO = Path(__file__).resolve().parent.parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "diffpose_blender.backend", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def _videopose3d(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    base = rng.uniform(400, 700, size=(1, 17, 2))
    seq = base + np.cumsum(rng.normal(0, 2, size=(20, 17, 2)), axis=0)
    return savez_like_videopose3d(tmp_path / "vp3d.npz",
                                  {"S9": {"Walking": [seq.astype(np.float32)]}},
                                  H36M_METADATA)


def _own_npz(tmp_path: Path) -> Path:
    path = tmp_path / "own.npz"
    write_keypoints_npz(path, sample_keypoints(T=14))
    return path


@pytest.mark.parametrize("kind", ["coco", "openpose", "videopose3d", "own_npz"])
def test_lift_every_format_writes_a_valid_take(kind: str, small_model: Path,
                                               tmp_path: Path) -> None:
    if kind == "coco":
        source = two_people_coco(tmp_path)[0]
    elif kind == "openpose":
        source = openpose_folder(tmp_path, BODY25_NAMES)[0]
    elif kind == "videopose3d":
        source = _videopose3d(tmp_path)
    else:
        source = _own_npz(tmp_path)
    out = tmp_path / "take.npz"
    proc = run_cli("lift", str(source), "-o", str(out), "--model", str(small_model),
                   "--hypotheses", "4", "--seed", "3", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    take = read_take(out)                     # read_take validates every field
    kp = read_keypoints(source, image_size=(1000, 1000) if kind == "videopose3d" else None)
    assert take.num_frames == kp.num_frames
    assert take.num_hypotheses == 4
    assert take.params["seed"] == 3
    assert take.valid.sum() >= kp.valid.sum() - 1
    # Camera frame: the person is in front of the camera, and hypotheses differ.
    assert (take.root_cam[take.valid, 2] > 0).all()
    assert float(take.spread[take.valid].mean()) > 0


def test_gaps_are_bridged_and_flagged(small_model: Path) -> None:
    kp = sample_keypoints(T=40)
    kp.keypoints[2], kp.scores[2] = kp.keypoints[1], kp.scores[1]   # no gap there
    kp.valid[:] = True
    kp.scores[:] = np.where(np.isnan(kp.keypoints[..., 0]), 0.0, 0.9)
    kp.scores[10:13] = 0.0                   # a 3-frame detection gap
    kp.keypoints[10:13] = np.nan
    kp.valid[10:13] = False
    keypoints, scores, valid, filled = bridge_gaps(kp, fps=30.0)
    assert valid[10:13].all() and filled[10:13].all() and not filled[:10].any()
    np.testing.assert_allclose(keypoints[11, 0], 0.5 * (kp.keypoints[9, 0] +
                                                        kp.keypoints[13, 0]))
    take = Lifter(small_model).lift(kp.check(), LiftOptions(hypotheses=3))
    assert take.gap_filled[10:13].all() and take.valid.all()


def test_same_seed_same_take_and_long_gaps_stay_empty(small_model: Path) -> None:
    kp = sample_keypoints(T=80)
    kp.valid[:] = True
    kp.scores[:] = np.where(np.isnan(kp.keypoints[..., 0]), 0.0, 0.8)
    kp.scores[30:70] = 0.0                   # 40 frames: longer than the bridge limit
    kp.keypoints[30:70] = np.nan
    kp.valid[30:70] = False
    lifter = Lifter(small_model)
    a = lifter.lift(kp, LiftOptions(hypotheses=3, seed=5))
    b = lifter.lift(kp, LiftOptions(hypotheses=3, seed=5))
    c = lifter.lift(kp, LiftOptions(hypotheses=3, seed=6))
    np.testing.assert_array_equal(a.hypotheses, b.hypotheses)
    assert not np.array_equal(a.hypotheses, c.hypotheses)
    assert not a.valid[30:70].any() and a.valid[:30].all()


def test_bad_inputs_exit_2_with_a_message(small_model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[{"image_id": 1, "keypoints": [1, 2,', encoding="utf-8")
    proc = run_cli("lift", str(broken), "-o", str(tmp_path / "t.npz"),
                   "--model", str(small_model))
    assert proc.returncode == 2
    assert "broken.json" in proc.stderr and "line 1" in proc.stderr
    assert not (tmp_path / "t.npz").exists()

    source = _own_npz(tmp_path)
    proc = run_cli("lift", str(source), "-o", str(tmp_path / "t.npz"),
                   "--model", str(small_model), "--hypotheses", "0")
    assert proc.returncode == 2 and "hypotheses 0" in proc.stderr
    if not torch.cuda.is_available():
        proc = run_cli("lift", str(source), "-o", str(tmp_path / "t.npz"),
                       "--model", str(small_model), "--device", "cuda")
        assert proc.returncode == 2 and "no CUDA GPU" in proc.stderr
    proc = run_cli("lift", str(source), "-o", str(tmp_path / "t.npz"),
                   "--model", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "nowhere" in proc.stderr


def test_root_from_the_hips_when_the_pelvis_keypoint_is_missing(small_model: Path) -> None:
    kp = sample_keypoints(T=12)
    kp.keypoints[2], kp.scores[2], kp.valid[2] = kp.keypoints[1], kp.scores[1], True
    kp.scores[:, 0] = 0.0
    kp.keypoints[:, 0] = np.nan
    take = Lifter(small_model).lift(kp.check(), LiftOptions(hypotheses=2))
    assert take.valid.all() and np.isfinite(take.hypotheses).all()
    # The root's image position is the midpoint of the hips.
    hips = 0.5 * (kp.keypoints[:, 1] + kp.keypoints[:, 4])
    proj = take.root_cam[:, :2] / take.root_cam[:, 2:] * take.focal_px + \
        np.array(take.image_size) / 2.0
    np.testing.assert_allclose(proj, hips, atol=1e-6)
