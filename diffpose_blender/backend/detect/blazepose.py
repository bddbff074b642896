"""BlazePose's two networks on LiteRT: the person detector and the landmark model.

The models are MediaPipe's (Apache-2.0), shipped in ``bundled_models/blazepose/``
(see its README). They run on LiteRT (``ai-edge-litert``, the maintained TFLite runtime
on PyPI). The processing around them is written here from the facts of MediaPipe's
published graphs (google-ai-edge/mediapipe, ``modules/pose_detection`` and
``modules/pose_landmark``), cited where a number comes from them.

Frames of reference: image pixels, x right, y down, pixel centres at whole numbers;
"crop" coordinates are pixels of a network's square input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ...core.errors import DiffPoseError
from ...core.resources import data_dir
from .roi import Roi

DETECTOR_FILE = "pose_detection.tflite"
LANDMARK_FILE = "pose_landmark_full.tflite"

DETECTOR_SIZE = 224        # detector input, px (square, letterboxed)
LANDMARK_SIZE = 256        # landmark model input, px
HEATMAP_SIZE = 64          # landmark model heatmap, cells per side
NUM_OUTPUT_LANDMARKS = 39  # 33 body landmarks, 2 alignment points, 4 unused
NUM_LANDMARKS = 33

#: Detection score threshold (mediapipe's Pose default min_detection_confidence).
MIN_DETECTION_SCORE = 0.5
#: Pose-presence threshold of the landmark model (min_tracking_confidence default).
MIN_PRESENCE = 0.5
#: Weighted non-maximum suppression: detections overlapping the best by more than this
#: intersection-over-union are averaged into it (pose_detection_cpu.pbtxt).
NMS_IOU = 0.3
#: Heatmap refinement of the landmark positions (tensors_to_pose_landmarks_and_
#: segmentation.pbtxt: kernel 7; the calculator's default minimum confidence 0.5).
REFINE_KERNEL = 7
REFINE_MIN_CONFIDENCE = 0.5


def model_dir() -> Path:
    return data_dir("bundled_models") / "blazepose"


def _interpreter(path: Path, threads: int):  # type: ignore[no-untyped-def]
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DiffPoseError("the detector needs the LiteRT runtime: pip install "
                            "ai-edge-litert (it is in requirements/main.txt)") from exc
    if not path.is_file():
        raise DiffPoseError.at(path, expected="BlazePose model file missing; the "
                                              "installation is incomplete")
    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    return it


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0)))


def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres in [0, 1] of the detector's input, in output order.

    MediaPipe's SSD anchor options for pose_detection.tflite (pose_detection_cpu.pbtxt):
    5 layers, strides 8, 16, 32, 32, 32 on a 224 px input, one aspect ratio plus one
    interpolated scale per layer, fixed anchor size (so only the centres matter),
    offset 0.5. Layers of equal stride share one grid: 2 anchors per cell for strides
    8 and 16, 6 for stride 32 -> 28·28·2 + 14·14·2 + 7·7·6 = 2254.
    """
    strides = (8, 16, 32, 32, 32)
    out = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        per_cell = 0
        while layer < len(strides) and strides[layer] == stride:
            per_cell += 2
            layer += 1
        cells = math.ceil(DETECTOR_SIZE / stride)
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells,
                             (np.arange(cells) + 0.5) / cells, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=-1)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out, axis=0)


@dataclass(frozen=True)
class Detection:
    """One person from the detector: score, box (x0, y0, x1, y1) px and 4 keypoints
    (4, 2) px: hip centre, full-body extent point, shoulder centre, upper-body point."""

    score: float
    box: np.ndarray
    keypoints: np.ndarray

    def roi(self) -> Roi:
        return Roi.from_alignment(self.keypoints[0], self.keypoints[1])


@dataclass(frozen=True)
class LandmarkOutput:
    """The landmark model on one region.

    presence    pose-presence probability of the region.
    xy          (39, 2) image px (after heatmap refinement), all 39 outputs.
    z           (39,) depth in the same scale as x, relative to the hips (MediaPipe).
    visibility  (39,) probability that the landmark is visible.
    heatmap     (64, 64, 39) logits, rows = crop y, columns = crop x.
    roi         the region the model looked at.
    """

    presence: float
    xy: np.ndarray
    z: np.ndarray
    visibility: np.ndarray
    heatmap: np.ndarray
    roi: Roi


class BlazePose:
    """The two networks with their pre- and post-processing. One instance per thread."""

    def __init__(self, folder: Path | None = None, threads: int = 2) -> None:
        folder = folder or model_dir()
        self._det = _interpreter(folder / DETECTOR_FILE, threads)
        self._lm = _interpreter(folder / LANDMARK_FILE, threads)
        self._det_in = self._det.get_input_details()[0]["index"]
        self._lm_in = self._lm.get_input_details()[0]["index"]
        # Outputs are found by shape, not by name or order, which converters change.
        by_shape = {tuple(d["shape"][1:]): d["index"] for d in self._det.get_output_details()}
        self._det_boxes, self._det_scores = by_shape[(2254, 12)], by_shape[(2254, 1)]
        by_shape = {tuple(d["shape"][1:]): d["index"] for d in self._lm.get_output_details()}
        self._lm_landmarks = by_shape[(NUM_OUTPUT_LANDMARKS * 5,)]
        self._lm_flag = by_shape[(1,)]
        self._lm_heatmap = by_shape[(HEATMAP_SIZE, HEATMAP_SIZE, NUM_OUTPUT_LANDMARKS)]
        self._anchors = ssd_anchors()

    # -- detector -------------------------------------------------------------------
    def detect(self, bgr: np.ndarray) -> Detection | None:
        """The most confident person in a BGR uint8 (H, W, 3) image (OpenCV's order), or
        None."""
        h, w = bgr.shape[:2]
        # Letterbox: fit the whole image in the square input, keeping its aspect ratio,
        # with black borders (BORDER_ZERO in pose_detection_cpu.pbtxt).
        s = DETECTOR_SIZE / max(w, h)
        ox, oy = (DETECTOR_SIZE - w * s) / 2, (DETECTOR_SIZE - h * s) / 2
        m = np.array([[s, 0.0, ox], [0.0, s, oy]])
        img = cv2.warpAffine(bgr, m, (DETECTOR_SIZE, DETECTOR_SIZE), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)        # the network takes RGB
        x = (img.astype(np.float32) * (2.0 / 255.0) - 1.0)[None]   # range [-1, 1]
        self._det.set_tensor(self._det_in, x)
        self._det.invoke()
        raw = self._det.get_tensor(self._det_boxes)[0].astype(np.float64)    # (2254, 12)
        scores = _sigmoid(self._det.get_tensor(self._det_scores)[0, :, 0].astype(np.float64))
        keep = np.flatnonzero(scores >= MIN_DETECTION_SCORE)
        if keep.size == 0:
            return None
        # Decoding (TensorsToDetectionsCalculator, reverse_output_order, scale 224,
        # fixed-size anchors): x, y, w, h, then 4 keypoints, all in input px from the
        # anchor centre.
        raw = raw[keep] / DETECTOR_SIZE
        anchors = self._anchors[keep]
        centre = raw[:, 0:2] + anchors
        size = raw[:, 2:4]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        kps = raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None, :]
        sc = scores[keep]
        best = int(np.argmax(sc))
        cluster = _iou(boxes[best], boxes) > NMS_IOU
        cluster[best] = True
        wts = sc[cluster] / sc[cluster].sum()
        box = (wts[:, None] * boxes[cluster]).sum(0)
        kp = (wts[:, None, None] * kps[cluster]).sum(0)
        # Letterboxed [0, 1] -> image px.
        to_px = lambda a: (a * DETECTOR_SIZE - np.array([ox, oy])) / s  # noqa: E731
        return Detection(float(sc[best]), to_px(box.reshape(2, 2)).ravel(), to_px(kp))

    # -- landmarks ------------------------------------------------------------------
    def landmarks(self, bgr: np.ndarray, roi: Roi) -> LandmarkOutput:
        """Run the landmark model on `roi` of a BGR uint8 image (OpenCV's order)."""
        crop = cv2.cvtColor(roi.crop(bgr, LANDMARK_SIZE), cv2.COLOR_BGR2RGB)
        self._lm.set_tensor(self._lm_in, (crop.astype(np.float32) * (1.0 / 255.0))[None])
        self._lm.invoke()
        raw = self._lm.get_tensor(self._lm_landmarks)[0].reshape(NUM_OUTPUT_LANDMARKS, 5)
        presence = float(self._lm.get_tensor(self._lm_flag).ravel()[0])
        heatmap = self._lm.get_tensor(self._lm_heatmap)[0].astype(np.float64)
        xy_crop = refine_with_heatmap(raw[:, :2].astype(np.float64) / LANDMARK_SIZE, heatmap)
        xy = roi.to_image(xy_crop * LANDMARK_SIZE, LANDMARK_SIZE)
        z = raw[:, 2].astype(np.float64) / LANDMARK_SIZE * roi.side
        visibility = _sigmoid(raw[:, 3].astype(np.float64))
        return LandmarkOutput(presence, xy, z, visibility, heatmap, roi)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of `box` (4,) with `boxes` (N, 4), corners x0 y0 x1 y1."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def refine_with_heatmap(xy: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """Landmarks (L, 2) in [0, 1] crop units, refined by their heatmaps (64, 64, L) logits.

    As MediaPipe's RefineLandmarksFromHeatmapCalculator does it (the algorithm, written
    anew): in a REFINE_KERNEL-cell window around the landmark's cell, the position
    becomes the mean of the cell indices weighted by sigmoid(logit), divided by 64,
    provided the window's highest value reaches REFINE_MIN_CONFIDENCE. Landmarks outside
    the map are left as they are. Cell c thus stands for crop position c / 64 (its
    corner, not its centre): that is MediaPipe's convention, kept so that landmarks
    agree with its output.
    """
    n = heatmap.shape[0]
    L = xy.shape[0]
    half = (REFINE_KERNEL - 1) // 2
    # int() truncation towards zero, as the C++ cast: -0.5 -> 0.
    cols = np.trunc(xy[:, 0] * n).astype(int)
    rows = np.trunc(xy[:, 1] * n).astype(int)
    on_map = (cols >= 0) & (cols < n) & (rows >= 0) & (rows < n)
    offs = np.arange(-half, half + 1)
    cc = cols[:, None] + offs[None]                                     # (L, K)
    rr = rows[:, None] + offs[None]
    # The window shrinks at the map's edges (cells outside count as weight 0).
    inside = ((rr >= 0) & (rr < n))[:, :, None] & ((cc >= 0) & (cc < n))[:, None, :]
    conf = _sigmoid(heatmap[np.clip(rr, 0, n - 1)[:, :, None], np.clip(cc, 0, n - 1)[:, None, :],
                            np.arange(L)[:, None, None]])              # (L, K, K)
    conf = np.where(inside, conf, 0.0)
    total = conf.sum(axis=(1, 2))
    refine = on_map & (conf.max(axis=(1, 2)) >= REFINE_MIN_CONFIDENCE) & (total > 0)
    safe = np.maximum(total, 1e-12)
    x = (conf.sum(axis=1) * cc).sum(-1) / safe / n
    y = (conf.sum(axis=2) * rr).sum(-1) / safe / n
    out = xy.copy()
    out[refine, 0] = x[refine]
    out[refine, 1] = y[refine]
    return out
