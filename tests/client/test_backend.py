"""The client against a real backend process: stdio and TCP, cancel, kill, hang, bad peers.

Every backend here is a real `python -m diffpose_blender.backend serve` subprocess; the
lifting model is the small randomly initialised one (the `small_model` fixture): these
tests are about the process and the protocol, not accuracy.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from diffpose_blender import __version__
from diffpose_blender.client.jobs import BackendError, Progress, Result
from diffpose_blender.client.process import LocalBackend, RemoteBackend
from diffpose_blender.client.protocol import (PROTOCOL_VERSION, Message, answer_challenge,
                                              read_message, write_message)
from diffpose_blender.core.formats import keypoints_to_arrays, read_keypoints
from diffpose_blender.core.take import take_from_arrays
from tests.samples import sample_keypoints, two_people_coco

REPO = Path(__file__).resolve().parent.parent.parent
DRIBBLE = REPO.parent / "shared" / "media" / "basketball_dribble_single_person.mp4"
TOKEN = b"0123456789abcdef0123456789abcdef"
TIMEOUT = 120.0


@pytest.fixture
def local() -> Iterator[LocalBackend]:
    backend = LocalBackend(python=sys.executable, device="cpu")
    yield backend
    backend.close()


def _long_keypoints(frames: int = 30000) -> dict[str, np.ndarray]:
    """A clip long enough that lifting it takes seconds (with heatmap mixtures)."""
    return keypoints_to_arrays(sample_keypoints(T=frames, M=2, seed=1))


def _start_long_lift(backend: LocalBackend | RemoteBackend, model: Path,  # type: ignore[no-untyped-def]
                     seen: list[Progress] | None = None):
    """Submit a long lift; return its job once the lift reports progress (those progress
    events go into `seen`)."""
    job = backend.submit("lift", {"model": str(model), "hypotheses": 8},
                         _long_keypoints())
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        lifting = [e for e in job.poll() if isinstance(e, Progress) and e.stage == "lift"]
        if seen is not None:
            seen.extend(lifting)
        if lifting:
            return job
        assert not job.done, job.outcome
        time.sleep(0.01)
    raise AssertionError("no lift progress")


def _cancel_mid_lift(backend: LocalBackend | RemoteBackend, model: Path
                     ) -> tuple[BackendError, int, int]:
    """Start a long lift, cancel it once it reports progress, and drain it. Returns (its
    error, the furthest point the lift reported, the lift's total): it stopped part-way
    when the first is well below the second. (Progress, not the wall clock: on a loaded
    machine the cancel may take longer to arrive, but the work must stop where it is.)"""
    seen: list[Progress] = []
    job = _start_long_lift(backend, model, seen)
    job.cancel()
    furthest, total = max(e.done for e in seen), seen[-1].total
    deadline = time.monotonic() + TIMEOUT
    while not job.done:
        assert time.monotonic() < deadline, "the cancelled lift never ended"
        for e in job.poll():
            if isinstance(e, Progress) and e.stage == "lift":
                furthest, total = max(furthest, e.done), e.total
        time.sleep(0.01)
    job.poll()
    assert isinstance(job.outcome, BackendError), job.outcome
    return job.outcome, furthest, total


def test_hello_reports_versions_and_device(local: LocalBackend) -> None:
    hello = local.wait_ready(TIMEOUT)
    assert hello["protocol"] == PROTOCOL_VERSION and hello["package"] == __version__
    assert hello["device"]["kind"] == "cpu" and hello["device"]["name"] == "CPU"


def test_every_method_round_trips_over_stdio(local: LocalBackend, small_model: Path,
                                             tmp_path: Path) -> None:
    echo = np.arange(12, dtype=np.float32).reshape(3, 4)
    res = local.request("ping", {}, {"echo": echo}, timeout=TIMEOUT)
    assert res.fields["pong"] is True
    np.testing.assert_array_equal(res.arrays["echo"], echo)

    # lift from arrays, with progress along the way
    kp = sample_keypoints(T=40, M=2)
    job = local.submit("lift", {"model": str(small_model), "hypotheses": 3, "seed": 4},
                       keypoints_to_arrays(kp))
    result = job.wait(TIMEOUT)
    events = job.poll()
    assert any(isinstance(e, Progress) for e in events) and isinstance(events[-1], Result)
    take = take_from_arrays(result.arrays, "<test>")
    assert take.num_frames == 40 and take.num_hypotheses == 3
    # lift from a file on the backend's machine gives the same as the same input sent
    coco = two_people_coco(tmp_path, T=12)[0]
    by_path = local.request("lift", {"path": str(coco), "model": str(small_model),
                                     "hypotheses": 2}, timeout=TIMEOUT)
    by_arrays = local.request("lift", {"model": str(small_model), "hypotheses": 2},
                              keypoints_to_arrays(read_keypoints(coco)), timeout=TIMEOUT)
    np.testing.assert_array_equal(by_path.arrays["hypotheses"],
                                  by_arrays.arrays["hypotheses"])

    smoothed = local.request("smooth", {"options": {"method": "butterworth"}},
                             result.arrays, timeout=TIMEOUT)
    out = take_from_arrays(smoothed.arrays, "<test>")
    assert out.num_frames == take.num_frames
    assert out.params["smoothing"]["method"] == "butterworth"

    if DRIBBLE.is_file():
        det = local.request("detect", {"path": str(DRIBBLE), "max_frames": 4},
                            timeout=TIMEOUT)
        assert det.arrays["keypoints"].shape[:1] == (4,)
        sent = local.request("detect", {"suffix": ".mp4", "max_frames": 2},
                             {"video": np.frombuffer(DRIBBLE.read_bytes(), np.uint8)},
                             timeout=TIMEOUT)
        assert sent.arrays["keypoints"].shape[:1] == (2,)

    assert local.request("release", timeout=TIMEOUT).fields["released"] == 1
    # bad input comes back as data, and the backend goes on
    with pytest.raises(BackendError, match="not found") as info:
        local.request("lift", {"path": str(tmp_path / "nope.json")}, timeout=TIMEOUT)
    assert info.value.kind == "bad_input"
    with pytest.raises(BackendError, match="unknown method"):
        local.request("explode", timeout=TIMEOUT)
    with pytest.raises(BackendError, match="max_frames -3; expected a whole number"):
        local.request("detect", {"path": str(tmp_path / "any.mp4"), "max_frames": -3},
                      timeout=TIMEOUT)
    with pytest.raises(BackendError, match="subject height 0 m") as info:
        local.request("lift", {"path": str(coco), "model": str(small_model), "height_m": 0},
                      timeout=TIMEOUT)
    assert info.value.kind == "bad_input"
    for key, value in (("height_m", "tall"), ("hypotheses", 2.5), ("steps", [4]),
                       ("fov_deg", True)):
        with pytest.raises(BackendError, match=f"lift field '{key}'") as info:
            local.request("lift", {"path": str(coco), "model": str(small_model), key: value},
                          timeout=TIMEOUT)
        assert info.value.kind == "bad_input"
    pid = local.hello["pid"]  # type: ignore[index]
    local.request("shutdown", timeout=TIMEOUT)
    assert local.process is not None
    assert local.process.wait(timeout=30) == 0, local.stderr_tail()
    assert local.request("ping", timeout=TIMEOUT).fields["pong"]    # a fresh backend
    assert local.hello["pid"] != pid  # type: ignore[index]


def test_backend_exits_cleanly_after_a_lift(small_model: Path, tmp_path: Path) -> None:
    """Shut down with a model still loaded: exit code 0. (A model left for the
    interpreter's own teardown used to abort the process, SIGABRT, in about half of
    these runs; three runs catch that almost always.)"""
    coco = two_people_coco(tmp_path, T=12)[0]
    for _ in range(3):
        backend = LocalBackend(python=sys.executable, device="cpu")
        try:
            backend.request("lift", {"path": str(coco), "model": str(small_model)},
                            timeout=TIMEOUT)
            backend.request("shutdown", timeout=TIMEOUT)
            assert backend.process is not None
            assert backend.process.wait(timeout=30) == 0, backend.stderr_tail()
        finally:
            backend.close()


def test_cancel_stops_a_long_lift_part_way(local: LocalBackend, small_model: Path) -> None:
    error, furthest, total = _cancel_mid_lift(local, small_model)
    assert error.kind == "cancelled" and "cancelled" in str(error)
    assert 0 < total and furthest < total / 2, (furthest, total)
    assert local.request("ping", timeout=TIMEOUT).fields["pong"]


def test_killed_backend_is_reported_with_stderr_and_restarted(local: LocalBackend,
                                                              small_model: Path) -> None:
    job = _start_long_lift(local, small_model)
    assert local.process is not None
    old = local.process.pid
    os.kill(old, signal.SIGKILL)
    with pytest.raises(BackendError, match="SIGKILL") as info:
        job.wait(TIMEOUT)
    assert info.value.kind == "died"
    assert "backend stderr" in str(info.value)
    assert local.request("ping", timeout=TIMEOUT).fields["pong"]
    assert local.process.pid != old


def test_hung_backend_is_noticed_by_missing_heartbeats(small_model: Path) -> None:
    backend = LocalBackend(python=sys.executable, device="cpu", heartbeat_timeout_s=3.0)
    try:
        backend.wait_ready(TIMEOUT)
        assert backend.process is not None
        os.kill(backend.process.pid, signal.SIGSTOP)
        job = backend.submit("ping")
        with pytest.raises(BackendError, match="answered nothing") as info:
            job.wait(20)
        assert info.value.kind == "hung"
        assert backend.request("ping", timeout=TIMEOUT).fields["pong"]
    finally:
        backend.close()


def test_protocol_version_mismatch_is_a_clear_message() -> None:
    backend = LocalBackend(python=sys.executable, device="cpu", protocol_version=99)
    try:
        with pytest.raises(BackendError, match=r"speaks protocol version 1 .* version 99"):
            backend.request("ping", timeout=TIMEOUT)
    finally:
        backend.close()


# --- TCP -----------------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    token_file = tmp_path / "token"
    token_file.write_bytes(TOKEN + b"\n")
    proc = subprocess.Popen([sys.executable, "-m", "diffpose_blender.backend", "serve",
                             "--listen", "127.0.0.1:0", "--token-file", str(token_file),
                             "--device", "cpu"], cwd=REPO, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    assert match, line
    yield proc, int(match.group(1))
    proc.kill()
    proc.wait()


def _raw_connection(port: int) -> tuple[socket.socket, dict[str, object]]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    challenge = read_message(sock.makefile("rb"))
    assert challenge.type == "challenge"
    return sock, challenge.fields


def _hang_up(sock: socket.socket) -> None:
    # shutdown() and not only close(): makefile() readers keep the socket open otherwise.
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _authed(port: int) -> socket.socket:
    sock, challenge = _raw_connection(port)
    write_message(sock.makefile("wb"), Message("auth", "", {
        "answer": answer_challenge(TOKEN, str(challenge["nonce"]))}))
    assert read_message(sock.makefile("rb")).type == "hello"
    return sock


def test_tcp_round_trip_and_clients_one_after_another(
        server: tuple[subprocess.Popen[str], int], small_model: Path) -> None:
    _, port = server
    for _ in range(2):
        remote = RemoteBackend("127.0.0.1", port, TOKEN)
        try:
            hello = remote.wait_ready(TIMEOUT)
            assert hello["protocol"] == PROTOCOL_VERSION
            kp = sample_keypoints(T=20, M=2)
            res = remote.request("lift", {"model": str(small_model), "hypotheses": 2},
                                 keypoints_to_arrays(kp), timeout=TIMEOUT)
            assert take_from_arrays(res.arrays, "<tcp>").num_frames == 20
        finally:
            remote.close()


def test_tcp_cancel(server: tuple[subprocess.Popen[str], int], small_model: Path) -> None:
    remote = RemoteBackend("127.0.0.1", server[1], TOKEN)
    try:
        error, furthest, total = _cancel_mid_lift(remote, small_model)
        assert error.kind == "cancelled"
        assert 0 < total and furthest < total / 2, (furthest, total)
        assert remote.request("ping", timeout=TIMEOUT).fields["pong"]
    finally:
        remote.close()


def test_bad_peers_are_refused_and_the_server_stays_up(
        server: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = server
    # wrong token: refused, logged, closed
    remote = RemoteBackend("127.0.0.1", port, b"x" * 32)
    with pytest.raises(BackendError, match="wrong token") as info:
        remote.request("ping", timeout=TIMEOUT)
    assert info.value.kind in ("auth", "closed", "died")
    # garbage instead of the answer to the challenge
    sock, _ = _raw_connection(port)
    sock.sendall(os.urandom(64))
    assert sock.recv(65536) is not None
    _hang_up(sock)
    # after authenticating: an oversized length prefix -> error, connection closed
    sock = _authed(port)
    sock.sendall(struct.pack(">Q", 1 << 50))
    reply = read_message(sock.makefile("rb"))
    assert reply.type == "error" and "limit" in reply.fields["message"]
    _hang_up(sock)
    # a header that is not JSON
    sock = _authed(port)
    sock.sendall(struct.pack(">Q", 9) + b"not json!")
    reply = read_message(sock.makefile("rb"))
    assert reply.type == "error" and "JSON" in reply.fields["message"]
    _hang_up(sock)
    # an array whose .npy header asks for pickle: refused, and this connection goes on
    sock = _authed(port)
    import io
    blob = io.BytesIO()
    np.save(blob, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    data = blob.getvalue()
    header = json.dumps({"type": "request", "id": "p1", "method": "ping",
                         "arrays": [["x", len(data)]]}).encode()
    sock.sendall(struct.pack(">Q", len(header)) + header + data)
    rfile = sock.makefile("rb")
    reply = read_message(rfile)
    while reply.type == "heartbeat":
        reply = read_message(rfile)
    assert reply.type == "error" and reply.id == "p1" and "pickle" in reply.fields["message"]
    write_message(sock.makefile("wb"), Message("request", "p2", {"method": "ping"}))
    reply = read_message(rfile)
    while reply.type == "heartbeat":
        reply = read_message(rfile)
    assert reply.type == "result" and reply.id == "p2"
    _hang_up(sock)
    # still serving a proper client
    remote = RemoteBackend("127.0.0.1", port, TOKEN)
    try:
        assert remote.request("ping", timeout=TIMEOUT).fields["pong"]
    finally:
        remote.close()
    assert proc.poll() is None


def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    backend = LocalBackend(python=sys.executable, device="cuda")
    try:
        with pytest.raises(BackendError, match="(?i)cuda") as info:
            backend.request("ping", timeout=TIMEOUT)
        assert info.value.kind == "died" and "exited with code 2" in str(info.value)
    finally:
        backend.close()
