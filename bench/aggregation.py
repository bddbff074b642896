#!/usr/bin/env python3
"""How to turn N hypotheses into one pose: the mean, the per-coordinate median, or per
joint the hypothesis whose 2D lies nearest the input (JPMA, Shan et al. 2023), over
denoising steps K and hypothesis counts N, beside the deterministic baseline.

    python bench/aggregation.py [--model NAME] [--windows 300] [--split train|val]

Windows of mocap from the chosen subjects (default: the training subjects through fresh
synthetic cameras, so choosing a setting here does not look at the validation subjects)
with detector-like 2D noise, as `evaluate` draws them; MPJPE (root excluded) and
P-MPJPE in millimetres, camera frame, true root depth.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffpose_blender.core.resources import DEFAULT_MODEL, bundled_model  # noqa: E402


def main() -> None:
    import torch

    from diffpose_blender.backend.benchmark import gather_joints, joint_reprojection_pick
    from diffpose_blender.backend.data.corpus import subject_positions
    from diffpose_blender.backend.data.synthesis import make_batch
    from diffpose_blender.backend.evaluate import _to_camera
    from diffpose_blender.backend.metrics import per_joint_error, procrustes_align
    from diffpose_blender.backend.model.config import TrainConfig
    from diffpose_blender.backend.model.weights import load_config, load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--windows", type=int, default=300)
    ap.add_argument("--split", choices=("train", "val"), default="train")
    ap.add_argument("--cache", default=str(ROOT / "cache" / "mocap"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    folder = Path(args.model) if Path(args.model).is_dir() else bundled_model(args.model)
    cfg = load_config(folder)
    windows_from = subject_positions(TrainConfig().sources, args.cache, args.split,
                                     cfg.window)
    diffpose, baseline = load_model(folder, "diffpose")[0], load_model(folder, "baseline")[0]
    rng = np.random.default_rng(12345)
    rows: dict[str, list[list[float]]] = {}

    def add(name: str, pred: np.ndarray, truth: np.ndarray) -> None:
        flat_p = pred.reshape(-1, cfg.joints, 3)
        flat_t = truth.reshape(-1, cfg.joints, 3)
        row = rows.setdefault(name, [[], []])
        row[0].append(float(per_joint_error(pred, truth)[..., 1:].mean()))
        row[1].append(float(per_joint_error(procrustes_align(flat_p, flat_t), flat_t).mean()))

    for b0 in range(0, args.windows, 50):
        batch = make_batch(rng, windows_from, min(50, args.windows - b0), cfg.window,
                           augment_data=False)
        inputs = (torch.from_numpy(batch.xy), torch.from_numpy(batch.scores),
                  torch.from_numpy(batch.log_scale))
        with torch.no_grad():
            base = baseline.sample(*inputs).numpy().astype(np.float64)
        add("baseline", _to_camera(base, batch)[:, :, 0], batch.camera_3d)
        for steps, n in ((1, 10), (2, 10), (5, 10), (5, 20)):
            gen = torch.Generator().manual_seed(b0)
            with torch.no_grad():
                hyp = diffpose.sample(*inputs, hypotheses=n, steps=steps,
                                      generator=gen).numpy().astype(np.float64)
            cam = _to_camera(hyp, batch)
            add(f"mean, K={steps}, N={n}", cam.mean(2), batch.camera_3d)
            add(f"median, K={steps}, N={n}", np.median(cam, axis=2), batch.camera_3d)
            if (steps, n) == (5, 10):
                pick = joint_reprojection_pick(hyp, batch.xy.astype(np.float64),
                                               batch.scores)
                jpma = _to_camera(gather_joints(hyp, pick)[:, :, None], batch)[:, :, 0]
                add("JPMA, K=5, N=10", jpma, batch.camera_3d)

    print(f"{args.split} subjects, {args.windows} windows of {cfg.window} frames, "
          f"model {folder.name}")
    print("| aggregate | MPJPE (mm) | P-MPJPE (mm) |")
    print("|---|---|---|")
    for name, (mp, pa) in rows.items():
        print(f"| {name} | {1000 * np.mean(mp):.1f} | {1000 * np.mean(pa):.1f} |")


if __name__ == "__main__":
    main()
