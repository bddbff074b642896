"""`serve`: the backend as a long-lived process speaking the framed protocol (DESIGN §6).

    python -m diffpose_blender.backend serve --stdio
    python -m diffpose_blender.backend serve --listen HOST:PORT --token-file F

Methods (request ``method`` and its fields; arrays as named):

- ``ping``: answers at once, echoing any arrays (latency and transfer checks);
- ``detect``: ``path`` of a video on the backend's machine, or the video's bytes as a
  uint8 array ``video`` with ``suffix`` (".mp4"); result: the 2D keypoint arrays
  (`core.formats.keypoints_to_arrays`);
- ``lift``: ``path`` of a 2D file or video, or the 2D keypoint arrays; options
  ``hypotheses``, ``steps``, ``seed``, ``focal_px``, ``fov_deg``, ``height_m``, ``model``,
  ``kind``, ``fps``, ``first_frame`` / ``last_frame`` (numbered from 1, inclusive; a
  video is decoded only up to ``last_frame``); result: the take arrays
  (`core.take.take_to_arrays`), whose ``params["source_frames"]`` says which frames;
- ``smooth``: the take arrays and ``options`` (`backend.smooth.SmoothOptions` fields);
  result: the smoothed take's arrays;
- ``release``: forget the loaded models and free GPU memory;
- ``shutdown``: answer, then stop serving.

The loaded model stays in memory between requests. One request runs at a time; a reader
thread keeps reading meanwhile, so ``cancel`` stops the running request at its next
progress point (well under a second: progress comes per frame or per window batch), and a
heartbeat goes out every `HEARTBEAT_S` so the client can tell a busy backend from a hung
one. Errors are answered as data (kind, message, traceback text).

Over TCP the server binds where told (loopback by default in the CLI), and on every
connection first sends a random nonce; the client must answer HMAC-SHA256(token, nonce)
within `AUTH_TIMEOUT_S` before anything else is read. A wrong answer is logged to stderr
and the connection closed. Connections are served one after another.
"""

from __future__ import annotations

import gc
import hmac
import os
import queue
import secrets
import socket
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np

from .. import __version__
from ..client.protocol import (PROTOCOL_VERSION, ConnectionClosed, Limits, Message,
                               ProtocolError, answer_challenge, error_message, read_message,
                               write_message)
from ..core.errors import DiffPoseError

HEARTBEAT_S = 1.0
AUTH_TIMEOUT_S = 10.0
#: Progress messages at most this often (a lift reports per window batch, detect per frame).
PROGRESS_INTERVAL_S = 0.1


def _log(text: str) -> None:
    print(f"[serve] {text}", file=sys.stderr, flush=True)


def device_info(device: str) -> dict[str, Any]:
    """What runs the model: CUDA's device name and memory, or the CPU."""
    import torch

    from .lift import resolve_device

    dev = resolve_device(device)
    info: dict[str, Any] = {"kind": dev.type, "torch": torch.__version__,
                            "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(name=props.name, memory_bytes=int(props.total_memory))
    else:
        info.update(name="CPU", memory_bytes=0)
    return info


class Service:
    """The methods, with models kept loaded between requests."""

    def __init__(self, device: str = "auto") -> None:
        self.device = device
        self.info = device_info(device)
        self._lifters: dict[tuple[str, str], Any] = {}

    def hello(self) -> Message:
        return Message("hello", "", {"protocol": PROTOCOL_VERSION, "package": __version__,
                                     "device": self.info, "pid": os.getpid()})

    def _lifter(self, model: str, kind: str) -> Any:
        from ..core.resources import DEFAULT_MODEL, bundled_model
        from .lift import Lifter

        key = (model or DEFAULT_MODEL, kind)
        if key not in self._lifters:
            self._lifters[key] = Lifter(bundled_model(key[0]), kind=kind, device=self.device)
        return self._lifters[key]

    def release(self) -> dict[str, Any]:
        """Drop the loaded models. Also done before the process exits: a model still
        alive when the interpreter shuts down took the process down with "terminate
        called without an active exception" (SIGABRT) after most lifts."""
        count = len(self._lifters)
        self._lifters.clear()
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return {"released": count}

    def handle(self, method: str, fields: dict[str, Any], arrays: dict[str, np.ndarray],
               progress: Callable[[int, int, str], None],
               cancelled: Callable[[], bool] = lambda: False
               ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if method == "ping":
            return {"pong": True}, arrays
        if method == "release":
            return self.release(), {}
        if method == "detect":
            kp = self._keypoints_from_video(fields, arrays, progress)
            from ..core.formats import keypoints_to_arrays

            return {"frames": kp.num_frames}, keypoints_to_arrays(kp)
        if method == "lift":
            return self._lift(fields, arrays, progress, cancelled)
        if method == "smooth":
            return self._smooth(fields, arrays)
        raise DiffPoseError(f"unknown method {method!r}; expected ping, detect, lift, smooth, "
                            f"release or shutdown")

    def _keypoints_from_video(self, fields: dict[str, Any], arrays: dict[str, np.ndarray],
                              progress: Callable[[int, int, str], None]) -> Any:
        from .detect import detect_video

        def report(done: int, total: int) -> None:
            progress(done, total, "detect")

        max_frames = fields.get("max_frames") or None
        if "video" in arrays:
            suffix = str(fields.get("suffix", ".mp4"))
            if not suffix.startswith(".") or len(suffix) > 10 or "/" in suffix:
                raise DiffPoseError(f"video suffix {suffix!r}; expected something like .mp4")
            with tempfile.TemporaryDirectory(prefix="diffpose-video-") as tmp:
                path = Path(tmp) / f"upload{suffix}"
                path.write_bytes(np.ascontiguousarray(arrays["video"], np.uint8).tobytes())
                return detect_video(path, progress=report, max_frames=max_frames)
        if "path" not in fields:
            raise DiffPoseError("detect needs 'path' (a video on the backend's machine) or "
                                "the video's bytes as array 'video'")
        return detect_video(str(fields["path"]), progress=report, max_frames=max_frames)

    def _lift(self, fields: dict[str, Any], arrays: dict[str, np.ndarray],
              progress: Callable[[int, int, str], None], cancelled: Callable[[], bool]
              ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        from ..core.formats import keypoints_from_arrays, read_keypoints
        from ..core.media import VIDEO_EXTENSIONS
        from ..core.take import take_to_arrays
        from .lift import LiftOptions

        fps = fields.get("fps")
        first, last = _frame_range(fields)
        if "keypoints" in arrays:
            kp = keypoints_from_arrays(arrays, "<request>", fps=fps)
        elif "path" in fields:
            path = str(fields["path"])
            if path.lower().endswith(VIDEO_EXTENSIONS):
                # Frames after the range are not decoded at all.
                kp = self._keypoints_from_video({**fields, "max_frames": last}, {},
                                                progress)
            else:
                kp = read_keypoints(path, fps=fps)
        else:
            raise DiffPoseError("lift needs 'path' (a 2D file or video on the backend's "
                                "machine) or the 2D keypoint arrays")
        if first != 1 or last is not None:
            kp = kp.frames(first, last)
        defaults = LiftOptions()
        steps = _field(fields, "steps", int)
        options = LiftOptions(
            hypotheses=_field(fields, "hypotheses", int, defaults.hypotheses),
            steps=defaults.steps if steps is None else steps,
            seed=_field(fields, "seed", int, 0),
            device=self.device, focal_px=_field(fields, "focal_px", float),
            fov_deg=_field(fields, "fov_deg", float),
            subject_height_m=_field(fields, "height_m", float, defaults.subject_height_m))
        lifter = self._lifter(str(fields.get("model") or ""), str(fields.get("kind",
                                                                              "diffpose")))

        def report(done: int, total: int) -> None:
            progress(done, total, "lift")

        take = lifter.lift(kp, options, progress=report, cancelled=cancelled)
        # Which source frames the take holds (numbered from 1, inclusive).
        take.params["source_frames"] = [first, first + take.num_frames - 1]
        return {"frames": take.num_frames}, take_to_arrays(take)

    def _smooth(self, fields: dict[str, Any], arrays: dict[str, np.ndarray]
                ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        from dataclasses import fields as dc_fields

        from ..core.take import take_from_arrays, take_to_arrays
        from .smooth import SmoothOptions, smooth_take

        take = take_from_arrays(arrays, "<request>")
        given = fields.get("options") or {}
        known = {f.name for f in dc_fields(SmoothOptions)}
        if not isinstance(given, dict) or set(given) - known:
            raise DiffPoseError(f"smooth options {given!r}; known: {', '.join(sorted(known))}")
        out = smooth_take(take, SmoothOptions(**given))
        return {"frames": out.num_frames}, take_to_arrays(out)


def _field(fields: dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
    """A numeric request field as `kind` (int or float), `default` when absent or null;
    anything else (text, a list, a fraction where a whole number is expected) is bad
    input naming the field."""
    value = fields.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (kind is int and float(value) != int(value)):
        expected = "a whole number" if kind is int else "a number"
        raise DiffPoseError(f"lift field {key!r} {value!r}; expected {expected}")
    return kind(value)


def _frame_range(fields: dict[str, Any]) -> tuple[int, int | None]:
    """``first_frame`` / ``last_frame`` of a request (numbered from 1, inclusive; a
    missing or 0 ``last_frame`` means "to the end")."""
    try:
        first = int(fields.get("first_frame") or 1)
        last = int(fields.get("last_frame") or 0) or None
    except (TypeError, ValueError):
        raise DiffPoseError(f"frame range {fields.get('first_frame')!r} to "
                            f"{fields.get('last_frame')!r}; expected whole numbers") from None
    if first < 1 or (last is not None and last < first):
        raise DiffPoseError(f"frame range {first} to {last}; expected 1 <= first <= last")
    return first, last


class Session:
    """One connection: a reader thread, a heartbeat thread, and requests run in turn."""

    def __init__(self, service: Service, rfile: IO[bytes], wfile: IO[bytes],
                 limits: Limits = Limits()) -> None:
        self.service = service
        self.rfile, self.wfile = rfile, wfile
        self.limits = limits
        self._write_lock = threading.Lock()
        self._inbox: queue.Queue[Message | None] = queue.Queue()
        self._cancelled: set[str] = set()
        self._closed = threading.Event()
        self.shutdown_requested = False

    def send(self, message: Message) -> None:
        with self._write_lock:
            if self._closed.is_set():
                return
            try:
                write_message(self.wfile, message)
            except (OSError, ValueError):
                self._closed.set()

    def _read_loop(self) -> None:
        while not self._closed.is_set():
            try:
                msg = read_message(self.rfile, self.limits)
            except ConnectionClosed:
                break
            except ProtocolError as exc:
                if exc.in_sync:
                    self.send(error_message(exc.msg_id, "protocol",
                                            str(exc)))
                    continue
                # The stream can no longer be trusted to be in step: say why and hang up.
                _log(f"protocol error, closing the connection: {exc}")
                self.send(error_message("", "protocol", str(exc)))
                break
            except (OSError, ValueError):
                break
            if msg.type == "cancel":
                self._cancelled.add(msg.id)
            elif msg.type == "request":
                self._inbox.put(msg)
            elif msg.type != "heartbeat":
                self.send(error_message(msg.id, "protocol",
                                        f"unexpected {msg.type!r} message from the client"))
        self._closed.set()
        self._inbox.put(None)

    def _heartbeat_loop(self) -> None:
        while not self._closed.wait(HEARTBEAT_S):
            self.send(Message("heartbeat"))

    def run(self) -> None:
        info = self.service.info
        _log(f"diffpose-blender {__version__}, protocol {PROTOCOL_VERSION}, pid "
             f"{os.getpid()}, device {info['kind']} ({info['name']})")
        threading.Thread(target=self._read_loop, daemon=True, name="serve-read").start()
        threading.Thread(target=self._heartbeat_loop, daemon=True, name="serve-beat").start()
        self.send(self.service.hello())
        while True:
            msg = self._inbox.get()
            if msg is None:
                break
            self._run_request(msg)
            if self.shutdown_requested:
                break
        self._closed.set()

    def _run_request(self, msg: Message) -> None:
        # The one cancellation error: raised by `lift` itself between denoising steps,
        # and by the progress callback of any method.
        from .lift import Cancelled

        method = str(msg.get("method", ""))
        if msg.id in self._cancelled:
            self.send(error_message(msg.id, "cancelled", f"{method} cancelled"))
            return
        if method == "shutdown":
            self.shutdown_requested = True
            self.send(Message("result", msg.id, {"method": method}))
            return
        last = [0.0]

        def progress(done: int, total: int, stage: str) -> None:
            if msg.id in self._cancelled:
                raise Cancelled(f"{method} cancelled")
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S or (total and done >= total):
                last[0] = now
                self.send(Message("progress", msg.id, {"done": int(done),
                                                       "total": int(total),
                                                       "stage": stage}))

        _log(f"request {msg.id}: {method}")
        t0 = time.monotonic()
        try:
            fields, arrays = self.service.handle(method, msg.fields, msg.arrays, progress,
                                                 lambda: msg.id in self._cancelled)
        except Cancelled:
            self.send(error_message(msg.id, "cancelled", f"{method} cancelled"))
        except DiffPoseError as exc:
            self.send(error_message(msg.id, "bad_input", str(exc), traceback.format_exc()))
        except Exception as exc:  # noqa: BLE001 - every failure goes back as data
            self.send(error_message(msg.id, type(exc).__name__, f"{type(exc).__name__}: "
                                    f"{exc}", traceback.format_exc()))
        else:
            self.send(Message("result", msg.id, {"method": method, **fields}, arrays))
        finally:
            _log(f"request {msg.id}: {method} ended after {time.monotonic() - t0:.2f} s")
            self._cancelled.discard(msg.id)


def serve_stdio(device: str = "auto") -> int:
    """Serve the client on stdin/stdout. Stray prints from libraries would corrupt the
    stream, so the protocol keeps private copies of fd 0 and 1, and fd 1 is pointed at
    stderr for everything else."""
    rfile = os.fdopen(os.dup(0), "rb")
    wfile = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    service = Service(device)
    try:
        Session(service, rfile, wfile).run()
    finally:
        service.release()
    return 0


def _authenticate(conn: socket.socket, token: bytes, peer: str) -> bool:
    nonce = secrets.token_hex(32)
    rfile = conn.makefile("rb")
    wfile = conn.makefile("wb")
    conn.settimeout(AUTH_TIMEOUT_S)
    try:
        write_message(wfile, Message("challenge", "", {"nonce": nonce,
                                                       "protocol": PROTOCOL_VERSION}))
        reply = read_message(rfile, Limits(max_header_bytes=4096, max_arrays=0,
                                           max_array_bytes=0, max_message_bytes=0))
    except (ProtocolError, OSError) as exc:
        _log(f"refused {peer}: no valid answer to the challenge ({exc})")
        return False
    expected = answer_challenge(token, nonce)
    answer = reply.get("answer")
    if reply.type != "auth" or not isinstance(answer, str) or \
            not hmac.compare_digest(answer, expected):
        _log(f"refused {peer}: wrong token")
        try:
            write_message(wfile, error_message("", "auth", "wrong token"))
        except OSError:
            pass
        return False
    conn.settimeout(None)
    return True


def serve_tcp(host: str, port: int, token: bytes, device: str = "auto",
              ready: Callable[[int], None] | None = None) -> int:
    """Serve authenticated clients one after another until one asks for shutdown."""
    service = Service(device)
    with socket.create_server((host, port)) as server:
        bound = server.getsockname()[1]
        _log(f"listening on {host}:{bound}")
        if ready is not None:
            ready(bound)
        while True:
            conn, addr = server.accept()
            peer = f"{addr[0]}:{addr[1]}"
            with conn:
                if not _authenticate(conn, token, peer):
                    continue
                _log(f"client {peer} connected")
                session = Session(service, conn.makefile("rb"), conn.makefile("wb"))
                session.run()
                _log(f"client {peer} disconnected")
                if session.shutdown_requested:
                    service.release()
                    return 0
