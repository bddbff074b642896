"""Temporal smoothing of a take (SciPy; runs in the backend, never inside Blender).

What is smoothed, and in which frame of reference:

- the root-relative pose: every hypothesis ``hypotheses (T, N, J, 3)`` (camera metres,
  root-relative) is smoothed over time with the *same* linear filter, so the mean of the
  smoothed hypotheses is exactly the smoothed mean and `Take.pose` keeps meaning "the
  mean". `spread` is recomputed from the smoothed hypotheses (`compute_spread`);
- the global trajectory ``root_cam (T, 3)`` (camera metres), separately, with its own
  cutoff (`SmoothOptions.trajectory_cutoff_hz`): the root depth comes from a different
  estimate (the subject's height and 2D scale) with its own noise;
- bone lengths: after filtering, each bone gets one length for the whole clip (the
  median of its length over the valid frames of the smoothed mean pose), set from the
  root outward along the bone's smoothed direction. That is a non-linear correction, so
  it is computed on the mean pose and applied to every hypothesis as the same per-frame
  shift of each joint (the mean moves by exactly that shift).

Methods (``--method``):

``none``         nothing changes (bone lengths included) except ``params["smoothing"]``.
``butterworth``  zero-phase low-pass: a Butterworth filter of order `BUTTER_ORDER` run
                 forward and backward (``scipy.signal.sosfiltfilt``). The cutoff is in Hz
                 and turned into a fraction of the take's Nyquist frequency with its fps;
                 run twice, the gain at the cutoff is 0.5.
``savgol``       Savitzky-Golay: a local polynomial of order `SAVGOL_POLYORDER` fitted
                 over ``window`` frames (odd); keeps peaks better than a low-pass of
                 similar noise reduction, smooths less.
``spline``       uncertainty-weighted smoothing spline
                 (``scipy.interpolate.make_smoothing_spline``), one per joint, time in
                 seconds. Each frame's weight is ``(SPREAD_FLOOR_M² + spread²)^-strength``
                 from that joint's spread, divided by the median weight of the take, so
                 confident frames pull the curve to themselves and uncertain frames
                 follow their neighbours; ``strength`` 0 gives equal weights. The penalty
                 ``lam = fps / (2π cutoff)⁴`` gives a frame of median weight the same 0.5
                 gain at ``cutoff`` Hz as the Butterworth filter (the spline's transfer
                 function is ``1 / (1 + lam ω⁴ / fps)`` on evenly spaced frames).

Frames: only valid frames are smoothed, and each run of consecutive valid frames on its
own (an invalid frame has no pose to average with; gaps the lifter bridged are valid and
take part, with their larger spread). Invalid frames keep their zeros. A run shorter than
the method needs (`min_run_frames`) is left as it is (bone lengths still apply) and
counted in ``params["smoothing"]["unsmoothed_runs"]``; if no run is long enough,
`smooth_take` raises `DiffPoseError` saying how many frames were needed.

Defaults (`DEFAULT_OPTIONS`): the uncertainty-weighted spline at 4 Hz, the trajectory at
2 Hz, bone lengths fixed. Chosen with ``bench/smoothing.py`` on walking, dance and sport
clips lifted by the bundled model from noisy synthetic 2D (mean joint acceleration; the
ground truth's own is 6.6 / 8.4 / 5.3 m/s²):

    walking / dance / sport   jitter (m/s²)        MPJPE (mm)
    no smoothing              72 / 85 / 70         95.1 / 111.0 / 84.8
    spline 4 Hz (default)     7.7 / 10.4 / 7.1     88.7 / 101.3 / 79.4
    spline 6 Hz               14 / 18 / 14         89.6 / 102.5 / 80.0
    butterworth 4 Hz          7.1 / 10.4 / 6.3     89.0 / 101.7 / 79.3

4 Hz brings the jitter down to about the real motion's; its error is within 0.6 mm of
the lowest measured (Savitzky-Golay over 15 frames, which distorts clean motion twice as
much). On clean ground truth the default moves joints by 2.9 / 4.5 / 4.3 mm on average
(the price paid on real fast motion; use ``--cutoff 6`` or 8 for fast sport when the
input is clean). Fixing bone lengths lowers the error by 1-2 mm on lifted takes (whose
errors are shared along a limb); on independent per-joint noise it raises it by about as
much, since each joint then inherits its parents' errors. The spread weights matter
little on the bundled model's takes (its per-frame spread tracks its error only
loosely) and a lot where the spread is informative (28.7 vs 36.4 mm on the bench's
synthetic noise). The trajectory's 2 Hz leaves its jitter at the real root's level (the
depth estimate is the noisy part); its error is dominated by the monocular depth bias,
which no filter removes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.interpolate import make_smoothing_spline
from scipy.signal import butter, savgol_filter, sosfiltfilt

from ..core.errors import DiffPoseError
from ..core.skeleton import Skeleton, SKELETON
from ..core.take import Take, compute_spread

METHODS: tuple[str, ...] = ("none", "butterworth", "savgol", "spline")
#: Butterworth order of one pass (sosfiltfilt runs it twice: effective order 8).
BUTTER_ORDER = 4
#: Savitzky-Golay polynomial order: 2 would flatten the peaks of fast motion more.
SAVGOL_POLYORDER = 3
#: Spread below which the spline treats all frames as equally sure (metres): the model's
#: spread on clean 2D rarely goes below a centimetre, and 1/0 must not happen at N = 1.
SPREAD_FLOOR_M = 0.01
#: Fewest frames make_smoothing_spline accepts.
SPLINE_MIN_FRAMES = 5


@dataclass(frozen=True)
class SmoothOptions:
    """How to smooth a take.

    method               one of `METHODS`.
    cutoff_hz            butterworth and spline: where the gain is 0.5 (Hz).
    trajectory_cutoff_hz the same for ``root_cam``; None: `cutoff_hz`.
    window               savgol: window length in frames (odd, > `SAVGOL_POLYORDER`);
                         None: the odd frame count nearest `SAVGOL_WINDOW_S` seconds.
    strength             spline: exponent of the uncertainty weights (0: equal weights,
                         1: inverse variance).
    bone_lengths         make each bone's length constant over the clip.
    """

    method: str = "spline"
    cutoff_hz: float = 4.0
    trajectory_cutoff_hz: float | None = 2.0
    window: int | None = None
    strength: float = 1.0
    bone_lengths: bool = True


#: Savitzky-Golay default window, seconds (9 frames at 30 fps).
SAVGOL_WINDOW_S = 0.3
DEFAULT_OPTIONS = SmoothOptions()


def savgol_window(options: SmoothOptions, fps: float) -> int:
    """The Savitzky-Golay window in frames for this take's fps (odd)."""
    if options.window is not None:
        return options.window
    w = max(SAVGOL_POLYORDER + 2, int(round(SAVGOL_WINDOW_S * fps)))
    return w if w % 2 else w + 1


def min_run_frames(options: SmoothOptions, fps: float) -> int:
    """Fewest consecutive valid frames the method can smooth (1 for ``none``)."""
    if options.method == "butterworth":
        # sosfiltfilt pads each end by 3 * (2 * sections + 1) frames and needs more
        # frames than that; order 4 -> 2 sections -> 15, so 16 frames.
        sections = math.ceil(BUTTER_ORDER / 2)
        return 3 * (2 * sections + 1) + 1
    if options.method == "savgol":
        return savgol_window(options, fps)
    if options.method == "spline":
        return SPLINE_MIN_FRAMES
    return 1


def check_options(options: SmoothOptions, fps: float) -> None:
    """Raise `DiffPoseError` naming the option that cannot work at `fps`."""
    if options.method not in METHODS:
        raise DiffPoseError(f"smoothing method {options.method!r}; expected one of "
                            f"{', '.join(METHODS)}")
    nyquist = fps / 2.0
    for name, value in (("cutoff", options.cutoff_hz),
                        ("trajectory cutoff", options.trajectory_cutoff_hz)):
        if value is None or options.method not in ("butterworth", "spline"):
            continue
        if not (math.isfinite(value) and 0.0 < value < nyquist):
            raise DiffPoseError(f"{name} {value} Hz; expected above 0 and below the "
                                f"take's Nyquist frequency, {nyquist:g} Hz at {fps:g} fps")
    if options.method == "savgol":
        w = savgol_window(options, fps)
        if w % 2 == 0 or w <= SAVGOL_POLYORDER:
            raise DiffPoseError(f"savgol window {w} frames; expected an odd number above "
                                f"the polynomial order {SAVGOL_POLYORDER}")
    if options.method == "spline" and not (math.isfinite(options.strength)
                                           and options.strength >= 0):
        raise DiffPoseError(f"strength {options.strength}; expected a number >= 0")


def valid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame ranges of consecutive True values in valid (T,)."""
    v = np.concatenate([[False], np.asarray(valid, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(v.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def smooth_take(take: Take, options: SmoothOptions = DEFAULT_OPTIONS,
                skeleton: Skeleton = SKELETON) -> Take:
    """A new take with smoothed hypotheses, pose, spread and root_cam (see module
    docstring); the input is not modified. ``params["smoothing"]`` records what was done.

    Raises `DiffPoseError` for bad options, non-finite values (naming frame and joint) or a
    take whose longest run of valid frames is shorter than the method needs.
    """
    fps = float(take.fps)
    check_options(options, fps)
    _check_finite(take)
    if tuple(take.joint_names) != tuple(skeleton.names):
        raise DiffPoseError(f"take joints {list(take.joint_names)} are not the skeleton's "
                            f"{list(skeleton.names)}; cannot fix bone lengths")
    hyp = np.asarray(take.hypotheses, dtype=np.float64).copy()     # (T, N, J, 3)
    root = np.asarray(take.root_cam, dtype=np.float64).copy()      # (T, 3)
    spread = np.asarray(take.spread, dtype=np.float64)             # (T, J)
    runs = valid_runs(take.valid)
    need = min_run_frames(options, fps)
    longest = max(b - a for a, b in runs)
    if options.method != "none" and longest < need:
        raise DiffPoseError(
            f"take of {take.num_frames} frames: its longest run of valid frames is "
            f"{longest}, but {options.method} smoothing needs at least {need} "
            f"(use --method none, or a shorter --window for savgol)")

    unsmoothed = 0
    if options.method != "none":
        weights = _spline_weights(spread, take.valid, options.strength)
        traj = dataclasses.replace(
            options, cutoff_hz=options.trajectory_cutoff_hz or options.cutoff_hz)
        for a, b in runs:
            if b - a < need:
                unsmoothed += 1
                continue
            hyp[a:b] = _filter(hyp[a:b], fps, options, weights[a:b])
            root[a:b] = _filter(root[a:b], fps, traj, None)
        hyp[:, :, 0, :] = 0.0  # root-relative: the filters keep 0 up to rounding

    lengths = None
    if options.bone_lengths and options.method != "none":
        mean = hyp.mean(axis=1)
        lengths = bone_lengths(mean, take.valid, skeleton)
        shift = _constant_length_shift(mean, lengths, skeleton)   # (T, J, 3)
        shift[~take.valid] = 0.0
        hyp += shift[:, None]

    params = dict(take.params)
    record: dict[str, Any] = {"method": options.method,
                              "bone_lengths": lengths is not None,
                              "unsmoothed_runs": unsmoothed, "runs": len(runs)}
    if options.method in ("butterworth", "spline"):
        record["cutoff_hz"] = options.cutoff_hz
        record["trajectory_cutoff_hz"] = options.trajectory_cutoff_hz or options.cutoff_hz
    if options.method == "butterworth":
        record["order"] = BUTTER_ORDER
    if options.method == "savgol":
        record["window"] = savgol_window(options, fps)
        record["polyorder"] = SAVGOL_POLYORDER
    if options.method == "spline":
        record["strength"] = options.strength
        record["spread_floor_m"] = SPREAD_FLOOR_M
    if lengths is not None:
        record["bone_lengths_m"] = {skeleton.names[c]: round(float(x), 5)
                                    for (_, c), x in zip(skeleton.bones, lengths)}
    params["smoothing"] = record

    hyp32 = hyp.astype(np.float32)
    out = dataclasses.replace(
        take, hypotheses=hyp32,
        pose=hyp32.mean(axis=1, dtype=np.float64).astype(np.float32),
        spread=compute_spread(hyp32).astype(np.float32),
        root_cam=root, params=params)
    return out.validate()


def _check_finite(take: Take) -> None:
    """NaN or inf in the 3D arrays: name the first frame and joint."""
    for key, axes in (("hypotheses", "tnj"), ("spread", "tj"), ("root_cam", "t")):
        bad = np.argwhere(~np.isfinite(np.asarray(getattr(take, key))))
        if len(bad):
            idx = bad[0]
            where = [f"frame {idx[0]}"]
            if "j" in axes:
                where.append(f"joint '{take.joint_names[idx[axes.index('j')]]}'")
            raise DiffPoseError(f"take: key '{key}', {', '.join(where)}: expected finite "
                                f"numbers before smoothing, got "
                                f"{np.asarray(getattr(take, key))[tuple(idx)]}")


def _spline_weights(spread: np.ndarray, valid: np.ndarray, strength: float) -> np.ndarray:
    """(T, J) weights from spread (T, J) metres, median 1 over valid frames."""
    w = (SPREAD_FLOOR_M ** 2 + spread ** 2) ** (-strength)
    med = np.median(w[valid]) if valid.any() else 1.0
    return w / med


def _filter(x: np.ndarray, fps: float, options: SmoothOptions,
            weights: np.ndarray | None) -> np.ndarray:
    """Smooth x (n, ...) along axis 0 (one run of valid frames). `weights` (n, J) are the
    spline's per-joint weights for x (n, N, J, 3); None means equal weights."""
    n = x.shape[0]
    if options.method == "butterworth":
        sos = butter(BUTTER_ORDER, options.cutoff_hz, fs=fps, output="sos")
        return np.asarray(sosfiltfilt(sos, x, axis=0))
    if options.method == "savgol":
        # mode="interp" fits the end windows instead of padding with made-up samples.
        return np.asarray(savgol_filter(x, savgol_window(options, fps), SAVGOL_POLYORDER,
                                        axis=0, mode="interp"))
    t = np.arange(n) / fps
    lam = fps / (2.0 * math.pi * options.cutoff_hz) ** 4
    if weights is None:
        return np.asarray(make_smoothing_spline(t, x, lam=lam, axis=0)(t))
    out = np.empty_like(x)
    for j in range(x.shape[2]):
        # One spline per joint: the weights differ by joint, the hypotheses and the
        # three coordinates of a joint share them (so the mean stays the mean).
        out[:, :, j] = make_smoothing_spline(t, x[:, :, j], w=weights[:, j], lam=lam,
                                             axis=0)(t)
    return out


def bone_lengths(pose: np.ndarray, valid: np.ndarray, skeleton: Skeleton = SKELETON
                 ) -> np.ndarray:
    """Median length (B,) metres of each bone of `skeleton.bones` over the valid frames of
    pose (T, J, 3)."""
    parents = np.array([p for p, _ in skeleton.bones])
    children = np.array([c for _, c in skeleton.bones])
    lengths = np.linalg.norm(pose[:, children] - pose[:, parents], axis=-1)  # (T, B)
    return np.median(lengths[np.asarray(valid, dtype=bool)], axis=0)


def _constant_length_shift(pose: np.ndarray, lengths: np.ndarray, skeleton: Skeleton
                           ) -> np.ndarray:
    """Per-frame shift (T, J, 3) that gives pose (T, J, 3) the bone `lengths` (B,): each
    child is moved along its bone's direction, parents first, so a child inherits its
    parent's shift. A zero-length bone keeps its direction undefined: it is left alone."""
    fixed = pose.copy()
    for (p, c), length in zip(skeleton.bones, lengths):
        d = pose[:, c] - pose[:, p]
        norm = np.linalg.norm(d, axis=-1, keepdims=True)
        unit = np.where(norm > 1e-9, d / np.maximum(norm, 1e-9), 0.0)
        fixed[:, c] = np.where(norm > 1e-9, fixed[:, p] + unit * length,
                               fixed[:, p] + d)
    return fixed - pose
