#!/usr/bin/env python3
"""Smoothing: jitter and error against ground truth, before and after, per method.

    python bench/smoothing.py [--mode lifted|synthetic|clean|all] [--cache cache/mocap]
                              [--hypotheses 5] [--seed 0]

Ground truth is mocap from the corpus (`backend.data.corpus`), in three groups:

- walking: CMU 02_01, 02_02, 08_01, 08_03, 08_04 (validation subjects);
- dance:   CMU 05_02, 05_08, 05_13 (subject 05 is a *training* subject: the corpus's
           validation subjects hold no dance);
- sport:   CMU 02_03 (run), 02_05 (punches), 13_11 (forward jump) and HDM05 dg kicks,
           hops and jogging (validation subjects).

Two ways of making a noisy take from a clip (``--mode``):

- ``lifted``: the real thing. The clip is filmed by a random camera
  (`data.cameras.random_cameras`), the joints moved as a detector places them and the 2D
  corrupted with the training's detector noise (`data.noise2d`), then lifted by the
  bundled model (N hypotheses, the camera's true focal length). Error is measured on the
  root-relative camera-frame pose.
- ``synthetic``: ground truth plus 3D noise shaped like the model's: per joint and frame a
  noise level (the detector's per-joint scales of `noise2d.JOINT_NOISE` in metres for a
  1.7 m person, times a log-normal factor, with 3 % outlier frames at 4x), AR(1) in time
  (rho 0.5), and N hypotheses scattered around the noisy mean by that same level, so the
  spread tells which frames are bad, as a calibrated model's would.
- ``clean``: the ground truth itself (N = 1, no noise): any error after smoothing is the
  filter distorting real motion (flattened kicks and jumps), the price of each setting.

Columns: jitter is the mean joint acceleration (m/s², second difference x fps²) of the
root-relative pose, with the ground truth's own in the first row of each group; MPJPE is
the mean per-joint position error (mm) against ground truth; traj is the root
trajectory's error (mm, camera frame) and jitter (m/s²). Each method row is after
`smooth_take`, all with constant bone lengths unless it says otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffpose_blender.backend.data.corpus import (  # noqa: E402
    Clip, load_corpus, shared_data_root)
from diffpose_blender.backend.smooth import SmoothOptions, smooth_take  # noqa: E402
from diffpose_blender.core.skeleton import NUM_JOINTS  # noqa: E402
from diffpose_blender.core.take import Take  # noqa: E402

if TYPE_CHECKING:
    from diffpose_blender.backend.lift import Lifter

GROUPS: dict[str, list[tuple[str, str, str]]] = {
    "walking": [("cmu_bvh_cgspeed", "02", "01"), ("cmu_bvh_cgspeed", "02", "02"),
                ("cmu_bvh_cgspeed", "08", "01"), ("cmu_bvh_cgspeed", "08", "03"),
                ("cmu_bvh_cgspeed", "08", "04")],
    "dance": [("cmu_bvh_cgspeed", "05", "02"), ("cmu_bvh_cgspeed", "05", "08"),
              ("cmu_bvh_cgspeed", "05", "13")],
    "sport": [("cmu_bvh_cgspeed", "02", "03"), ("cmu_bvh_cgspeed", "02", "05"),
              ("cmu_bvh_cgspeed_daz", "13", "11"), ("hdm05", "dg", "kickLFront1Reps_013"),
              ("hdm05", "dg", "kickLFront1Reps_014"),
              ("hdm05", "dg", "hopBothLegs1hops_022"),
              ("hdm05", "dg", "jogLeftCircle4StepsRstart_008")],
}

METHODS: list[tuple[str, SmoothOptions]] = [
    ("none", SmoothOptions(method="none")),
    ("bone lengths (+ 14.9 Hz)", SmoothOptions(method="butterworth", cutoff_hz=14.9,
                                        trajectory_cutoff_hz=14.9)),
    ("butterworth 4 Hz", SmoothOptions(method="butterworth", cutoff_hz=4.0)),
    ("butterworth 6 Hz", SmoothOptions(method="butterworth", cutoff_hz=6.0)),
    ("butterworth 8 Hz", SmoothOptions(method="butterworth", cutoff_hz=8.0)),
    ("savgol 9", SmoothOptions(method="savgol", window=9)),
    ("savgol 15", SmoothOptions(method="savgol", window=15)),
    ("spline 4 Hz", SmoothOptions(method="spline", cutoff_hz=4.0)),
    ("spline 5 Hz", SmoothOptions(method="spline", cutoff_hz=5.0)),
    ("spline 6 Hz", SmoothOptions(method="spline", cutoff_hz=6.0)),
    ("spline 8 Hz", SmoothOptions(method="spline", cutoff_hz=8.0)),
    ("spline 6 Hz equal weights", SmoothOptions(method="spline", cutoff_hz=6.0,
                                                strength=0.0)),
    ("spline 6 Hz no bone fix", SmoothOptions(method="spline", cutoff_hz=6.0,
                                              bone_lengths=False)),
    ("spline 6 Hz, trajectory 4 Hz", SmoothOptions(method="spline", cutoff_hz=6.0,
                                                   trajectory_cutoff_hz=4.0)),
    ("spline 6 Hz, trajectory 1 Hz", SmoothOptions(method="spline", cutoff_hz=6.0,
                                                   trajectory_cutoff_hz=1.0)),
]


@dataclass
class Case:
    """One noisy take and its truth: pose (T, J, 3) camera metres root-relative, root
    (T, 3) camera metres."""

    name: str
    take: Take
    pose: np.ndarray
    root: np.ndarray


def find_clips(cache: Path) -> dict[str, list[Clip]]:
    sources = sorted({s for group in GROUPS.values() for s, _, _ in group})
    clips = load_corpus(sources, cache, shared_root=shared_data_root())
    out: dict[str, list[Clip]] = {}
    for group, wanted in GROUPS.items():
        out[group] = []
        for source, subject, take in wanted:
            hits = [c for c in clips if c.source == source and c.subject == subject and
                    (c.take == take or c.path.split("/")[-1].startswith(
                        f"HDM_{subject}_{take}"))]
            if not hits:
                raise SystemExit(f"clip {source} {subject} {take} not in the corpus")
            out[group].append(hits[0])
    return out


def camera_truth(clip: Clip, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """A random camera for the clip and the clip in its frame."""
    from diffpose_blender.backend.data.cameras import random_cameras

    world = clip.positions[None].astype(np.float64)
    height = np.clip(np.ptp(world[..., 2], axis=(1, 2)), 1.0, 2.2)
    cams = random_cameras(rng, world, height)
    cam = cams.to_camera(world)[0]                                 # (T, J, 3)
    return cams, cam - cam[:, :1], cam[:, 0]


def lifted_case(clip: Clip, lifter: "Lifter", rng: np.random.Generator,
                hypotheses: int, seed: int) -> Case:
    from diffpose_blender.backend.data.augment import detector_offsets
    from diffpose_blender.backend.data.noise2d import add_detector_noise
    from diffpose_blender.backend.lift import LiftOptions
    from diffpose_blender.core.keypoints import Keypoints2D

    cams, pose, root = camera_truth(clip, rng)
    source = detector_offsets(rng, clip.positions[None].astype(np.float64))
    px, scores = add_detector_noise(rng, cams.project(cams.to_camera(source)),
                                    clean_fraction=0.0)
    w, h = (int(x) for x in cams.image_size[0])
    kp = Keypoints2D(keypoints=px[0], scores=scores[0], valid=np.ones(len(pose), bool),
                     fps=clip.fps, image_size=(w, h), source=f"bench:{clip.path}")
    take = lifter.lift(kp, LiftOptions(hypotheses=hypotheses, seed=seed,
                                       focal_px=float(cams.focal_px[0])))
    return Case(clip.path, take, pose, root)


def synthetic_case(clip: Clip, rng: np.random.Generator, hypotheses: int) -> Case:
    from diffpose_blender.backend.data.noise2d import JOINT_NOISE

    _, pose, root = camera_truth(clip, rng)
    T = len(pose)
    sigma = JOINT_NOISE[None, :] * 1.7 * np.exp(rng.normal(0, 0.4, size=(T, NUM_JOINTS)))
    sigma = np.where(rng.random((T, NUM_JOINTS)) < 0.03, 4 * sigma, sigma)
    sigma[:, 0] = 0.0  # root-relative: the root has no error
    white = rng.standard_normal((T, NUM_JOINTS, 3))
    ar = np.empty_like(white)
    ar[0] = white[0]
    for t in range(1, T):
        ar[t] = 0.5 * ar[t - 1] + np.sqrt(1 - 0.25) * white[t]
    mean = pose + sigma[..., None] * ar
    spread = rng.standard_normal((T, hypotheses, NUM_JOINTS, 3))
    spread -= spread.mean(axis=1, keepdims=True)
    hyp = mean[:, None] + sigma[:, None, :, None] * spread
    depth_noise = 0.05 * np.cumsum(rng.normal(0, 0.3, T)) / np.sqrt(np.arange(1, T + 1))
    root_noisy = root + np.stack([rng.normal(0, 0.01, T), rng.normal(0, 0.01, T),
                                  rng.normal(0, 0.08, T) + depth_noise], axis=1)
    take = Take.from_hypotheses(
        hyp, root_noisy, np.ones(T, bool), keypoints_2d=np.zeros((T, NUM_JOINTS, 2)),
        scores_2d=np.ones((T, NUM_JOINTS)), fps=clip.fps, image_size=(1920, 1080),
        focal_px=1500.0, source_2d=f"bench:{clip.path}", model_name="synthetic")
    return Case(clip.path, take, pose, root)


def clean_case(clip: Clip, rng: np.random.Generator) -> Case:
    _, pose, root = camera_truth(clip, rng)
    T = len(pose)
    take = Take.from_hypotheses(
        pose[:, None], root, np.ones(T, bool), keypoints_2d=np.zeros((T, NUM_JOINTS, 2)),
        scores_2d=np.ones((T, NUM_JOINTS)), fps=clip.fps, image_size=(1920, 1080),
        focal_px=1500.0, source_2d=f"bench:{clip.path}", model_name="ground-truth")
    return Case(clip.path, take, pose, root)


def jitter(x: np.ndarray, fps: float) -> float:
    """Mean acceleration magnitude (m/s²) of x (T, ..., 3) metres."""
    return float(np.linalg.norm(np.diff(x, 2, axis=0), axis=-1).mean() * fps ** 2)


def measure(cases: list[Case], options: SmoothOptions) -> tuple[float, float, float, float]:
    """(jitter m/s², MPJPE mm, trajectory error mm, trajectory jitter m/s²), weighted by
    frames over the cases."""
    rows, weights = [], []
    for case in cases:
        out = smooth_take(case.take, options)
        pose = out.pose.astype(np.float64)
        rows.append((jitter(pose, out.fps),
                     1000 * np.linalg.norm(pose - case.pose, axis=-1)[:, 1:].mean(),
                     1000 * np.linalg.norm(out.root_cam - case.root, axis=-1).mean(),
                     jitter(out.root_cam, out.fps)))
        weights.append(case.take.num_frames)
    avg = np.average(np.array(rows), axis=0, weights=weights)
    return float(avg[0]), float(avg[1]), float(avg[2]), float(avg[3])


def table(mode: str, groups: dict[str, list[Case]]) -> None:
    print(f"\n## {mode}: jitter (m/s²) / MPJPE (mm) / trajectory error (mm) / "
          f"trajectory jitter (m/s²)\n")
    names = list(groups)
    print(f"| method | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    truth = []
    for g in names:
        cases = groups[g]
        truth.append(np.average([jitter(c.pose, c.take.fps) for c in cases],
                                weights=[c.take.num_frames for c in cases]))
    print("| ground truth | " + " | ".join(f"{j:.1f} / 0 / 0 / -" for j in truth) + " |")
    for label, options in METHODS:
        cells = []
        for g in names:
            jit, err, terr, tjit = measure(groups[g], options)
            cells.append(f"{jit:.1f} / {err:.1f} / {terr:.0f} / {tjit:.1f}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", default="all",
                        choices=("lifted", "synthetic", "clean", "all"))
    parser.add_argument("--cache", default="cache/mocap")
    parser.add_argument("--model", default="")
    parser.add_argument("--hypotheses", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    clips = find_clips(Path(args.cache))
    frames = {g: sum(c.num_frames for c in cs) for g, cs in clips.items()}
    print("clips: " + "; ".join(f"{g} {len(cs)} ({frames[g]} frames)"
                                for g, cs in clips.items()))
    if args.mode in ("clean", "all"):
        rng = np.random.default_rng(args.seed)
        table("clean ground truth (the filters' own distortion)",
              {g: [clean_case(c, rng) for c in cs] for g, cs in clips.items()})
    if args.mode in ("synthetic", "all"):
        rng = np.random.default_rng(args.seed)
        table("synthetic model-like noise",
              {g: [synthetic_case(c, rng, args.hypotheses) for c in cs]
               for g, cs in clips.items()})
    if args.mode in ("lifted", "all"):
        from diffpose_blender.backend.lift import Lifter
        from diffpose_blender.core.resources import DEFAULT_MODEL, bundled_model

        lifter = Lifter(bundled_model(args.model or DEFAULT_MODEL))
        rng = np.random.default_rng(args.seed)
        start = time.monotonic()
        groups = {g: [lifted_case(c, lifter, rng, args.hypotheses, args.seed) for c in cs]
                  for g, cs in clips.items()}
        print(f"\n(lifted {sum(frames.values())} frames with {lifter.name} in "
              f"{time.monotonic() - start:.0f} s)")
        table(f"lifted by {lifter.name}, N = {args.hypotheses}", groups)


if __name__ == "__main__":
    main()
