#!/usr/bin/env python3
"""Lifting throughput and memory on this machine, through the full `lift` pipeline.

    python bench/lift_throughput.py [--model NAME] [--frames 3000] [--threads 2]

Prints frames/s for DiffPose with N = 1, 5, 10 hypotheses at the model's default steps,
and the deterministic baseline, in the same run; then the peak resident memory of a
subprocess that lifts a 10-minute clip (18,000 frames at 30 fps) with N = 5.

The input is a real motion: validation mocap (held-out subjects) projected through a
synthetic camera with detector-like noise, repeated to the wanted length.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffpose_blender.core.keypoints import Keypoints2D  # noqa: E402
from diffpose_blender.core.resources import DEFAULT_MODEL, bundled_model  # noqa: E402


def make_clip(frames: int, seed: int = 0) -> Keypoints2D:
    from diffpose_blender.backend.data.cameras import random_cameras
    from diffpose_blender.backend.data.corpus import (DEFAULT_VAL_SUBJECTS, load_corpus,
                                                      shared_data_root, split_by_subjects)
    from diffpose_blender.backend.data.noise2d import add_detector_noise
    from diffpose_blender.backend.model.config import TrainConfig

    clips = load_corpus(list(TrainConfig().sources), ROOT / "cache" / "mocap",
                        shared_root=shared_data_root())
    _, val = split_by_subjects(clips, DEFAULT_VAL_SUBJECTS)
    motion = np.concatenate([c.positions for c in val]).astype(np.float64)
    reps = int(np.ceil(frames / len(motion)))
    motion = np.concatenate([motion] * reps)[:frames]
    rng = np.random.default_rng(seed)
    world = motion[None]
    cams = random_cameras(rng, world[:, :300], np.array([1.7]))
    # The subject walks around: keep a camera far enough for the whole clip by filming
    # each 300-frame piece re-centred on the camera's original target.
    centred = world.copy()
    pieces = np.arange(frames) // 300
    for p in np.unique(pieces):
        sel = pieces == p
        offset = centred[0, sel][0, 0, :2] - world[0, :300][0, 0, :2]
        centred[0, sel, :, :2] -= offset
    px, scores = add_detector_noise(rng, cams.project(cams.to_camera(centred)))
    size = tuple(int(v) for v in cams.image_size[0])
    return Keypoints2D(px[0], scores[0], np.ones(frames, dtype=bool), 30.0,
                       (size[0], size[1]), "bench:validation-mocap")


def throughput(model_dir: Path, frames: int) -> list[tuple[str, float]]:
    from diffpose_blender.backend.lift import Lifter, LiftOptions

    kp = make_clip(frames)
    rows = []
    for kind, n in (("baseline", 1), ("diffpose", 1), ("diffpose", 5), ("diffpose", 10)):
        lifter = Lifter(model_dir, kind=kind, device="cpu")
        lifter.lift(make_clip(60, seed=1), LiftOptions(hypotheses=n))   # warm-up
        t0 = time.perf_counter()
        lifter.lift(kp, LiftOptions(hypotheses=n))
        rows.append((f"{kind} N={n}", frames / (time.perf_counter() - t0)))
    return rows


def peak_memory_child(model_dir: Path, frames: int) -> None:
    from diffpose_blender.backend.lift import Lifter, LiftOptions

    kp = make_clip(frames)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Lifter(model_dir).lift(kp, LiftOptions(hypotheses=5))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"PEAK {before / 1024:.0f} {after / 1024:.0f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    model_dir = bundled_model(args.model)
    if args.memory_child:
        peak_memory_child(model_dir, args.memory_child)
        return 0
    rows = throughput(model_dir, args.frames)
    print(f"Lifting throughput, {args.frames} frames, CPU threads={args.threads}, "
          f"model {model_dir.name}, default steps")
    print("| model | frames/s |\n|---|---|")
    for name, fps in rows:
        print(f"| {name} | {fps:.0f} |")
    ten_minutes = 10 * 60 * 30
    out = subprocess.run([sys.executable, __file__, "--model", str(model_dir),
                          "--threads", str(args.threads), "--memory-child", str(ten_minutes)],
                         capture_output=True, text=True, env=dict(os.environ))
    line = [l for l in out.stdout.splitlines() if l.startswith("PEAK")]
    if out.returncode != 0 or not line:
        print(out.stdout + out.stderr)
        return 1
    _, before, after = line[0].split()
    print(f"\n10-minute clip ({ten_minutes} frames), N=5: peak resident memory {after} MiB "
          f"(after loading data and torch: {before} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
