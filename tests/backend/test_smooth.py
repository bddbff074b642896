"""Smoothing a take: the take contract survives, the filters do what their parameters
say, uncertain frames follow their neighbours, bone lengths become constant, and bad
input is refused with a message (in process and through the backend CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diffpose_blender.backend.smooth import (
    METHODS, SmoothOptions, bone_lengths, min_run_frames, smooth_take, valid_runs)
from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.skeleton import NUM_JOINTS, SKELETON
from diffpose_blender.core.take import Take, compute_spread, read_take, write_take

REPO = Path(__file__).resolve().parents[2]
FPS = 30.0


def motion(T: int, seed: int = 0) -> np.ndarray:
    """A smooth root-relative pose (T, J, 3), camera metres: fixed bone offsets, each
    joint swinging about its own axis at 0.5-1.5 Hz (forward kinematics)."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 0.15, size=(NUM_JOINTS, 3))
    offsets[:, 1] += np.where(np.arange(NUM_JOINTS) < 7, 0.2, -0.2)  # legs down, rest up
    axes = rng.normal(size=(NUM_JOINTS, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    freq = rng.uniform(0.5, 1.5, NUM_JOINTS)
    t = np.arange(T) / FPS
    pose = np.zeros((T, NUM_JOINTS, 3))
    rot = np.tile(np.eye(3), (T, NUM_JOINTS, 1, 1))
    for j, p in enumerate(SKELETON.parents):
        if p < 0:
            continue
        angle = 0.6 * np.sin(2 * np.pi * freq[j] * t + j)
        k = axes[j]
        K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        local = (np.eye(3) + np.sin(angle)[:, None, None] * K
                 + (1 - np.cos(angle))[:, None, None] * (K @ K))
        rot[:, j] = rot[:, p] @ local
        pose[:, j] = pose[:, p] + np.einsum("tij,j->ti", rot[:, p], offsets[j])
    return pose


def make_take(hyp: np.ndarray, valid: np.ndarray | None = None,
              root: np.ndarray | None = None) -> Take:
    T = hyp.shape[0]
    valid = np.ones(T, bool) if valid is None else valid
    hyp = np.where(valid[:, None, None, None], hyp, 0.0)
    hyp = hyp - hyp[:, :, :1]
    if root is None:
        root = np.stack([np.linspace(-1, 1, T), np.full(T, 0.2), np.full(T, 4.0)], 1)
    return Take.from_hypotheses(
        hyp, root, valid, keypoints_2d=np.full((T, NUM_JOINTS, 2), 500.0),
        scores_2d=np.full((T, NUM_JOINTS), 0.9), fps=FPS, image_size=(1000, 1000),
        focal_px=1000.0, source_2d="test:motion", model_name="test")


def noisy_take(T: int = 90, N: int = 5, noise: float = 0.02, seed: int = 0
               ) -> tuple[Take, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = motion(T, seed)
    hyp = truth[:, None] + rng.normal(0, noise, size=(T, N, NUM_JOINTS, 3))
    return make_take(hyp), truth


def jitter(pose: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(pose, 2, axis=0), axis=-1).mean())


@pytest.mark.parametrize("method", METHODS)
def test_contract_kept_and_written(method: str, tmp_path: Path) -> None:
    take, truth = noisy_take()
    out = smooth_take(take, SmoothOptions(method=method))
    hyp = out.hypotheses.astype(np.float64)
    np.testing.assert_allclose(out.pose, hyp.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(out.spread, compute_spread(hyp), atol=1e-6)
    assert np.abs(hyp[:, :, 0]).max() == 0.0
    assert out.params["smoothing"]["method"] == method
    assert out.params["num_hypotheses"] == 5
    write_take(tmp_path / "s.npz", out)
    back = read_take(tmp_path / "s.npz")
    assert back.params["smoothing"] == out.params["smoothing"]
    if method == "none":
        np.testing.assert_array_equal(out.hypotheses, take.hypotheses)
        np.testing.assert_array_equal(out.root_cam, take.root_cam)
    else:
        # Smoothing the noise away brings the mean closer to the truth and calms it.
        before = np.linalg.norm(take.pose - truth, axis=-1).mean()
        after = np.linalg.norm(out.pose - truth, axis=-1).mean()
        assert after < 0.8 * before
        # Jitter (mean acceleration) falls to near the true motion's own.
        assert jitter(out.pose) - jitter(truth) < 0.15 * (jitter(take.pose) - jitter(truth))
    # The input take is not modified.
    assert "smoothing" not in take.params


@pytest.mark.parametrize("method", ["butterworth", "spline"])
def test_cutoff_gain_is_one_half(method: str) -> None:
    # A sine at the cutoff comes out at half its amplitude; well below passes, well
    # above is stopped. Measured in the middle, away from the ends.
    T = 300
    t = np.arange(T) / FPS
    zeros = np.zeros((T, 1, NUM_JOINTS, 3))
    base = make_take(zeros)
    gains = {}
    for f in (1.0, 4.0, 10.0):
        hyp = zeros.copy()
        hyp[:, 0, 5, 0] = 0.1 * np.sin(2 * np.pi * f * t)
        take = make_take(hyp, root=base.root_cam)
        out = smooth_take(take, SmoothOptions(method=method, cutoff_hz=4.0,
                                              bone_lengths=False))
        mid = slice(60, 240)
        gains[f] = np.abs(out.pose[mid, 5, 0]).max() / 0.1
    assert gains[1.0] > 0.95
    assert 0.4 < gains[4.0] < 0.6
    assert gains[10.0] < 0.1


def test_spline_uncertain_frames_follow_neighbours() -> None:
    # A smooth path with one bump of 10 cm at frame 40: when the hypotheses disagree
    # there (large spread) the spline follows the neighbours; when they agree the
    # bump is believed more. Equal weights (strength 0) sit in between.
    T, N = 80, 4
    truth = motion(T)
    hyp = np.repeat(truth[:, None], N, axis=1)
    bumped = hyp.copy()
    bumped[40, :, 13, 0] += 0.10
    sure = make_take(bumped)
    unsure_hyp = bumped.copy()
    unsure_hyp[40, :, 13, 0] += np.array([-0.3, 0.3, -0.3, 0.3])  # same mean, spread
    unsure = make_take(unsure_hyp)
    opts = SmoothOptions(method="spline", cutoff_hz=4.0, bone_lengths=False)
    # Measured against the smoothed path without the bump (the filter's own bias).
    clean = smooth_take(make_take(hyp), opts).pose[40, 13, 0]
    bump_sure = smooth_take(sure, opts).pose[40, 13, 0] - clean
    bump_unsure = smooth_take(unsure, opts).pose[40, 13, 0] - clean
    bump_equal = smooth_take(unsure, SmoothOptions(
        method="spline", cutoff_hz=4.0, bone_lengths=False, strength=0.0)
    ).pose[40, 13, 0] - clean
    assert bump_unsure < 0.1 * bump_sure
    assert bump_unsure < 0.5 * bump_equal
    assert bump_sure > 0.02


def test_bone_lengths_constant_and_shift_shared() -> None:
    take, truth = noisy_take(N=3)
    out = smooth_take(take, SmoothOptions(method="butterworth"))
    parents = [p for p, _ in SKELETON.bones]
    children = [c for _, c in SKELETON.bones]
    lengths = np.linalg.norm(out.pose[:, children] - out.pose[:, parents], axis=-1)
    assert np.ptp(lengths, axis=0).max() < 1e-5
    np.testing.assert_allclose(lengths[0], bone_lengths(truth, np.ones(len(truth), bool)),
                               atol=0.01)
    # The correction is the same shift for every hypothesis: their offsets from the mean
    # are those of plain Butterworth smoothing.
    plain = smooth_take(take, SmoothOptions(method="butterworth", bone_lengths=False))
    np.testing.assert_allclose(out.hypotheses - out.pose[:, None],
                               plain.hypotheses - plain.pose[:, None], atol=1e-5)


def test_runs_smoothed_apart_invalid_untouched() -> None:
    T = 100
    valid = np.ones(T, bool)
    valid[45:50] = False
    valid[97:] = False  # a short run at the end is too short for Butterworth
    valid[95:97] = True
    valid[92:95] = False
    truth = motion(T)
    hyp = truth[:, None].copy()
    hyp[50:] += 0.3  # a different place after the gap: must not leak before it
    hyp[50:, :, 0] = 0
    hyp -= hyp[:, :, :1]
    take = make_take(hyp, valid)
    assert valid_runs(take.valid) == [(0, 45), (50, 92), (95, 97)]
    out = smooth_take(take, SmoothOptions(method="butterworth", cutoff_hz=8.0,
                                          bone_lengths=False))
    assert np.all(out.hypotheses[~valid] == 0)
    np.testing.assert_allclose(out.pose[:45], take.pose[:45], atol=0.02)
    np.testing.assert_allclose(out.pose[95:97], take.pose[95:97])
    assert out.params["smoothing"]["unsmoothed_runs"] == 1
    assert out.params["smoothing"]["runs"] == 3


def test_short_take_refused_with_numbers() -> None:
    take, _ = noisy_take(T=10)
    with pytest.raises(DiffPoseError, match=r"longest run of valid frames is 10, but "
                                            r"butterworth smoothing needs at least 16"):
        smooth_take(take, SmoothOptions(method="butterworth"))
    with pytest.raises(DiffPoseError, match="savgol smoothing needs at least 11"):
        smooth_take(take, SmoothOptions(method="savgol", window=11))
    # What fits still works.
    smooth_take(take, SmoothOptions(method="savgol", window=9))
    smooth_take(take, SmoothOptions(method="spline"))
    assert min_run_frames(SmoothOptions(method="none"), FPS) == 1


def test_nan_names_frame_and_joint() -> None:
    take, _ = noisy_take(T=30)
    take.hypotheses[12, 1, SKELETON.index["l_knee"], 2] = np.nan
    with pytest.raises(DiffPoseError, match="frame 12, joint 'l_knee'"):
        smooth_take(take)


@pytest.mark.parametrize("options, message", [
    (SmoothOptions(method="wobble"), "method 'wobble'"),
    (SmoothOptions(method="butterworth", cutoff_hz=20.0), "Nyquist frequency, 15 Hz"),
    (SmoothOptions(method="spline", cutoff_hz=0.0), "cutoff 0.0 Hz"),
    (SmoothOptions(method="savgol", window=8), "window 8 frames"),
    (SmoothOptions(method="spline", strength=-1.0), "strength -1.0"),
])
def test_bad_options(options: SmoothOptions, message: str) -> None:
    take, _ = noisy_take(T=30)
    with pytest.raises(DiffPoseError, match=message):
        smooth_take(take, options)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "diffpose_blender.backend", "smooth",
                           *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_smooth(tmp_path: Path) -> None:
    take, _ = noisy_take()
    src = tmp_path / "take.npz"
    write_take(src, take)
    res = _cli(str(src), "-o", str(tmp_path / "out.npz"), "--method", "savgol",
               "--window", "7")
    assert res.returncode == 0, res.stderr
    out = read_take(tmp_path / "out.npz")
    assert out.params["smoothing"]["window"] == 7
    # In place, with the defaults.
    res = _cli(str(src), "-o", str(src))
    assert res.returncode == 0, res.stderr
    assert read_take(src).params["smoothing"]["method"] == "spline"


def test_cli_bad_input(tmp_path: Path) -> None:
    res = _cli(str(tmp_path / "missing.npz"), "-o", str(tmp_path / "o.npz"))
    assert res.returncode == 2
    assert "missing.npz: file not found" in res.stderr
    short, _ = noisy_take(T=8)
    write_take(tmp_path / "short.npz", short)
    res = _cli(str(tmp_path / "short.npz"), "-o", str(tmp_path / "o.npz"), "--method",
               "butterworth")
    assert res.returncode == 2
    assert "short.npz: take of 8 frames" in res.stderr
    assert not (tmp_path / "o.npz").exists()
