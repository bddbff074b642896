"""The estimate's job logic against a real backend process, driven step by step.

`EstimateJob.step()` is exactly what the modal operator calls on each timer event; here a
loop calls it. The backend is a real ``serve --stdio`` subprocess run by the main
environment's Python (it has torch; the Blender 4.2 environment does not), with the small
random model (as tests/conftest.py's `small_model`, built in that Python) as the model.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import bpy
import numpy as np
import pytest

import diffpose_blender as addon
from diffpose_blender.blender import backend_link, estimate, takes
from diffpose_blender.client.process import LocalBackend, RemoteBackend
from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.formats.keypoints_npz import write_keypoints_npz
from diffpose_blender.core.take import read_take
from tests.blender.backends import BACKEND_PYTHON, REPO, TIMEOUT, session_backend
from tests.samples import sample_keypoints


_MAKE_MODEL = """
import sys, torch
from pathlib import Path
from diffpose_blender.backend.model.config import ModelConfig
from diffpose_blender.backend.model.lifter import BaselineModel, DiffPoseModel
from diffpose_blender.backend.model.weights import save_config, save_model
small = ModelConfig(window=9, d_model=16, heads=2, encoder_layers=1, context_dim=32,
                    denoiser_hidden=32, denoiser_blocks=1, diffusion_steps=20, sample_steps=4)
torch.manual_seed(0)
folder = Path(sys.argv[1])
save_config(folder, small)
save_model(folder, DiffPoseModel(small))
save_model(folder, BaselineModel(small))
"""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/conftest.py's small_model, made by the backend's Python."""
    folder = tmp_path_factory.mktemp("model")
    subprocess.run([BACKEND_PYTHON, "-c", _MAKE_MODEL, str(folder)], check=True,
                   cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    return folder


@pytest.fixture(scope="module")
def short_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "walk.npz"
    write_keypoints_npz(path, sample_keypoints(T=40, M=2))
    return path


@pytest.fixture(scope="module")
def medium_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough (about a second of lifting) that progress arrives over several ticks."""
    path = tmp_path_factory.mktemp("src") / "walk.npz"
    write_keypoints_npz(path, sample_keypoints(T=3000, M=2, seed=2))
    return path


@pytest.fixture(scope="module")
def long_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough that lifting takes seconds: time to cancel or kill mid-way."""
    path = tmp_path_factory.mktemp("src") / "long.npz"
    write_keypoints_npz(path, sample_keypoints(T=30000, M=2, seed=1))
    return path


@pytest.fixture
def backend() -> Iterator[LocalBackend]:
    yield from session_backend()


def _scene(source: Path, model: Path, hypotheses: int = 3) -> bpy.types.Scene:
    scene = bpy.context.scene
    s = scene.diffpose
    s.source_path, s.model, s.hypotheses, s.seed, s.device = (
        str(source), str(model), hypotheses, 4, "cpu")
    return scene


def _drive(job: estimate.EstimateJob, until=lambda s: False,  # type: ignore[no-untyped-def]
           seen: list[tuple[str, str, int, int]] | None = None) -> None:
    """Call step() as the modal operator's timer would, until the job ends or `until`
    (given the scene settings) holds; records what the UI properties showed."""
    deadline = time.monotonic() + TIMEOUT
    s = bpy.context.scene.diffpose
    while time.monotonic() < deadline:
        done = job.step()
        if seen is not None:
            seen.append((s.estimate_state, s.estimate_stage, s.estimate_done,
                         s.estimate_total))
        if done or until(s):
            return
        time.sleep(0.02)
    raise AssertionError(f"estimate still {job.state} after {TIMEOUT} s")


def test_progress_reaches_the_scene_and_the_result_becomes_a_take(
        backend: LocalBackend, model_dir: Path, medium_source: Path) -> None:
    scene = _scene(medium_source, model_dir)
    job = estimate.EstimateJob.start(scene, backend)
    s = scene.diffpose
    assert (s.estimate_state, s.estimate_stage) == ("RUNNING", "starting")
    seen: list[tuple[str, str, int, int]] = []
    _drive(job, seen=seen)
    assert job.state == "DONE", job.message
    lifts = [v for v in seen if v[0] == "RUNNING" and v[1] == "lift"]
    assert lifts and all(0 <= d <= t and t > 0 for _, _, d, t in lifts)
    assert (s.estimate_state, s.estimate_stage) == ("DONE", "done")
    assert len(s.takes) == 1 and s.take_index == 0
    item = s.takes[0]
    assert item.name == "walk" and "walk" in s.estimate_message
    take = read_take(takes.take_path(item))
    assert (take.num_frames, take.hypotheses.shape[1]) == (3000, 3)
    assert (item.frames, item.hypotheses) == (3000, 3)
    assert take.params["seed"] == 4


def test_cancel_stops_the_backend_and_adds_nothing(
        backend: LocalBackend, model_dir: Path, long_source: Path) -> None:
    scene = _scene(long_source, model_dir, hypotheses=8)
    job = estimate.EstimateJob.start(scene, backend)
    _drive(job, until=lambda s: s.estimate_stage == "lift")
    job.cancel()
    s = scene.diffpose
    assert (job.state, s.estimate_state) == ("CANCELLED", "CANCELLED")
    assert job.step() is True
    # The backend really stopped: the cancelled request ends and the next one is served.
    deadline = time.monotonic() + TIMEOUT
    while not job.job.done and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.job.done and getattr(job.job.outcome, "kind", "") == "cancelled"
    assert backend.request("ping", timeout=TIMEOUT).fields["pong"] is True
    assert len(s.takes) == 0 and s.take_index == -1


def test_a_killed_backend_is_reported_and_the_scene_kept(
        backend: LocalBackend, model_dir: Path, long_source: Path) -> None:
    scene = _scene(long_source, model_dir, hypotheses=8)
    job = estimate.EstimateJob.start(scene, backend)
    _drive(job, until=lambda s: s.estimate_stage == "lift")
    assert backend.process is not None
    os.kill(backend.process.pid, signal.SIGKILL)
    _drive(job)
    s = scene.diffpose
    assert (job.state, s.estimate_state) == ("FAILED", "FAILED")
    assert "killed" in s.estimate_message and "SIGKILL" in s.estimate_message
    assert len(s.takes) == 0


def test_the_operator_runs_one_estimate_at_a_time(
        backend: LocalBackend, model_dir: Path, short_source: Path) -> None:
    _scene(short_source, model_dir)
    assert bpy.ops.diffpose.estimate_cancel.poll() is False
    # Without a window the operator starts the job (execute); the loop plays the timer.
    assert bpy.ops.diffpose.estimate() == {"FINISHED"}
    job = estimate.running()
    assert job is not None and job.backend is backend
    assert bpy.ops.diffpose.estimate.poll() is False          # one at a time
    _drive(job)
    assert job.state == "DONE" and estimate.running() is None
    assert bpy.ops.diffpose.estimate.poll() is True
    # The cancel operator on a running estimate.
    assert bpy.ops.diffpose.estimate() == {"FINISHED"}
    assert bpy.ops.diffpose.estimate_cancel() == {"FINISHED"}
    assert bpy.context.scene.diffpose.estimate_state == "CANCELLED"
    assert estimate.running() is None and len(bpy.context.scene.diffpose.takes) == 1


def test_failures_before_the_backend_show_in_the_ui(
        backend: LocalBackend, model_dir: Path, tmp_path: Path) -> None:
    s = _scene(tmp_path / "nowhere.npz", model_dir).diffpose
    # An ERROR report: called from a script, Blender raises it (in the UI: info log).
    with pytest.raises(RuntimeError, match="no such file"):
        bpy.ops.diffpose.estimate()
    assert s.estimate_state == "FAILED" and "no such file" in s.estimate_message
    # An unset managed environment says what to do.
    backend_link.use_backend(None)
    s.source_path = str(tmp_path)
    with pytest.raises(RuntimeError, match="Set up backend"):
        bpy.ops.diffpose.estimate()
    assert "Set up backend" in s.estimate_message


def test_a_backend_error_message_reaches_the_ui(
        backend: LocalBackend, model_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    scene = _scene(bad, model_dir)
    job = estimate.EstimateJob.start(scene, backend)
    _drive(job)
    assert job.state == "FAILED"
    assert str(bad) in scene.diffpose.estimate_message
    assert len(scene.diffpose.takes) == 0


def test_a_file_saved_while_running_reopens_not_running(
        backend: LocalBackend, model_dir: Path, long_source: Path, tmp_path: Path) -> None:
    scene = _scene(long_source, model_dir, hypotheses=8)
    job = estimate.EstimateJob.start(scene, backend)
    estimate.set_running(job)
    blend = tmp_path / "busy.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.open_mainfile(filepath=str(blend))     # load_pre cancels the job
    assert job.state == "CANCELLED" and estimate.running() is None
    s = bpy.context.scene.diffpose
    assert s.estimate_state == "CANCELLED" and len(s.takes) == 0


SAMPLE_VIDEO = REPO / "examples" / "sample_walk.mp4"


@pytest.mark.skipif(not SAMPLE_VIDEO.is_file(), reason="the bundled sample clip is missing")
def test_the_sample_video_is_detected_and_lifted_in_the_backend(
        backend: LocalBackend, model_dir: Path) -> None:
    """The path an animator takes: the bundled video as the source, 5 hypotheses; the
    backend detects the person (stage "detect") and lifts (stage "lift")."""
    scene = _scene(SAMPLE_VIDEO, model_dir, hypotheses=5)
    assert bpy.ops.diffpose.load_source() == {"FINISHED"}
    assert scene.diffpose.source_format == "Video"
    job = estimate.EstimateJob.start(scene, backend)
    seen: list[tuple[str, str, int, int]] = []
    _drive(job, seen=seen)
    assert job.state == "DONE", job.message
    stages = {stage for state, stage, _, _ in seen if state == "RUNNING"}
    assert "detect" in stages, stages
    item = scene.diffpose.takes[0]
    assert item.name == "sample_walk" and item.hypotheses == 5 and item.frames > 10
    assert read_take(takes.take_path(item)).source_2d.endswith("sample_walk.mp4")


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[RemoteBackend]:
    """A real ``serve --listen`` server on loopback and a RemoteBackend to it."""
    token = b"0123456789abcdef0123456789abcdef"
    token_file = tmp_path / "token"
    token_file.write_bytes(token + b"\n")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon.register()
    proc = subprocess.Popen([BACKEND_PYTHON, "-m", "diffpose_blender.backend", "serve",
                             "--listen", "127.0.0.1:0", "--token-file", str(token_file),
                             "--device", "cpu"], cwd=REPO, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    assert match, line
    backend = RemoteBackend("127.0.0.1", int(match.group(1)), token)
    backend_link.use_backend(backend)
    yield backend
    addon.unregister()
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("source", ["keypoints", "video"])
def test_a_remote_server_gets_the_source_sent(remote: RemoteBackend, model_dir: Path,
                                              short_source: Path, source: str) -> None:
    """A server cannot read this machine's files: a keypoint file goes as arrays to
    `lift`, a video's bytes to `detect` and its keypoints on to `lift`."""
    path = short_source if source == "keypoints" else SAMPLE_VIDEO
    scene = _scene(path, model_dir)
    job = estimate.EstimateJob.start(scene, remote)
    seen: list[tuple[str, str, int, int]] = []
    _drive(job, seen=seen)
    assert job.state == "DONE", job.message
    if source == "video":
        assert "detect" in {stage for _, stage, _, _ in seen}
    item = scene.diffpose.takes[0]
    assert item.name == path.stem and item.hypotheses == 3


def test_frame_range_and_camera_reach_the_backend(
        backend: LocalBackend, model_dir: Path, short_source: Path) -> None:
    scene = _scene(short_source, model_dir)
    s = scene.diffpose
    s.frame_first, s.frame_last = 11, 30
    s.camera_lens, s.focal_px, s.subject_height_m = "FOCAL", 900.0, 1.8
    try:
        job = estimate.EstimateJob.start(scene, backend)
        _drive(job)
        assert job.state == "DONE", job.message
        take = read_take(takes.take_path(s.takes[-1]))
        assert take.num_frames == 20 and take.params["source_frames"] == [11, 30]
        assert take.focal_px == 900.0 and take.params["subject_height_m"] == 1.8
        # The take's frames are the source's frames 11-30: the same 2D keypoints.
        from diffpose_blender.core.formats import read_keypoints

        kp = read_keypoints(short_source)
        np.testing.assert_allclose(np.nan_to_num(take.keypoints_2d),
                                   np.nan_to_num(np.where(kp.scores[10:30, :, None] > 0,
                                                          kp.keypoints[10:30], np.nan)))
        # A field of view instead; a range past the end fails with the backend's words.
        s.camera_lens, s.fov_deg = "FOV", 90.0
        assert estimate.lift_request(s)["fov_deg"] == 90.0
        assert "focal_px" not in estimate.lift_request(s)
        s.frame_first, s.frame_last = 50, 0
        job = estimate.EstimateJob.start(scene, backend)
        _drive(job)
        assert job.state == "FAILED"
        assert "starts at 50, but the source has 40 frames" in s.estimate_message
        # To before From is refused before anything is sent.
        s.frame_first, s.frame_last = 30, 11
        with pytest.raises(DiffPoseError, match="To Frame is before From Frame"):
            estimate.EstimateJob.start(scene, backend)
    finally:
        s.frame_first, s.frame_last, s.camera_lens, s.subject_height_m = 1, 0, "DEFAULT", 1.7
