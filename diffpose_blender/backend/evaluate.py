"""`evaluate`: DiffPose against its deterministic baseline on the validation subjects.

Validation windows come from the held-out subjects' mocap through the same synthetic
cameras and detector-like 2D noise as training, drawn with a fixed seed, so a rerun on
the same weights gives the same table. Poses are compared in camera metres,
root-relative; the pose-space output is converted with the true root depth (monocular
scale is fixed separately by the subject's height at lift time, see `posespace`), so
these figures measure the lifting itself.

Reported (millimetres unless said otherwise):

- MPJPE and P-MPJPE of the aggregated pose (mean of the hypotheses);
- best-of-N MPJPE: per frame the hypothesis closest to the truth (an oracle; shows the
  hypotheses differ in useful ways);
- uncertainty: Spearman correlation of per-joint spread and per-joint error; fraction of
  joints whose error is within 1 and 2 spreads; the spread of a joint when it is hidden
  (confidence 0, position dropped) over its spread when visible, same frames;
- velocity error (mm/frame), which measures jitter.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import DiffPoseError
from ..core.skeleton import SKELETON
from .data.corpus import (DEFAULT_VAL_SUBJECTS, load_corpus, shared_data_root,
                          split_by_subjects)
from .data.synthesis import Batch, make_batch
from .metrics import per_joint_error, procrustes_align, spearman
from .model import posespace
from .model.config import ModelConfig, TrainConfig
from .model.weights import load_config, load_model

BATCH = 50


def _to_camera(pose: np.ndarray, batch: Batch) -> np.ndarray:
    """Pose space (B, T, [N,] J, 3) -> camera metres, root-relative, true root depth."""
    extra = pose.ndim - 4
    idx = (slice(None), slice(None)) + (None,) * extra
    return posespace.to_camera(pose, batch.root_uv[idx], batch.scale[:, None][idx],
                               batch.root_depth[idx])


def _run(model: torch.nn.Module, batch: Batch, n: int, seed: int,
         scores: np.ndarray | None = None, xy: np.ndarray | None = None,
         steps: int | None = None, eta: float | None = None) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out = model.sample(torch.from_numpy(batch.xy if xy is None else xy),
                           torch.from_numpy(batch.scores if scores is None else scores),
                           torch.from_numpy(batch.log_scale), hypotheses=n,
                           steps=model.cfg.sample_steps if steps is None else steps,
                           generator=gen, eta=eta)
    return _to_camera(out.numpy().astype(np.float64), batch)      # (B, T, N, J, 3)


def stature_chain_ratio(clips: list[np.ndarray]) -> float:
    """Median over clips of standing height / `posespace.chain_length` in upright frames
    (the top 5 % of head heights). World z = 0 is the ankle-joint plane of the corpus;
    the floor is taken 3 cm below it. This is the source of `STATURE_OVER_CHAIN`."""
    head = SKELETON.index["head_top"]
    ratios = []
    for p in clips:
        z = p[:, head, 2]
        up = z >= np.percentile(z, 95)
        ratios.append(np.median((z[up] + 0.03) / posespace.chain_length(p[up])))
    return float(np.median(ratios))


def check_settings(cfg: ModelConfig, windows: int, hypotheses: int, steps: int | None,
                   eta: float | None) -> None:
    """Refuse settings the metrics cannot be computed with, naming the value."""
    if windows < 1:
        raise DiffPoseError(f"windows {windows}; expected 1 or more")
    if hypotheses < 2:
        raise DiffPoseError(f"hypotheses {hypotheses}; expected 2 or more (the spread and "
                            f"best-of-N need several)")
    cfg.resolve_steps(steps)
    if eta is not None and not eta >= 0:
        raise DiffPoseError(f"eta {eta:g}; expected 0 (deterministic) or more")


def evaluate(model_dir: Path, cache_dir: Path, windows: int = 600, hypotheses: int = 10,
             seed: int = 0, split: str = "val", steps: int | None = None,
             eta: float | None = None) -> dict[str, Any]:
    """Metrics of both models on `split` ("val": the held-out subjects; "train": the
    training subjects through fresh cameras, for choosing inference settings without
    looking at the validation subjects). `steps` and `eta` override the model config."""
    torch.set_num_threads(2)
    cfg = load_config(model_dir)
    check_settings(cfg, windows, hypotheses, steps, eta)
    if split not in ("val", "train"):
        raise DiffPoseError(f"split {split!r}; expected val or train")
    sources = list(TrainConfig().sources)
    clips = load_corpus(sources, cache_dir, shared_root=shared_data_root())
    train_clips, val_clips = split_by_subjects(clips, DEFAULT_VAL_SUBJECTS)
    if split == "train":
        val_clips = train_clips
    val = [c.positions.astype(np.float64) for c in val_clips if len(c.positions) > cfg.window]
    models = {kind: load_model(model_dir, kind)[0] for kind in ("diffpose", "baseline")}
    rng = np.random.default_rng(seed + 12345)
    hide_rng = np.random.default_rng(seed + 777)
    rows: dict[str, dict[str, list[np.ndarray]]] = {k: {} for k in models}
    timing = {k: 0.0 for k in models}
    frames = 0
    for b0 in range(0, windows, BATCH):
        batch = make_batch(rng, val, min(BATCH, windows - b0), cfg.window,
                           augment_data=False)
        truth = batch.camera_3d                                        # (B, T, J, 3)
        frames += truth.shape[0] * truth.shape[1]
        # One non-root joint per window hidden in every frame, for the hidden/visible test.
        hidden = hide_rng.integers(1, cfg.joints, size=truth.shape[0])
        sc_h = batch.scores.copy()
        xy_h = batch.xy.copy()
        sc_h[np.arange(len(hidden)), :, hidden] = 0.0
        xy_h[np.arange(len(hidden)), :, hidden] = 0.0
        for kind, model in models.items():
            n = hypotheses if kind == "diffpose" else 1
            t0 = time.perf_counter()
            hyp = _run(model, batch, n, seed + b0, steps=steps, eta=eta)
            timing[kind] += time.perf_counter() - t0
            mean = hyp.mean(axis=2)
            err = per_joint_error(mean, truth)                         # (B, T, J)
            spread = np.sqrt(((hyp - mean[:, :, None]) ** 2).sum(-1).mean(2))
            per_hyp = per_joint_error(hyp, truth[:, :, None]).mean(-1)  # (B, T, N)
            flat_mean = mean.reshape(-1, cfg.joints, 3)
            flat_truth = truth.reshape(-1, cfg.joints, 3)
            aligned = procrustes_align(flat_mean, flat_truth)
            r = rows[kind]
            r.setdefault("err", []).append(err[..., 1:].ravel())
            r.setdefault("pa", []).append(per_joint_error(aligned, flat_truth).ravel())
            r.setdefault("best", []).append(per_hyp.min(axis=2).ravel())
            r.setdefault("spread", []).append(spread[..., 1:].ravel())
            r.setdefault("vel", []).append(per_joint_error(np.diff(mean, axis=1),
                                                           np.diff(truth, axis=1)).ravel())
            if kind == "diffpose":
                hyp_h = _run(model, batch, n, seed + b0, scores=sc_h, xy=xy_h, steps=steps,
                             eta=eta)
                mean_h = hyp_h.mean(axis=2)
                spread_h = np.sqrt(((hyp_h - mean_h[:, :, None]) ** 2).sum(-1).mean(2))
                sel = np.arange(len(hidden))
                r.setdefault("hidden_spread", []).append(spread_h[sel, :, hidden].ravel())
                r.setdefault("visible_spread", []).append(spread[sel, :, hidden].ravel())
                r.setdefault("hidden_err", []).append(
                    per_joint_error(mean_h, truth)[sel, :, hidden].ravel())
                r.setdefault("visible_err", []).append(err[sel, :, hidden].ravel())

    report: dict[str, Any] = {"windows": windows, "frames": frames, "hypotheses": hypotheses,
                              "steps": cfg.sample_steps if steps is None else steps,
                              "eta": cfg.eta if eta is None else eta, "split": split,
                              "seed": seed,
                              "validation_clips": len(val),
                              "stature_chain_ratio": stature_chain_ratio(
                                  [c.positions.astype(np.float64) for c in clips])}
    for kind, r in rows.items():
        cat = {k: np.concatenate(v) for k, v in r.items()}
        m: dict[str, float] = {
            "mpjpe_mm": 1000 * float(cat["err"].mean()),
            "p_mpjpe_mm": 1000 * float(cat["pa"].mean()),
            "best_of_n_mm": 1000 * float(cat["best"].mean()),
            "velocity_mm_per_frame": 1000 * float(cat["vel"].mean()),
            "frames_per_s": frames / max(timing[kind], 1e-9),
        }
        if kind == "diffpose":
            e, s = cat["err"], cat["spread"]
            m.update({
                "spread_error_spearman": spearman(s, e),
                "within_1_spread": float((e <= s).mean()),
                "within_2_spread": float((e <= 2 * s).mean()),
                "mean_spread_mm": 1000 * float(s.mean()),
                "hidden_spread_mm": 1000 * float(cat["hidden_spread"].mean()),
                "visible_spread_mm": 1000 * float(cat["visible_spread"].mean()),
                "hidden_over_visible": float(cat["hidden_spread"].mean()
                                             / max(cat["visible_spread"].mean(), 1e-12)),
                "hidden_joint_mpjpe_mm": 1000 * float(cat["hidden_err"].mean()),
                "visible_joint_mpjpe_mm": 1000 * float(cat["visible_err"].mean()),
            })
        report[kind] = m
    return report


def format_report(report: dict[str, Any]) -> str:
    d, b = report["diffpose"], report["baseline"]
    lines = [
        f"{'Validation' if report['split'] == 'val' else 'Training'} subjects, "
        f"{report['windows']} windows / {report['frames']} frames, "
        f"synthetic cameras + detector-like 2D noise, seed {report['seed']}",
        f"DiffPose: N = {report['hypotheses']} hypotheses, K = {report['steps']} steps, "
        f"eta = {report['eta']}",
        "",
        "| model | MPJPE (mm) | P-MPJPE (mm) | best-of-N MPJPE (mm) | velocity err (mm/frame) |",
        "|---|---|---|---|---|",
        f"| DiffPose (mean of N) | {d['mpjpe_mm']:.1f} | {d['p_mpjpe_mm']:.1f} | "
        f"{d['best_of_n_mm']:.1f} | {d['velocity_mm_per_frame']:.2f} |",
        f"| Baseline (deterministic) | {b['mpjpe_mm']:.1f} | {b['p_mpjpe_mm']:.1f} | - | "
        f"{b['velocity_mm_per_frame']:.2f} |",
        "",
        "| uncertainty (DiffPose) | value |",
        "|---|---|",
        f"| best-of-N below mean | {100 * (1 - d['best_of_n_mm'] / d['mpjpe_mm']):.1f} % |",
        f"| Spearman(spread, error) per joint | {d['spread_error_spearman']:.3f} |",
        f"| error within 1 spread | {100 * d['within_1_spread']:.1f} % |",
        f"| error within 2 spreads | {100 * d['within_2_spread']:.1f} % |",
        f"| mean spread | {d['mean_spread_mm']:.1f} mm |",
        f"| hidden joint spread / same joint visible | {d['hidden_over_visible']:.2f} "
        f"({d['hidden_spread_mm']:.1f} / {d['visible_spread_mm']:.1f} mm) |",
        f"| hidden joint MPJPE / same joint visible | "
        f"{d['hidden_joint_mpjpe_mm'] / max(d['visible_joint_mpjpe_mm'], 1e-9):.2f} "
        f"({d['hidden_joint_mpjpe_mm']:.1f} / {d['visible_joint_mpjpe_mm']:.1f} mm) |",
        "",
        f"Stature / bone-chain length on the training mocap: "
        f"{report['stature_chain_ratio']:.3f} (posespace.STATURE_OVER_CHAIN = "
        f"{posespace.STATURE_OVER_CHAIN})",
    ]
    return "\n".join(lines)
