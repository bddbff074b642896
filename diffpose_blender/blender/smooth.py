"""Smoothing the selected take, live: the Smooth section's settings and the backend's
``smooth`` method.

Smoothing needs SciPy, which lives in the backend, not in Blender; so, like the estimate,
it is a request to the backend drained by a timer, and Blender never waits on it. Each
take keeps its estimate as it came from the model (the *raw* file) and, beside it, the
smoothed take (``walk.take.npz`` -> ``walk.smoothed.take.npz``). The smoothed file is
always made from the raw one, so changing the settings re-smooths rather than smoothing
twice, and it records how it was made (``params["smoothing"]``, written by the backend):
that record, compared with the panel's settings, says whether it is up to date. Undo,
reopening the file or a crash cannot make the two disagree without it showing.

"Live": changing a Smooth setting or selecting another take calls `request()`, which
(after a short pause, so that dragging a slider sends one request and not thirty) sends
the raw take to the backend; a newer request replaces an older one still running. The
preview ghosts and the bake use `bake_path()`: the smoothed file when it matches the
settings, the raw one when smoothing is off, and nothing (the panel says why) while it
is being made.

`SmoothJob` is the plain object a timer steps (`_tick`) and tests drive step by step.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import bpy

from ..client.jobs import BackendError, Job, Result
from ..client.process import Backend
from ..core.errors import DiffPoseError
from .takes import (TAKE_SUFFIX, DiffPoseTakeItem, active_item, add_handlers, persistent,
                    read_cached, remove_handlers, smoothed_path, take_path)

#: Seconds between a settings change and the request (a dragged slider settles first).
DEBOUNCE_S = 0.3
#: Seconds between looks at the backend's answer.
TICK_S = 0.1

_METHODS = {"SPLINE": "spline", "BUTTERWORTH": "butterworth", "SAVGOL": "savgol",
            "NONE": "none"}


def smooth_options(settings: Any) -> dict[str, Any]:
    """The backend's `SmoothOptions` fields for the panel's settings."""
    method = _METHODS[str(settings.smooth_method)]
    options: dict[str, Any] = {"method": method}
    if method in ("spline", "butterworth"):
        options["cutoff_hz"] = round(float(settings.smooth_cutoff_hz), 4)
    if method == "spline":
        options["strength"] = round(float(settings.smooth_strength), 4)
    if method == "savgol" and int(settings.smooth_window) > 0:
        options["window"] = int(settings.smooth_window)
    return options


def _matches(record: Any, options: dict[str, Any]) -> bool:
    """Whether a take's ``params["smoothing"]`` record was made with `options`."""
    if not isinstance(record, dict) or record.get("method") != options["method"]:
        return False
    for key in ("cutoff_hz", "strength"):
        if key in options and abs(float(record.get(key, -1.0)) - options[key]) > 1e-6:
            return False
    # savgol: an explicit window must match; "auto" is whatever the backend chose.
    return "window" not in options or int(record.get("window", -1)) == options["window"]


def smoothing_status(scene: bpy.types.Scene, item: DiffPoseTakeItem) -> tuple[Path | None, str]:
    """(the file to preview and bake for `item`, "") when there is one up to date with the
    Smooth settings, else (None, why not) in an animator's words."""
    settings = scene.diffpose  # type: ignore[attr-defined]
    raw = take_path(item)
    options = smooth_options(settings)
    if options["method"] == "none":
        return raw, ""
    job = running()
    if job is not None and job.item_raw == raw:
        return None, "Smoothing the take..."
    path = smoothed_path(raw)
    failed = _State.failure.get(str(raw))
    if failed is not None and failed[0] == options:
        return None, f"Smoothing failed: {failed[1]}"
    if not path.is_file():
        return None, "Not smoothed yet: press Smooth Take"
    try:
        record = read_cached(path).params.get("smoothing")
    except (OSError, ValueError, DiffPoseError) as exc:
        return None, f"The smoothed take cannot be read ({exc}): press Smooth Take"
    if not _matches(record, options):
        return None, "Smoothing settings changed: press Smooth Take"
    return path, ""


def bake_path(scene: bpy.types.Scene, item: DiffPoseTakeItem) -> Path | None:
    """The take file to preview and bake for `item` (see `smoothing_status`)."""
    return smoothing_status(scene, item)[0]


class SmoothJob:
    """One smoothing of one take: send, drain, write the smoothed file beside the raw one.

    Nothing in the scene changes but the smoothed file (written whole, then moved into
    place), so a cancelled or failed job leaves the previous smoothed file as it was.
    """

    def __init__(self, scene_name: str, item_raw: Path, options: dict[str, Any],
                 job: Job) -> None:
        self.scene_name = scene_name
        self.item_raw = item_raw
        self.options = options
        self.job = job
        self.state = "RUNNING"
        self.message = ""

    @classmethod
    def start(cls, scene: bpy.types.Scene, item: DiffPoseTakeItem,
              backend: Backend) -> "SmoothJob":
        """Send `item`'s raw take with the scene's settings (returns at once). Raises
        `DiffPoseError` when the raw take cannot be read or smoothing is off."""
        from ..core.take import take_to_arrays

        options = smooth_options(scene.diffpose)  # type: ignore[attr-defined]
        if options["method"] == "none":
            raise DiffPoseError("smoothing is off (Smoothing: None); nothing to send")
        raw = take_path(item)
        take = read_cached(raw)
        job = backend.submit("smooth", {"options": options}, take_to_arrays(take))
        return cls(scene.name, raw, options, job)

    def step(self) -> bool:
        """Take what arrived; True once the job has ended (DONE, FAILED or CANCELLED)."""
        if self.state != "RUNNING":
            return True
        for event in self.job.poll():
            if isinstance(event, Result):
                self._finish(event)
                return True
            if isinstance(event, BackendError):
                if event.kind == "cancelled":
                    self.state, self.message = "CANCELLED", "smoothing cancelled"
                else:
                    self.state, self.message = "FAILED", str(event)
                    _State.failure[str(self.item_raw)] = (self.options, self.message)
                return True
        return False

    def cancel(self) -> None:
        if self.state == "RUNNING":
            self.job.cancel()
            self.state, self.message = "CANCELLED", "smoothing cancelled"

    def _finish(self, result: Result) -> None:
        from ..core.take import take_from_arrays, write_take

        dest = smoothed_path(self.item_raw)
        try:
            take = take_from_arrays(result.arrays, "the backend's smoothed take")
            fd, tmp = tempfile.mkstemp(suffix=TAKE_SUFFIX, dir=dest.parent)
            os.close(fd)
            try:
                write_take(tmp, take)
                os.replace(tmp, dest)
            except BaseException:
                os.unlink(tmp)
                raise
        except (DiffPoseError, OSError) as exc:
            self.state, self.message = "FAILED", f"the smoothed take could not be kept: {exc}"
            _State.failure[str(self.item_raw)] = (self.options, self.message)
            return
        _State.failure.pop(str(self.item_raw), None)
        self.state = "DONE"
        self.message = f"smoothed ({self.options['method']})"


# --- The one smoothing in flight, started by settings changes or the button -----------

class _State:
    job: SmoothJob | None = None
    pending: str | None = None          # scene name waiting for the debounce timer
    #: raw path -> (options, message) of the last failure, so it is shown, not retried.
    failure: dict[str, tuple[dict[str, Any], str]] = {}


def running() -> SmoothJob | None:
    job = _State.job
    return job if job is not None and job.state == "RUNNING" else None


def start(scene: bpy.types.Scene, backend: Backend | None = None) -> SmoothJob | None:
    """Smooth the selected take of `scene` now (a running smoothing is cancelled first).
    None when there is nothing to do: no take, or smoothing off or already up to date.
    Raises `DiffPoseError` (the backend's settings, an unreadable take) for the caller to
    show. `backend` defaults to the session's (the add-on preferences)."""
    item = active_item(scene)
    if item is None:
        return None
    previous = running()
    if previous is not None:
        previous.cancel()
    settings = scene.diffpose  # type: ignore[attr-defined]
    options = smooth_options(settings)
    _State.failure.pop(str(take_path(item)), None)
    if options["method"] == "none":
        return None
    path, _why = smoothing_status(scene, item)
    if path is not None:
        return None
    if backend is None:
        from . import backend_link

        backend = backend_link.get_backend(backend_link.settings_from_preferences(
            bpy.context, device=str(settings.device)))
    job = SmoothJob.start(scene, item, backend)
    _State.job = job
    _register_tick()
    return job


def request(scene: bpy.types.Scene) -> None:
    """Smooth `scene`'s selected take soon (live updates from the settings); a quick
    series of calls makes one request."""
    _State.pending = scene.name
    if bpy.app.timers.is_registered(_debounced):
        bpy.app.timers.unregister(_debounced)
    bpy.app.timers.register(_debounced, first_interval=DEBOUNCE_S)


def _debounced() -> None:
    name, _State.pending = _State.pending, None
    scene = bpy.data.scenes.get(name) if name else None
    if scene is None:
        return
    try:
        start(scene)
    except DiffPoseError as exc:      # no backend set up, unreadable take: show it
        item = active_item(scene)
        if item is not None:
            _State.failure[str(take_path(item))] = (smooth_options(scene.diffpose),  # type: ignore[attr-defined]
                                                    str(exc))
    _redraw()


def _register_tick() -> None:
    if not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=TICK_S)


def _tick() -> float | None:
    job = _State.job
    if job is None:
        return None
    done = job.step()
    if done:
        _State.job = None
        _redraw()
        return None
    return TICK_S


def _redraw() -> None:
    from .props import redraw_viewports

    redraw_viewports(None, bpy.context)


def on_settings_changed(_self: Any, context: bpy.types.Context) -> None:
    """Update callback of the Smooth settings and the take selection."""
    scene = context.scene
    if scene is not None:
        request(scene)
    _redraw()


@persistent
def _on_load_pre(*_args: Any) -> None:
    stop()


def register() -> None:
    add_handlers((("load_pre", _on_load_pre),))


def unregister() -> None:
    stop()
    remove_handlers((("load_pre", _on_load_pre),))


def stop() -> None:
    """Cancel what runs and forget what is pending (file load, unregister)."""
    job = _State.job
    _State.job, _State.pending = None, None
    if job is not None:
        job.cancel()
    _State.failure.clear()
    for fn in (_tick, _debounced):
        if bpy.app.timers.is_registered(fn):
            bpy.app.timers.unregister(fn)
