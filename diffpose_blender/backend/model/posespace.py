"""The model's pose space: pixel-aligned 2.5D, scale-normalised (DESIGN §8.2).

Frames of reference:

- image: pixels, x right, y down, origin top-left;
- normalised image: ``u = (x - cx) / f``, ``v = (y - cy) / f`` (a pinhole camera with the
  principal point at the image centre and square pixels);
- camera: metres, x right, y down, z forward (OpenCV).

Pose space, per joint j, relative to the root (pelvis, joint 0) and divided by the
window's 2D scale ``s`` (so a person far away and one close by look alike)::

    p_j = ( (u_j - u_0) / s,  (v_j - v_0) / s,  (Z_j - Z_0) / (Z_0 * s) )

x and y are exactly the 2D evidence (root-relative), so a 2D detection is directly a
distribution over them; z is depth relative to the root in the same units (metric depth
times f / Z_0, then normalised like x and y). From a pose-space sample, the camera-frame
pose follows from the root depth ``Z_0``: ``Z_j = Z_0 (1 + s p_jz)``,
``X_j = (u_0 + s p_jx) Z_j``, ``Y_j = (v_0 + s p_jy) Z_j``.

Monocular scale is ambiguous (a tall person far away projects like a short one nearby).
The root depth is fixed by the subject's height (default 1.70 m): the lifted pose is
built at unit root depth, its stature measured along the body's bones, and the depth
scaled until that stature matches (`root_depth_from_height`).
"""

from __future__ import annotations

import math

import numpy as np

from ...core.skeleton import SKELETON

#: Default horizontal field of view when neither focal length nor FOV is given: a typical
#: phone main camera / 35 mm-equivalent 28 mm lens (about 65 degrees horizontal).
DEFAULT_FOV_DEG = 65.0
#: Default subject height (metres) that fixes the monocular scale.
DEFAULT_SUBJECT_HEIGHT_M = 1.70

_J = SKELETON.index
# The chain that measures stature: ankle-knee-hip-pelvis-spine-thorax-neck-head_top, with
# the two legs averaged. Bone lengths, not 2D extents, so crouching does not shrink it.
_LEG_L = ((_J["l_ankle"], _J["l_knee"]), (_J["l_knee"], _J["l_hip"]))
_LEG_R = ((_J["r_ankle"], _J["r_knee"]), (_J["r_knee"], _J["r_hip"]))
_TRUNK = ((_J["pelvis"], _J["spine"]), (_J["spine"], _J["thorax"]),
          (_J["thorax"], _J["neck_nose"]), (_J["neck_nose"], _J["head_top"]))
#: Standing height over the chain length above: the chain leaves out the ankle's height
#: above the floor, so stature is a little longer. Median over the licence-clean mocap
#: clips of (head top height + 3 cm of floor below the ankle-joint plane) / chain length
#: in upright frames; `evaluate` measures and prints it (`stature_chain_ratio`).
STATURE_OVER_CHAIN = 1.04


def focal_from_fov(image_width: float, fov_deg: float = DEFAULT_FOV_DEG) -> float:
    """Focal length in pixels from the horizontal field of view in degrees."""
    if not 1.0 < fov_deg < 179.0:
        raise ValueError(f"field of view {fov_deg} degrees; expected 1 to 179")
    return 0.5 * image_width / math.tan(math.radians(fov_deg) / 2.0)


def normalise_image(keypoints_px: np.ndarray, image_size: tuple[float, float],
                    focal_px: float) -> np.ndarray:
    """Image pixels (..., 2) -> normalised image coordinates (..., 2)."""
    w, h = image_size
    centre = np.array([w / 2.0, h / 2.0], dtype=np.float64)
    return (np.asarray(keypoints_px, dtype=np.float64) - centre) / focal_px


def chain_length(pose: np.ndarray) -> np.ndarray:
    """Ankle-to-head-top length along the bones, legs averaged. pose (..., J, 3) -> (...)."""
    def seg(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(pose[..., a, :] - pose[..., b, :], axis=-1)

    # The hip joints sit beside the pelvis, not below it: the pelvis-to-hip bones are
    # nearly horizontal and left out.
    leg_l = sum(seg(a, b) for a, b in _LEG_L)
    leg_r = sum(seg(a, b) for a, b in _LEG_R)
    trunk = sum(seg(a, b) for a, b in _TRUNK)
    return 0.5 * (leg_l + leg_r) + trunk


def stature(pose: np.ndarray) -> np.ndarray:
    """Estimated standing height (same units as pose) of a pose (..., J, 3) -> (...)."""
    return STATURE_OVER_CHAIN * chain_length(pose)


def to_camera(pose25d: np.ndarray, root_uv: np.ndarray, scale: np.ndarray,
              root_depth: np.ndarray) -> np.ndarray:
    """Pose space -> camera metres (root-relative).

    pose25d     (..., J, 3) pose space (see module docstring)
    root_uv     (..., 2) normalised image coordinates of the root
    scale       (...) the 2D scale s used to normalise
    root_depth  (...) Z_0 in metres
    returns     (..., J, 3) camera-frame metres, root-relative (root at 0)
    """
    s = np.asarray(scale)[..., None]
    z0 = np.asarray(root_depth)[..., None]
    depth = z0 * (1.0 + s * pose25d[..., 2])
    uv = root_uv[..., None, :] + s[..., None] * pose25d[..., :2]
    cam = np.concatenate([uv * depth[..., None], depth[..., None]], axis=-1)
    return cam - cam[..., :1, :]


def root_depth_from_height(pose25d: np.ndarray, root_uv: np.ndarray, scale: np.ndarray,
                           height_m: float = DEFAULT_SUBJECT_HEIGHT_M) -> np.ndarray:
    """Root depth Z_0 (metres) at which the lifted pose has stature `height_m`.

    Returns one depth per frame (...). Metric size grows linearly with Z_0 (to first
    order), so the pose is built at Z_0 = 1 and the depth is the height ratio.
    """
    unit = to_camera(pose25d, root_uv, scale, np.ones(np.shape(scale)))
    return height_m / np.maximum(stature(unit), 1e-6)


def from_camera(cam: np.ndarray, root_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    """Camera metres -> (pose space, root_uv, 2D scale), the exact inverse of `to_camera`.

    cam       (..., J, 3) camera metres, root-relative
    root_cam  (..., 3) camera position of the root (z > 0)
    The 2D scale is `scale_2d` of the projected joints.
    """
    absolute = cam + root_cam[..., None, :]
    uv = absolute[..., :2] / absolute[..., 2:3]
    root_uv = uv[..., 0, :]
    s = scale_2d(uv)
    rel = (uv - root_uv[..., None, :]) / s[..., None, None]
    z0 = root_cam[..., 2]
    dz = (absolute[..., 2] - z0[..., None]) / (z0[..., None] * s[..., None])
    return np.concatenate([rel, dz[..., None]], axis=-1), root_uv, s


def scale_2d(uv: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The 2D scale s of a pose: RMS distance of the joints to the root (pelvis).

    uv (..., J, 2) normalised image coordinates; weights (..., J) (0 ignores a joint).
    """
    d2 = np.sum((uv - uv[..., :1, :]) ** 2, axis=-1)
    if weights is None:
        weights = np.ones(d2.shape)
    w = np.where(np.isfinite(d2), weights, 0.0)
    d2 = np.where(np.isfinite(d2), d2, 0.0)
    return np.sqrt(np.sum(w * d2, axis=-1) / np.maximum(np.sum(w, axis=-1), 1e-9)) + 1e-9
