#!/usr/bin/env python3
"""How a trained Human3.6M benchmark run's DiffPose depends on its sampler.

    python bench/h36m_sampler.py RUN [--inputs gt|noisy] [--every 16]
                                     [--variant N,K[,ETA] ...] [--seed 0]

RUN is a folder written by ``bench/h36m.py`` (or ``train --benchmark h36m``). On every
``--every``-th test window of S9 and S11 (all four cameras) it prints, per row, the MPJPE
(mm) of the mean of the hypotheses, of the best hypothesis per frame (an oracle), how
far below the mean that oracle is, and the hypotheses' spread (mean distance of a joint
from the hypotheses' mean, mm). Rows: the baseline; DiffPose's own regression head (the
pose the diffusion starts from, with `encoder_regression`); then DiffPose sampled with N
hypotheses and K steps (and the sampling noise ETA, default the model's) for each
``--variant`` (default 10,5 20,5 40,5 10,1 10,2). The benchmark's table itself uses the
setting's N and K on every 4th window (``bench/h36m.py``); this script answers what the
mean and the oracle would be at other N and K, and how far the diffusion moves the
regressed pose. A sparser subset than the table's, so its figures differ slightly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffpose_blender.core.errors import DiffPoseError, exit_code  # noqa: E402

DEFAULT_VARIANTS = ("10,5", "20,5", "40,5", "10,1", "10,2")


def parse_variant(text: str) -> tuple[int, int, float | None]:
    """'N,K' or 'N,K,ETA' -> (N, K, ETA or None)."""
    parts = text.split(",")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        n, k = int(parts[0]), int(parts[1])
        eta = float(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise DiffPoseError(f"--variant {text!r}; expected N,K or N,K,ETA (for example "
                            f"20,5 or 10,5,0)") from None
    if n < 1 or k < 1 or (eta is not None and not 0.0 <= eta <= 1.0):
        raise DiffPoseError(f"--variant {text!r}; expected N >= 1, K >= 1, 0 <= ETA <= 1")
    return n, k, eta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a benchmark run folder (bench/h36m.py -o RUN)")
    parser.add_argument("--inputs", choices=("gt", "noisy"), default="gt")
    parser.add_argument("--every", type=int, default=16, help="every k-th test window")
    parser.add_argument("--variant", action="append", default=None,
                        help="N,K[,ETA]: hypotheses, steps, sampling noise (repeatable)")
    parser.add_argument("--cache", default=str(ROOT / "cache" / "mocap"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    def run() -> int:
        import torch

        from diffpose_blender.backend import benchmark
        from diffpose_blender.backend.data import h36m
        from diffpose_blender.backend.data.corpus import shared_data_root
        from diffpose_blender.backend.metrics import per_joint_error
        from diffpose_blender.backend.model.weights import load_config, load_model

        variants = [parse_variant(v) for v in (args.variant or DEFAULT_VARIANTS)]
        if args.every < 1:
            raise DiffPoseError(f"--every {args.every}; expected 1 or more")
        folder = Path(args.run) / args.inputs
        cfg = load_config(folder)
        diffpose = load_model(folder, "diffpose")[0].eval()
        baseline = load_model(folder, "baseline")[0].eval()
        torch.set_num_threads(args.threads)
        protocol = h36m.load_protocol(args.cache, shared_data_root())
        windows = benchmark.test_windows(protocol.test, cfg.window, args.every)
        rng = benchmark.test_rng(args.seed)
        rows: dict[str, dict[str, list[np.ndarray]]] = {}
        frames = 0
        for b, (batch, owned) in enumerate(benchmark.test_batches(rng, windows, cfg.window,
                                                                  args.inputs)):
            frames += int(owned.sum())
            t = [torch.from_numpy(a) for a in (batch.xy, batch.scores, batch.log_scale)]
            with torch.no_grad():
                preds = {"baseline": baseline.sample(*t)}
                regressed = diffpose.regression(*t)
                if regressed is not None:
                    preds["DiffPose regression head"] = regressed.unsqueeze(2)
                for n, k, eta in variants:
                    label = f"DiffPose N = {n}, K = {k}" + ("" if eta is None
                                                           else f", eta = {eta:g}")
                    preds[label] = diffpose.sample(
                        *t, hypotheses=n, steps=k, eta=eta,
                        generator=torch.Generator().manual_seed(args.seed + b))
            truth = batch.camera_3d
            for label, hyp_ps in preds.items():
                hyp = benchmark.camera_metres(hyp_ps.numpy().astype(np.float64),
                                              batch)
                mean = hyp.mean(axis=2)
                row = rows.setdefault(label, {"mean": [], "best": [], "spread": []})
                # MPJPE only: the Procrustes alignment of P-MPJPE is not reported here.
                row["mean"].append(per_joint_error(mean, truth).mean(-1)[owned])
                row["best"].append(per_joint_error(hyp, truth[:, :, None]).mean(-1)
                                   .min(axis=2)[owned])
                row["spread"].append(np.linalg.norm(hyp - mean[:, :, None], axis=-1)
                                     .mean(axis=(-1, -2))[owned])
        print(f"{args.run} ({args.inputs} 2D): {frames} test frames (every "
              f"{args.every}th window), MPJPE mm\n")
        print("| | mean | best of N | best below mean | spread |\n|---|---|---|---|---|")
        for label, row in rows.items():
            mean_mm, best_mm, spread_mm = (1000.0 * float(np.concatenate(row[key]).mean())
                                           for key in ("mean", "best", "spread"))
            print(f"| {label} | {mean_mm:.1f} | {best_mm:.1f} | "
                  f"{100.0 * (1.0 - best_mm / mean_mm):.1f} % | {spread_mm:.1f} |")
        return 0

    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
