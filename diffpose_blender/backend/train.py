"""`train`: DiffPose and its deterministic baseline, on the same batches, side by side.

Both models see exactly the same synthetic batches (mocap windows through random
cameras with detector-like 2D noise, DESIGN §8), with the same optimiser, learning-rate
schedule and number of iterations, so the comparison in `evaluate` is fair. The run
stops at `max_iterations` or at the wall-clock budget, whichever comes first, and writes
the weights, the config and a training summary into the output folder.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..core.errors import DiffPoseError
from .data.corpus import (DEFAULT_VAL_SUBJECTS, load_corpus, shared_data_root,
                          split_by_subjects)
from .data.synthesis import Batch, make_batch
from .model.config import TrainConfig
from .model.lifter import BaselineModel, DiffPoseModel
from .model.weights import save_config, save_model


def to_torch(batch: Batch, device: torch.device | None = None) -> tuple[torch.Tensor, ...]:
    arrays = (batch.xy, batch.scores, batch.log_scale, batch.target)
    return tuple(torch.from_numpy(a).to(device) if device is not None else
                 torch.from_numpy(a) for a in arrays)


def check_budget(minutes: float | None = None, max_iterations: int = 0,
                 threads: int = 1) -> None:
    """Refuse a training budget or thread count (as the command lines name them) that
    would write untrained weights or fail deep in torch; checked before any data loads."""
    if minutes is not None and not minutes > 0:
        raise DiffPoseError(f"--minutes {minutes:g}; expected a positive number of minutes")
    if max_iterations < 0:
        raise DiffPoseError(f"--max-iterations {max_iterations}; expected a number of "
                            f"iterations, or 0 for the default budget")
    if threads < 1:
        raise DiffPoseError(f"--threads {threads}; expected 1 or more")


def schedule_progress(cfg: TrainConfig, iteration: int, elapsed_s: float) -> float:
    """How far through its budget a run is, for the learning rate (`TrainConfig.schedule`):
    the iterations' fraction, or with "time" the larger of it and the time's."""
    done = iteration / cfg.max_iterations
    if cfg.schedule == "iterations":
        return done
    if cfg.schedule == "time":
        return max(done, elapsed_s / (cfg.minutes * 60.0))
    raise DiffPoseError(f"training schedule {cfg.schedule!r}; expected time or iterations")


def learning_rate(cfg: TrainConfig, iteration: int, progress: float) -> float:
    """Linear warm-up over 200 iterations, then cosine decay over the run's progress
    (`schedule_progress`, 0 to 1)."""
    warm = min(1.0, (iteration + 1) / 200.0)
    return cfg.learning_rate * warm * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def validation_batches(clips: list[np.ndarray], cfg: TrainConfig, count: int = 6
                       ) -> list[Batch]:
    rng = np.random.default_rng(cfg.seed + 1_000_003)
    return [make_batch(rng, clips, cfg.batch_windows, cfg.model.window) for _ in range(count)]


@torch.no_grad()
def validate(model: torch.nn.Module, batches: list[Batch],
             device: torch.device | None = None) -> float:
    """Mean pose-space MPJPE of the aggregated prediction over the validation batches."""
    model.eval()
    gen = torch.Generator().manual_seed(0)
    errors = []
    for batch in batches:
        xy, scores, log_scale, target = to_torch(batch, device)
        hyp = model.sample(xy, scores, log_scale, hypotheses=model.cfg.hypotheses,
                           steps=model.cfg.sample_steps, generator=gen)
        errors.append(float(torch.linalg.norm(hyp.mean(2) - target, dim=-1).mean()))
    model.train()
    return float(np.mean(errors))


def train(cfg: TrainConfig, out_dir: Path, cache_dir: Path,
          log: Callable[[str], None] = print) -> dict[str, object]:
    """Train on the licence-clean corpus (`cfg.sources`), validation subjects held out."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)

    t0 = time.monotonic()
    clips = load_corpus(list(cfg.sources), cache_dir, shared_root=shared_data_root())
    train_clips, val_clips = split_by_subjects(clips, DEFAULT_VAL_SUBJECTS)
    train_pos = [c.positions.astype(np.float64) for c in train_clips
                 if len(c.positions) > cfg.model.window]
    val_pos = [c.positions.astype(np.float64) for c in val_clips
               if len(c.positions) > cfg.model.window]
    n_train = sum(len(p) for p in train_pos)
    n_val = sum(len(p) for p in val_pos)
    log(f"[train] corpus: {len(train_pos)} train clips ({n_train} frames), "
        f"{len(val_pos)} validation clips ({n_val} frames); loaded in "
        f"{time.monotonic() - t0:.0f} s")
    val_batches = validation_batches(val_pos, cfg)
    return fit(cfg, out_dir,
               lambda: make_batch(rng, train_pos, cfg.batch_windows, cfg.model.window),
               val_batches, gen, {"train_frames": n_train, "validation_frames": n_val}, log)


def fit(cfg: TrainConfig, out_dir: Path, next_batch: Callable[[], Batch],
        val_batches: list[Batch], gen: torch.Generator, data_summary: dict[str, object],
        log: Callable[[str], None] = print, device: torch.device | None = None,
        config_extra: dict[str, object] | None = None) -> dict[str, object]:
    """The training loop shared by `train` and the Human3.6M benchmark: DiffPose and the
    baseline on the same batches from `next_batch`, then weights, config and history
    into `out_dir`.

    The models are built here, from torch's global generator (seeded by the caller).
    `device` (default CPU) holds the models and batches; every random draw (batches on
    the CPU in numpy, the diffusion noise from `gen`, a CPU generator) is the same on
    any device, so a seed means the same training data on a GPU as on the CPU.
    """
    device = torch.device("cpu") if device is None else device
    models: dict[str, torch.nn.Module] = {"diffpose": DiffPoseModel(cfg.model).to(device),
                                          "baseline": BaselineModel(cfg.model).to(device)}
    optims = {name: torch.optim.AdamW(m.parameters(), lr=cfg.learning_rate,
                                      weight_decay=cfg.weight_decay)
              for name, m in models.items()}
    for name, m in models.items():
        log(f"[train] {name}: {sum(p.numel() for p in m.parameters()):,} parameters")

    budget_s = cfg.minutes * 60.0
    start = time.monotonic()
    history: list[dict[str, float]] = []
    running: dict[str, float] = {}
    iteration = 0
    while iteration < cfg.max_iterations:
        elapsed = time.monotonic() - start
        if elapsed > budget_s:
            break
        lr = learning_rate(cfg, iteration, schedule_progress(cfg, iteration, elapsed))
        batch = to_torch(next_batch(), device)
        for name, model in models.items():
            for group in optims[name].param_groups:
                group["lr"] = lr
            loss, parts = model.loss(*batch, generator=gen)   # type: ignore[operator]
            optims[name].zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optims[name].step()
            running[name] = 0.98 * running.get(name, parts["pose"]) + 0.02 * parts["pose"]
        iteration += 1
        if iteration % 250 == 0 or iteration == 1:
            row = {"iteration": iteration, "minutes": (time.monotonic() - start) / 60.0,
                   "lr": lr, **{f"train_{k}": v for k, v in running.items()}}
            if iteration % 1000 == 0:
                row.update({f"val_{k}": validate(m, val_batches, device)
                            for k, m in models.items()})
            history.append(row)
            log("[train] " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in row.items()))
            sys.stdout.flush()

    minutes = (time.monotonic() - start) / 60.0
    final = {f"val_{k}": validate(m, val_batches, device) for k, m in models.items()}
    log(f"[train] done: {iteration} iterations in {minutes:.1f} min; " +
        " ".join(f"{k}={v:.4f}" for k, v in final.items()))
    summary = {"iterations": iteration, "minutes": minutes, **data_summary,
               "final_validation_pose_space_mpjpe": final,
               "torch": torch.__version__, "threads": cfg.threads,
               "device": device.type if device.type == "cpu" else
               f"{device.type} ({torch.cuda.get_device_name(device)})"}
    cfg_dict = asdict(cfg)
    save_config(out_dir, cfg.model, {"train": cfg_dict, "summary": summary,
                                     **(config_extra or {})})
    for model in models.values():
        save_model(out_dir, model)
    with open(out_dir / "train_history.json", "w", encoding="utf-8") as fh:
        json.dump(history, fh, indent=1)
    return summary
