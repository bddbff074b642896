"""DiffPose and its deterministic baseline, as torch modules over pose-space windows.

Both take a window of 2D poses in pose space (see `posespace`) and return 3D poses in
pose space; converting pixels to pose space and back to camera metres is `backend.lift`'s
job. Training losses live here beside the forward passes they train.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from . import initial
from .config import ModelConfig
from .denoiser import Denoiser
from .encoder import ContextEncoder
from .schedule import GMMDiffusionSchedule


def mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error (same units as the inputs). (..., J, 3) -> ()."""
    return torch.linalg.norm(pred - target, dim=-1).mean()


def gaussian_nll(error: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood of an error (..., J, D) under a zero-mean
    diagonal Gaussian of log variance `logvar`, root excluded."""
    return (0.5 * (error ** 2 * torch.exp(-logvar) + logvar))[..., 1:, :].mean()


def depth_nll(mean: torch.Tensor, logstd: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood of the true relative depth (root excluded), so the
    predicted depth spread learns how unsure the depth is."""
    z = (target - mean) * torch.exp(-logstd)
    return (0.5 * z ** 2 + logstd)[..., 1:].mean()


def energy_score(hypotheses: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Energy score per item of N >= 2 hypotheses (..., N, J, D) against the truth
    (..., J, D): mean |x_i - y| - sum_{i != j} |x_i - x_j| / (2 N (N - 1)). Its expectation
    is smallest when the hypotheses are drawn from the truth's own distribution (a
    proper scoring rule), so it rewards a spread that matches the error. -> (..., J)."""
    n = hypotheses.shape[-3]
    if n < 2:
        raise ValueError(f"the energy score needs at least 2 hypotheses, got {n}")
    to_target = torch.linalg.norm(hypotheses - target.unsqueeze(-3), dim=-1).mean(-2)
    # A small offset keeps the norm differentiable where two hypotheses coincide.
    diff = hypotheses.unsqueeze(-3) - hypotheses.unsqueeze(-4) + 1e-9
    between = torch.linalg.norm(diff, dim=-1).sum((-3, -2)) / (n * (n - 1))
    return to_target - 0.5 * between


def observation(xy: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The 2D evidence per joint as the denoiser reads it: (..., J, 3) = x, y, score."""
    return torch.cat([xy * (scores > 0)[..., None], scores[..., None]], dim=-1)


class DiffPoseModel(nn.Module):
    kind = "diffpose"

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ContextEncoder(cfg)
        self.denoiser = Denoiser(cfg)
        self.schedule = GMMDiffusionSchedule(cfg.diffusion_steps)
        if cfg.encoder_regression:
            self.regressor = RegressionHead(cfg)

    def _depth_centre(self, context: torch.Tensor, xy: torch.Tensor, d_mean: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(H_K's depth mean, the regressed pose or None): the encoder's own depth mean,
        or with `encoder_regression` the regressed pose's depth."""
        if not self.cfg.encoder_regression:
            return d_mean, None
        pose = self.regressor(context, xy)
        return pose[..., 2], pose

    def _initial(self, xy: torch.Tensor, scores: torch.Tensor, depth_mean: torch.Tensor,
                 depth_logstd: torch.Tensor, gmm: tuple[torch.Tensor, ...] | None,
                 regressed: torch.Tensor | None = None,
                 xy_logstd: torch.Tensor | None = None, sampling: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        missing_xy = (regressed[..., :2] if regressed is not None
                      and self.cfg.missing_from_regression else None)
        missing_sigma = None
        if xy_logstd is not None:
            missing_sigma = xy_logstd.exp()
        elif sampling and self.cfg.sample_long_gap_sigma != initial.SIGMA_BROAD:
            missing_sigma = initial.long_gap_sigma(scores, self.cfg.sample_long_gap_sigma)
        keypoint_mix = initial.from_keypoints(xy, scores, depth_mean, depth_logstd,
                                              self.cfg.mixture_components, missing_xy,
                                              missing_sigma)
        if gmm is None:
            return keypoint_mix
        heatmap_mix = initial.from_heatmap_mixture(*gmm, depth_mean, depth_logstd)
        # Per joint: the detector's heatmap mixture where it has one (weights > 0), else
        # the keypoint mixture (missing frames, bridged gaps, joints it does not have).
        return initial.merge(heatmap_mix, keypoint_mix, gmm[0].sum(-1) > 0)

    def loss(self, xy: torch.Tensor, scores: torch.Tensor, log_scale: torch.Tensor,
             target: torch.Tensor, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss for a batch of windows.

        xy (B, T, J, 2) noisy 2D in pose space (0 where missing); scores (B, T, J);
        log_scale (B,); target (B, T, J, 3) clean pose space.
        """
        context, d_mean, d_logstd, xy_logstd = self.encoder(xy, scores, log_scale)
        centre, regressed = self._depth_centre(context, xy, d_mean)
        weights, means, chol = self._initial(
            xy, scores, centre.detach(), d_logstd.detach(), None,
            None if regressed is None else regressed.detach(),
            None if xy_logstd is None else xy_logstd.detach())
        mu, L = initial.pick_components(weights, means, chol, generator)
        # Random draws come from `generator` (a CPU generator) and then move to the
        # model's device, so a seed gives the same draws on the CPU and on a GPU.
        k = torch.randint(1, self.cfg.diffusion_steps + 1, target.shape[:2],
                          generator=generator).to(target.device)
        eps = torch.randn(target.shape, generator=generator).to(target.device)
        h = self.schedule.q_sample(target, mu, L, eps, k)
        obs = self._observation(xy, scores, regressed)
        ctx = context.detach() if self.cfg.context_detached else context
        base = None if regressed is None else regressed.detach()
        x0, x0_logvar = self.denoiser.with_variance(h, ctx, k, obs, base)
        pose_loss = mpjpe(x0, target)
        # The depth spread is fitted to the error of the depth that H_K is centred on (the
        # encoder's own mean, or the regression's depth, held fixed here).
        nll = depth_nll(d_mean if regressed is None else centre.detach(), d_logstd,
                        target[..., 2])
        total = pose_loss + 0.1 * nll
        parts = {"pose": pose_loss.item(), "depth_nll": nll.item()}
        if regressed is not None:
            regression = mpjpe(regressed, target)
            total = total + regression
            parts["regression"] = regression.item()
        if xy_logstd is not None and regressed is not None:
            # The x, y width H_K gives a missing joint, fitted to the regression's error.
            xy_nll = gaussian_nll((regressed[..., :2] - target[..., :2]).detach(),
                                  2.0 * xy_logstd[..., None])
            total = total + 0.1 * xy_nll
            parts["xy_nll"] = xy_nll.item()
        if x0_logvar is not None:
            x0_nll = gaussian_nll((x0 - target).detach(), x0_logvar)
            total = total + 0.1 * x0_nll
            parts["x0_nll"] = x0_nll.item()
        if self.cfg.sample_loss_weight > 0:
            energy = self._energy(context, obs, (weights, means, chol), target, generator,
                                  scores, base)
            total = total + self.cfg.sample_loss_weight * energy
            parts["energy"] = energy.item()
        return total, parts

    def _observation(self, xy: torch.Tensor, scores: torch.Tensor,
                     regressed: torch.Tensor | None) -> torch.Tensor | None:
        """What the denoiser reads beside the noisy pose and the context: the 2D evidence
        (`observation`) and, with `denoiser_sees_regression`, the regressed pose held
        fixed; (..., J, 3 or 6), or None when it reads neither."""
        parts = []
        if self.cfg.denoiser_sees_2d:
            parts.append(observation(xy, scores))
        if self.cfg.denoiser_sees_regression:
            assert regressed is not None      # ModelConfig requires encoder_regression
            parts.append(regressed.detach())
        return torch.cat(parts, dim=-1) if parts else None

    def _energy(self, context: torch.Tensor, obs: torch.Tensor | None,
                mixture: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                target: torch.Tensor, generator: torch.Generator | None,
                scores: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """Energy score (a proper scoring rule, Gneiting & Raftery 2007) of independent
        hypotheses drawn through the whole respaced sampler, on `sample_loss_frames`
        random frames of each window. The denoising loss alone trains every call toward
        the conditional mean, which lets the hypotheses collapse where the 2D says little
        (a hidden joint); this term rewards the sampler for spreading as far as it errs.
        It trains the denoiser only (the context is held fixed).

        `sample_loss_scope` "joint" scores each joint's position on its own, "pose" the
        whole pose as one vector (divided by sqrt(J - 1) to stay on the per-joint scale),
        which also rewards hypotheses whose joints move together, as a real pose does;
        "hidden" scores each joint on its own, only where it has no 2D (score 0), so the
        visible joints' hypotheses are left to the denoising loss."""
        cfg = self.cfg
        t = target.shape[1]
        frames = torch.randperm(t, generator=generator)[: cfg.sample_loss_frames]
        frames = frames.to(target.device)

        def pick(x: torch.Tensor) -> torch.Tensor:
            return x.index_select(1, frames)

        mix = tuple(pick(m) for m in mixture)
        hyp = self._chain(mix, pick(context).detach(), None if obs is None else pick(obs),
                          cfg.sample_loss_hypotheses, cfg.sample_steps, generator, cfg.eta,
                          antithetic=False, base=None if base is None else pick(base)
                          )[..., 1:, :]                          # (B, F, N, J - 1, 3)
        truth = pick(target)[..., 1:, :]
        if cfg.sample_loss_scope == "joint":
            return energy_score(hyp, truth).mean()
        if cfg.sample_loss_scope == "hidden":
            hidden = (pick(scores)[..., 1:] <= 0).to(hyp.dtype)            # (B, F, J - 1)
            return (energy_score(hyp, truth) * hidden).sum() / hidden.sum().clamp(min=1.0)
        if cfg.sample_loss_scope == "pose":
            whole = energy_score(hyp.flatten(-2)[..., None, :], truth.flatten(-2)[..., None, :])
            return whole.mean() / hyp.shape[-2] ** 0.5
        raise ValueError(f"sample_loss_scope {cfg.sample_loss_scope!r}; "
                         "expected joint, pose or hidden")

    def _chain(self, mixture: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
               context: torch.Tensor, obs: torch.Tensor | None, hypotheses: int, steps: int,
               generator: torch.Generator | None, eta: float, antithetic: bool,
               interrupt: Callable[[], None] | None = None,
               base: torch.Tensor | None = None) -> torch.Tensor:
        """The sampler: N hypotheses from H_K (`mixture`, (B, T, J, M, ...)) through the
        respaced denoising steps; `base` the regressed pose (B, T, J, 3) the denoiser
        corrects (`denoiser_base`). Returns (B, T, N, J, 3) pose space."""
        weights, means, chol = mixture
        n = hypotheses

        def rep(x: torch.Tensor) -> torch.Tensor:      # (B, T, ...) -> (B, T, N, ...)
            return x.unsqueeze(2).expand(x.shape[0], x.shape[1], n, *x.shape[2:])

        b, t, j = weights.shape[:3]
        device = context.device
        # Noise per hypothesis: shared by the frames of the window (trajectory_noise), so
        # hypothesis i is one coherent motion rather than independent draws per frame,
        # which would make the mean of N jitter.
        shape = (b, 1 if self.cfg.trajectory_noise else t, n, j)

        # With `antithetic`, hypotheses come in pairs (i, i + ceil(N / 2)) whose draws are
        # mirrored: the negated Gaussian noise, the uniform u -> 1 - u.
        half = (n + 1) // 2 if antithetic else n
        draw_shape = (shape[0], shape[1], half, j)

        def paired(x: torch.Tensor, mirror: Callable[[torch.Tensor], torch.Tensor]
                   ) -> torch.Tensor:
            if half == n:
                return x
            return torch.cat([x, mirror(x)[:, :, : n - half]], dim=2)

        def noise() -> torch.Tensor:
            eps = torch.randn(*draw_shape, 3, generator=generator)
            return paired(eps, torch.neg).to(device).expand(b, t, n, j, 3)

        u = paired(torch.rand(draw_shape, generator=generator), lambda v: 1.0 - v) \
            .to(device).expand(b, t, n, j)
        mu, L = initial.pick_components(rep(weights), rep(means), rep(chol), u=u)
        L_inv = torch.linalg.inv(L)
        ctx = rep(context)
        obs = None if obs is None else rep(obs)
        base = None if base is None else rep(base)
        h = mu + (L @ noise()[..., None])[..., 0]
        ks = self.schedule.timesteps(steps, self.cfg.step_spacing)
        x0 = h
        for k, k_prev in zip(ks[:-1], ks[1:]):
            if interrupt is not None:
                interrupt()
            kk = torch.full(h.shape[:3], k, dtype=torch.long, device=h.device)
            x0, x0_logvar = self.denoiser.with_variance(h, ctx, kk, obs, base)
            x0 = torch.cat([torch.zeros_like(x0[..., :1, :]), x0[..., 1:, :]], dim=-2)
            step_noise = noise() if eta > 0 and k_prev > 0 else None
            x0_std = x0_noise = None
            if x0_logvar is not None and k_prev > 0:
                # The root is the origin: no spread there.
                x0_std = torch.cat([torch.zeros_like(x0_logvar[..., :1, :]),
                                    (0.5 * x0_logvar[..., 1:, :]).exp()], dim=-2)
                x0_noise = noise()
            h, x0 = self.schedule.step(h, x0, k, k_prev, mu, L_inv, L, eta, step_noise,
                                       x0_std, x0_noise)
        return x0

    @torch.no_grad()
    def regression(self, xy: torch.Tensor, scores: torch.Tensor, log_scale: torch.Tensor
                   ) -> torch.Tensor | None:
        """The regressed pose (B, T, J, 3) that H_K is centred on, or None without
        `encoder_regression`."""
        context, d_mean, _, _ = self.encoder(xy, scores, log_scale)
        return self._depth_centre(context, xy, d_mean)[1]

    @torch.no_grad()
    def sample(self, xy: torch.Tensor, scores: torch.Tensor, log_scale: torch.Tensor,
               hypotheses: int, steps: int, generator: torch.Generator | None = None,
               gmm: tuple[torch.Tensor, ...] | None = None, eta: float | None = None,
               interrupt: Callable[[], None] | None = None) -> torch.Tensor:
        """N hypotheses per frame. Returns (B, T, N, J, 3) pose space.

        `interrupt` is called before every denoising step; it may raise to stop.
        """
        context, d_mean, d_logstd, xy_logstd = self.encoder(xy, scores, log_scale)
        centre, regressed = self._depth_centre(context, xy, d_mean)
        mixture = self._initial(xy, scores, centre, d_logstd, gmm, regressed, xy_logstd,
                                sampling=True)
        return self._chain(mixture, context, self._observation(xy, scores, regressed),
                           hypotheses, steps, generator,
                           self.cfg.eta if eta is None else eta, self.cfg.antithetic,
                           interrupt, regressed)


class RegressionHead(nn.Module):
    """Context (and the 2D) -> one pose: the baseline's head, also DiffPose's regressor
    with `encoder_regression`. The x, y start from the 2D input; the root stays 0."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.head = regression_mlp(cfg)

    def forward(self, context: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        return regress(self.head, context, xy)


def regression_mlp(cfg: ModelConfig) -> nn.Sequential:
    """The regression head's layers: context + flattened 2D -> J * 3 offsets."""
    hidden = cfg.denoiser_hidden
    return nn.Sequential(nn.Linear(cfg.context_dim + cfg.joints * 2, hidden), nn.GELU(),
                         nn.Linear(hidden, hidden), nn.GELU(),
                         nn.Linear(hidden, cfg.joints * 3))


def regress(head: nn.Module, context: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """One pose from a regression `head` (context + flattened 2D -> J * 3 offsets): x, y
    start from the 2D input, depth from 0; the root stays at the origin."""
    base = torch.cat([xy, torch.zeros_like(xy[..., :1])], dim=-1)
    out = head(torch.cat([context, xy.flatten(-2)], dim=-1))
    pose = base + out.unflatten(-1, (xy.shape[-2], 3))
    pose[..., 0, :] = 0.0
    return pose


class BaselineModel(nn.Module):
    """The deterministic lifter: the same encoder and a regression head on its context."""

    kind = "baseline"

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ContextEncoder(cfg)
        self.head = regression_mlp(cfg)

    def forward(self, xy: torch.Tensor, scores: torch.Tensor,
                log_scale: torch.Tensor) -> torch.Tensor:
        context, _, _, _ = self.encoder(xy, scores, log_scale)
        return regress(self.head, context, xy)

    def loss(self, xy: torch.Tensor, scores: torch.Tensor, log_scale: torch.Tensor,
             target: torch.Tensor, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, dict[str, float]]:
        pose_loss = mpjpe(self(xy, scores, log_scale), target)
        return pose_loss, {"pose": pose_loss.item()}

    @torch.no_grad()
    def sample(self, xy: torch.Tensor, scores: torch.Tensor, log_scale: torch.Tensor,
               hypotheses: int = 1, steps: int = 0, generator: torch.Generator | None = None,
               gmm: tuple[torch.Tensor, ...] | None = None, eta: float | None = None,
               interrupt: Callable[[], None] | None = None) -> torch.Tensor:
        """(B, T, 1, J, 3): one deterministic hypothesis."""
        return self(xy, scores, log_scale).unsqueeze(2)
