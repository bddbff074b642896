"""Following one person through a video: the region of the next frame comes from this
frame's landmarks; the detector runs only when there is no region (the first frame, or
after the landmark model said the person was lost).

As in MediaPipe's pose graph (``pose_landmark_cpu.pbtxt``, ``pose_landmark_filtering.
pbtxt``), the two alignment landmarks that place the next region are smoothed with a
One Euro filter (Casiez, Roussel and Vogel, CHI 2012) so that the region stays still
while the person does, and follows quickly when they move. The body landmarks
themselves are returned raw: smoothing them is the `smooth` command's choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .blazepose import MIN_PRESENCE, NUM_LANDMARKS, BlazePose, LandmarkOutput
from .roi import Roi

#: One Euro parameters for the alignment landmarks (MediaPipe's pose_landmark_filtering:
#: min cutoff 0.01 Hz, beta 1.0, derivative cutoff 1.0 Hz; speeds in object sizes per s).
ALIGN_MIN_CUTOFF = 0.01
ALIGN_BETA = 1.0
ALIGN_D_CUTOFF = 1.0
ALIGN_INDICES = (33, 34)   # hip centre, extent point among the model's 39 outputs


class OneEuroFilter:
    """One Euro filter on points (K, 2) in px, speeds measured in object sizes per second.

    The object size is the mean of the width and height of the points' bounding box,
    so the filter behaves the same for a near and a far person.
    """

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None       # last filtered value (K, 2) px
        self._raw: np.ndarray | None = None     # last raw value (K, 2) px
        self._dx: np.ndarray | None = None      # last filtered speed (K, 2) sizes/s
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray, rate: float) -> np.ndarray:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * rate)

    def __call__(self, points: np.ndarray, t: float) -> np.ndarray:
        """Filter `points` (K, 2) px observed at time `t` seconds."""
        if self._x is None or self._raw is None or self._dx is None or self._t is None:
            self._x, self._raw, self._dx, self._t = points.copy(), points.copy(), \
                np.zeros_like(points), t
            return points.copy()
        dt = t - self._t
        rate = 1.0 / dt if dt > 1e-6 else 30.0
        extent = points.max(axis=0) - points.min(axis=0)
        size = max(float(extent.mean()), 1e-6)
        speed = (points - self._raw) / size * rate
        a_d = self._alpha(np.array(self.d_cutoff), rate)
        self._dx = a_d * speed + (1 - a_d) * self._dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self._dx), rate)
        self._x = a * points + (1 - a) * self._x
        self._raw, self._t = points.copy(), t
        return self._x.copy()


@dataclass(frozen=True)
class FramePose:
    """One frame's person: the landmark model's output and how its region was found."""

    output: LandmarkOutput
    from_detector: bool

    @property
    def landmarks(self) -> np.ndarray:
        """(33, 2) image px."""
        return self.output.xy[:NUM_LANDMARKS]


class PoseTracker:
    """Feeds frames in order; `step` returns the person in each frame or None."""

    def __init__(self, model: BlazePose) -> None:
        self.model = model
        self._next_roi: Roi | None = None
        self._align = OneEuroFilter(ALIGN_MIN_CUTOFF, ALIGN_BETA, ALIGN_D_CUTOFF)
        self.detector_runs = 0

    def step(self, bgr: np.ndarray, t: float) -> FramePose | None:
        """The person in BGR uint8 image `bgr` (H, W, 3) at time `t` seconds, or None."""
        roi = self._next_roi
        from_detector = roi is None
        if roi is None:
            self.detector_runs += 1
            det = self.model.detect(bgr)
            if det is None:
                return None
            roi = det.roi()
        out = self.model.landmarks(bgr, roi)
        if out.presence < MIN_PRESENCE or not np.isfinite(out.xy).all():
            # Lost: the next frame starts over from the detector, with fresh filters.
            self._next_roi = None
            self._align.reset()
            return None
        p = self._align(out.xy[list(ALIGN_INDICES)], t)
        self._next_roi = Roi.from_alignment(p[0], p[1])
        return FramePose(out, from_detector)
