#!/usr/bin/env python3
"""A cheap probe for a training change: fine-tune a trained DiffPose for a few minutes
with and without the change, then compare the two with `evaluate`.

    python bench/finetune_probe.py OUT [--model NAME] [--minutes 10] [--lr 5e-5]
                                       [--set KEY=JSON ...] [--train-only PREFIX]

Copies the model folder (default: the bundled model) to OUT, continues training its
DiffPose on the training subjects' synthetic batches (the same data as `train`; the
baseline is copied unchanged) for `--minutes` at a constant learning rate, with the model
config keys given by `--set` (for example `--set sample_loss_weight=0.3` or
`--set missing_from_regression=true`), and writes the weights and the changed config
back to OUT. Then::

    python -m diffpose_blender.backend evaluate --model OUT --split train --windows 200

A full 100-minute `train` run is the only real test of a change; this one tells in ten
minutes whether it is worth that run. Always compare against a probe run with no
`--set` at the same learning rate and minutes: continuing to train at any constant rate
moves the model by itself (the run it starts from ended with its rate decayed to 0).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffpose_blender.core.errors import DiffPoseError  # noqa: E402
from diffpose_blender.core.resources import DEFAULT_MODEL, bundled_model  # noqa: E402


def main() -> None:
    import torch

    from diffpose_blender.backend.data.corpus import subject_positions
    from diffpose_blender.backend.data.synthesis import make_batch
    from diffpose_blender.backend.model.config import TrainConfig, model_changes
    from diffpose_blender.backend.model.lifter import DiffPoseModel
    from diffpose_blender.backend.model.weights import load_model, save_model
    from diffpose_blender.backend.train import to_torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="a model config key and its value as JSON")
    ap.add_argument("--train-only", default="", metavar="PREFIX",
                    help="train only the parameters whose names start with PREFIX (for "
                         "example denoiser.var_out); the rest stays as trained")
    ap.add_argument("--cache", default=str(ROOT / "cache" / "mocap"))
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()

    try:
        changes = model_changes(args.set)
    except DiffPoseError as exc:
        ap.error(str(exc))
    src = bundled_model(args.model)
    if args.out.resolve() == src.resolve():
        ap.error("OUT must not be the model folder itself")
    torch.set_num_threads(2)
    trained, _ = load_model(src, "diffpose")
    try:
        cfg = dataclasses.replace(trained.cfg, **changes)
    except ValueError as exc:         # a combination this model's config cannot take
        ap.error(f"--set: {exc}")
    # A change may add parameters (a new head): they start fresh, the rest is loaded.
    model = DiffPoseModel(cfg)
    missing, unexpected = model.load_state_dict(trained.state_dict(), strict=False)
    if unexpected:
        ap.error(f"--set removes trained parameters: {', '.join(unexpected[:5])}")
    if missing:
        print(f"[probe] new parameters: {', '.join(missing)}", flush=True)
    if args.train_only:
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(args.train_only))
        if not any(p.requires_grad for p in model.parameters()):
            ap.error(f"--train-only {args.train_only!r}: no parameter has that prefix")
    shutil.rmtree(args.out, ignore_errors=True)
    shutil.copytree(src, args.out)
    cfg_path = args.out / "config.json"
    config = json.loads(cfg_path.read_text(encoding="utf-8"))
    config["model"].update(changes)
    config["finetune_probe"] = {"from": args.model, "minutes": args.minutes, "lr": args.lr,
                                "set": changes, "seed": args.seed,
                                "train_only": args.train_only}

    train = TrainConfig()
    pos = subject_positions(train.sources, args.cache, "train", model.cfg.window)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr,
                              weight_decay=train.weight_decay)
    model.train()
    start, iterations, running = time.monotonic(), 0, {}
    while time.monotonic() - start < args.minutes * 60.0:
        batch = to_torch(make_batch(rng, pos, train.batch_windows, model.cfg.window))
        loss, parts = model.loss(*batch, generator=gen)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad],
                                       1.0)
        optim.step()
        iterations += 1
        running = {k: 0.95 * running.get(k, v) + 0.05 * v for k, v in parts.items()}
        if iterations % 100 == 0:
            print(f"[probe] {iterations} " + " ".join(f"{k}={v:.4f}"
                                                      for k, v in running.items()), flush=True)
    config["finetune_probe"]["iterations"] = iterations
    save_model(args.out, model.eval())
    cfg_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"[probe] {iterations} iterations in {args.minutes:g} min -> {args.out}")


if __name__ == "__main__":
    main()
