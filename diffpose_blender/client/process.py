"""Starting and talking to the backend, from Blender or any plain Python (no bpy here).

    backend = LocalBackend(python="/path/to/backend/venv/bin/python")
    job = backend.submit("lift", {"path": "walk.json", "hypotheses": 5})
    ...                       # a Blender timer drains job.poll() each tick
    backend.close()

`LocalBackend` runs ``python -m diffpose_blender.backend serve --stdio`` with the chosen
interpreter; `RemoteBackend` connects to ``serve --listen`` on a GPU server and answers
its token challenge. Both:

- never block the caller: `submit` returns a `Job` at once; a writer thread sends
  requests once the backend's ``hello`` has arrived, a reader thread turns what comes
  back into job events;
- check ``hello``: another protocol version fails every job with a clear message;
- notice a dead backend (process exit, broken pipe or socket) or a hung one (no message
  or heartbeat for `heartbeat_timeout_s`), end the running jobs with a `BackendError`
  that carries the backend's last stderr lines, and start afresh on the next `submit`.
"""

from __future__ import annotations

import collections
import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import numpy as np

from .. import __version__
from .jobs import BackendError, Job, Progress, Result
from .protocol import (PROTOCOL_VERSION, ConnectionClosed, Limits, Message, ProtocolError,
                       answer_challenge, read_message, write_message)

#: The package's import name and the folder that holds it (for PYTHONPATH): installed as
#: an extension, the folder is Blender's extensions repository.
PACKAGE_DIR = Path(__file__).resolve().parents[1]


class _Link:
    """One connection to one backend instance; dies once and is replaced, never reused."""

    def __init__(self, owner: "Backend") -> None:
        self.owner = owner
        self.jobs: dict[str, Job] = {}
        self.outbox: "queue.Queue[Message | None]" = queue.Queue()
        self.hello: dict[str, Any] | None = None
        self.ready = threading.Event()          # hello checked
        self.dead = threading.Event()
        self.error: BackendError | None = None
        self.last_seen = time.monotonic()
        self.lock = threading.Lock()
        self.rfile: IO[bytes] | None = None
        self.wfile: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None     # LocalBackend
        self.sock: socket.socket | None = None                   # RemoteBackend

    # --- lifetime ----------------------------------------------------------------------
    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True, name="diffpose-backend-read").start()
        threading.Thread(target=self._write_loop, daemon=True,
                         name="diffpose-backend-write").start()
        threading.Thread(target=self._watch, daemon=True,
                         name="diffpose-backend-watch").start()

    def _run(self) -> None:
        try:
            self.rfile, self.wfile = self.owner._open(self)
            self._read_loop()
        except BackendError as exc:
            self.fail(exc)
        except (ProtocolError, OSError, ValueError) as exc:
            self.fail(self.owner._died(self, f"{exc}"))

    def _read_loop(self) -> None:
        assert self.rfile is not None
        while not self.dead.is_set():
            try:
                msg = read_message(self.rfile, self.owner.limits)
            except ConnectionClosed:
                self.fail(self.owner._died(self, "the connection closed"))
                return
            self.last_seen = time.monotonic()
            if msg.type == "hello":
                self._check_hello(msg)
            elif msg.type == "heartbeat":
                continue
            elif msg.type in ("progress", "result", "error"):
                self._deliver(msg)

    def _check_hello(self, msg: Message) -> None:
        self.hello = dict(msg.fields)
        theirs = msg.get("protocol")
        ours = self.owner.protocol_version
        if theirs != ours:
            self.fail(BackendError(
                f"the backend speaks protocol version {theirs} (diffpose-blender "
                f"{msg.get('package')}), this add-on speaks version {ours} "
                f"(diffpose-blender {__version__}): set up the backend again from the "
                f"add-on's preferences, or update the server to the same release",
                kind="version"))
            return
        self.ready.set()

    def _deliver(self, msg: Message) -> None:
        job = self.jobs.get(msg.id)
        if job is None:
            if msg.type == "error" and not msg.id:
                # The backend refused something that was not tied to a job (framing).
                self.fail(BackendError(f"the backend refused the connection: "
                                       f"{msg.get('message')}", kind=str(msg.get("kind"))))
            return
        if msg.type == "progress":
            job._push(Progress(int(msg.get("done", 0)), int(msg.get("total", 0)),
                               str(msg.get("stage", ""))))
            return
        self.jobs.pop(msg.id, None)
        if msg.type == "result":
            job._push(Result(msg.fields, msg.arrays))
            if job.method == "shutdown":
                # The backend is going away: the next request must start a new one.
                self.fail(BackendError("the backend was shut down", kind="closed"))
        else:
            job._push(BackendError(f"{job.method}: {msg.get('message')}",
                                   kind=str(msg.get("kind", "error")),
                                   backend_trace=str(msg.get("traceback", ""))))

    def _write_loop(self) -> None:
        while not self.dead.is_set():
            if not self.ready.wait(0.2):
                continue
            msg = self.outbox.get()
            if msg is None or self.dead.is_set():
                return
            try:
                assert self.wfile is not None
                with self.lock:
                    write_message(self.wfile, msg)
            except (OSError, ValueError) as exc:
                self.fail(self.owner._died(self, f"writing to the backend failed ({exc})"))
                return

    def _watch(self) -> None:
        while not self.dead.wait(0.25):
            limit = (self.owner.heartbeat_timeout_s if self.ready.is_set()
                     else self.owner.startup_timeout_s)
            quiet = time.monotonic() - self.last_seen
            if quiet > limit:
                what = "answered nothing" if self.ready.is_set() else "did not start"
                self.fail(BackendError(
                    f"the backend {what} for {quiet:.0f} s; it was stopped",
                    kind="hung", stderr_tail=self.owner.stderr_tail()))
                return

    def fail(self, error: BackendError) -> None:
        """End this link: every job still open ends with `error`."""
        with self.owner._state:
            if self.dead.is_set():
                return
            self.error = error
            self.dead.set()
        self.outbox.put(None)
        self.owner._close_transport(self)
        for job in list(self.jobs.values()):
            job._push(error)
        self.jobs.clear()

    # --- requests ----------------------------------------------------------------------
    def send(self, msg: Message) -> None:
        self.outbox.put(msg)


class Backend:
    """What `LocalBackend` and `RemoteBackend` share: jobs over a restartable link."""

    def __init__(self, heartbeat_timeout_s: float = 15.0, startup_timeout_s: float = 120.0,
                 limits: Limits = Limits(), protocol_version: int = PROTOCOL_VERSION) -> None:
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.startup_timeout_s = startup_timeout_s
        self.limits = limits
        self.protocol_version = protocol_version
        self._state = threading.RLock()
        self._link: _Link | None = None
        self._ids = itertools.count(1)

    # --- what subclasses provide ---
    def _open(self, link: _Link) -> tuple[IO[bytes], IO[bytes]]:
        raise NotImplementedError

    def _close_transport(self, link: _Link) -> None:
        raise NotImplementedError

    def _died(self, link: _Link, why: str) -> BackendError:
        return BackendError(f"the backend connection failed: {why}", kind="died")

    def stderr_tail(self) -> str:
        return ""

    # --- public ---
    @property
    def hello(self) -> dict[str, Any] | None:
        """The backend's hello (versions, device) once it arrived, else None."""
        link = self._link
        return link.hello if link is not None and link.ready.is_set() else None

    @property
    def alive(self) -> bool:
        link = self._link
        return link is not None and not link.dead.is_set()

    def _current(self) -> _Link:
        with self._state:
            link = self._link
            if link is not None and link.process is not None and \
                    link.process.poll() is not None and not link.dead.is_set():
                link.fail(self._died(link, "the process ended"))
            if self._link is None or self._link.dead.is_set():
                self._link = _Link(self)
                self._link.start()
            return self._link

    def submit(self, method: str, params: dict[str, Any] | None = None,
               arrays: dict[str, np.ndarray] | None = None) -> Job:
        """Send a request; returns its `Job` at once (starting the backend if needed)."""
        link = self._current()
        job_id = f"{os.getpid()}-{next(self._ids)}"
        job = Job(job_id, method, self._cancel)
        with self._state:
            if link.dead.is_set():
                assert link.error is not None
                job._push(link.error)
                return job
            link.jobs[job_id] = job
        link.send(Message("request", job_id, {"method": method, **(params or {})},
                          arrays or {}))
        return job

    def request(self, method: str, params: dict[str, Any] | None = None,
                arrays: dict[str, np.ndarray] | None = None,
                timeout: float | None = None) -> Result:
        """submit + wait, for scripts and tests (never on Blender's main thread)."""
        return self.submit(method, params, arrays).wait(timeout)

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Start the backend if needed and wait for its hello (scripts and tests)."""
        link = self._current()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if link.ready.is_set():
                assert link.hello is not None
                return link.hello
            if link.dead.is_set():
                assert link.error is not None
                raise link.error
            time.sleep(0.02)
        raise BackendError(f"the backend did not say hello within {timeout} s", kind="hung")

    def _cancel(self, job: Job) -> None:
        link = self._link
        if link is not None and not link.dead.is_set():
            link.send(Message("cancel", job.id))

    #: close() asks the backend process to exit (a local one); a shared server stays up.
    stop_on_close = True

    def close(self) -> None:
        """Drop the connection (and stop the backend, if it is ours)."""
        link = self._link
        if link is None or link.dead.is_set():
            return
        if link.ready.is_set() and self.stop_on_close:
            link.send(Message("request", "shutdown", {"method": "shutdown"}))
            time.sleep(0.05)
        link.fail(BackendError("the backend connection was closed", kind="closed"))


class LocalBackend(Backend):
    """The backend as a child process of this one, over stdin/stdout."""

    def __init__(self, python: str | None = None, device: str = "auto",
                 extra_env: dict[str, str] | None = None, stderr_lines: int = 60,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.python = python or sys.executable
        self.device = device
        self.extra_env = dict(extra_env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)

    def command(self) -> list[str]:
        return [self.python, "-m", f"{PACKAGE_DIR.name}.backend", "serve", "--stdio",
                "--device", self.device]

    def _open(self, link: _Link) -> tuple[IO[bytes], IO[bytes]]:
        env = dict(os.environ)
        env.update(self.extra_env)
        root = str(PACKAGE_DIR.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"]
                                    if env.get("PYTHONPATH") else "")
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._stderr.clear()
        try:
            proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            raise BackendError(f"cannot start the backend with {self.python}: {exc}",
                               kind="died") from None
        self.process = proc
        link.process = proc
        threading.Thread(target=self._drain_stderr, args=(proc,), daemon=True,
                         name="diffpose-backend-stderr").start()
        assert proc.stdout is not None and proc.stdin is not None
        return proc.stdout, proc.stdin

    def _drain_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    def _died(self, link: _Link, why: str) -> BackendError:
        proc = link.process
        code = None
        if proc is not None:
            try:
                # An exiting backend may take seconds to tear down torch on a busy CPU.
                code = proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                pass
        if code is None:
            what = f"the backend broke off ({why})"
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            what = f"the backend was killed ({name})"
        else:
            what = f"the backend exited with code {code}"
        time.sleep(0.1)        # let the stderr thread catch the last lines
        return BackendError(what, kind="died", stderr_tail=self.stderr_tail())

    def _close_transport(self, link: _Link) -> None:
        proc = link.process
        if proc is None:
            return
        if link.error is not None and link.error.kind in ("hung", "version"):
            proc.kill()          # a hung backend would not read its closed stdin
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass

        def reap() -> None:
            # A backend told to stop (or whose stdin closed) exits on its own; one that
            # has not after a while is killed. In a thread: the caller never waits.
            try:
                proc.wait(timeout=15.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

        threading.Thread(target=reap, daemon=True, name="diffpose-backend-reap").start()


class RemoteBackend(Backend):
    """A `serve --listen` server, authenticated with the shared token."""

    stop_on_close = False

    def __init__(self, host: str, port: int, token: bytes, connect_timeout_s: float = 10.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host, self.port, self.token = host, port, token
        self.connect_timeout_s = connect_timeout_s

    def _open(self, link: _Link) -> tuple[IO[bytes], IO[bytes]]:
        where = f"{self.host}:{self.port}"
        try:
            sock = socket.create_connection((self.host, self.port),
                                            timeout=self.connect_timeout_s)
        except OSError as exc:
            raise BackendError(f"cannot reach the backend server at {where}: {exc}",
                               kind="died") from None
        sock.settimeout(None)
        link.sock = sock
        rfile, wfile = sock.makefile("rb"), sock.makefile("wb")
        try:
            challenge = read_message(rfile, Limits(max_header_bytes=4096, max_arrays=0,
                                                   max_array_bytes=0, max_message_bytes=0))
        except ProtocolError as exc:
            raise BackendError(f"{where} is not a DiffPose backend server ({exc})",
                               kind="protocol") from None
        if challenge.type != "challenge" or not isinstance(challenge.get("nonce"), str):
            raise BackendError(f"{where} did not send a token challenge; is it a DiffPose "
                               f"backend server?", kind="protocol")
        write_message(wfile, Message("auth", "", {
            "answer": answer_challenge(self.token, challenge.get("nonce"))}))
        return rfile, wfile

    def _died(self, link: _Link, why: str) -> BackendError:
        if link.hello is None:
            return BackendError(f"the backend server at {self.host}:{self.port} closed the "
                                f"connection before saying hello (wrong token?): {why}",
                                kind="auth")
        return BackendError(f"lost the backend server at {self.host}:{self.port}: {why}",
                            kind="died")

    def _close_transport(self, link: _Link) -> None:
        sock = link.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
