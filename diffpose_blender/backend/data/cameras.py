"""Random virtual cameras and perspective projection, for synthetic 2D training data.

Frames of reference: world = metres, Z up, right-handed (the mocap corpus's frame);
camera = metres, x right, y down, z forward (OpenCV); image = pixels, x right, y down,
origin top-left, principal point at the image centre (`CalibratedCameras`: where the
calibration puts it, with lens distortion).

The cameras imitate real footage of one person: phones held upright or sideways,
camcorders and webcams, on tripods or in the hand, from knee height to a first-floor
window, aimed roughly at the person but not always centred (off-centre framing), with a
little roll.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: (width, height) of common footage, drawn uniformly.
IMAGE_SIZES: tuple[tuple[int, int], ...] = (
    (1920, 1080), (1280, 720), (1080, 1920), (720, 1280), (1000, 1000), (640, 480),
)


@dataclass
class Cameras:
    """A batch of B pinhole cameras.

    rotation    (B, 3, 3) world -> camera rotation (rows are the camera axes in world)
    centre      (B, 3) camera position, world metres
    focal_px    (B,) focal length in pixels (square pixels)
    image_size  (B, 2) width, height in pixels
    """

    rotation: np.ndarray
    centre: np.ndarray
    focal_px: np.ndarray
    image_size: np.ndarray

    def to_camera(self, world: np.ndarray) -> np.ndarray:
        """World points (B, ..., 3) -> camera metres (B, ..., 3)."""
        b = world.shape[0]
        flat = world.reshape(b, -1, 3) - self.centre[:, None, :]
        cam = np.einsum("bij,bnj->bni", self.rotation, flat)
        return cam.reshape(world.shape)

    def project(self, cam: np.ndarray) -> np.ndarray:
        """Camera metres (B, ..., 3) -> image pixels (B, ..., 2). Points behind the
        camera are clamped to 1 cm in front so the arithmetic stays finite."""
        b = cam.shape[0]
        shape = (b,) + (1,) * (cam.ndim - 2)
        z = np.maximum(cam[..., 2], 0.01)
        f = self.focal_px.reshape(shape)
        cx = (self.image_size[:, 0] / 2.0).reshape(shape)
        cy = (self.image_size[:, 1] / 2.0).reshape(shape)
        return np.stack([f * cam[..., 0] / z + cx, f * cam[..., 1] / z + cy], axis=-1)

    def normalise(self, px: np.ndarray) -> np.ndarray:
        """Image pixels (B, ..., 2) -> normalised image coordinates (B, ..., 2), the
        inverse of `project` up to depth: ``(px - image centre) / focal``."""
        shape = (px.shape[0],) + (1,) * (px.ndim - 2)
        f = self.focal_px.reshape(shape + (1,))
        centre = (self.image_size / 2.0).reshape(shape + (2,))
        return (px - centre) / f


@dataclass
class CalibratedCameras(Cameras):
    """A batch of B calibrated cameras with lens distortion (for real captures such as
    Human3.6M's). Same frames as `Cameras`, except that the principal point is where the
    calibration puts it and pixels need not be square.

    focal_px      (B,) mean of fx and fy (for code that wants one focal length)
    focal_xy      (B, 2) fx, fy in pixels
    principal_px  (B, 2) cx, cy in pixels
    distortion    (B, 5) OpenCV order: radial k1, k2, tangential p1, p2, radial k3
    """

    focal_xy: np.ndarray
    principal_px: np.ndarray
    distortion: np.ndarray

    def _per_camera(self, values: np.ndarray, ndim: int) -> np.ndarray:
        """(B, ...) camera parameters shaped to broadcast against (B, ..., 2) points."""
        return values.reshape((values.shape[0],) + (1,) * (ndim - 2) + values.shape[1:])

    def project(self, cam: np.ndarray) -> np.ndarray:
        """Camera metres (B, ..., 3) -> distorted image pixels (B, ..., 2) (the
        Brown-Conrady model of OpenCV's ``projectPoints``). Points behind the camera are
        clamped to 1 cm in front, as in `Cameras.project`."""
        z = np.maximum(cam[..., 2:3], 0.01)
        xy = cam[..., :2] / z
        d = self._per_camera(self.distortion, cam.ndim)
        k1, k2, p1, p2, k3 = (d[..., i] for i in range(5))
        x, y = xy[..., 0], xy[..., 1]
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        f = self._per_camera(self.focal_xy, cam.ndim)
        c = self._per_camera(self.principal_px, cam.ndim)
        return np.stack([xd, yd], axis=-1) * f + c

    def normalise(self, px: np.ndarray, iterations: int = 20) -> np.ndarray:
        """Distorted image pixels (B, ..., 2) -> undistorted normalised image coordinates
        (B, ..., 2), i.e. X/Z, Y/Z of the camera-frame ray. The distortion is inverted by
        fixed-point iteration, as OpenCV's ``undistortPoints`` does (NaN stays NaN)."""
        f = self._per_camera(self.focal_xy, px.ndim)
        c = self._per_camera(self.principal_px, px.ndim)
        d = self._per_camera(self.distortion, px.ndim)
        k1, k2, p1, p2, k3 = (d[..., i] for i in range(5))
        distorted = (px - c) / f
        xd, yd = distorted[..., 0], distorted[..., 1]
        x, y = xd.copy(), yd.copy()
        for _ in range(iterations):
            r2 = x * x + y * y
            radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
            dx = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
            dy = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
            x = (xd - dx) / radial
            y = (yd - dy) / radial
        return np.stack([x, y], axis=-1)


def look_at(centre: np.ndarray, target: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """World -> camera rotations (B, 3, 3) for cameras at `centre` looking at `target`
    (both (B, 3), world Z up), rolled by `roll` radians about the viewing axis."""
    forward = target - centre
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    up = np.array([0.0, 0.0, 1.0])
    right = np.cross(forward, up)
    right /= np.maximum(np.linalg.norm(right, axis=-1, keepdims=True), 1e-9)
    down = np.cross(forward, right)
    c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
    right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, forward], axis=1)


def random_cameras(rng: np.random.Generator, subject: np.ndarray,
                   height_m: np.ndarray) -> Cameras:
    """One random camera per window, framing the subject.

    subject   (B, T, J, 3) world metres: the windows to film (the whole window stays in
              view of a static camera, as on a tripod or a steady hand)
    height_m  (B,) the subject's stature, to choose a distance that frames them
    """
    b = subject.shape[0]
    sizes = np.array(IMAGE_SIZES, dtype=np.float64)[rng.integers(len(IMAGE_SIZES), size=b)]
    fov = np.radians(rng.uniform(35.0, 85.0, size=b))       # horizontal field of view
    focal = 0.5 * sizes[:, 0] / np.tan(fov / 2.0)
    # The subject fills 35-90 % of the image's shorter side (height of the figure).
    fill = rng.uniform(0.35, 0.9, size=b)
    short = np.minimum(sizes[:, 0], sizes[:, 1])
    # Widest horizontal wander of the window, so walking subjects stay in the frame.
    pelvis = subject[:, :, 0, :]
    wander = np.linalg.norm(pelvis[:, :, :2] - pelvis[:, :1, :2], axis=-1).max(axis=1)
    distance = focal * height_m / (fill * short) + wander * rng.uniform(0.5, 1.5, size=b)
    distance = np.clip(distance, 1.5, 25.0)
    centre_xy = pelvis[:, :, :2].mean(axis=1)
    azimuth = rng.uniform(0.0, 2.0 * np.pi, size=b)
    cam_z = rng.uniform(0.3, 2.8, size=b)
    centre = np.stack([centre_xy[:, 0] + distance * np.cos(azimuth),
                       centre_xy[:, 1] + distance * np.sin(azimuth), cam_z], axis=-1)
    target = np.concatenate([centre_xy, pelvis[:, :, 2].mean(axis=1, keepdims=True)
                             + rng.uniform(-0.3, 0.3, size=(b, 1))], axis=-1)
    # Off-centre framing: aim beside the subject by up to a quarter of the field of view.
    aim_side = np.tan(fov / 2.0) * rng.uniform(-0.45, 0.45, size=b) * distance
    aim_up = np.tan(fov / 2.0) * rng.uniform(-0.3, 0.3, size=b) * distance * short / sizes[:, 0]
    side_dir = np.stack([-np.sin(azimuth), np.cos(azimuth), np.zeros(b)], axis=-1)
    target = target + aim_side[:, None] * side_dir
    target[:, 2] += aim_up
    roll = np.radians(rng.normal(0.0, 3.0, size=b))
    rotation = look_at(centre, target, roll)
    return Cameras(rotation, centre, focal, sizes)
