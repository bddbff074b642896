"""Random virtual cameras and perspective projection, for synthetic 2D training data.

Frames of reference: world = metres, Z up, right-handed (the mocap corpus's frame);
camera = metres, x right, y down, z forward (OpenCV); image = pixels, x right, y down,
origin top-left, principal point at the image centre.

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
