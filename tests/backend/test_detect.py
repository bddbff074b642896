"""The video detector: its parts on data with known answers, bad inputs through the real
command line, the `../shared/media` videos against the `mediapipe` package, and
`lift VIDEO` end to end.

The mediapipe comparison runs that package in its own environment (`.venv-mediapipe`
from tools/setup_env.sh, or $DIFFPOSE_MEDIAPIPE_PYTHON); the shared videos live beside
the repository. Tests needing either skip with the reason when it is absent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from diffpose_blender.backend.detect import detect_video
from diffpose_blender.backend.detect.blazepose import BlazePose, ssd_anchors
from diffpose_blender.backend.detect.mixture import fit_heatmap_mixtures
from diffpose_blender.backend.detect.reference import (landmark_distance, reference_python,
                                                       run_reference)
from diffpose_blender.backend.detect.roi import Roi
from diffpose_blender.backend.detect.video import constant_rate_frames
from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.formats import read_keypoints
from diffpose_blender.core.skeleton import JOINT_NAMES
from diffpose_blender.core.take import read_take

REPO = Path(__file__).resolve().parent.parent.parent
MEDIA = REPO.parent / "shared" / "media"
WALK = MEDIA / "walking_mocap_studio_single_person.mp4"
DRIBBLE = MEDIA / "basketball_dribble_single_person.mp4"
#: Frames of each shared video used here: enough for tracking to matter, few enough
#: for a 2-core machine (the bench runs the whole clips).
MEDIA_FRAMES = 60


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "diffpose_blender.backend", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def model() -> BlazePose:
    return BlazePose()


def _write_video(path: Path, frames: int, size: tuple[int, int] = (160, 120),
                 fps: float = 25.0) -> Path:
    w, h = size
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert out.isOpened()
    rng = np.random.default_rng(0)
    for _ in range(frames):
        # A plain grey wall with sensor noise: no person.
        out.write(np.clip(128 + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8))
    out.release()
    return path


# -- parts ---------------------------------------------------------------------------
def test_ssd_anchors_match_the_detector_output() -> None:
    a = ssd_anchors()
    assert a.shape == (2254, 2)
    assert np.allclose(a[0], [0.5 / 28, 0.5 / 28]) and np.allclose(a[1], a[0])
    # The stride-32 grid has 6 anchors per cell and ends at the last cell.
    assert np.allclose(a[-6:], [[6.5 / 7, 6.5 / 7]] * 6)


def test_roi_upright_alignment_and_crop_mapping() -> None:
    roi = Roi.from_alignment(np.array([100.0, 200.0]), np.array([100.0, 120.0]))
    assert roi.rotation == pytest.approx(0.0)
    assert roi.side == pytest.approx(2 * 80 * 1.25)
    # The crop's centre is the hip centre; its top edge is above it.
    assert np.allclose(roi.to_image(np.array([128.0, 128.0]), 256), [100, 200])
    assert roi.to_image(np.array([128.0, 0.0]), 256)[1] < 200
    tilted = Roi.from_alignment(np.array([0.0, 0.0]), np.array([50.0, -50.0]))
    pts = np.random.default_rng(0).uniform(-300, 300, (10, 2))
    assert np.allclose(tilted.to_image(tilted.to_crop(pts, 256), 256), pts)
    # Leaning right (extent point up and to the right): the crop's up follows it.
    up = tilted.to_image(np.array([128.0, 0.0]), 256) - tilted.to_image(
        np.array([128.0, 128.0]), 256)
    assert up[0] > 0 and up[1] < 0


def test_constant_rate_frames_keeps_cfr_and_resamples_vfr() -> None:
    cfr = constant_rate_frames(np.arange(10) / 25.0, 25.0)
    assert cfr.fps == 25.0 and not cfr.variable
    assert np.array_equal(cfr.source_frame, np.arange(10))
    # A phone clip: 30 fps with a stretch at 15 fps (frames 10-14 are 1/15 s apart).
    dt = np.r_[np.full(10, 1 / 30), np.full(5, 1 / 15), np.full(10, 1 / 30)]
    t = np.r_[0.0, np.cumsum(dt)]
    vfr = constant_rate_frames(t, 29.0)
    assert vfr.variable and vfr.fps == pytest.approx(30.0)
    assert len(vfr.time_s) == int(round(t[-1] * 30)) + 1
    # Every output frame shows the decoded frame nearest its time: timing is kept.
    assert np.abs(t[vfr.source_frame] - vfr.time_s).max() <= 1 / 30 + 1e-9
    # Timestamps that cannot be trusted fall back to the declared rate.
    bad = constant_rate_frames(np.zeros(5), 24.0)
    assert bad.fps == 24.0 and np.array_equal(bad.source_frame, np.arange(5))


def _blob(centres: list[tuple[float, float]], sigma: float) -> np.ndarray:
    """(64, 64) logits of a heatmap with Gaussian peaks (x, y cells) of height 0.9."""
    rows, cols = np.mgrid[0:64, 0:64]
    p = sum(np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma ** 2))
            for x, y in centres)
    p = np.clip(0.9 * p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def test_mixture_fit_follows_the_heatmap() -> None:
    sharp = _blob([(30.0, 20.0)], 1.0)
    wide = _blob([(30.0, 20.0)], 2.5)
    two = _blob([(26.0, 40.0), (32.0, 40.0)], 1.0)
    hm = np.stack([sharp, wide, two], axis=-1)
    cells = np.array([[30.0, 20.0], [30.0, 20.0], [29.0, 40.0]])
    w, m, c = fit_heatmap_mixtures(hm, cells)
    mean = (w[..., None] * m).sum(1)
    assert np.allclose(mean[0], [30, 20], atol=0.2) and np.allclose(mean[1], [30, 20], atol=0.3)
    var = lambda i: float((w[i, :, None] * np.trace(c[i], axis1=-2, axis2=-1)[:, None]).sum())  # noqa: E731
    assert var(1) > 2.5 * var(0)
    # Two peaks: one component on each.
    xs = np.sort(m[2, :, 0])
    assert abs(xs[0] - 26) < 0.7 and abs(xs[1] - 32) < 0.7
    assert np.allclose(w[2], 0.5, atol=0.1)


# -- bad input -----------------------------------------------------------------------
def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp / "empty.mp4"
    empty.write_bytes(b"")
    png = tmp / "still.png"
    cv2.imwrite(str(png), np.full((40, 40, 3), 200, np.uint8))
    png_named_mp4 = tmp / "still_really.mp4"
    png_named_mp4.write_bytes(png.read_bytes())
    garbage = tmp / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    whole = _write_video(tmp / "whole.mp4", 60)
    truncated = tmp / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return {
        "missing": (tmp / "nope.mp4", "not found"),
        "empty": (empty, "empty"),
        "image": (png, "still image"),
        "image named .mp4": (png_named_mp4, "still image"),
        "garbage": (garbage, "cannot be opened"),
        "truncated": (truncated, "truncated"),
        "no person": (_write_video(tmp / "wall.mp4", 12), "no person found"),
    }


def test_bad_videos_give_clear_errors_never_a_hang(tmp_path: Path) -> None:
    for name, (path, words) in _bad_inputs(tmp_path).items():
        proc = run_cli("detect", str(path), "-o", str(tmp_path / "kp.npz"), timeout=120)
        assert proc.returncode == 2, (name, proc.stderr[-2000:])
        assert path.name in proc.stderr and words in proc.stderr, (name, proc.stderr[-2000:])
        assert not (tmp_path / "kp.npz").exists()


# -- the shared videos, against mediapipe ----------------------------------------------
def _needs(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} not present (the shared test videos live beside the repo)")


@pytest.mark.parametrize("video", [WALK, DRIBBLE], ids=["walking", "dribble"])
def test_shared_videos_person_found_and_agrees_with_mediapipe(video: Path, model: BlazePose,
                                                              tmp_path: Path) -> None:
    _needs(video)
    kp = detect_video(video, model=model, max_frames=MEDIA_FRAMES)
    assert kp.valid.mean() >= 0.99
    assert kp.gmm_weights is not None and kp.gmm_weights.shape[1] == len(JOINT_NAMES)
    # Every joint of every frame with a person has a mixture (the lifter needs all).
    assert (kp.gmm_weights[kp.valid].sum(-1) > 0.99).all()
    if reference_python() is None:
        pytest.skip("mediapipe reference environment absent (.venv-mediapipe from "
                    "tools/setup_env.sh, or $DIFFPOSE_MEDIAPIPE_PYTHON); the detection "
                    "rate above was checked, the agreement was not")
    ref = run_reference(video, tmp_path / "ref.npz", MEDIA_FRAMES)
    assert ref["found"].mean() >= 0.99
    n = kp.num_frames
    dist = landmark_distance(kp.extra["landmarks_33"], ref["landmarks"][:n])
    w, h = kp.image_size
    assert np.nanmean(dist) <= 0.01 * np.hypot(w, h), np.nanmean(dist)


# -- the command line and lift VIDEO -----------------------------------------------------
def test_detect_then_lift_video_take_holds_detect_output(small_model: Path,
                                                         tmp_path: Path) -> None:
    _needs(DRIBBLE)
    kp_path, take_path = tmp_path / "kp.npz", tmp_path / "take.npz"
    proc = run_cli("detect", str(DRIBBLE), "-o", str(kp_path), "--max-frames", "20")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "detect [" in proc.stderr                     # progress on stderr
    kp = read_keypoints(kp_path)
    assert kp.num_frames == 20 and kp.fps == pytest.approx(12.0)
    assert kp.image_size == (1080, 1920) and kp.gmm_means is not None
    assert kp.extra["landmarks_33"].shape == (20, 33, 2)
    proc = run_cli("lift", str(DRIBBLE), "-o", str(take_path), "--max-frames", "20",
                   "--model", str(small_model), "--hypotheses", "3", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-2000:]
    take = read_take(take_path)
    assert np.array_equal(take.keypoints_2d, kp.keypoints, equal_nan=True)
    assert np.array_equal(take.scores_2d, kp.scores)


def test_heatmap_mixtures_reach_the_initial_distribution(small_model: Path) -> None:
    """A wide heatmap mixture gives a wider initial distribution than a sharp one."""
    from dataclasses import replace

    from diffpose_blender.backend.lift import Lifter, LiftOptions

    T, J = 12, len(JOINT_NAMES)
    rng = np.random.default_rng(1)
    xy = np.array([500.0, 400.0]) + rng.normal(0, 60, (1, J, 2)) + np.zeros((T, 1, 1))
    from diffpose_blender.core.keypoints import Keypoints2D
    base = Keypoints2D(keypoints=xy, scores=np.full((T, J), 0.9), valid=np.ones(T, bool),
                       fps=25.0, image_size=(1000, 800), source="test",
                       gmm_weights=np.ones((T, J, 1)), gmm_means=xy[:, :, None, :].copy(),
                       gmm_covs=np.broadcast_to(np.eye(2) * 4.0, (T, J, 1, 2, 2)).copy())
    wide = replace(base, gmm_covs=base.gmm_covs * 400.0)
    lifter = Lifter(small_model, device="cpu")
    frames = np.arange(9)[None]
    root = np.zeros((1, 9, 2))
    s = np.ones(1) * 0.3
    spreads = []
    for kp in (base, wide):
        gmm = lifter._gmm(kp, frames, root, s, kp.image_size, 800.0)
        assert gmm is not None                       # the mixtures are used, not dropped
        model = lifter.model
        d_mean = torch.zeros(1, 9, J)
        xy_in, scores_in = torch.zeros(1, 9, J, 2), torch.full((1, 9, J), 0.9)
        _, _, chol = model._initial(xy_in, scores_in, d_mean, d_mean, gmm)
        spreads.append(float(chol[..., :2, :2].diagonal(dim1=-2, dim2=-1)[..., 1:, :, :].mean()))
    assert spreads[1] > 5 * spreads[0]
    a = lifter.lift(base, LiftOptions(hypotheses=4, seed=0))
    b = lifter.lift(wide, LiftOptions(hypotheses=4, seed=0))
    assert not np.allclose(a.hypotheses, b.hypotheses)


# -- the bundled sample clip ---------------------------------------------------------------
SAMPLE = REPO / "examples" / "sample_walk.mp4"
SAMPLE_TRUTH = REPO / "examples" / "sample_walk_truth.npz"


def test_bundled_sample_clip_detection_matches_its_ground_truth(model: BlazePose,
                                                                tmp_path: Path) -> None:
    """The self-contained detector check: the sample rendered from the CC0 character
    (tools/make_sample_clip.py) against the rig's own joints projected by its camera,
    and against mediapipe's own pipeline where the reference environment exists."""
    kp = detect_video(SAMPLE, model=model)
    with np.load(SAMPLE_TRUTH, allow_pickle=False) as truth:
        joints_2d = truth["joints_2d"]
        assert tuple(truth["image_size"]) == kp.image_size
        assert float(truth["fps"]) == pytest.approx(kp.fps)
        names = [str(n) for n in truth["joint_names"]]
    assert names == list(JOINT_NAMES) and kp.num_frames == len(joints_2d)
    assert kp.valid.mean() >= 0.9
    rows = joints_2d[:, :, 1]
    height = float(np.nanmedian(np.nanmax(rows, axis=1) - np.nanmin(rows, axis=1)))
    # Joints whose definition the rig and BlazePose share (the hips, spine and nose are
    # placed differently by each); error as a fraction of the figure's height.
    shared = ["head_top", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist",
              "r_wrist", "l_knee", "r_knee", "l_ankle", "r_ankle"]
    idx = [JOINT_NAMES.index(n) for n in shared]
    err = np.linalg.norm(kp.keypoints[:, idx] - joints_2d[:, idx], axis=-1) / height
    medians = np.nanmedian(err[kp.valid], axis=0)
    assert medians.max() <= 0.04, dict(zip(shared, medians.round(3)))
    assert medians.mean() <= 0.025, medians.mean()
    if reference_python() is None:
        pytest.skip("mediapipe reference environment absent; ground truth was checked")
    ref = run_reference(SAMPLE, tmp_path / "ref.npz")
    found = ref["found"][:kp.num_frames].astype(bool)
    assert np.array_equal(found, kp.valid)          # the same frames have a person
    dist = landmark_distance(kp.extra["landmarks_33"], ref["landmarks"][:kp.num_frames])
    w, h = kp.image_size
    assert np.nanmean(dist) <= 0.01 * np.hypot(w, h), np.nanmean(dist)
