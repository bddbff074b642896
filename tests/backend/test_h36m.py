"""The Human3.6M benchmark: cameras, projection, placement, split, joints, JPMA, and a
tiny train + evaluate run. Real files from the shared data folder."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from diffpose_blender.backend import benchmark
from diffpose_blender.backend.data import h36m
from diffpose_blender.backend.data.corpus import (Clip, load_corpus, load_file, mocap_root,
                                                  shared_data_root)
from diffpose_blender.backend.data.expmap import read_h36m_expmap
from diffpose_blender.backend.data.kinematics import forward_kinematics
from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.skeleton import JOINT_NAMES

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "cache" / "mocap"


@pytest.fixture(scope="module")
def cameras() -> dict[str, tuple[h36m.H36MCamera, ...]]:
    return h36m.read_cameras(h36m.cameras_path(shared_data_root()))


@pytest.fixture(scope="module")
def two_takes() -> list[Clip]:
    """One take of a training subject and one of a test subject, parsed from the files."""
    mocap = mocap_root(shared_data_root())
    out = []
    for subject, name in (("S1", "walking_1"), ("S9", "directions_1")):
        rel = f"h36m_expmap/{subject}/{name}.txt.gz"
        out.extend(load_file(h36m.SOURCE, mocap / rel, subject=subject, take=name[-1],
                             rel_path=rel))
    return out


def test_cameras_load_and_look_at_the_capture_volume(cameras) -> None:  # type: ignore[no-untyped-def]
    assert set(cameras) == {"S1", "S5", "S6", "S7", "S8", "S9", "S11"}
    for subject, cams in cameras.items():
        assert len(cams) == 4
        aim = h36m.aim_point(cams)
        for cam in cams:
            assert np.allclose(cam.rotation @ cam.rotation.T, np.eye(3), atol=1e-9)
            assert np.isclose(np.linalg.det(cam.rotation), 1.0)
            # The optical axis passes within half a metre of the common aim point, which
            # lies in the middle of the room above the floor.
            to_aim = aim - cam.centre
            off_axis = np.linalg.norm(np.cross(cam.rotation[2], to_aim))
            assert off_axis < 0.5 and cam.rotation[2] @ to_aim > 3.0
        assert np.linalg.norm(aim[:2]) < 1.0 and 0.0 < aim[2] < 1.5


def test_projection_with_distortion_matches_opencv(cameras) -> None:  # type: ignore[no-untyped-def]
    cam = cameras["S9"][2]
    rng = np.random.default_rng(0)
    world = h36m.aim_point(cameras["S9"]) + rng.uniform(-1.0, 1.0, size=(50, 3))
    batch = h36m.stack([cam])
    px = batch.project(batch.to_camera(world[None]))[0]
    rvec, _ = cv2.Rodrigues(cam.rotation)
    tvec = -cam.rotation @ cam.centre
    ref, _ = cv2.projectPoints(world.reshape(-1, 1, 3), rvec, tvec,
                               np.array([[cam.focal_xy[0], 0, cam.principal_px[0]],
                                         [0, cam.focal_xy[1], cam.principal_px[1]],
                                         [0, 0, 1]]), cam.distortion)
    assert np.abs(px - ref[:, 0]).max() < 1e-6
    # Undistortion inverts it: normalised coordinates are the pinhole ray X/Z, Y/Z.
    c = batch.to_camera(world[None])[0]
    uv = batch.normalise(px[None])[0]
    assert np.abs(uv - c[:, :2] / c[:, 2:]).max() < 1e-9


def test_placed_subjects_land_inside_every_image(two_takes, cameras) -> None:  # type: ignore[no-untyped-def]
    for clip in two_takes:
        placed = h36m.place(clip.positions, cameras[clip.subject])
        assert placed.shape == clip.positions.shape
        # The feet stand on the capture floor, a few cm of joint height above it.
        assert 0.0 < np.percentile(placed[:, 17:19, 2].min(axis=1), 1) < 0.1
        assert (h36m.inside_fraction(placed, cameras[clip.subject]) > 0.99).all()


def test_protocol_splits_by_subject() -> None:
    clips = load_corpus([h36m.SOURCE], CACHE, shared_root=shared_data_root())
    protocol = h36m.split(clips, h36m.read_cameras(h36m.cameras_path(shared_data_root())))
    assert {t.subject for t in protocol.train} == set(h36m.TRAIN_SUBJECTS)
    assert {t.subject for t in protocol.test} == set(h36m.TEST_SUBJECTS)
    assert len(protocol.train) + len(protocol.test) == len(clips)
    assert all(t.cameras is protocol.test[0].cameras for t in protocol.test
               if t.subject == protocol.test[0].subject)
    with pytest.raises(DiffPoseError, match="extrinsics"):
        h36m.split(clips[:1], {})


def test_our_first_17_joints_are_the_h36m17_subset_of_the_fk(two_takes) -> None:  # type: ignore[no-untyped-def]
    import json

    tree_path = mocap_root(shared_data_root()) / "h36m_expmap" / "h36m_kinematic_tree.json"
    subset = json.loads(tree_path.read_text())["h36m17_subset"]
    names = [ours for ours, _, _ in h36m.H36M17]
    assert tuple(names) == JOINT_NAMES[:17]
    assert [theirs for _, theirs, _ in h36m.H36M17] == subset["names"]
    assert [int(src.split("[")[1].rstrip("]")) for _, _, src in h36m.H36M17] == \
        subset["indices"]
    # Bone lengths of our 17 equal those of the FK's subset joints (12.5 fps, no
    # resampling): the map takes exactly those joints.
    motion = read_h36m_expmap(mocap_root(shared_data_root()) / "h36m_expmap/S1/walking_1.txt.gz",
                              tree_path)
    fk = forward_kinematics(motion)[:, subset["indices"]] / 1000.0
    ours = two_takes[0].positions[:, :17]
    for j, p in enumerate([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]):
        if p >= 0:
            theirs = np.linalg.norm(fk[:, j] - fk[:, p], axis=-1).mean()
            mine = np.linalg.norm(ours[:, j] - ours[:, p], axis=-1).mean()
            assert abs(theirs - mine) < 1e-3, JOINT_NAMES[j]


def test_joint_wise_reprojection_picks_the_hypothesis_nearest_the_2d() -> None:
    # Two hypotheses of three joints; hypothesis 1 matches the 2D at joint 1, hypothesis
    # 0 at joint 2; joint 0 is the root. Depths differ so the choice is visible in 3D.
    hyp = np.zeros((2, 3, 3))
    hyp[0, 1] = (0.5, 0.0, 0.3)
    hyp[1, 1] = (1.0, 0.0, -0.3)
    hyp[0, 2] = (0.0, 1.0, 0.2)
    hyp[1, 2] = (0.4, 1.3, -0.2)
    xy = np.array([[0.0, 0.0], [0.95, 0.02], [0.05, 1.0]])
    scores = np.ones(3)
    pick = benchmark.joint_reprojection_pick(hyp, xy, scores)
    assert list(pick[1:]) == [1, 0]
    out = benchmark.gather_joints(hyp, pick)
    assert np.allclose(out[1], hyp[1, 1]) and np.allclose(out[2], hyp[0, 2])
    # A joint with no 2D falls back to the mean of the hypotheses.
    pick = benchmark.joint_reprojection_pick(hyp, xy, np.array([1.0, 1.0, 0.0]))
    assert pick[2] == -1
    assert np.allclose(benchmark.gather_joints(hyp, pick)[2], hyp[:, 2].mean(axis=0))


def test_test_windows_score_each_frame_once(cameras) -> None:  # type: ignore[no-untyped-def]
    take = h36m.Take(np.zeros((30, 21, 3)), "S9", "x", cameras["S9"])
    w = benchmark.test_windows((take,), 9, every=1)
    assert len(w.items) == 4 * 4                     # starts 0, 9, 18, 21 per camera
    owned = sum(int(o.sum()) for o in w.owned[:4])
    assert owned == 30


def test_benchmark_weights_are_refused_under_bundled_models(tmp_path: Path) -> None:
    with pytest.raises(DiffPoseError, match="bundled_models"):
        benchmark.check_output_dir(REPO / "bundled_models" / "h36m")
    with pytest.raises(DiffPoseError, match="never be bundled"):
        benchmark.check_output_dir(tmp_path / "bundled_models" / "x")
    assert benchmark.check_output_dir(tmp_path / "runs") == (tmp_path / "runs").resolve()


def test_setting_overrides_from_the_command_line() -> None:
    cpu = benchmark.SETTINGS["cpu"]
    capped = benchmark.setting_with("cpu", minutes=5.0)
    assert (capped.minutes, capped.max_iterations) == (5.0, cpu.max_iterations)
    longer = benchmark.setting_with("cpu", max_iterations=3100)
    assert (longer.minutes, longer.max_iterations) == (cpu.minutes, 3100)
    assert benchmark.setting_with("cpu") == cpu
    changed = benchmark.setting_with("cpu", model_changes={"depth_head_detached": True})
    assert changed.model == replace(cpu.model, depth_head_detached=True)
    with pytest.raises(DiffPoseError, match="setting 'huge'; expected one of cpu, gpu"):
        benchmark.setting_with("huge")


def test_tiny_train_and_evaluate_end_to_end(tmp_path: Path) -> None:
    import torch

    setting = benchmark.SETTINGS["tiny"]
    run = tmp_path / "h36m"
    summaries = benchmark.train_benchmark(run, setting, CACHE, torch.device("cpu"),
                                          log=lambda m: None)
    assert set(summaries) == set(benchmark.INPUTS)
    for kind in benchmark.INPUTS:
        assert {p.name for p in (run / kind).iterdir()} >= {"diffpose.npz", "baseline.npz",
                                                              "config.json"}
    report = benchmark.evaluate_benchmark(run, CACHE, torch.device("cpu"), log=lambda m: None)
    assert report["setting"] == "tiny"
    for kind in benchmark.INPUTS:
        r = report[kind]
        assert r["frames"] > 0
        for key in ("diffpose", "best", "jpma", "baseline"):
            assert np.isfinite(r[f"{key}_mpjpe"]) and np.isfinite(r[f"{key}_pmpjpe"])
            assert r[f"{key}_pmpjpe"] <= r[f"{key}_mpjpe"] + 1e-6
    table = benchmark.format_table(report)
    assert "JPMA" in table and "18.9" in table and "| Baseline (deterministic) |" in table
    # The same weights and seed give the same table (the noisy input is seeded too).
    again = benchmark.evaluate_benchmark(run, CACHE, torch.device("cpu"), log=lambda m: None)
    assert again["noisy"]["diffpose_mpjpe"] == report["noisy"]["diffpose_mpjpe"]
    # The sampler probe on the same run: one row per variant; the one-pose rows (the
    # baseline, the regression head) have their best equal to their mean and no spread,
    # the sampled rows some spread.
    probe = [sys.executable, str(REPO / "bench" / "h36m_sampler.py"), str(run), "--every",
             "200", "--cache", str(CACHE), "--variant", "4,2", "--variant", "4,1,0"]
    out = subprocess.run(probe, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [line.split("|")[1:-1] for line in out.stdout.splitlines()
            if line.startswith("| ") and "mm" not in line and "mean |" not in line]
    labels = [r[0].strip() for r in rows]
    assert labels == ["baseline", "DiffPose regression head", "DiffPose N = 4, K = 2",
                      "DiffPose N = 4, K = 1, eta = 0"]
    for r in rows[:2]:
        assert r[1] == r[2] and float(r[4]) == 0.0
    assert all(float(r[4]) > 0.0 for r in rows[2:])
    bad = subprocess.run(probe[:-2] + ["--variant", "4"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "--variant '4'; expected N,K or N,K,ETA" in bad.stderr


def test_a_run_budgeted_in_iterations_trains_the_same_weights_twice(tmp_path: Path) -> None:
    """Same setting, seed and iterations: the same weights, bit for bit (the batches, the
    diffusion noise and the learning rate depend on the iteration, not on the clock)."""
    import torch

    setting = benchmark.SETTINGS["tiny"]
    assert setting.schedule == "iterations"
    for name, outside in (("a", 1), ("b", 2)):
        torch.manual_seed(outside)      # the caller's torch state must not matter
        benchmark.train_benchmark(tmp_path / name, setting, CACHE, torch.device("cpu"),
                                  inputs=("noisy",), log=lambda m: None)
    for kind in ("diffpose", "baseline"):
        with np.load(tmp_path / "a" / "noisy" / f"{kind}.npz") as a, \
                np.load(tmp_path / "b" / "noisy" / f"{kind}.npz") as b:
            assert a.files == b.files
            for key in a.files:
                assert np.array_equal(a[key], b[key]), (kind, key)


def test_a_benchmark_run_trains_one_input_per_command(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """`train --benchmark --inputs gt|noisy`: each command trains one 2D input's pair of
    models, so a run splits over shorter commands (a device that limits a command's
    time); the table needs both, and says which is missing until both are there. Without
    --benchmark, --inputs is refused."""
    from diffpose_blender.backend.__main__ import main

    run = tmp_path / "run"
    common = ["--benchmark", "h36m", "--setting", "tiny", "--cache", str(CACHE)]
    assert main(["train", *common, "-o", str(run), "--inputs", "gt"]) == 0
    assert (run / "gt" / "diffpose.npz").is_file() and not (run / "noisy").exists()
    with pytest.raises(DiffPoseError, match="noisy not trained yet .*--inputs noisy"):
        benchmark.evaluate_benchmark(run, CACHE, torch.device("cpu"))
    assert main(["train", *common, "-o", str(run), "--inputs", "noisy"]) == 0
    report = benchmark.evaluate_benchmark(run, CACHE, torch.device("cpu"))
    assert set(benchmark.INPUTS) <= set(report)
    capsys.readouterr()
    assert main(["train", "-o", str(tmp_path / "shipped"), "--inputs", "gt"]) != 0
    assert "--inputs gt: only with --benchmark" in capsys.readouterr().err
    assert not (tmp_path / "shipped").exists()


def test_train_applies_a_model_change_from_the_command_line(tmp_path: Path) -> None:
    """`train --set KEY=JSON`: the run trains with the changed model config and saves it,
    so `evaluate` and the probes load the model that was trained."""
    from diffpose_blender.backend.__main__ import main
    from diffpose_blender.backend.model.weights import load_config, load_model

    run = tmp_path / "run"
    code = main(["train", "--benchmark", "h36m", "--setting", "tiny", "-o", str(run),
                 "--cache", str(CACHE), "--set", "depth_head_detached=true",
                 "--set", "sample_steps=3"])
    assert code == 0
    for kind in benchmark.INPUTS:
        cfg = load_config(run / kind)
        assert cfg.depth_head_detached and cfg.sample_steps == 3
        assert cfg.window == benchmark.SETTINGS["tiny"].model.window
        assert load_model(run / kind, "diffpose")[0].cfg == cfg
