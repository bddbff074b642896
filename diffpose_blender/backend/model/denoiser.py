"""The denoiser g(h_k, f_ST, f_D^k) (DESIGN §8.4).

A residual MLP over the whole pose (J x 3, flattened), conditioned on the frame's context
feature f_ST and on the diffusion step embedding f_D^k through feature-wise scale and
shift (FiLM). It predicts the clean pose x0. An MLP over the flattened pose is the
classic lifting network (Martinez et al., ICCV 2017) and is several times cheaper per
call than attention over joint tokens, which matters because inference calls it
N hypotheses x K steps times per frame.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import ModelConfig


def step_embedding(k: torch.Tensor, dim: int, max_steps: int) -> torch.Tensor:
    """Sinusoidal embedding (..., dim) of integer steps k (...)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    angle = (k.to(torch.float32)[..., None] * (1000.0 / max_steps)) * freqs.to(k.device)
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


class _FiLMBlock(nn.Module):
    def __init__(self, hidden: int, cond: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.film = nn.Linear(cond, 2 * hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden))
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond).chunk(2, dim=-1)
        return x + self.mlp(self.norm(x) * (1 + scale) + shift)


class Denoiser(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hidden = cfg.denoiser_hidden
        self.step_dim = 64
        self.cond = nn.Sequential(nn.Linear(cfg.context_dim + self.step_dim, hidden),
                                  nn.GELU())
        # The 2D evidence itself (x, y, confidence per joint) beside the noisy pose and
        # the context feature: the context is a compressed summary of the window, and the
        # baseline's head gets the keypoints too, so both see the same inputs.
        # Width of the observation it reads (`DiffPoseModel._observation`): the 2D and,
        # with `denoiser_sees_regression`, the regressed pose, J x 3 each.
        self.obs_width = cfg.joints * 3 * (int(cfg.denoiser_sees_2d)
                                           + int(cfg.denoiser_sees_regression))
        self.inp = nn.Linear(cfg.joints * 3 + cfg.context_dim + self.obs_width, hidden)
        self.blocks = nn.ModuleList(_FiLMBlock(hidden, hidden)
                                    for _ in range(cfg.denoiser_blocks))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, cfg.joints * 3))
        if cfg.denoiser_base == "regression":
            # The correction to the regressed pose starts at zero: an untrained denoiser
            # returns the regression it refines (zeroing draws nothing from the random
            # stream, so the other weights start as with the noisy base).
            nn.init.zeros_(self.out[1].weight)
            nn.init.zeros_(self.out[1].bias)
        if cfg.x0_variance:
            self.var_out = nn.Sequential(nn.LayerNorm(hidden),
                                         nn.Linear(hidden, cfg.joints * 3))

    def forward(self, h: torch.Tensor, context: torch.Tensor, k: torch.Tensor,
                obs: torch.Tensor | None = None, base: torch.Tensor | None = None
                ) -> torch.Tensor:
        """h (..., J, 3) noisy pose; context (..., C); k (...) steps; obs (..., J, 3) the
        2D keypoints and their scores (used when `denoiser_sees_2d`), followed by the
        regressed pose with `denoiser_sees_regression` ((..., J, 6) with both); base
        (..., J, 3) the regressed pose that x0 corrects with `denoiser_base`
        "regression". Returns x0."""
        return self.with_variance(h, context, k, obs, base)[0]

    def with_variance(self, h: torch.Tensor, context: torch.Tensor, k: torch.Tensor,
                      obs: torch.Tensor | None = None, base: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x0, log variance of x0's error per joint and axis (..., J, 3), or None without
        `x0_variance`). The variance head reads the denoiser's features held fixed, so
        fitting it leaves x0 as it is."""
        emb = step_embedding(k, self.step_dim, self.cfg.diffusion_steps)
        cond = self.cond(torch.cat([context, emb], dim=-1))
        parts = [h.flatten(-2), context]
        if self.obs_width:
            if obs is None:
                raise ValueError("this denoiser needs the 2D observation")
            parts.append(obs.flatten(-2))
        x = self.inp(torch.cat(parts, dim=-1))
        for block in self.blocks:
            x = block(x, cond)
        # Residual on the input pose: the network predicts a correction to h, or with
        # `denoiser_base` "regression" to the regressed pose.
        if self.cfg.denoiser_base == "regression":
            if base is None:
                raise ValueError("this denoiser needs the regressed pose it corrects")
        else:
            base = h
        x0 = base + self.out(x).unflatten(-1, (self.cfg.joints, 3))
        if not self.cfg.x0_variance:
            return x0, None
        return x0, self.var_out(x.detach()).unflatten(-1, (self.cfg.joints, 3))
