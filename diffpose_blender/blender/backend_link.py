"""One backend (the model process) per Blender session, built from the add-on preferences.

The model never runs inside Blender (DESIGN §2): the estimate, "Check backend" and
"Release model" all talk to one `client.process.Backend`, started on first use and kept
between requests so the model stays loaded. It is rebuilt when the preferences (or the
device asked for) change, and closed on unregister and before another file loads (a new
file starts from a clean state; the next request starts the backend again).

Three ways to run it (preferences.BACKEND_MODES):
  MANAGED      a virtual environment in the extension's user folder, made by "Set up
               backend" (`SetupJob`: ``python -m venv``, then ``pip install -r`` the
               requirements shipped in ``backend/requirements.txt``);
  INTERPRETER  a Python the user already has, with the backend's requirements;
  REMOTE       ``serve --listen`` on another machine: host, port and a token file.

Nothing here blocks Blender's main thread: the backend starts in client threads, and the
set-up runs in subprocesses that a timer polls.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, TypeVar, cast

import bpy
from bpy.app.handlers import persistent as _untyped_persistent

from ..client.jobs import BackendError, Job, Result
from ..client.process import PACKAGE_DIR, Backend, LocalBackend, RemoteBackend
from .addon import ADDON_MODULE

_F = TypeVar("_F", bound=Callable[..., Any])
persistent = cast(Callable[[_F], _F], _untyped_persistent)

#: The backend's pip requirements, shipped inside the package.
REQUIREMENTS = PACKAGE_DIR / "backend" / "requirements.txt"


# --- Where the managed environment lives ------------------------------------------------

def managed_venv_dir() -> Path:
    """The managed environment's folder: ``backend-venv`` in the extension's user folder
    (kept across extension updates), or in Blender's config folder when the add-on is not
    loaded as an extension (legacy install, tests)."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON_MODULE, path="backend-venv",
                                                  create=False))
    except ValueError:
        return Path(bpy.utils.user_resource("CONFIG")) / "diffpose_blender" / "backend-venv"


def venv_python(venv: Path) -> Path:
    """The interpreter inside a virtual environment."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


# --- Building the backend from the preferences ------------------------------------------

@dataclass(frozen=True)
class BackendSettings:
    """What the backend is built from; equal settings share one backend.

    mode          "MANAGED", "INTERPRETER" or "REMOTE";
    python        the interpreter (INTERPRETER; MANAGED fills in its venv's);
    device        "auto", "cpu" or "cuda" (local backends: chosen when the process starts);
    host, port    the server (REMOTE); token_path: file holding the shared token.
    """

    mode: str = "MANAGED"
    python: str = ""
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8765
    token_path: str = ""

    def describe(self) -> str:
        if self.mode == "REMOTE":
            return f"server {self.host}:{self.port}"
        return f"{self.python} (device {self.device})"


def settings_from_preferences(context: bpy.types.Context, device: str = "auto"
                              ) -> BackendSettings:
    """The preferences as `BackendSettings` (defaults when the add-on is not enabled under
    its module name, e.g. registered directly in tests)."""
    from .preferences import get_preferences

    prefs = get_preferences(context)
    if prefs is None:
        return BackendSettings(python=str(venv_python(managed_venv_dir())), device=device)
    mode = str(prefs.backend_mode)
    if mode == "MANAGED":
        python = str(venv_python(managed_venv_dir()))
    else:
        python = bpy.path.abspath(prefs.python_path) if prefs.python_path else ""
    return BackendSettings(mode=mode, python=python, device=device,
                           host=str(prefs.remote_host), port=int(prefs.remote_port),
                           token_path=bpy.path.abspath(prefs.token_path))


def build_backend(settings: BackendSettings) -> Backend:
    """A new backend for `settings` (not started: it starts on its first request).
    Raises `BackendError` with what to do when the settings cannot work."""
    if settings.mode == "REMOTE":
        if not settings.token_path or not os.path.isfile(settings.token_path):
            raise BackendError("Remote server: choose the token file the server was "
                               "started with (add-on preferences)", kind="settings")
        token = Path(settings.token_path).read_bytes().strip()
        if not token:
            raise BackendError(f"the token file {settings.token_path} is empty",
                               kind="settings")
        return RemoteBackend(settings.host, settings.port, token)
    if not settings.python or not os.path.isfile(settings.python):
        if settings.mode == "MANAGED":
            raise BackendError("the backend is not set up yet: press 'Set up backend' in "
                               "the add-on's preferences", kind="settings")
        raise BackendError(f"no Python interpreter at '{settings.python}': choose one in "
                           f"the add-on's preferences", kind="settings")
    return LocalBackend(python=settings.python, device=settings.device)


class _Link:
    backend: Backend | None = None
    settings: BackendSettings | None = None


def get_backend(settings: BackendSettings) -> Backend:
    """The session's backend for `settings`: the running one when the settings are the
    same, else the old one is closed and a new one built."""
    if _Link.backend is not None and _Link.settings == settings:
        return _Link.backend
    release_backend()
    backend = build_backend(settings)
    _Link.backend, _Link.settings = backend, settings
    return backend


def use_backend(backend: Backend | None, settings: BackendSettings | None = None) -> None:
    """Make `backend` the session's backend (tests, scripts); the old one is closed."""
    if backend is not _Link.backend:
        release_backend()
    _Link.backend, _Link.settings = backend, settings


def current_backend() -> Backend | None:
    return _Link.backend


def release_backend() -> None:
    """Close the session's backend (a local one exits; a server stays up). Never waits
    on the process: the client reaps it in a thread."""
    backend = _Link.backend
    _Link.backend, _Link.settings = None, None
    if backend is not None:
        backend.close()


# --- "Check backend": ping, then report versions and the device --------------------------

@dataclass
class CheckJob:
    """A ping whose answer (or failure) becomes a few lines for the preferences."""

    job: Job
    backend: Backend
    started: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)
    failed: bool = False

    def step(self) -> bool:
        """Drain the ping; True once it has ended (lines filled)."""
        self.job.poll()
        if not self.job.done:
            waited = time.monotonic() - self.started
            self.lines = [f"Starting the backend... ({waited:.0f} s)"]
            return False
        if isinstance(self.job.outcome, Result):
            self.lines = describe_hello(self.backend.hello or {})
        else:
            self.failed = True
            self.lines = [f"Backend failed: {self.job.outcome}"]
        return True


def describe_hello(hello: dict[str, Any]) -> list[str]:
    """The backend's hello in words: package and protocol versions, torch, the device."""
    device = hello.get("device") or {}
    name = device.get("name", "?")
    what = f"GPU: {name}" if device.get("kind") == "cuda" else f"CPU ({device.get('threads', '?')} threads)"
    memory = int(device.get("memory_bytes") or 0)
    if memory:
        what += f", {memory / 2**30:.1f} GiB"
    return [f"diffpose-blender {hello.get('package', '?')}, protocol "
            f"{hello.get('protocol', '?')}, torch {device.get('torch', '?')}",
            f"Device: {what}"]


# --- "Set up backend": a virtual environment and pip, polled by a timer ------------------

@dataclass
class SetupJob:
    """Creates the managed environment step by step in subprocesses; `step()` never waits.

    steps     the commands run in turn (default: `setup_commands`);
    log_path  every command's output, readable by the user (shown in the preferences);
    state     "RUNNING", "DONE", "FAILED" or "CANCELLED"; message: the last word on it.
    """

    steps: list[list[str]]
    log_path: Path
    labels: list[str] = field(default_factory=list)
    state: str = "RUNNING"
    message: str = ""
    index: int = 0
    _proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def total(self) -> int:
        return len(self.steps)

    def label(self) -> str:
        if self.index < len(self.labels):
            return self.labels[self.index]
        return " ".join(self.steps[self.index][:3]) if self.index < self.total else ""

    def step(self) -> bool:
        """Advance: start the next command when the last one ended. True once finished."""
        if self.state != "RUNNING":
            return True
        if self._proc is not None:
            code = self._proc.poll()
            if code is None:
                return False
            self._proc = None
            if code != 0:
                self._finish("FAILED", f"step {self.index + 1} of {self.total} "
                                       f"({self.label()}) failed with exit code {code}; "
                                       f"see {self.log_path}")
                return True
            self.index += 1
        if self.index >= self.total:
            self._finish("DONE", "the backend environment is ready")
            return True
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = open(self.log_path, "wb")
        command = self.steps[self.index]
        self._log.write(f"\n$ {' '.join(command)}\n".encode())
        self._log.flush()
        try:
            self._proc = subprocess.Popen(command, stdout=self._log,
                                          stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
        except OSError as exc:
            self._finish("FAILED", f"cannot run {command[0]}: {exc}")
            return True
        self.message = f"step {self.index + 1} of {self.total}: {self.label()}"
        return False

    def cancel(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        if self.state == "RUNNING":
            self._finish("CANCELLED", "set-up cancelled; press 'Set up backend' to retry")

    def _finish(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        if self._log is not None:
            self._log.write(f"\n== {state}: {message}\n".encode())
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 6) -> list[str]:
        """The last lines of the log (the pip output the user would want to see)."""
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip()][-lines:]


def setup_commands(venv: Path, requirements: Path = REQUIREMENTS,
                   base_python: str | None = None) -> tuple[list[list[str]], list[str]]:
    """The managed set-up: a venv made with the Python Blender runs, then its pip
    installing the backend's requirements. Returns (commands, labels)."""
    base = base_python or sys.executable
    py = str(venv_python(venv))
    return ([[base, "-m", "venv", str(venv)],
             [py, "-m", "pip", "install", "--disable-pip-version-check", "-r",
              str(requirements)]],
            ["creating the environment", "installing the backend's requirements (torch "
                                         "is large: this can take minutes)"])


# --- Module state driven by the preferences' buttons -----------------------------------

class _Jobs:
    check: CheckJob | None = None
    setup: SetupJob | None = None


def _redraw_preferences() -> None:
    wm = bpy.context.window_manager
    if wm is None:
        return
    for window in wm.windows:
        screen = window.screen
        if screen is None:
            continue
        for area in screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()


def _check_tick() -> float | None:
    job = _Jobs.check
    if job is None:
        return None
    done = job.step()
    _redraw_preferences()
    return None if done else 0.25


def start_check(backend: Backend) -> CheckJob:
    """Ping `backend`; a timer turns the answer into `check_lines()`."""
    job = CheckJob(backend.submit("ping"), backend)
    job.lines = ["Starting the backend..."]
    _Jobs.check = job
    if not bpy.app.timers.is_registered(_check_tick):
        bpy.app.timers.register(_check_tick, first_interval=0.1, persistent=True)
    return job


def check_lines() -> list[str]:
    return list(_Jobs.check.lines) if _Jobs.check is not None else []


def _setup_tick() -> float | None:
    job = _Jobs.setup
    if job is None:
        return None
    done = job.step()
    _redraw_preferences()
    return None if done else 0.5


def start_setup(job: SetupJob) -> SetupJob:
    """Run `job` from a timer (the preferences show its progress and log)."""
    if _Jobs.setup is not None and _Jobs.setup.state == "RUNNING":
        raise BackendError("a backend set-up is already running", kind="busy")
    release_backend()        # the environment is about to change under it
    _Jobs.setup = job
    job.step()
    if not bpy.app.timers.is_registered(_setup_tick):
        bpy.app.timers.register(_setup_tick, first_interval=0.5, persistent=True)
    return job


def setup_job() -> SetupJob | None:
    return _Jobs.setup


# --- Lifetime ---------------------------------------------------------------------------

@persistent
def _on_load_pre(*_args: Any) -> None:
    release_backend()
    _Jobs.check = None


def register() -> None:
    if _on_load_pre not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load_pre)


def unregister() -> None:
    """Close the backend, stop a running set-up, remove the handler and timers."""
    from .takes import remove_handlers

    remove_handlers((("load_pre", _on_load_pre),))
    for tick in (_check_tick, _setup_tick):
        if bpy.app.timers.is_registered(tick):
            bpy.app.timers.unregister(tick)
    if _Jobs.setup is not None:
        _Jobs.setup.cancel()
    _Jobs.check = _Jobs.setup = None
    release_backend()
