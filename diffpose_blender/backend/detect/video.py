"""Reading a video file with OpenCV: checks, decoded frames and their times.

Every way a file can fail to be a usable video ends in a `DiffPoseError` naming the
file: missing, empty, a still image, not decodable, or stopping before the frames its
container declares (truncated). Reading is bounded: at most the declared frame count
plus a margin, or `MAX_FRAMES` when the container declares none.

Timing: OpenCV reports each decoded frame's presentation time (``CAP_PROP_POS_MSEC``).
A constant-rate clip keeps its frames as they are. A variable-frame-rate clip (phones
record this way: the interval between frames changes with exposure and load) is put on a
constant-rate grid at its typical (median) rate, each grid time taking the decoded frame
nearest to it, so that frame k of the output is at time ``k / fps`` seconds as the rest
of the project assumes (`constant_rate_frames`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ...core.errors import DiffPoseError, PathLike

#: Files OpenCV would open as a one-frame "video" through its image reader.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif",
                    ".exr", ".hdr", ".pgm", ".ppm", ".pbm", ".jp2", ".avif")
#: Upper bound on frames read from a container that declares no count (~9 h at 30 fps).
MAX_FRAMES = 1_000_000
#: Frames a container may declare beyond what it holds before we call it truncated:
#: declared counts are estimates in some containers (AVI from some cameras, MPEG-TS).
TRUNCATION_TOLERANCE = 0.02
#: A clip is variable-rate when some frame interval differs from the median by more.
VFR_TOLERANCE = 0.2


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: size in px, declared frame count and rate (None: unknown)."""

    path: Path
    width: int
    height: int
    declared_frames: int | None
    declared_fps: float | None


def probe(path: PathLike) -> VideoInfo:
    """Check that `path` is a decodable video and read its header (no frames decoded)."""
    p = Path(path)
    if not p.exists():
        raise DiffPoseError.at(p, expected="video file not found")
    if not p.is_file():
        raise DiffPoseError.at(p, expected="expected a video file, found a folder")
    if p.stat().st_size == 0:
        raise DiffPoseError.at(p, expected="the file is empty (0 bytes); expected a video")
    # A still image is refused by name and by content: OpenCV's FFmpeg backend opens
    # many image formats as a one-frame stream, which would "work" and mislead.
    if p.suffix.lower() in IMAGE_EXTENSIONS or cv2.haveImageReader(str(p)):
        raise DiffPoseError.at(p, expected="this is a still image, not a video; give a "
                                           "video file (.mp4, .mov, .avi, ...)")
    cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise DiffPoseError.at(p, expected="cannot be opened as a video (not a video, "
                                               "an unsupported codec, or a damaged or "
                                               "truncated file)")
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()
    return VideoInfo(p, w, h, n if n > 0 else None,
                     fps if math.isfinite(fps) and 0 < fps < 1000 else None)


def read_frames(info: VideoInfo) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode every frame: yields (index, time in seconds or NaN, BGR uint8 (H, W, 3)).

    Frames stay in OpenCV's BGR order: the networks see only small crops, which are
    turned to RGB there (converting whole frames costs more than the crops).

    Raises `DiffPoseError` when no frame decodes, when the frame size changes, or when
    decoding stops well before the declared frame count (a truncated file).
    """
    p = info.path
    cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise DiffPoseError.at(p, expected="cannot be opened as a video")
    declared = info.declared_frames
    limit = MAX_FRAMES if declared is None else declared + max(100, declared // 10)
    index = 0
    try:
        while index < limit:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            if bgr.ndim != 3 or bgr.shape[2] != 3:
                bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
            if index == 0:
                size = bgr.shape[:2]
            elif bgr.shape[:2] != size:
                raise DiffPoseError.at(p, f"frame {index}", expected=f"expected frames of "
                                       f"{size[1]}x{size[0]} px like the first, got "
                                       f"{bgr.shape[1]}x{bgr.shape[0]}")
            ms = float(cap.get(cv2.CAP_PROP_POS_MSEC))
            yield index, (ms / 1000.0 if math.isfinite(ms) else math.nan), bgr
            index += 1
        else:
            raise DiffPoseError.at(p, expected=f"more than {limit} frames; the container "
                                               f"declares {declared or 'none'}")
    finally:
        cap.release()
    if index == 0:
        raise DiffPoseError.at(p, "frame 0", expected="no frame could be decoded (a damaged "
                                                      "or truncated file, or no video "
                                                      "stream)")
    if declared is not None and index < declared * (1 - TRUNCATION_TOLERANCE) - 1:
        raise DiffPoseError.at(p, f"frame {index}", expected=f"decoding stopped after {index} "
                               f"of the {declared} frames the file declares; the file looks "
                               f"truncated or damaged")


@dataclass(frozen=True)
class Timing:
    """Output frames on a constant-rate grid.

    fps           output frames per second.
    source_frame  (T,) int: the decoded frame each output frame shows.
    time_s        (T,) float: the output frame's time in seconds from the first frame.
    variable      the source was variable-rate (so frames were repeated or dropped).
    """

    fps: float
    source_frame: np.ndarray
    time_s: np.ndarray
    variable: bool


def constant_rate_frames(times_s: np.ndarray, declared_fps: float | None) -> Timing:
    """Put decoded frames with presentation times `times_s` (N,) seconds on a
    constant-rate grid (see module docstring).

    Times that are missing, not increasing or all equal are not trusted: the frames are
    then taken as they come, at the declared rate (30 fps when none is declared).
    """
    n = len(times_s)
    t = np.asarray(times_s, dtype=np.float64)
    dt = np.diff(t)
    trusted = n >= 2 and np.isfinite(t).all() and (dt > 0).all()
    if not trusted:
        fps = declared_fps or 30.0
        return Timing(fps, np.arange(n), np.arange(n) / fps, False)
    median = float(np.median(dt))
    variable = bool(np.any(np.abs(dt - median) > VFR_TOLERANCE * median))
    if not variable:
        # Constant rate: the container's rate is exact where it agrees with the times
        # (timestamps are rounded to milliseconds), else the measured one.
        fps = 1.0 / median
        if declared_fps is not None and abs(declared_fps * median - 1.0) < 0.02:
            fps = declared_fps
        return Timing(fps, np.arange(n), np.arange(n) / fps, False)
    fps = 1.0 / median
    rel = t - t[0]
    count = int(math.floor(rel[-1] * fps + 0.5)) + 1
    grid = np.arange(count) / fps
    right = np.clip(np.searchsorted(rel, grid), 1, n - 1)
    left = right - 1
    nearest = np.where(grid - rel[left] <= rel[right] - grid, left, right)
    return Timing(fps, nearest.astype(np.int64), grid, True)
