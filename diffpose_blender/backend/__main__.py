"""Command line of the backend (DESIGN §7).

    python -m diffpose_blender.backend detect VIDEO -o keypoints.npz [--max-frames N]
    python -m diffpose_blender.backend lift INPUT|VIDEO -o take.npz [--hypotheses N] [--steps K]
                                       [--seed S] [--device auto|cpu|cuda]
                                       [--fov DEG | --focal-px F] [--height M]
    python -m diffpose_blender.backend smooth TAKE -o TAKE [--method none|butterworth|savgol|spline]
                                       [--cutoff HZ] [--trajectory-cutoff HZ] [--window N]
                                       [--strength S] [--keep-bone-lengths]
    python -m diffpose_blender.backend train [--minutes M] -o bundled_models/NAME
    python -m diffpose_blender.backend evaluate [--model NAME]
    python -m diffpose_blender.backend train --benchmark h36m [--setting cpu|gpu] -o RUN
    python -m diffpose_blender.backend evaluate --benchmark h36m --model RUN
    python -m diffpose_blender.backend serve --stdio | --listen HOST:PORT --token-file F

Exit codes: 0 done, 2 bad input (the message names what and where), 1 anything else.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..core.errors import DiffPoseError, exit_code


def _progress_bar(label: str):  # type: ignore[no-untyped-def]
    start = time.monotonic()

    def show(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        rate = done / max(time.monotonic() - start, 1e-9)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{done}/{total} frames ({rate:.0f}/s)")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _max_frames(args: argparse.Namespace) -> int | None:
    """--max-frames as `detect_video` takes it: None for all frames (0)."""
    if args.max_frames < 0:
        raise DiffPoseError(f"--max-frames {args.max_frames}; expected 0 (all frames) or "
                            f"more")
    return args.max_frames or None


def _detect(video: str, max_frames: int | None = None):  # type: ignore[no-untyped-def]
    """The detector on `video`, with a progress bar on stderr; returns `Keypoints2D`."""
    from .detect import detect_video

    kp = detect_video(video, progress=_progress_bar("detect"), max_frames=max_frames)
    print(f"detect: person in {int(kp.valid.sum())} of {kp.num_frames} frames, "
          f"{kp.fps:.3f} fps, {kp.image_size[0]}x{kp.image_size[1]} px", file=sys.stderr)
    return kp


def cmd_detect(args: argparse.Namespace) -> int:
    from ..core.formats import write_keypoints_npz

    kp = _detect(args.video, _max_frames(args))
    write_keypoints_npz(args.output, kp)
    print(f"wrote {args.output}: {kp.num_frames} frames, {int(kp.valid.sum())} with a person")
    return 0


def cmd_lift(args: argparse.Namespace) -> int:
    from ..core.formats import read_keypoints
    from ..core.media import VIDEO_EXTENSIONS
    from ..core.resources import bundled_model
    from ..core.take import write_take
    from .lift import Lifter, LiftOptions

    if str(args.input).lower().endswith(VIDEO_EXTENSIONS):
        # A video is detected first; the take's 2D input is exactly `detect`'s output,
        # heatmap mixtures included (they reach the model through Lifter._gmm).
        if args.fps is not None:
            raise DiffPoseError.at(args.input, "--fps", expected="a video carries its own "
                                   "frame times; --fps is for keypoint files without one")
        kp = _detect(args.input, _max_frames(args))
    else:
        if args.max_frames:
            raise DiffPoseError.at(args.input, "--max-frames", expected="--max-frames is for "
                                   "video input; a keypoint file is lifted whole")
        kp = read_keypoints(args.input, fps=args.fps)
    lifter = Lifter(bundled_model(args.model), kind=args.kind, device=args.device)
    options = LiftOptions(hypotheses=args.hypotheses, steps=args.steps, seed=args.seed,
                          device=args.device, focal_px=args.focal_px, fov_deg=args.fov,
                          subject_height_m=args.height)
    take = lifter.lift(kp, options, progress=_progress_bar("lift"))
    write_take(args.output, take)
    print(f"wrote {args.output}: {take.num_frames} frames, {take.num_hypotheses} "
          f"hypotheses, {int(take.valid.sum())} frames with a pose")
    return 0


def cmd_smooth(args: argparse.Namespace) -> int:
    from ..core.take import read_take, write_take
    from .smooth import SmoothOptions, smooth_take

    take = read_take(args.take)
    options = SmoothOptions(
        method=args.method, cutoff_hz=args.cutoff,
        trajectory_cutoff_hz=args.trajectory_cutoff, window=args.window,
        strength=args.strength, bone_lengths=not args.keep_bone_lengths)
    try:
        out = smooth_take(take, options)
    except DiffPoseError as exc:
        raise DiffPoseError(f"{args.take}: {exc}") from None
    write_take(args.output, out)
    rec = out.params["smoothing"]
    print(f"wrote {args.output}: {rec['method']} smoothing of {take.num_frames} frames "
          f"({rec['runs']} runs of valid frames, {rec['unsmoothed_runs']} too short)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .model.config import ModelConfig, TrainConfig, model_changes
    from .train import check_budget, train

    check_budget(args.minutes, args.max_iterations, args.threads)
    changes = model_changes(args.set)
    if args.inputs is not None and not args.benchmark:
        raise DiffPoseError(f"--inputs {args.inputs}: only with --benchmark (the shipped "
                            "model trains on one corpus)")
    if args.benchmark:
        from .benchmark import INPUTS, setting_with, train_benchmark
        from .lift import resolve_device

        setting = setting_with(args.setting, args.minutes, args.max_iterations, changes)
        inputs = INPUTS if args.inputs in (None, "both") else (args.inputs,)
        summaries = train_benchmark(args.output, setting, Path(args.cache),
                                    resolve_device(args.device), seed=args.seed,
                                    threads=args.threads, inputs=inputs)
        print(summaries)
        return 0

    cfg = TrainConfig(model=replace(ModelConfig(), **changes),
                      minutes=100.0 if args.minutes is None else args.minutes,
                      seed=args.seed, threads=args.threads)
    if args.max_iterations:
        cfg.max_iterations = args.max_iterations
    summary = train(cfg, Path(args.output), Path(args.cache))
    print(summary)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..core.resources import bundled_model
    from .evaluate import evaluate, format_report

    from .train import check_budget

    check_budget(threads=args.threads)
    if args.benchmark:
        from .benchmark import SETTINGS, evaluate_benchmark, format_table
        from .lift import resolve_device

        report = evaluate_benchmark(args.model, Path(args.cache), resolve_device(args.device),
                                    SETTINGS[args.setting] if args.setting else None,
                                    seed=args.seed, threads=args.threads)
        print(format_table(report))
        return 0

    report = evaluate(bundled_model(args.model), Path(args.cache), windows=args.windows,
                      hypotheses=args.hypotheses, seed=args.seed, split=args.split,
                      steps=args.steps, eta=args.eta)
    print(format_report(report))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ..client.protocol import read_token_file
    from .serve import serve_stdio, serve_tcp

    if args.stdio:
        return serve_stdio(args.device)
    host, sep, port = args.listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise DiffPoseError(f"--listen {args.listen!r}; expected HOST:PORT, for example "
                            f"127.0.0.1:8765")
    if not args.token_file:
        raise DiffPoseError("--listen needs --token-file: a file holding the shared secret")
    return serve_tcp(host.strip("[]"), int(port), read_token_file(args.token_file),
                     args.device)


def build_parser() -> argparse.ArgumentParser:
    from ..core.resources import DEFAULT_MODEL

    parser = argparse.ArgumentParser(prog="python -m diffpose_blender.backend",
                                     description="DiffPose backend: detect, lift, smooth, "
                                                 "train, evaluate")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("detect", help="video -> 2D keypoints (.npz) with BlazePose")
    p.add_argument("video", help="video file (.mp4, .mov, .avi, ...)")
    p.add_argument("-o", "--output", required=True, help="keypoint file to write (.npz)")
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: all)")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("lift", help="2D keypoints or a video -> take (3D hypotheses)")
    p.add_argument("input", help="video, COCO JSON, OpenPose folder, VideoPose3D or "
                                 "keypoint .npz")
    p.add_argument("--max-frames", type=int, default=0,
                   help="video input: stop after N frames (0: all)")
    p.add_argument("-o", "--output", required=True, help="take file to write (.npz)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="bundled model name or folder")
    p.add_argument("--kind", default="diffpose", choices=("diffpose", "baseline"))
    p.add_argument("--hypotheses", type=int, default=5, help="N hypotheses per frame")
    p.add_argument("--steps", type=int, default=None, help="denoising steps K")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fov", type=float, default=None, help="horizontal field of view, deg")
    g.add_argument("--focal-px", type=float, default=None, help="focal length in pixels")
    p.add_argument("--fps", type=float, default=None, help="frame rate if the file lacks it")
    p.add_argument("--height", type=float, default=1.70, help="subject height in metres")
    p.set_defaults(func=cmd_lift)

    from .smooth import DEFAULT_OPTIONS, METHODS

    d = DEFAULT_OPTIONS
    p = sub.add_parser("smooth", help="smooth a take over time (writes a new take)")
    p.add_argument("take", help="take file (.npz) to read")
    p.add_argument("-o", "--output", required=True, help="take file to write (may be the "
                                                         "same path)")
    p.add_argument("--method", default=d.method, choices=METHODS,
                   help=f"default {d.method}")
    p.add_argument("--cutoff", type=float, default=d.cutoff_hz,
                   help=f"butterworth/spline cutoff in Hz (default {d.cutoff_hz})")
    p.add_argument("--trajectory-cutoff", type=float, default=d.trajectory_cutoff_hz,
                   help=f"cutoff for the root trajectory in Hz (default "
                        f"{d.trajectory_cutoff_hz})")
    p.add_argument("--window", type=int, default=d.window,
                   help="savgol window in frames, odd (default: 0.3 s worth)")
    p.add_argument("--strength", type=float, default=d.strength,
                   help=f"spline: how much the spread lowers a frame's weight, 0 = not "
                        f"at all (default {d.strength})")
    p.add_argument("--keep-bone-lengths", action="store_true",
                   help="do not make bone lengths constant over the clip")
    p.set_defaults(func=cmd_smooth)

    p = sub.add_parser("train", help="train DiffPose and the baseline on the mocap corpus")
    p.add_argument("-o", "--output", required=True, help="model folder to write")
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-clock budget (default 100; with --benchmark: the setting's "
                        "cap, per 2D input)")
    p.add_argument("--max-iterations", type=int, default=0,
                   help="iteration budget (with --benchmark: per 2D input; default the "
                        "setting's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", default="cache/mocap", help="parsed-mocap cache folder")
    p.add_argument("--benchmark", choices=("h36m",), default=None,
                   help="train the Human3.6M benchmark models (research only; -o must be "
                        "outside bundled_models/) instead of the shipped model")
    p.add_argument("--setting", choices=("cpu", "gpu", "tiny"), default="cpu",
                   help="with --benchmark: size of the run (see backend/benchmark.py)")
    p.add_argument("--device", default="auto", help="with --benchmark: auto, cpu or cuda")
    p.add_argument("--inputs", choices=("gt", "noisy", "both"), default=None,
                   help="with --benchmark: train the models of one 2D input only (default "
                        "both), so a run can be split over shorter commands; evaluate "
                        "--benchmark needs both")
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="change a model-config key for this run (repeatable), for example "
                        "--set missing_xy_spread=true; saved in the run's config.json")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="validation metrics of a model and its baseline")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--windows", type=int, default=600, help="validation windows")
    p.add_argument("--hypotheses", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="val", choices=("val", "train"),
                   help="held-out subjects (default) or training subjects")
    p.add_argument("--steps", type=int, default=None, help="override the denoising steps")
    p.add_argument("--eta", type=float, default=None, help="override the sampling noise")
    p.add_argument("--cache", default="cache/mocap")
    p.add_argument("--benchmark", choices=("h36m",), default=None,
                   help="the Human3.6M table of a benchmark run (--model: its folder)")
    p.add_argument("--setting", choices=("cpu", "gpu", "tiny"), default=None,
                   help="with --benchmark: override the run's setting (test windows, N)")
    p.add_argument("--device", default="auto", help="with --benchmark: auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("serve", help="serve the add-on over stdio or TCP (framed protocol)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--stdio", action="store_true", help="talk on stdin/stdout (the add-on "
                                                        "starts it)")
    g.add_argument("--listen", metavar="HOST:PORT",
                   help="listen on TCP, for example 127.0.0.1:8765 (use 0.0.0.0 only on "
                        "a trusted network)")
    p.add_argument("--token-file", help="with --listen: file holding the shared secret")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exit_code(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
