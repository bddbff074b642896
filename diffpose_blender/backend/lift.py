"""Lifting: 2D keypoints (any reader's `Keypoints2D`) -> a take of 3D hypotheses.

Steps, with frames of reference named:

1. Focal length (pixels) from ``--focal-px``, else from the field of view (default
   `posespace.DEFAULT_FOV_DEG`); principal point at the image centre. When the input
   does not record its image size, it is estimated from the keypoints' extent (recorded
   in the take's params as ``image_size_estimated``).
2. Root (pelvis) in the image per frame: the pelvis keypoint, else the midpoint of the
   hips. Frames with no root are gaps; gaps up to `MAX_GAP_SECONDS` between detected
   frames are bridged by linear interpolation of every joint (their scores set to
   `BRIDGE_SCORE`, so the model treats them as unsure) and flagged ``gap_filled``;
   longer gaps stay invalid (zeros in the take).
3. The clip is cut into overlapping windows of the model's length; each window is
   normalised to pose space with its own 2D scale, lifted (N hypotheses, K steps, a
   seed), and each frame is taken from the window where it lies most central. Windows
   are processed in batches, so memory stays bounded for long clips.
4. Pose space -> camera metres: the root depth comes from the subject's height
   (default 1.70 m, `posespace.root_depth_from_height`), a moving median over
   `DEPTH_MEDIAN_SECONDS` to keep the trajectory steady.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..core.errors import DiffPoseError
from ..core.keypoints import Keypoints2D
from ..core.skeleton import SKELETON
from ..core.take import Take
from .model import posespace
from .model.weights import load_model

MAX_GAP_SECONDS = 0.5
BRIDGE_SCORE = 0.1
DEPTH_MEDIAN_SECONDS = 0.5
#: Pose samples (windows x frames x hypotheses) per network batch: large enough to keep
#: the CPU busy, small enough that progress and cancel come several times a second.
SAMPLES_PER_BATCH = 4096


class Cancelled(DiffPoseError):
    """The request was cancelled: the lift (or, in `serve`, any method at a progress
    point) stopped and returns nothing."""


#: Frames at each end of a window that are only used when no other window covers them.
WINDOW_MARGIN = 6

ProgressFn = Callable[[int, int], None]


@dataclass
class LiftOptions:
    hypotheses: int = 5
    steps: int | None = None            # None: the model's default
    seed: int = 0
    device: str = "cpu"
    focal_px: float | None = None
    fov_deg: float | None = None
    subject_height_m: float = posespace.DEFAULT_SUBJECT_HEIGHT_M
    eta: float | None = None


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when available, else CPU; `cuda` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DiffPoseError("device 'cuda' was asked for, but torch sees no CUDA GPU "
                            "here; use --device auto or cpu")
    if name not in ("cpu", "cuda"):
        raise DiffPoseError(f"device {name!r}; expected auto, cpu or cuda")
    return torch.device(name)


def _image_size(kp: Keypoints2D) -> tuple[tuple[int, int], bool]:
    if kp.image_size is not None:
        return (int(kp.image_size[0]), int(kp.image_size[1])), False
    known = kp.keypoints[kp.scores > 0]
    # No size recorded: assume the image spans the keypoints with a margin, from 0.
    w, h = np.nanmax(known, axis=0) * 1.1
    return (max(int(math.ceil(w)), 2), max(int(math.ceil(h)), 2)), True


def _roots(keypoints: np.ndarray, scores: np.ndarray, valid: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Root pixel (T, 2) and whether it is known (T,), from keypoints (T, J, 2) px,
    scores (T, J) and valid (T,)."""
    j = SKELETON.index
    pel = keypoints[:, 0]
    hips = 0.5 * (keypoints[:, j["l_hip"]] + keypoints[:, j["r_hip"]])
    has_pel = valid & (scores[:, 0] > 0)
    has_hips = valid & (scores[:, j["l_hip"]] > 0) & (scores[:, j["r_hip"]] > 0)
    root = np.where(has_pel[:, None], pel, hips)
    return root, has_pel | has_hips


def bridge_gaps(kp: Keypoints2D, fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                      np.ndarray]:
    """Keypoints (T, J, 2), scores (T, J), valid (T,) and gap_filled (T,) after bridging
    short gaps (see module docstring)."""
    keypoints = kp.keypoints.copy()
    scores = np.where(kp.valid[:, None], kp.scores, 0.0)
    _, has_root = _roots(kp.keypoints, kp.scores, kp.valid)
    valid = has_root.copy()
    gap_filled = np.zeros_like(valid)
    max_gap = max(1, int(round(MAX_GAP_SECONDS * fps)))
    known = np.flatnonzero(has_root)
    for a, b in zip(known[:-1], known[1:]):
        gap = b - a - 1
        if 0 < gap <= max_gap:
            frac = (np.arange(1, gap + 1) / (gap + 1))[:, None, None]
            both = (scores[a] > 0) & (scores[b] > 0)
            span = keypoints[a] * (1 - frac) + keypoints[b] * frac
            keypoints[a + 1:b] = np.where(both[None, :, None], span, np.nan)
            scores[a + 1:b] = np.where(both[None], BRIDGE_SCORE, 0.0)
            valid[a + 1:b] = True
            gap_filled[a + 1:b] = True
    return keypoints, scores, valid, gap_filled


def _window_starts(frames: int, window: int) -> np.ndarray:
    if frames <= window:
        return np.zeros(1, dtype=np.int64)
    margin = min(WINDOW_MARGIN, (window - 1) // 4)
    stride = window - 2 * margin
    starts = list(range(0, frames - window + 1, stride))
    if starts[-1] != frames - window:
        starts.append(frames - window)
    return np.array(starts, dtype=np.int64)


def _owner(frames: int, starts: np.ndarray, window: int) -> np.ndarray:
    """For each frame, the window in which it lies most central (O(T) memory: the
    window centres are sorted, so the owner changes at the midpoints between them)."""
    centres = starts + (window - 1) / 2.0
    boundaries = 0.5 * (centres[:-1] + centres[1:])
    return np.searchsorted(boundaries, np.arange(frames), side="right")


def _moving_median(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(x) < 2:
        return x
    half = width // 2
    padded = np.pad(x, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)


class Lifter:
    """A loaded model ready to lift clips. Keeps the model between calls."""

    def __init__(self, model_dir: Path, kind: str = "diffpose", device: str = "cpu") -> None:
        self.device = resolve_device(device)
        self.model, self.weights_hash = load_model(model_dir, kind)
        self.model.to(self.device)
        self.model_dir = model_dir
        self.kind = kind
        self.name = f"{model_dir.name}/{kind}"

    def lift(self, kp: Keypoints2D, options: LiftOptions | None = None,
             progress: ProgressFn | None = None,
             cancelled: Callable[[], bool] | None = None) -> Take:
        opt = options or LiftOptions()
        if opt.hypotheses < 1 or opt.hypotheses > 64:
            raise DiffPoseError(f"hypotheses {opt.hypotheses}; expected 1 to 64")
        cfg = self.model.cfg
        steps = cfg.resolve_steps(opt.steps)
        n = 1 if self.kind == "baseline" else opt.hypotheses
        fps = kp.fps or 30.0
        image_size, size_estimated = _image_size(kp)
        if opt.focal_px is not None:
            if not opt.focal_px > 0:
                raise DiffPoseError(f"focal length {opt.focal_px} px; expected > 0")
            focal = float(opt.focal_px)
        else:
            fov = posespace.DEFAULT_FOV_DEG if opt.fov_deg is None else opt.fov_deg
            if not 1.0 <= fov <= 179.0:
                raise DiffPoseError(f"field of view {fov:g} degrees; expected 1 to 179")
            focal = posespace.focal_from_fov(image_size[0], fov)
        if not 0.3 <= opt.subject_height_m <= 3.0:
            raise DiffPoseError(f"subject height {opt.subject_height_m:g} m; expected 0.3 to "
                                f"3 m (a person's standing height)")

        keypoints, scores, valid, gap_filled = bridge_gaps(kp, fps)
        if not valid.any():
            raise DiffPoseError.at(kp.source, expected="no frame has a person with a "
                                                       "pelvis or both hips")
        T = len(keypoints)
        uv = posespace.normalise_image(keypoints, image_size, focal)       # (T, J, 2)
        # Recomputed after bridging: bridged frames get their root from bridged joints.
        root_px, _ = _roots(keypoints, scores, valid)
        root_uv = posespace.normalise_image(root_px, image_size, focal)
        # Invalid frames borrow the nearest valid root so the windows stay finite.
        idx = np.flatnonzero(valid)
        after = np.clip(np.searchsorted(idx, np.arange(T)), 0, len(idx) - 1)
        before = np.clip(after - 1, 0, len(idx) - 1)
        closer_before = np.abs(idx[before] - np.arange(T)) < np.abs(idx[after] - np.arange(T))
        nearest = np.where(closer_before, idx[before], idx[after])
        root_uv = np.where(valid[:, None], root_uv, root_uv[nearest])
        scores = np.where(valid[:, None], scores, 0.0)
        # The root is the origin of pose space: always present where a frame is valid,
        # also when it came from the hips rather than a pelvis keypoint.
        uv[:, 0] = root_uv
        scores[:, 0] = np.where(valid, np.maximum(scores[:, 0], BRIDGE_SCORE), 0.0)

        window = cfg.window
        starts = _window_starts(T, window)
        owner = _owner(T, starts, window)
        gen = torch.Generator(device="cpu").manual_seed(opt.seed)

        def check() -> None:
            # Also called between denoising steps, so a cancel lands within one network
            # call rather than one batch of windows.
            if cancelled is not None and cancelled():
                raise Cancelled("lift cancelled")

        hyp_pose = np.zeros((T, n, SKELETON.num_joints, 3))
        scale = np.ones(T)
        per_batch = max(1, SAMPLES_PER_BATCH // (window * n))
        for b0 in range(0, len(starts), per_batch):
            check()
            batch = starts[b0:b0 + per_batch]
            # Clips shorter than a window repeat their last frame.
            frames = np.minimum(batch[:, None] + np.arange(window)[None], T - 1)
            w_uv = uv[frames]
            w_sc = scores[frames]
            w_root = root_uv[frames]
            vis = w_sc > 0
            rel = w_uv - w_root[:, :, None, :]
            rel_n = np.where(vis[..., None], rel, np.nan)
            s = np.nanmedian(posespace.scale_2d(np.concatenate(
                [np.zeros_like(rel_n[..., :1, :]), rel_n[..., 1:, :]], axis=-2),
                vis.astype(np.float64)), axis=1)
            s = np.where(np.isfinite(s) & (s > 1e-4), s, 0.1)
            xy = np.where(vis[..., None], rel / s[:, None, None, None], 0.0)
            gmm = self._gmm(kp, frames, w_root, s, image_size, focal)
            with torch.no_grad():
                out = self.model.sample(
                    torch.from_numpy(xy.astype(np.float32)).to(self.device),
                    torch.from_numpy(w_sc.astype(np.float32)).to(self.device),
                    torch.from_numpy(np.log(s).astype(np.float32)).to(self.device),
                    hypotheses=n, steps=steps, generator=gen, gmm=gmm, eta=opt.eta,
                    interrupt=check)
            out_np = out.cpu().numpy().astype(np.float64)            # (B, W, N, J, 3)
            for i, start in enumerate(batch):
                wi = b0 + i
                mine = np.flatnonzero(owner == wi)
                hyp_pose[mine] = out_np[i, mine - start]
                scale[mine] = s[i]
            if progress is not None:
                progress(int(min(T, batch[-1] + window)), T)

        mean_pose = hyp_pose.mean(axis=1)
        unit_depth = posespace.root_depth_from_height(mean_pose, root_uv, scale,
                                                      opt.subject_height_m)
        width = max(1, int(round(DEPTH_MEDIAN_SECONDS * fps)))
        depth = np.where(valid, unit_depth, np.nan)
        depth = _moving_median(np.where(valid, depth, np.nanmedian(depth)), width)
        hyps = posespace.to_camera(hyp_pose, root_uv[:, None, :], scale[:, None],
                                   depth[:, None])
        root_cam = np.concatenate([root_uv * depth[:, None], depth[:, None]], axis=-1)
        hyps[~valid] = 0.0
        root_cam[~valid] = np.array([0.0, 0.0, 1.0])
        params = {"hypotheses": n, "steps": steps, "seed": opt.seed,
                  "subject_height_m": opt.subject_height_m, "focal_px": focal,
                  "image_size_estimated": size_estimated, "model_kind": self.kind,
                  "eta": cfg.eta if opt.eta is None else opt.eta,
                  "max_gap_seconds": MAX_GAP_SECONDS}
        kp_out = np.where(kp.scores[..., None] > 0, kp.keypoints, np.nan)
        return Take.from_hypotheses(
            hyps.astype(np.float32), root_cam, valid,
            keypoints_2d=kp_out, scores_2d=np.where(kp.valid[:, None], kp.scores, 0.0),
            fps=float(fps), image_size=image_size, focal_px=focal, source_2d=kp.source,
            model_name=self.name, weights_hash=self.weights_hash, params=params,
            gap_filled=gap_filled)

    def _gmm(self, kp: Keypoints2D, frames: np.ndarray, w_root: np.ndarray, s: np.ndarray,
             image_size: tuple[int, int], focal: float) -> tuple[torch.Tensor, ...] | None:
        """The detector's heatmap mixtures for these windows, in pose-space units."""
        if kp.gmm_weights is None or kp.gmm_means is None or kp.gmm_covs is None:
            return None
        weights = kp.gmm_weights[frames]
        means_uv = posespace.normalise_image(kp.gmm_means[frames], image_size, focal)
        sc = s[:, None, None, None, None]
        means = (means_uv - w_root[:, :, None, None, :]) / sc
        covs = kp.gmm_covs[frames] / (focal * s[:, None, None, None, None, None]) ** 2
        bad = ~(np.isfinite(means).all(-1) & np.isfinite(covs).all((-1, -2)))
        # Joints without a usable mixture (no person, bridged gaps, derived joints the
        # detector lacks) get weight 0 here; the model falls back to the keypoint-based
        # mixture for exactly those joints.
        weights = np.where(bad, 0.0, weights)
        means = np.where(bad[..., None], 0.0, means)
        covs = np.where(bad[..., None, None], np.eye(2), covs)
        return tuple(torch.from_numpy(a.astype(np.float32)).to(self.device)
                     for a in (weights, means, covs))
