#!/usr/bin/env python3
"""Per joint: DiffPose's spread and error when that joint is hidden for a whole window
(confidence 0, position dropped) against the same joint visible.

    python bench/hidden_joints.py [--model NAME] [--batches 2] [--split train|val]

`evaluate` reports the average over randomly hidden joints; this prints which joints
make it. Windows of mocap through fresh synthetic cameras with detector-like 2D noise,
as `evaluate` draws them (default: the training subjects); every non-root joint is
hidden in turn in every window. N = 10 hypotheses, the model's default steps; spreads
are the RMS distance of the hypotheses from their mean, errors the distance of the mean
from the truth, both in millimetres, camera frame, root-relative.
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

    from diffpose_blender.backend.data.corpus import subject_positions
    from diffpose_blender.backend.data.synthesis import make_batch
    from diffpose_blender.backend.evaluate import _run
    from diffpose_blender.backend.model.config import TrainConfig
    from diffpose_blender.backend.model.weights import load_model
    from diffpose_blender.core.skeleton import SKELETON

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--batches", type=int, default=2, help="batches of 48 windows")
    ap.add_argument("--split", choices=("train", "val"), default="train")
    ap.add_argument("--cache", default=str(ROOT / "cache" / "mocap"))
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(2)
    folder = Path(args.model) if Path(args.model).is_dir() else bundled_model(args.model)
    model, _ = load_model(folder, "diffpose")
    joints, window = model.cfg.joints, model.cfg.window
    pos = subject_positions(TrainConfig().sources, args.cache, args.split, window)
    rng = np.random.default_rng(args.seed)
    keys = ("hid_spread", "vis_spread", "hid_err", "vis_err", "hid_xy", "vis_xy")
    acc: dict[str, list[list[np.ndarray]]] = {k: [[] for _ in range(joints)] for k in keys}
    for b in range(args.batches):
        batch = make_batch(rng, pos, 48, window, augment_data=False)
        visible_run = _run(model, batch, 10, args.seed + b)
        for j in range(1, joints):
            scores, xy = batch.scores.copy(), batch.xy.copy()
            scores[:, :, j] = 0.0
            xy[:, :, j] = 0.0
            hidden_run = _run(model, batch, 10, args.seed + b, scores=scores, xy=xy)
            for hyp, tag in ((hidden_run, "hid"), (visible_run, "vis")):
                mean = hyp.mean(2)
                dev = hyp[:, :, :, j] - mean[:, :, None, j]
                acc[f"{tag}_spread"][j].append(np.sqrt((dev ** 2).sum(-1).mean(2)).ravel())
                acc[f"{tag}_xy"][j].append(np.sqrt((dev[..., :2] ** 2).sum(-1).mean(2)).ravel())
                acc[f"{tag}_err"][j].append(
                    np.linalg.norm(mean[:, :, j] - batch.camera_3d[:, :, j], axis=-1).ravel())

    print(f"{args.split} subjects, {args.batches * 48} windows, model {args.model}, N = 10, "
          f"K = {model.cfg.sample_steps}")
    print("| joint | spread hidden | spread visible | ratio | error hidden | error visible "
          "| ratio | x,y spread hidden | x,y spread visible |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for j in range(1, joints):
        v = {k: 1000.0 * float(np.concatenate(acc[k][j]).mean()) for k in keys}
        rows.append(v)
        print(_row(SKELETON.names[j], v))
    print(_row("**all**", {k: float(np.mean([r[k] for r in rows])) for k in keys}))


def _row(name: str, v: dict[str, float]) -> str:
    return (f"| {name} | {v['hid_spread']:.1f} | {v['vis_spread']:.1f} | "
            f"{v['hid_spread'] / v['vis_spread']:.2f} | {v['hid_err']:.1f} | "
            f"{v['vis_err']:.1f} | {v['hid_err'] / v['vis_err']:.2f} | {v['hid_xy']:.1f} | "
            f"{v['vis_xy']:.1f} |")


if __name__ == "__main__":
    main()
