"""Training batches: mocap windows -> random cameras -> detector-like 2D -> pose space.

Two halves: `make_batch` chooses the windows (with augmentations) and random virtual
cameras; `film` projects them through any cameras (also Human3.6M's calibrated ones,
`h36m`), adds the 2D noise and converts to pose space.

Everything is numpy on the CPU, vectorised over the batch. The 3D target is the mocap
skeleton; the 2D input comes from the same motion with detector-style joint offsets,
projected through a random camera and corrupted with detector-like noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.posespace import scale_2d
from . import augment
from .cameras import Cameras, random_cameras
from .noise2d import add_detector_noise


@dataclass
class Batch:
    """One training batch of B windows of T frames, J joints (pose space, see posespace).

    xy          (B, T, J, 2) noisy 2D input, root-relative / s; 0 where missing
    scores      (B, T, J) input confidences, 0 where missing
    log_scale   (B,) log of the 2D scale s (normalised image units)
    target      (B, T, J, 3) clean pose space
    root_depth  (B, T) true Z of the root, metres (for metric evaluation)
    root_uv     (B, T, 2) input root, normalised image coordinates
    scale       (B,) s
    camera_3d   (B, T, J, 3) true camera-frame metres, root-relative
    """

    xy: np.ndarray
    scores: np.ndarray
    log_scale: np.ndarray
    target: np.ndarray
    root_depth: np.ndarray
    root_uv: np.ndarray
    scale: np.ndarray
    camera_3d: np.ndarray


def make_batch(rng: np.random.Generator, clips: list[np.ndarray], count: int, length: int,
               augment_data: bool = True, clean_fraction: float = 0.1) -> Batch:
    """Draw `count` windows from `clips` (each (T, J, 3) world metres, Z up)."""
    windows = augment.sample_windows(rng, clips, count, length,
                                     (0.7, 1.4) if augment_data else (1.0, 1.0))
    if augment_data:
        windows = augment.mirror(windows, rng.random(count) < 0.5)
        windows = augment.scale_bones(rng, windows)
        windows = augment.mix_parts(rng, windows, probability=0.2)
    height = windows[:, :, :, 2].max(axis=(1, 2)) - windows[:, :, :, 2].min(axis=(1, 2))
    cams = random_cameras(rng, windows, np.clip(height, 1.0, 2.2))
    return film(rng, windows, cams, detector_joints=augment_data, noise=True,
                clean_fraction=clean_fraction, occlusion=augment_data)


def film(rng: np.random.Generator, windows: np.ndarray, cams: Cameras, *,
         detector_joints: bool, noise: bool, clean_fraction: float = 0.1,
         occlusion: bool = False, joints: int | None = None) -> Batch:
    """The second half of a batch: windows filmed by `cams` -> 2D input -> pose space.

    windows          (B, T, 21, 3) world metres, Z up
    cams             one camera per window (`Cameras` or `CalibratedCameras`)
    detector_joints  move the 2D source joints as a detector places them
                     (`augment.detector_offsets`); the 3D target stays the mocap joints
    noise            detector-like 2D noise (`noise2d.add_detector_noise`, a
                     `clean_fraction` of windows almost clean); False: the exact
                     projection with confidence 1 (ground-truth 2D)
    occlusion        long occlusions (`augment.occlude`), a training augmentation
    joints           keep only the first `joints` joints in the batch (17: Human3.6M's)
    """
    source = augment.detector_offsets(rng, windows) if detector_joints else windows
    cam_target = cams.to_camera(windows)
    cam_source = cams.to_camera(source)
    px_clean = cams.project(cam_source)
    if noise:
        px, scores = add_detector_noise(rng, px_clean, clean_fraction)
    else:
        px, scores = px_clean, np.ones(px_clean.shape[:-1])

    # A joint outside the image is not detected (the root is derived, always kept).
    w = cams.image_size[:, 0][:, None, None]
    h = cams.image_size[:, 1][:, None, None]
    outside = (px[..., 0] < 0) | (px[..., 0] >= w) | (px[..., 1] < 0) | (px[..., 1] >= h)
    outside[..., 0] = False
    scores = np.where(outside, 0.0, scores)
    if occlusion:
        scores = augment.occlude(rng, scores, probability=0.3)
    if joints is not None:
        px, scores, cam_target = px[:, :, :joints], scores[:, :, :joints], \
            cam_target[:, :, :joints]

    uv = cams.normalise(px)
    root_uv = uv[:, :, 0, :]
    visible = scores > 0
    s = np.median(scale_2d(np.where(visible[..., None], uv, np.nan),
                           visible.astype(np.float64)), axis=1)
    xy = (uv - root_uv[:, :, None, :]) / s[:, None, None, None]
    xy = np.where(visible[..., None], xy, 0.0)

    uv_t = cam_target[..., :2] / cam_target[..., 2:3]
    z0 = cam_target[:, :, 0, 2]
    target = np.concatenate([
        (uv_t - uv_t[:, :, :1, :]) / s[:, None, None, None],
        ((cam_target[..., 2] - z0[..., None]) / (z0[..., None] * s[:, None, None]))[..., None],
    ], axis=-1)
    return Batch(xy.astype(np.float32), scores.astype(np.float32),
                 np.log(s).astype(np.float32), target.astype(np.float32), z0, root_uv, s,
                 cam_target - cam_target[:, :, :1, :])
