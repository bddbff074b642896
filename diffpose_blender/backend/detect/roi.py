"""The rotated square region of interest that the landmark model looks at.

Frame of reference: image pixels, x right, y down, with pixel centres at whole numbers
(the top-left pixel's centre is (0, 0), OpenCV's convention). MediaPipe maps its crops
this way too (a crop's pixel i lies at i / n of the region), so its normalised
coordinates times the image size are in this frame; checked against the package. The region has a centre, a side length and a rotation θ in radians; its own
axes in the image are u = (cos θ, sin θ) (crop x) and v = (-sin θ, cos θ) (crop y), so a
positive θ turns the crop clockwise on screen.

How a region is placed follows MediaPipe's pose graphs (``pose_detection_to_roi`` and
``pose_landmarks_to_roi`` in google-ai-edge/mediapipe, Apache-2.0): two alignment
points, the hip centre p0 and a point p1 whose distance gives the body's extent and
whose direction gives its up, make a square of side 2·|p1 - p0| centred on p0 and turned
so that p0 -> p1 points up in the crop; the square is then enlarged by `ROI_SCALE`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Margin around the body (MediaPipe's RectTransformationCalculator scale in the pose
#: graphs of mediapipe 0.10.21; checked against that package's own regions in the tests).
ROI_SCALE = 1.25


def _wrap(angle: float) -> float:
    """Angle in radians wrapped to [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


@dataclass(frozen=True)
class Roi:
    """A rotated square in the image: centre (cx, cy) px, side px, rotation rad."""

    cx: float
    cy: float
    side: float
    rotation: float

    @classmethod
    def from_alignment(cls, p0: np.ndarray, p1: np.ndarray,
                       scale: float = ROI_SCALE) -> "Roi":
        """The region from the hip centre `p0` (2,) px and the extent point `p1` (2,) px."""
        dx, dy = float(p1[0] - p0[0]), float(p1[1] - p0[1])
        # MediaPipe's convention: the rotation that brings p0 -> p1 to 90 degrees (up,
        # measured with y flipped so that angles grow counter-clockwise on screen).
        rotation = _wrap(math.pi / 2 - math.atan2(-dy, dx))
        side = 2.0 * math.hypot(dx, dy) * scale
        return cls(float(p0[0]), float(p0[1]), side, rotation)

    def crop_to_image(self, n: int) -> np.ndarray:
        """(2, 3) affine map from crop pixel coordinates (0..n) to image px."""
        k = self.side / n
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        a = np.array([[k * c, -k * s], [k * s, k * c]])
        centre = np.array([self.cx, self.cy])
        t = centre - a @ np.array([n / 2, n / 2])
        return np.concatenate([a, t[:, None]], axis=1)

    def crop(self, image: np.ndarray, n: int) -> np.ndarray:
        """The region of `image` (H, W, C) resampled to an (n, n, C) image (bilinear; pixels beyond the
        image repeat its border, as MediaPipe's CPU image-to-tensor step does)."""
        # WARP_INVERSE_MAP: the matrix maps each crop pixel to where it is sampled.
        return cv2.warpAffine(image, self.crop_to_image(n), (n, n),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)

    def to_image(self, xy_crop: np.ndarray, n: int) -> np.ndarray:
        """Crop coordinates (..., 2) on an n-pixel crop -> image px (..., 2)."""
        m = self.crop_to_image(n)
        return xy_crop @ m[:, :2].T + m[:, 2]

    def to_crop(self, xy_image: np.ndarray, n: int) -> np.ndarray:
        """Image px (..., 2) -> crop coordinates (..., 2) on an n-pixel crop."""
        m = self.crop_to_image(n)
        return (xy_image - m[:, 2]) @ np.linalg.inv(m[:, :2]).T

    def as_array(self) -> np.ndarray:
        """(4,) cx px, cy px, side px, rotation rad."""
        return np.array([self.cx, self.cy, self.side, self.rotation])
