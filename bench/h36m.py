#!/usr/bin/env python3
"""Human3.6M benchmark: the DiffPose paper's table, ours measured beside the published.

    python bench/h36m.py -o runs/h36m-cpu [--setting cpu|gpu] [--max-iterations I]
                         [--minutes M] [--device auto|cpu|cuda] [--cache cache/mocap]
                         [--seed 0] [--evaluate-only]

One command from the shared data to the table: trains DiffPose and the deterministic
baseline on S1, S5, S6, S7, S8 twice (ground-truth 2D and detector-like noisy 2D, the
two columns of the paper's table), then evaluates both pairs on S9 and S11 through all
four cameras and prints the table (`backend.benchmark.format_table`). Rows: DiffPose's
mean of N, its best of N (an oracle), its joint-wise reprojection aggregation (JPMA, as
in D3DP), and the baseline; columns: MPJPE and P-MPJPE (mm) per 2D input, frames/s.

The weights are Human3.6M-derived (research and non-commercial only): they go to the
folder given with -o, which may not be under bundled_models/, and are never shipped.
``--evaluate-only`` reuses the weights already in that folder. The report is also
written as ``<folder>/report.json`` and the table as ``<folder>/table.md``.

Settings (backend/benchmark.py `SETTINGS`): ``cpu`` about 40 minutes on a free 2-core
CPU (smaller model, 1,800 training iterations per 2D input, every 4th test window);
``gpu`` a larger model, longer training, every test window. The training budget is a
number of iterations, so a rerun trains the same on a free or a busy machine;
``--max-iterations`` overrides it (to measure what a longer run buys) and ``--minutes``
the setting's wall-clock cap per 2D input.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffpose_blender.backend import benchmark  # noqa: E402
from diffpose_blender.backend.lift import resolve_device  # noqa: E402
from diffpose_blender.backend.train import check_budget  # noqa: E402
from diffpose_blender.core.errors import exit_code  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", required=True,
                        help="run folder for the weights (not under bundled_models/)")
    parser.add_argument("--setting", choices=sorted(benchmark.SETTINGS), default="cpu")
    parser.add_argument("--max-iterations", type=int, default=0,
                        help="training iterations per 2D input (default: the setting's)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="wall-clock cap on training per 2D input (default: the "
                             "setting's)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--cache", default=str(ROOT / "cache" / "mocap"),
                        help="parsed-mocap cache folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="reuse the weights in the run folder")
    args = parser.parse_args(argv)

    def run() -> int:
        check_budget(args.minutes, args.max_iterations, threads=args.threads)
        out = benchmark.check_output_dir(args.output)
        device = resolve_device(args.device)
        setting = benchmark.setting_with(args.setting, args.minutes, args.max_iterations)
        start = time.monotonic()
        if not args.evaluate_only:
            benchmark.train_benchmark(out, setting, args.cache, device, seed=args.seed,
                                      threads=args.threads,
                                      log=lambda m: print(m, file=sys.stderr, flush=True))
        report = benchmark.evaluate_benchmark(
            out, args.cache, device, setting, seed=args.seed, threads=args.threads,
            log=lambda m: print(m, file=sys.stderr, flush=True))
        report["wall_minutes"] = (time.monotonic() - start) / 60.0
        report["machine"] = f"{platform.processor() or platform.machine()}, " \
                            f"{platform.system()}, python {platform.python_version()}"
        table = benchmark.format_table(report)
        (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
        (out / "table.md").write_text(table + "\n", encoding="utf-8")
        print(table)
        budget = ("" if not args.max_iterations
                  else f" --max-iterations {args.max_iterations}") \
            + ("" if args.minutes is None else f" --minutes {args.minutes:g}")
        print(f"\ncommand: python bench/h36m.py -o {args.output} --setting {args.setting}"
              f"{budget}{' --evaluate-only' if args.evaluate_only else ''}; "
              f"{report['wall_minutes']:.1f} min wall clock on {report['machine']}, "
              f"device {report['device']}")
        return 0

    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
