"""The backend link and the preferences' buttons: building the backend from the settings,
"Check backend" against a real backend, the managed set-up's job logic (with stand-in
commands: no network, no real pip install of torch here), and a clean unregister.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Iterator

import bpy
import pytest

import diffpose_blender as addon
from diffpose_blender.blender import backend_link, estimate, smooth, takes
from diffpose_blender.client.jobs import BackendError
from diffpose_blender.client.process import LocalBackend, RemoteBackend
from tests.blender.backends import BACKEND_PYTHON, TIMEOUT

Settings = backend_link.BackendSettings


@pytest.fixture
def registered() -> Iterator[None]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon.register()
    yield
    addon.unregister()


def test_settings_build_the_right_backend(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="Set up backend"):
        backend_link.build_backend(Settings(mode="MANAGED", python=str(tmp_path / "no")))
    with pytest.raises(BackendError, match="no Python interpreter"):
        backend_link.build_backend(Settings(mode="INTERPRETER", python=""))
    with pytest.raises(BackendError, match="token file"):
        backend_link.build_backend(Settings(mode="REMOTE"))
    token = tmp_path / "token"
    token.write_bytes(b"secret-token\n")
    remote = backend_link.build_backend(Settings(mode="REMOTE", host="gpu", port=9,
                                                 token_path=str(token)))
    assert isinstance(remote, RemoteBackend) and remote.token == b"secret-token"
    local = backend_link.build_backend(Settings(mode="INTERPRETER", python=sys.executable,
                                                device="cpu"))
    assert isinstance(local, LocalBackend) and local.device == "cpu"
    assert backend_link.venv_python(tmp_path).parent.name in ("bin", "Scripts")


def test_one_backend_per_settings(registered: None) -> None:
    a = Settings(mode="INTERPRETER", python=sys.executable, device="cpu")
    first = backend_link.get_backend(a)
    assert backend_link.get_backend(a) is first
    second = backend_link.get_backend(Settings(mode="INTERPRETER", python=sys.executable,
                                               device="auto"))
    assert second is not first and backend_link.current_backend() is second
    backend_link.release_backend()
    assert backend_link.current_backend() is None


def test_check_reports_versions_and_device(registered: None) -> None:
    local = LocalBackend(python=BACKEND_PYTHON, device="cpu")
    backend_link.use_backend(local)
    check = backend_link.start_check(local)      # a timer would call step()
    deadline = time.monotonic() + TIMEOUT
    while not check.step():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    text = "\n".join(backend_link.check_lines())
    assert not check.failed, text
    assert addon.__version__ in text and "torch" in text and "CPU" in text
    assert bpy.ops.diffpose.backend_release() == {"FINISHED"}
    assert local.request("ping", timeout=TIMEOUT).fields["pong"] is True


def test_check_reports_a_backend_that_cannot_start(registered: None,
                                                   tmp_path: Path) -> None:
    broken = LocalBackend(python=sys.executable, device="cpu",
                          extra_env={"PYTHONPATH": str(tmp_path)})
    broken.command = lambda: [sys.executable, "-c", "import sys; sys.exit(3)"]  # type: ignore[method-assign]
    check = backend_link.start_check(broken)
    deadline = time.monotonic() + TIMEOUT
    while not check.step():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert check.failed and "exited with code 3" in backend_link.check_lines()[0]


def test_setup_commands_make_a_venv_and_pip_install_the_requirements(tmp_path: Path) -> None:
    steps, labels = backend_link.setup_commands(tmp_path / "venv")
    assert steps[0] == [sys.executable, "-m", "venv", str(tmp_path / "venv")]
    assert steps[1][:4] == [str(backend_link.venv_python(tmp_path / "venv")), "-m", "pip",
                            "install"]
    assert steps[1][-2:] == ["-r", str(backend_link.REQUIREMENTS)]
    assert len(labels) == 2
    wanted = backend_link.REQUIREMENTS.read_text()
    for package in ("torch", "numpy", "scipy", "opencv-python-headless", "ai-edge-litert"):
        assert package in wanted


def _run(job: backend_link.SetupJob) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not job.step():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_setup_job_runs_its_steps_and_logs_them(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    # The real first step (a venv, without pip to stay quick and offline), then the
    # venv's Python standing in for pip.
    job = backend_link.SetupJob(
        [[sys.executable, "-m", "venv", "--without-pip", str(venv)],
         [str(backend_link.venv_python(venv)), "-c", "print('installed nothing')"]],
        tmp_path / "setup.log", ["creating", "installing"])
    assert job.step() is False and job.state == "RUNNING" and "creating" in job.message
    _run(job)
    assert job.state == "DONE", job.message
    log = job.log_path.read_text()
    assert "$ " in log and "installed nothing" in log and "DONE" in log
    assert backend_link.venv_python(venv).is_file()


def test_the_real_setup_commands_with_an_empty_requirement_list(tmp_path: Path) -> None:
    """The managed set-up as it runs for users (venv with pip, then pip install -r), with
    a requirements file that asks for nothing: offline, about 10 s."""
    empty = tmp_path / "requirements.txt"
    empty.write_text("# nothing to install in a test\n")
    venv = tmp_path / "backend-venv"
    steps, labels = backend_link.setup_commands(venv, requirements=empty)
    job = backend_link.SetupJob(steps, tmp_path / "backend-setup.log", labels)
    _run(job)
    assert job.state == "DONE", (job.message, job.log_tail(20))
    assert backend_link.venv_python(venv).is_file()
    log = job.log_path.read_text()
    assert "-m venv" in log and "pip install" in log and "== DONE" in log


def test_setup_job_failure_names_the_step_and_the_log(tmp_path: Path) -> None:
    job = backend_link.SetupJob(
        [[sys.executable, "-c", "print('ok')"],
         [sys.executable, "-c", "import sys; print('no such package'); sys.exit(1)"]],
        tmp_path / "setup.log", ["first", "pip"])
    _run(job)
    assert job.state == "FAILED"
    assert "step 2 of 2 (pip)" in job.message and str(job.log_path) in job.message
    assert any("no such package" in line for line in job.log_tail())


def test_setup_job_cancel_kills_the_step(tmp_path: Path) -> None:
    job = backend_link.SetupJob([[sys.executable, "-c", "import time; time.sleep(60)"]],
                                tmp_path / "setup.log")
    job.step()
    proc = job._proc
    assert proc is not None
    job.cancel()
    assert job.state == "CANCELLED" and proc.poll() is not None


def test_setup_operator_starts_and_refuses_a_second_run(registered: None,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    venv = tmp_path / "venv"
    monkeypatch.setattr(backend_link, "managed_venv_dir", lambda: venv)
    monkeypatch.setattr(backend_link, "setup_commands", lambda v: (
        [[sys.executable, "-c", "import time; time.sleep(60)"]], ["waiting"]))
    assert bpy.ops.diffpose.backend_setup() == {"FINISHED"}
    job = backend_link.setup_job()
    assert job is not None and job.state == "RUNNING"
    assert job.log_path == tmp_path / "backend-setup.log"
    assert bpy.ops.diffpose.backend_setup.poll() is False
    assert bpy.ops.diffpose.backend_setup_cancel() == {"FINISHED"}
    assert job.state == "CANCELLED"


def _leftovers() -> dict[str, list[str]]:
    ours = ("diffpose_blender",)
    handlers = {name: [f"{h.__module__}.{h.__name__}" for h in getattr(bpy.app.handlers, name)
                       if str(getattr(h, "__module__", "")).startswith(ours)]
                for name in ("load_pre", "load_post", "save_pre", "save_post")}
    timers = [f.__name__ for f in (backend_link._check_tick, backend_link._setup_tick,
                                   smooth._debounced, smooth._tick)
              if bpy.app.timers.is_registered(f)]
    return {**handlers, "timers": timers}


def test_register_unregister_register_leaves_nothing_behind(tmp_path: Path) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon.register()
    first = _leftovers()
    assert first["save_pre"] and first["load_pre"]
    backend_link.use_backend(LocalBackend(python=sys.executable, device="cpu"))
    backend_link.start_check(backend_link.current_backend())  # type: ignore[arg-type]
    bpy.context.scene.diffpose.smooth_cutoff_hz = 3.0       # live smoothing: a timer
    assert _leftovers()["timers"] == ["_check_tick", "_debounced"]
    addon.unregister()
    assert all(not v for v in _leftovers().values()), _leftovers()
    assert backend_link.current_backend() is None and estimate.running() is None
    assert not hasattr(bpy.types.Scene, "diffpose")
    addon.register()
    assert _leftovers() == first
    addon.unregister()
    assert all(not v for v in _leftovers().values())
    assert takes._cache == {}


def test_loading_a_file_releases_the_backend(registered: None, tmp_path: Path) -> None:
    blend = tmp_path / "other.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    local = LocalBackend(python=sys.executable, device="cpu")
    backend_link.use_backend(local)
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    assert backend_link.current_backend() is None
    assert backend_link.check_lines() == []


def test_check_without_a_set_up_backend_says_what_to_do(registered: None,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_link, "managed_venv_dir", lambda: tmp_path / "none")
    with pytest.raises(RuntimeError, match="Set up backend"):
        bpy.ops.diffpose.backend_check()
