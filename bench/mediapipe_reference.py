"""The reference: the `mediapipe==0.10.21` package's legacy pose pipeline on a video.

Runs in its own environment (``.venv-mediapipe``, requirements/mediapipe.txt): that
package pins numpy<2 and protobuf and ships opencv-contrib-python, so it never shares an
environment with the backend. It imports nothing from this project, so it can be run
by path from any interpreter that has mediapipe::

    .venv-mediapipe/bin/python bench/mediapipe_reference.py VIDEO -o ref.npz
        [--max-frames N] [--smooth]

Writes (T decoded frames):

- ``landmarks (T, 33, 2)`` image pixels (x right, y down; the image's left/top edge is
  0, as mediapipe's normalised coordinates times the width/height), NaN without a pose;
- ``visibility (T, 33)``; ``found (T,)`` bool;
- ``roi_from_detection (T, 5)``, ``roi_from_landmarks (T, 5)``: the region of interest
  the graph used, centre x, centre y (px), width, height (px), rotation (rad), NaN where
  the graph did not emit one;
- ``seconds ()``: wall time of the whole loop, decoding included; ``image_size (2,)``.

Smoothing is off by default (``smooth_landmarks=False``): the project's detector returns
the raw per-frame landmarks (smoothing is the `smooth` command's job), and the graph with
smoothing off is the same pipeline without its filters, so the two compare like for like.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
from mediapipe.python.solution_base import SolutionBase
from mediapipe.python.solutions import pose as mp_pose


class _PoseWithRois(SolutionBase):
    """mediapipe's `Pose` graph and settings, also returning the regions of interest."""

    def __init__(self, smooth: bool) -> None:
        super().__init__(
            binary_graph_path=mp_pose._BINARYPB_FILE_PATH,
            side_inputs={"model_complexity": 1, "smooth_landmarks": smooth,
                         "enable_segmentation": False, "smooth_segmentation": False,
                         "use_prev_landmarks": True},
            calculator_params={
                "posedetectioncpu__TensorsToDetectionsCalculator.min_score_thresh": 0.5,
                "poselandmarkbyroicpu__tensorstoposelandmarksandsegmentation__"
                "ThresholdingCalculator.threshold": 0.5,
            },
            outputs=["pose_landmarks", "pose_rect_from_landmarks", "pose_rect_from_detection"])


def _rect(r: object, w: int, h: int) -> np.ndarray:
    if r is None:
        return np.full(5, np.nan)
    return np.array([r.x_center * w, r.y_center * h, r.width * w, r.height * h, r.rotation])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--max-frames", type=int, default=0)
    ap.add_argument("--smooth", action="store_true", help="mediapipe's landmark smoothing on")
    args = ap.parse_args(argv)

    cap = cv2.VideoCapture(args.video)
    if not cap.isOpened():
        print(f"{args.video}: cannot open", file=sys.stderr)
        return 2
    limit = args.max_frames or 10**7
    landmarks, visibility, found, roi_d, roi_l = [], [], [], [], []
    size = (0, 0)
    with _PoseWithRois(args.smooth) as pose:
        start = time.perf_counter()
        while len(found) < limit:
            ok, bgr = cap.read()
            if not ok:
                break
            h, w = bgr.shape[:2]
            size = (w, h)
            res = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            lms = res.pose_landmarks
            if lms is None:
                landmarks.append(np.full((33, 2), np.nan))
                visibility.append(np.zeros(33))
                found.append(False)
            else:
                landmarks.append(np.array([[p.x * w, p.y * h] for p in lms.landmark]))
                visibility.append(np.array([p.visibility for p in lms.landmark]))
                found.append(True)
            roi_d.append(_rect(res.pose_rect_from_detection, w, h))
            roi_l.append(_rect(res.pose_rect_from_landmarks, w, h))
        seconds = time.perf_counter() - start
    cap.release()
    np.savez(args.output, landmarks=np.array(landmarks).reshape(-1, 33, 2),
             visibility=np.array(visibility).reshape(-1, 33), found=np.array(found, bool),
             roi_from_detection=np.array(roi_d).reshape(-1, 5),
             roi_from_landmarks=np.array(roi_l).reshape(-1, 5),
             seconds=np.float64(seconds), image_size=np.array(size))
    print(f"{args.video}: {len(found)} frames, pose in {int(np.sum(found))}, "
          f"{len(found) / max(seconds, 1e-9):.1f} frames/s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
