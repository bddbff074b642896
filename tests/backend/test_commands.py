"""`train`, `evaluate`, `lift` and `detect` refuse settings they cannot honour, through the command
line's own entry point (`backend.__main__.main`, in this process to keep it quick; the
subprocess path is covered by test_lift): exit code 2, a message naming the option and
its value, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffpose_blender.backend.__main__ import main
from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.formats import write_keypoints_npz
from tests.samples import sample_keypoints


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("option, message", [
    (("--minutes", "0"), "--minutes 0; expected a positive"),
    (("--minutes", "-5"), "--minutes -5; expected a positive"),
    (("--max-iterations", "-1"), "--max-iterations -1"),
    (("--threads", "0"), "--threads 0"),
    (("--set", "window"), "--set 'window': expected KEY=JSON"),
    (("--set", "windw=9"), "ModelConfig has no 'windw'"),
    (("--set", "window=nine"), "the value is not JSON"),
    (("--set", "window=true"), "window expects int, got bool"),
    (("--set", "missing_xy_spread=true"), "missing_xy_spread needs encoder_regression"),
])
def test_train_refuses_a_budget_or_model_change_it_cannot_honour(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: tuple[str, str],
        message: str) -> None:
    out = tmp_path / "model"
    for extra in ((), ("--benchmark", "h36m", "--setting", "tiny")):
        code, err = run_cli(capsys, "train", "-o", str(out), *option, *extra)
        assert code == 2, err
        assert message in err
        assert not out.exists()


@pytest.mark.parametrize("option, message", [
    (("--windows", "0"), "windows 0; expected 1 or more"),
    (("--hypotheses", "1"), "hypotheses 1; expected 2 or more"),
    (("--steps", "0"), "steps 0; expected 1 to"),
    (("--steps", "10000"), "steps 10000; expected 1 to"),
    (("--eta", "-0.5"), "eta -0.5"),
    (("--threads", "0"), "--threads 0"),
])
def test_evaluate_refuses_settings_the_metrics_cannot_use(
        small_model: Path, capsys: pytest.CaptureFixture[str], option: tuple[str, str],
        message: str) -> None:
    code, err = run_cli(capsys, "evaluate", "--model", str(small_model), *option)
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("option, message", [
    (("--fov", "0"), "field of view 0 degrees; expected 1 to 179"),
    (("--fov", "200"), "field of view 200 degrees; expected 1 to 179"),
    (("--height", "0"), "subject height 0 m; expected 0.3 to 3 m"),
    (("--height", "-1.7"), "subject height -1.7 m"),
    (("--max-frames", "5"), "--max-frames is for video input"),
])
def test_lift_refuses_a_camera_or_subject_it_cannot_use(
        small_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        option: tuple[str, str], message: str) -> None:
    source = tmp_path / "kp.npz"
    write_keypoints_npz(source, sample_keypoints(T=12))
    out = tmp_path / "take.npz"
    code, err = run_cli(capsys, "lift", str(source), "-o", str(out), "--model",
                        str(small_model), "--device", "cpu", *option)
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_detect_refuses_a_negative_frame_limit(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")          # never opened: the limit is checked first
    for command in ("detect", "lift"):
        code, err = run_cli(capsys, command, str(video), "-o", str(tmp_path / "o.npz"),
                            "--max-frames", "-1")
        assert code == 2 and "--max-frames -1; expected 0 (all frames) or more" in err


def test_the_learning_rate_follows_iterations_or_the_clock_as_the_config_says() -> None:
    """A run budgeted in iterations (the Human3.6M `cpu` setting) decays its learning
    rate by iterations alone, so a busy machine trains the same; a wall-clock budget
    follows whichever of time and iterations is further along."""
    from diffpose_blender.backend.benchmark import SETTINGS, train_config
    from diffpose_blender.backend.model.config import TrainConfig
    from diffpose_blender.backend.train import schedule_progress

    by_iterations = train_config(SETTINGS["cpu"])
    assert by_iterations.schedule == "iterations"
    half = by_iterations.max_iterations // 2
    late = 0.9 * by_iterations.minutes * 60.0
    assert schedule_progress(by_iterations, half, late) == pytest.approx(0.5)
    by_time = TrainConfig(minutes=10.0, max_iterations=1000)
    assert schedule_progress(by_time, 500, 0.9 * 600.0) == pytest.approx(0.9)
    assert schedule_progress(by_time, 500, 60.0) == pytest.approx(0.5)
    with pytest.raises(DiffPoseError, match="schedule 'epochs'"):
        schedule_progress(TrainConfig(schedule="epochs"), 1, 1.0)
