"""`train` and `evaluate` refuse settings they cannot honour, through the command
line's own entry point (`backend.__main__.main`, in this process to keep it quick; the
subprocess path is covered by test_lift): exit code 2, a message naming the option and
its value, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffpose_blender.backend.__main__ import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("option, message", [
    (("--minutes", "0"), "--minutes 0; expected a positive"),
    (("--minutes", "-5"), "--minutes -5; expected a positive"),
    (("--max-iterations", "-1"), "--max-iterations -1"),
    (("--threads", "0"), "--threads 0"),
])
def test_train_refuses_a_budget_that_would_write_untrained_weights(
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
