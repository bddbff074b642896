"""A request in flight, as the Blender side sees it: a queue of events to drain.

Blender's main thread never waits on the backend (STYLE lesson 6): a timer or modal
operator calls `Job.poll()` each tick, which returns at once with whatever arrived
(progress, then one final result or error). Scripts and tests may call `Job.wait()`.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..core.errors import DiffPoseError


class BackendError(DiffPoseError):
    """The backend failed a request, died, hung, or speaks another protocol.

    kind            "bad_input", "cancelled", "protocol", "died", "hung", "version", or
                    the backend's exception class name;
    backend_trace   the backend's traceback text, when it sent one;
    stderr_tail     the last lines the backend process wrote to stderr (local backend).
    """

    def __init__(self, message: str, kind: str = "error", backend_trace: str = "",
                 stderr_tail: str = "") -> None:
        full = message
        if stderr_tail:
            full += "\n--- backend stderr (last lines) ---\n" + stderr_tail
        super().__init__(full)
        self.kind = kind
        self.backend_trace = backend_trace
        self.stderr_tail = stderr_tail


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    stage: str


@dataclass(frozen=True)
class Result:
    fields: dict[str, Any]
    arrays: dict[str, np.ndarray]


Event = Progress | Result | BackendError


@dataclass
class Job:
    """One request. Events arrive from the connection's reader thread."""

    id: str
    method: str
    _cancel: Callable[["Job"], None]
    _events: "queue.Queue[Event]" = field(default_factory=queue.Queue)
    _done: threading.Event = field(default_factory=threading.Event)
    outcome: Result | BackendError | None = None
    last_progress: Progress | None = None

    # --- fed by the connection ---
    def _push(self, event: Event) -> None:
        if self._done.is_set():
            return
        if isinstance(event, Progress):
            self.last_progress = event
        else:
            self.outcome = event
        self._events.put(event)
        if not isinstance(event, Progress):
            self._done.set()

    # --- used by the caller ---
    @property
    def done(self) -> bool:
        return self._done.is_set()

    def poll(self) -> list[Event]:
        """Everything that arrived since the last poll, without waiting."""
        out: list[Event] = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def wait(self, timeout: float | None = None) -> Result:
        """Block until the job ends (not for Blender's main thread); the result, or the
        `BackendError` raised."""
        if not self._done.wait(timeout):
            raise BackendError(f"{self.method}: no answer within {timeout} s", kind="timeout")
        if isinstance(self.outcome, BackendError):
            raise self.outcome
        assert isinstance(self.outcome, Result)
        return self.outcome

    def cancel(self) -> None:
        """Ask the backend to stop this request. The job then ends with a "cancelled"
        error (or its result, if it had already finished); no partial result is kept."""
        if not self.done:
            self._cancel(self)
