"""Overhead of the backend protocol: moving a 10-minute take, and small-request latency.

    .venv/bin/python bench/protocol.py [--frames 18000] [--hypotheses 10] [--repeats 3]

Moves the arrays of a 10-minute take at 30 fps (hypotheses (T, N, J, 3) float32 plus
pose, spread, root and flags) to a real backend process and back (`ping` echoes its
arrays), over stdio and over TCP on loopback, and compares with writing and reading the
same arrays with `numpy.save` / `numpy.load` on a local file (both directions: save +
load, twice, as the backend round trip also carries them both ways). Then the median
round trip of 100 small `ping` requests. Prints a table; ratios come from one run.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from diffpose_blender.client.process import LocalBackend, RemoteBackend  # noqa: E402


def take_arrays(frames: int, hypotheses: int, joints: int = 21) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"hypotheses": rng.normal(size=(frames, hypotheses, joints, 3)).astype(np.float32),
            "pose": rng.normal(size=(frames, joints, 3)).astype(np.float32),
            "spread": rng.random((frames, joints)).astype(np.float32),
            "root_cam": rng.normal(size=(frames, 3)),
            "keypoints_2d": rng.normal(size=(frames, joints, 2)).astype(np.float32),
            "valid": np.ones(frames, bool)}


def file_round_trip(arrays: dict[str, np.ndarray], folder: Path) -> float:
    t0 = time.perf_counter()
    for _ in range(2):                      # there and back, as the echo does
        for name, a in arrays.items():
            np.save(folder / f"{name}.npy", a, allow_pickle=False)
        arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False)
                  for name in arrays}
    return time.perf_counter() - t0


def backend_round_trip(backend: LocalBackend | RemoteBackend,
                       arrays: dict[str, np.ndarray]) -> float:
    t0 = time.perf_counter()
    res = backend.request("ping", {}, arrays, timeout=600)
    elapsed = time.perf_counter() - t0
    assert all(np.array_equal(res.arrays[k], v) for k, v in arrays.items())
    return elapsed


def latency(backend: LocalBackend | RemoteBackend, count: int = 100) -> float:
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        backend.request("ping", timeout=60)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=18000)
    ap.add_argument("--hypotheses", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    arrays = take_arrays(args.frames, args.hypotheses)
    megabytes = sum(a.nbytes for a in arrays.values()) / 1e6

    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "token"
        token = secrets.token_hex(32).encode()
        token_file.write_bytes(token)
        server = subprocess.Popen([sys.executable, "-m", "diffpose_blender.backend", "serve",
                                   "--listen", "127.0.0.1:0", "--token-file",
                                   str(token_file), "--device", "cpu"], cwd=REPO,
                                  stderr=subprocess.PIPE, text=True)
        assert server.stderr is not None
        port = int(re.search(r":(\d+)\s*$", server.stderr.readline()).group(1))  # type: ignore[union-attr]
        local = LocalBackend(device="cpu")
        remote = RemoteBackend("127.0.0.1", port, token)
        try:
            local.wait_ready(300)
            remote.wait_ready(300)
            files = min(file_round_trip(arrays, Path(tmp)) for _ in range(args.repeats))
            stdio = min(backend_round_trip(local, arrays) for _ in range(args.repeats))
            tcp = min(backend_round_trip(remote, arrays) for _ in range(args.repeats))
            lat_stdio, lat_tcp = latency(local), latency(remote)
        finally:
            local.close()
            remote.close()
            server.kill()
            server.wait()

    print(f"Take of {args.frames} frames x {args.hypotheses} hypotheses ({megabytes:.0f} MB "
          f"of arrays), there and back; best of {args.repeats}; {os.cpu_count()} CPUs\n")
    print("| path | round trip (s) | vs local file |")
    print("|---|---|---|")
    print(f"| numpy.save + numpy.load, local file | {files:.3f} | 1.00x |")
    print(f"| backend over stdio | {stdio:.3f} | {stdio / files:.2f}x |")
    print(f"| backend over TCP (loopback) | {tcp:.3f} | {tcp / files:.2f}x |")
    print()
    print("| small request (ping), median of 100 | latency (ms) |")
    print("|---|---|")
    print(f"| stdio | {1000 * lat_stdio:.2f} |")
    print(f"| TCP (loopback) | {1000 * lat_tcp:.2f} |")


if __name__ == "__main__":
    main()
