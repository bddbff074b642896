"""Video -> 2D keypoints of one person on the project's joint set, with heatmap mixtures.

`detect_video` decodes every frame (`video`), follows the person (`tracking`), fits
the per-joint mixtures (`mixture`), maps BlazePose's 33 landmarks to the project's
joints (`joints`) and puts the frames on a constant-rate grid (`video.constant_rate_
frames`). Frames without a person are marked invalid (NaN keypoints, score 0, no
mixture), never invented; bridging short gaps is the lifter's job, which flags them.

Output frame of reference: image pixels, x right, y down, pixel centres at whole
numbers (see `roi`). Scores are BlazePose's visibility probabilities, lowered for
derived joints by `convert.DERIVED_SCORE_FACTOR`.

Mixtures (M = `mixture.COMPONENTS`): joints copied from a landmark get the fit to that
landmark's heatmap; derived joints (pelvis, spine, thorax, head top, hand ends) get one
isotropic component at the derived point whose variance is the frame's median heatmap
variance over the copied joints divided by DERIVED_SCORE_FACTOR² (a derived point is
less certain than the points it comes from).
"""

from __future__ import annotations

import queue
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Generator, Iterable, TypeVar

import numpy as np

from ...core.errors import DiffPoseError, PathLike
from ...core.formats.convert import DERIVED_SCORE_FACTOR, to_project
from ...core.keypoints import Keypoints2D
from ...core.skeleton import JOINT_NAMES
from .blazepose import HEATMAP_SIZE, NUM_LANDMARKS, BlazePose
from .joints import BLAZEPOSE33, copied_sources
from .mixture import COMPONENTS, fit_heatmap_mixtures, to_image
from .tracking import PoseTracker
from .video import constant_rate_frames, probe, read_frames

FORMAT_NAME = "blazepose"
ProgressFn = Callable[[int, int], None]
_T = TypeVar("_T")
#: Frames decoded ahead of the models (OpenCV decodes without holding the GIL).
PREFETCH_FRAMES = 8


def _prefetch(items: Iterable[_T], size: int = PREFETCH_FRAMES
              ) -> Generator[_T, None, None]:
    """Iterate `items` in a background thread, up to `size` ahead: video decoding then
    overlaps with inference. An exception in the producer is raised here, in order; the
    producer stops soon after the consumer does."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=size)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            box.put(("error", exc))

    thread = threading.Thread(target=produce, daemon=True, name="detect-decode")
    thread.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=5.0)


def detect_video(path: PathLike, *, progress: ProgressFn | None = None,
                 model: BlazePose | None = None, threads: int = 2,
                 max_frames: int | None = None) -> Keypoints2D:
    """Detect one person in every frame of the video at `path`.

    progress    called with (frames done, frames expected; 0 when unknown).
    model       a loaded `BlazePose` to reuse; by default one is loaded.
    max_frames  stop after this many decoded frames (for previews and tests).

    Returns a checked `Keypoints2D` (fps, image size, mixtures, and in ``extra``:
    ``landmarks_33 (T, 33, 2)`` px, ``visibility_33 (T, 33)``, ``time_s (T,)``,
    ``source_frame (T,)`` the decoded frame each output frame shows, ``from_detector
    (T,)`` whether the detector (not tracking) placed the region).
    Raises `DiffPoseError` for unusable files and when no frame has a person.
    """
    if max_frames is not None and (isinstance(max_frames, bool)
                                   or not isinstance(max_frames, (int, np.integer))
                                   or max_frames < 1):
        raise DiffPoseError(f"max_frames {max_frames!r}; expected a whole number of frames, "
                            f"1 or more (or none for the whole video)")
    info = probe(path)
    model = model or BlazePose(threads=threads)
    tracker = PoseTracker(model)
    expected = info.declared_frames or 0
    if max_frames is not None:
        expected = min(expected, max_frames) if expected else max_frames
    sources = copied_sources()                      # (J,) landmark or -1
    fitted = np.unique(sources[sources >= 0])       # landmarks whose heatmaps we fit

    times, found, from_det = [], [], []
    lm33, vis33 = [], []
    mixtures: list[Future[tuple[np.ndarray, np.ndarray, np.ndarray]] | None] = []
    M = COMPONENTS

    def fit(heatmap: np.ndarray, cells: np.ndarray, roi: Any
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        w, m_cells, c_cells = fit_heatmap_mixtures(heatmap, cells)
        m_px, c_px = to_image(m_cells, c_cells, roi, HEATMAP_SIZE)
        return w, m_px, c_px

    # Tracking needs each frame's landmarks before the next frame, the mixtures do not:
    # they are fitted in a worker thread while the next frame's models run.
    fitter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect-mixtures")
    frames = _prefetch(read_frames(info))
    size = (0, 0)
    try:
        for index, t, bgr in frames:
            if max_frames is not None and index >= max_frames:
                break
            times.append(t)
            # The decoded size, not the header's: decoders apply a rotation flag.
            size = (int(bgr.shape[1]), int(bgr.shape[0]))
            pose = tracker.step(bgr, t if np.isfinite(t)
                                else index / (info.declared_fps or 30.0))
            found.append(pose is not None)
            from_det.append(pose is not None and pose.from_detector)
            if pose is None:
                lm33.append(np.full((NUM_LANDMARKS, 2), np.nan))
                vis33.append(np.zeros(NUM_LANDMARKS))
                mixtures.append(None)
            else:
                out = pose.output
                lm33.append(pose.landmarks)
                vis33.append(out.visibility[:NUM_LANDMARKS])
                cells = out.roi.to_crop(out.xy[fitted], HEATMAP_SIZE)
                mixtures.append(fitter.submit(fit, np.array(out.heatmap[..., fitted]),
                                              cells, out.roi))
            if progress is not None:
                progress(index + 1, max(expected, index + 1))
    finally:
        frames.close()
        fitter.shutdown(wait=True)
    empty = (np.zeros((len(fitted), M)), np.full((len(fitted), M, 2), np.nan),
             np.full((len(fitted), M, 2, 2), np.nan))
    done = [f.result() if f is not None else empty for f in mixtures]
    mix_w = [d[0] for d in done]
    mix_m = [d[1] for d in done]
    mix_c = [d[2] for d in done]
    n = len(found)
    if progress is not None and n and n != max(expected, n):
        progress(n, n)      # the container declared more frames than were decoded
    if n == 0:
        raise DiffPoseError.at(path, expected="no frame could be decoded")
    found_a = np.array(found)
    if not found_a.any():
        raise DiffPoseError.at(path, expected=f"no person found in any of the {n} frames; "
                                              f"expected a video with one person in view")

    timing = constant_rate_frames(np.array(times), info.declared_fps)
    pick = timing.source_frame
    valid = found_a[pick]
    xy33 = np.array(lm33)[pick]
    conf33 = np.where(valid[:, None], np.clip(np.array(vis33)[pick], 1e-6, 1.0), 0.0)
    keypoints, scores = to_project(BLAZEPOSE33, xy33, conf33)
    keypoints[~valid] = np.nan
    scores[~valid] = 0.0

    T, J = len(pick), len(JOINT_NAMES)
    gmm_w = np.zeros((T, J, M))
    gmm_m = np.full((T, J, M, 2), np.nan)
    gmm_c = np.full((T, J, M, 2, 2), np.nan)
    w_all, m_all, c_all = np.array(mix_w)[pick], np.array(mix_m)[pick], np.array(mix_c)[pick]
    slot = {int(k): i for i, k in enumerate(fitted)}
    for j, k in enumerate(sources):
        if k >= 0:
            gmm_w[:, j], gmm_m[:, j], gmm_c[:, j] = (a[:, slot[int(k)]] for a in
                                                     (w_all, m_all, c_all))
    # Derived joints: one component, variance from the frame's fitted joints.
    copied = sources >= 0
    mean_c = (gmm_w[:, copied, :, None, None] * gmm_c[:, copied]).sum(2)   # (T, Jc, 2, 2)
    var = np.trace(mean_c, axis1=-2, axis2=-1) / 2.0                        # (T, Jc)
    frame_var = np.nanmedian(np.where(valid[:, None], var, np.nan), axis=1) \
        if valid.any() else np.ones(T)
    for j in np.flatnonzero(~copied):
        known = valid & (scores[:, j] > 0)
        gmm_w[known, j, 0] = 1.0
        gmm_m[known, j, :] = keypoints[known, j, None, :]
        gmm_c[known, j, :] = (frame_var[known, None, None, None]
                              / DERIVED_SCORE_FACTOR ** 2 * np.eye(2))
    gmm_w[~valid] = 0.0
    gmm_m[~valid] = np.nan
    gmm_c[~valid] = np.nan

    extra = {
        "landmarks_33": np.where(valid[:, None, None], xy33, np.nan),
        "visibility_33": conf33,
        "time_s": timing.time_s,
        "source_frame": pick.astype(np.int64),
        "from_detector": np.array(from_det)[pick],
    }
    if timing.variable:
        print(f"{Path(path).name}: variable frame rate; resampled {n} decoded frames to "
              f"{T} frames at {timing.fps:.3f} fps", file=sys.stderr)
    return Keypoints2D(keypoints=keypoints, scores=scores, valid=valid, fps=timing.fps,
                       image_size=size,
                       source=f"{FORMAT_NAME}:{Path(path)}", gmm_weights=gmm_w,
                       gmm_means=gmm_m, gmm_covs=gmm_c, extra=extra).check()

