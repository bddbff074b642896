"""The pose-specific initial distribution H_K (DESIGN §8.3).

Per joint, a small Gaussian mixture in pose space (see `posespace`):

- x, y: from the detector's heatmap mixture when there is one; otherwise two components
  centred on the keypoint: a tight one whose width grows as the confidence falls, and a
  broad one (weight rising as confidence falls) that covers detector outliers. A joint
  with no keypoint (confidence 0) gets a broad width around the encoder's regressed x, y
  when the model has a regression (`encoder_regression`, `missing_from_regression`), else
  around its nearest known ancestor: the model must find it from the rest of the body.
  With `missing_xy_spread` that width is the encoder's per-joint prediction instead.
- z: the encoder's per-joint depth distribution (mean and standard deviation), the same
  for every component. (A frame-based model would use a depth distribution fitted on the
  training set here; the encoder's prediction replaces it.)

The root (pelvis) is the origin of pose space: all components sit at 0 with a
negligible width.

Shapes: weights (..., J, M), means (..., J, M, 3), chol (..., J, M, 3, 3) lower-triangular
Cholesky factors of the covariances.
"""

from __future__ import annotations

import torch

from ...core.skeleton import SKELETON

#: Width of the tight component at confidence 1 and its growth as confidence falls
#: (pose-space units: fractions of the 2D scale s).
SIGMA_SHARP = 0.03
SIGMA_SHARP_GROWTH = 0.25
#: Width of the broad component and of the distribution of a missing joint.
SIGMA_BROAD = 0.45
ROOT_SIGMA = 1e-3
#: Sampling only (`ModelConfig.sample_long_gap_sigma`): a missing joint's x, y width grows
#: from SIGMA_BROAD at LONG_GAP_START frames from its nearest detection in the window to
#: the full long-gap width at LONG_GAP_FULL frames or more (never detected in the window).
LONG_GAP_START = 6
LONG_GAP_FULL = 13
MIN_DEPTH_SIGMA = 0.02


def fill_missing(xy: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Replace missing joints' x, y by their nearest visible ancestor's (root: 0).

    xy (..., J, 2) with anything where not visible; visible (..., J) bool.
    """
    out = torch.where(visible[..., None], xy, torch.zeros_like(xy))
    cols = list(out.unbind(-2))
    for j, p in enumerate(SKELETON.parents[: xy.shape[-2]]):
        if p >= 0:
            cols[j] = torch.where(visible[..., j, None], cols[j], cols[p])
        else:
            cols[j] = torch.zeros_like(cols[j])
    return torch.stack(cols, dim=-2)


def frames_to_detection(scores: torch.Tensor) -> torch.Tensor:
    """Per frame and joint, how many frames away the joint's nearest keypoint in the
    window is (0 where it has one; LONG_GAP_FULL where it has none in the whole window,
    and never more). scores (..., T, J) -> (..., T, J) float."""
    t = scores.shape[-2]
    frame = torch.arange(t, dtype=scores.dtype, device=scores.device)
    # A frame with no keypoint stands LONG_GAP_FULL + T frames away: never the nearest.
    seen = torch.where(scores > 0, frame[:, None].expand_as(scores),
                       torch.full_like(scores, float(LONG_GAP_FULL + t)))
    # (..., T query, T seen, J): the distance from each frame to each detected frame.
    away = (frame[:, None, None] - seen.unsqueeze(-3)).abs().amin(-2)
    return away.clamp(max=float(LONG_GAP_FULL))


def long_gap_sigma(scores: torch.Tensor, wide: float) -> torch.Tensor:
    """A missing joint's x, y width at sampling time: SIGMA_BROAD up to LONG_GAP_START
    frames from its nearest keypoint, rising linearly to `wide` at LONG_GAP_FULL frames.
    scores (..., T, J) -> (..., T, J)."""
    ramp = ((frames_to_detection(scores) - LONG_GAP_START)
            / (LONG_GAP_FULL - LONG_GAP_START)).clamp(0.0, 1.0)
    return SIGMA_BROAD + (wide - SIGMA_BROAD) * ramp


def from_keypoints(xy: torch.Tensor, scores: torch.Tensor, depth_mean: torch.Tensor,
                   depth_logstd: torch.Tensor, components: int = 2,
                   missing_xy: torch.Tensor | None = None,
                   missing_sigma: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """H_K from keypoints and confidences.

    xy (..., J, 2) pose-space x, y (any value where scores == 0); scores (..., J) in [0, 1];
    depth_mean, depth_logstd (..., J) from the encoder; missing_xy (..., J, 2) where a
    joint with no keypoint is centred (default: its nearest visible ancestor) and
    missing_sigma (..., J) its x, y width (default: SIGMA_BROAD).
    """
    if components != 2:
        raise ValueError("the keypoint mixture has 2 components (sharp + broad)")
    visible = scores > 0
    centre = (fill_missing(xy, visible) if missing_xy is None
              else torch.where(visible[..., None], xy, missing_xy))
    conf = scores.clamp(0.0, 1.0)
    missing = (torch.full_like(conf, SIGMA_BROAD) if missing_sigma is None
               else missing_sigma.expand_as(conf))
    sharp = torch.where(visible, SIGMA_SHARP + SIGMA_SHARP_GROWTH * (1 - conf), missing)
    broad = torch.where(visible, torch.full_like(conf, SIGMA_BROAD), missing)
    w_broad = torch.where(visible, 0.5 * (1 - conf), torch.full_like(conf, 0.5))
    weights = torch.stack([1 - w_broad, w_broad], dim=-1)
    sigma_xy = torch.stack([sharp, broad], dim=-1)                        # (..., J, M)
    return _assemble(weights, centre[..., None, :].expand(*centre.shape[:-1], 2, 2),
                     torch.diag_embed(sigma_xy[..., None].expand(*sigma_xy.shape, 2)),
                     depth_mean, depth_logstd)


def from_heatmap_mixture(weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor,
                         depth_mean: torch.Tensor, depth_logstd: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """H_K from the detector's per-joint heatmap mixtures, already in pose-space units.

    weights (..., J, M); means (..., J, M, 2); covs (..., J, M, 2, 2).
    """
    eye = torch.eye(2, dtype=covs.dtype, device=covs.device)
    chol_xy = torch.linalg.cholesky(covs + 1e-6 * eye)
    w = weights / weights.sum(-1, keepdim=True).clamp(min=1e-9)
    return _assemble(w, means, chol_xy, depth_mean, depth_logstd)


def _assemble(weights: torch.Tensor, means_xy: torch.Tensor, chol_xy: torch.Tensor,
              depth_mean: torch.Tensor, depth_logstd: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    m = weights.shape[-1]
    z = depth_mean[..., None, None].expand(*means_xy.shape[:-1], 1)
    means = torch.cat([means_xy, z], dim=-1)
    sz = depth_logstd.exp().clamp(min=MIN_DEPTH_SIGMA)[..., None].expand(*weights.shape)
    chol = torch.zeros(*weights.shape, 3, 3, dtype=means.dtype, device=means.device)
    chol[..., :2, :2] = chol_xy
    chol[..., 2, 2] = sz
    # The root is the origin of pose space.
    means[..., 0, :, :] = 0.0
    chol[..., 0, :, :, :] = torch.eye(3, dtype=means.dtype, device=means.device) * ROOT_SIGMA
    weights = weights.clone()
    weights[..., 0, :] = 1.0 / m
    return weights, means, chol


def merge(first: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
          second: tuple[torch.Tensor, torch.Tensor, torch.Tensor], use_first: torch.Tensor
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per joint, mixture `first` where `use_first` (..., J) is set, else `second`.

    Mixtures with different component counts are padded with zero-weight components.
    """
    m = max(first[0].shape[-1], second[0].shape[-1])

    def pad(mix: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w, mu, L = mix
        extra = m - w.shape[-1]
        if extra == 0:
            return mix
        return (torch.cat([w, w.new_zeros(*w.shape[:-1], extra)], -1),
                torch.cat([mu, mu[..., :1, :].expand(*mu.shape[:-2], extra, 3)], -2),
                torch.cat([L, L[..., :1, :, :].expand(*L.shape[:-3], extra, 3, 3)], -3))

    a, b = pad(first), pad(second)
    sel = use_first[..., None]
    return (torch.where(sel, a[0], b[0]), torch.where(sel[..., None], a[1], b[1]),
            torch.where(sel[..., None, None], a[2], b[2]))


def pick_components(weights: torch.Tensor, means: torch.Tensor, chol: torch.Tensor,
                    generator: torch.Generator | None = None, u: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one component per joint: returns its mean (..., J, 3) and chol (..., J, 3, 3).

    The draw inverts the mixture's cumulative weights at `u` (uniform in [0, 1),
    broadcastable to weights[..., 0]; drawn from `generator` when not given). Sharing `u`
    across frames keeps a hypothesis on the same component while the weights change
    little, so it stays one coherent trajectory.
    """
    if u is None:
        # Drawn where the generator lives (the CPU), then moved: same draws on any device.
        u = torch.rand(weights.shape[:-1], generator=generator,
                       dtype=weights.dtype).to(weights.device)
    cdf = torch.cumsum(weights / weights.sum(-1, keepdim=True).clamp(min=1e-12), dim=-1)
    u = u.expand(weights.shape[:-1])
    idx = (cdf <= u[..., None]).sum(-1).clamp(max=weights.shape[-1] - 1)
    mu = torch.gather(means, -2, idx[..., None, None].expand(*idx.shape, 1, 3))[..., 0, :]
    L = torch.gather(chol, -3, idx[..., None, None, None].expand(*idx.shape, 1, 3, 3))
    return mu, L[..., 0, :, :]
