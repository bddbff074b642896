"""The estimate as a plain object: send ``lift`` to the backend, drain its events into the
scene's properties, and turn the result into a take.

The modal operator (operators/estimate.py) only calls `EstimateJob.step()` on each timer
event and `cancel()` on Esc; tests drive the very same object step by step. Blender's main
thread never waits here: `step()` takes what the client's reader thread has queued.

What the scene shows (``scene.diffpose``): ``estimate_state`` IDLE / RUNNING / DONE /
FAILED / CANCELLED, ``estimate_stage`` ("starting", "detect", "lift", "saving"),
``estimate_done`` / ``estimate_total`` (frames of the current stage), and
``estimate_message`` (the result, or the backend's message on failure).

A cancelled or failed estimate changes nothing but those status properties: the take is
added only once the whole result has arrived and been written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, TypeVar, cast

import bpy
import numpy as np
from bpy.app.handlers import persistent as _untyped_persistent

from ..client.jobs import BackendError, Job, Progress, Result
from ..client.process import Backend
from ..core.errors import DiffPoseError
from .takes import add_handlers, add_take, remove_handlers

_F = TypeVar("_F", bound=Callable[..., Any])
persistent = cast(Callable[[_F], _F], _untyped_persistent)

STATES = ("IDLE", "RUNNING", "DONE", "FAILED", "CANCELLED")


def lift_request(settings: Any) -> dict[str, Any]:
    """The ``lift`` request's fields from the scene settings. The source path goes as it
    is (made absolute): the backend reads the file itself and runs the detector on a
    video. steps 0 means "the model's default"; an empty model, the bundled one."""
    fields: dict[str, Any] = {
        "path": bpy.path.abspath(settings.source_path),
        "hypotheses": int(settings.hypotheses),
        "seed": int(settings.seed),
        "fps": float(settings.fps),
    }
    if int(settings.steps) > 0:
        fields["steps"] = int(settings.steps)
    if settings.model:
        fields["model"] = bpy.path.abspath(settings.model)
    # The camera: a typical lens unless the animator knows better.
    lens = str(settings.camera_lens)
    if lens == "FOV":
        fields["fov_deg"] = round(float(settings.fov_deg), 4)   # float32 in Blender
    elif lens == "FOCAL":
        fields["focal_px"] = round(float(settings.focal_px), 4)
    fields["height_m"] = round(float(settings.subject_height_m), 4)
    fields["first_frame"] = int(settings.frame_first)
    if int(settings.frame_last) > 0:
        if int(settings.frame_last) < int(settings.frame_first):
            raise DiffPoseError(f"frame range {settings.frame_first} to "
                                f"{settings.frame_last}: To Frame is before From Frame")
        fields["last_frame"] = int(settings.frame_last)
    return fields


class EstimateJob:
    """One estimate of one scene. Create with `start`; call `step()` until it returns True.

    The scene is looked up by name on every step (a Scene reference would dangle after
    the file changes); a vanished scene cancels the job.
    """

    def __init__(self, scene: bpy.types.Scene, backend: Backend, job: Job,
                 request: dict[str, Any]) -> None:
        self.scene_name = scene.name
        self.backend = backend
        self.job = job
        self.request = request
        self.state = "RUNNING"
        self.message = ""
        self.take_name = ""
        #: Fields of the `lift` that follows a remote `detect` (None: no second request).
        self.lift_after: dict[str, Any] | None = None

    @classmethod
    def start(cls, scene: bpy.types.Scene, backend: Backend) -> "EstimateJob":
        """Send the scene's estimate to `backend` (returns at once) and show RUNNING.
        Raises `DiffPoseError` when there is nothing to estimate."""
        settings = scene.diffpose  # type: ignore[attr-defined]
        if not settings.source_path:
            raise DiffPoseError("choose a video or a 2D keypoint file first")
        request = lift_request(settings)
        path = request["path"]
        if not os.path.isfile(path):
            raise DiffPoseError(f"{path}: no such file")
        lift_after: dict[str, Any] | None = None
        if not _is_remote(backend):
            # A local backend reads the file itself (and detects on a video).
            job = backend.submit("lift", request)
        else:
            # A server cannot read our files: send the video's bytes to `detect`, then
            # its keypoints to `lift`; a keypoint file is read here and sent as arrays.
            from ..core.formats import keypoints_to_arrays, read_keypoints
            from ..core.media import VIDEO_EXTENSIONS

            fields = {k: v for k, v in request.items() if k != "path"}
            if path.lower().endswith(VIDEO_EXTENSIONS):
                video = np.fromfile(path, dtype=np.uint8)
                detect = {"suffix": Path(path).suffix.lower()}
                if "last_frame" in fields:        # nothing after the range is decoded
                    detect["max_frames"] = fields["last_frame"]
                job = backend.submit("detect", detect, {"video": video})
                lift_after = fields
            else:
                kp = read_keypoints(path, fps=request["fps"])
                job = backend.submit("lift", fields, keypoints_to_arrays(kp))
        self = cls(scene, backend, job, request)
        self.lift_after = lift_after
        self._show(state="RUNNING", stage="starting", done=0, total=0,
                   message="starting the backend")
        return self

    # --- driven by the modal operator's timer, or by a test ---------------------------
    def step(self) -> bool:
        """Take what arrived; show progress; on the result add the take. True when the
        job has ended (DONE, FAILED or CANCELLED)."""
        if self.state != "RUNNING":
            return True
        if self._scene() is None:
            self.cancel()
            return True
        for event in self.job.poll():
            if isinstance(event, Progress):
                self._show(stage=event.stage, done=event.done, total=event.total,
                           message=f"{event.stage}: {event.done} / {event.total}")
            elif isinstance(event, Result) and self.job.method == "detect" and \
                    self.lift_after is not None:
                # Remote video: the detected keypoints go on to `lift`.
                self.job = self.backend.submit("lift", self.lift_after, event.arrays)
                self.lift_after = None
                return False
            elif isinstance(event, Result):
                self._finish_result(event)
                return True
            else:
                self._finish_error(event)
                return True
        return False

    def cancel(self) -> None:
        """Stop the backend's work; the scene keeps its takes as they were. A result that
        arrives after this is dropped."""
        if self.state != "RUNNING":
            return
        self.job.cancel()
        self.state = "CANCELLED"
        self.message = "estimate cancelled"
        self._show(state="CANCELLED", message=self.message)

    # --- endings ------------------------------------------------------------------------
    def _finish_result(self, result: Result) -> None:
        from ..core.take import take_from_arrays, write_take

        scene = self._scene()
        assert scene is not None
        self._show(stage="saving", message="saving the take")
        source = self.request["path"]
        try:
            take = take_from_arrays(result.arrays, f"the backend's lift of {source}")
            fd, tmp = tempfile.mkstemp(suffix=".take.npz", dir=bpy.app.tempdir or None)
            os.close(fd)
            try:
                write_take(tmp, take)
                name = Path(source).stem or "take"
                item = add_take(scene, tmp, name=name)
            finally:
                os.unlink(tmp)
        except (DiffPoseError, OSError) as exc:
            self._fail(f"the result could not be kept: {exc}")
            return
        self.take_name = item.name
        self.state = "DONE"
        self.message = (f"take '{item.name}': {item.frames} frames, "
                        f"{item.hypotheses} hypotheses")
        self._show(state="DONE", stage="done", message=self.message)

    def _finish_error(self, error: BackendError) -> None:
        if error.kind == "cancelled":
            self.state, self.message = "CANCELLED", "estimate cancelled"
            self._show(state="CANCELLED", message=self.message)
            return
        self._fail(str(error))

    def _fail(self, message: str) -> None:
        self.state, self.message = "FAILED", message
        self._show(state="FAILED", message=message)

    # --- the scene's status properties ---------------------------------------------------
    def _scene(self) -> bpy.types.Scene | None:
        return bpy.data.scenes.get(self.scene_name)

    def _show(self, **values: Any) -> None:
        scene = self._scene()
        if scene is None:
            return
        settings = scene.diffpose  # type: ignore[attr-defined]
        for key, value in values.items():
            setattr(settings, f"estimate_{key}", value)


def _is_remote(backend: Backend) -> bool:
    # A server reads paths on its own machine: they need not exist here.
    return not backend.stop_on_close


class _Running:
    job: EstimateJob | None = None


def running() -> EstimateJob | None:
    """The estimate in progress in this session (one at a time), or None."""
    job = _Running.job
    if job is not None and job.state != "RUNNING":
        _Running.job = None
        return None
    return job


def set_running(job: EstimateJob | None) -> None:
    _Running.job = job


def cancel_running() -> None:
    """Cancel the estimate in progress, if any (Cancel button, file load, unregister)."""
    job = _Running.job
    _Running.job = None
    if job is not None:
        job.cancel()


@persistent
def _on_load_pre(*_args: Any) -> None:
    # The estimate belongs to the file being closed: stop it, keep nothing.
    cancel_running()


@persistent
def _on_load_post(*_args: Any) -> None:
    # A file saved while an estimate ran says RUNNING; nothing runs for it now.
    for scene in bpy.data.scenes:
        settings = getattr(scene, "diffpose", None)
        if settings is not None and settings.estimate_state == "RUNNING":
            settings.estimate_state = "CANCELLED"
            settings.estimate_message = "the file was saved while an estimate ran; " \
                                        "estimate again"


_HANDLERS = (("load_pre", _on_load_pre), ("load_post", _on_load_post))


def register() -> None:
    add_handlers(_HANDLERS)


def unregister() -> None:
    cancel_running()
    remove_handlers(_HANDLERS)
