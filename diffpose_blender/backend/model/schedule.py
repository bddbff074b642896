"""The GMM-based diffusion schedule (DESIGN §8.4, Gong et al. 2023, Sec. 3.3).

Forward process: each joint's clean pose x0 moves toward a component (mean mu, Cholesky
factor L of the covariance) of the pose-specific initial mixture H_K::

    h_k = sqrt(a_k) x0 + (1 - sqrt(a_k)) mu + sqrt(1 - a_k) L eps,    a_k = prod(1 - beta)

so h_K ~ N(mu, L L^T) when a_K ~ 0: samples at step K follow H_K. In whitened coordinates
z = L^-1 (h - mu) this is an ordinary Gaussian diffusion with clean signal
z0 = L^-1 (x0 - mu), so sampling uses the DDIM update there. As in diffusers'
``scheduling_ddim.py``, `step()` returns the previous sample and the predicted clean pose.
"""

from __future__ import annotations

import math

import torch


class GMMDiffusionSchedule:
    def __init__(self, steps: int) -> None:
        if steps < 2:
            raise ValueError(f"diffusion steps {steps}; expected at least 2")
        self.steps = steps
        # Cosine schedule (Nichol & Dhariwal 2021), a_K ~ 0 so step K is pure H_K.
        s = 0.008
        k = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((k + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = (f / f[0]).clamp(min=0.0)
        alpha_bar[-1] = 0.0
        self.alpha_bar = alpha_bar.to(torch.float32)         # (K + 1,), index 0 = clean

    def q_sample(self, x0: torch.Tensor, mu: torch.Tensor, chol: torch.Tensor,
                 eps: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Forward process. x0, mu, eps (..., J, 3); chol (..., J, 3, 3); k (...) in 1..K."""
        a = self.alpha_bar.to(x0.device)[k][..., None, None]
        noise = (chol @ eps[..., None])[..., 0]
        return a.sqrt() * x0 + (1 - a.sqrt()) * mu + (1 - a).sqrt() * noise

    def timesteps(self, sample_steps: int, spacing: str = "quadratic") -> list[int]:
        """Respaced steps K = k_0 > k_1 > ... > 0 for `sample_steps` denoising calls.

        "uniform" spaces them evenly. "quadratic" (the DDIM paper's other skip type)
        crowds them near the clean end, so the last denoising call starts from a nearly
        clean sample: the final prediction then keeps the spread of the samples instead
        of shrinking every hypothesis toward the conditional mean, as one big last step
        from a noisy sample does.
        """
        n = max(1, min(sample_steps, self.steps))
        if spacing == "uniform":
            ks = [round(self.steps * (n - i) / n) for i in range(n)]
        elif spacing == "quadratic":
            # At least n - i, so the n steps stay distinct down to 1.
            ks = [max(n - i, round(self.steps * ((n - i) / n) ** 2)) for i in range(n)]
        else:
            raise ValueError(f"step spacing {spacing!r}; expected uniform or quadratic")
        # Distinct and decreasing even when rounding collides at the clean end.
        out: list[int] = []
        for k in ks:
            out.append(k if not out else min(k, out[-1] - 1))
        return out + [0]

    def step(self, h: torch.Tensor, x0_pred: torch.Tensor, k: int, k_prev: int,
             mu: torch.Tensor, chol_inv: torch.Tensor, chol: torch.Tensor, eta: float,
             noise: torch.Tensor | None = None, x0_std: torch.Tensor | None = None,
             x0_noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One reverse step from k to k_prev < k. Returns (h_prev, x0_pred).

        eta = 0 is deterministic DDIM; eta = 1 adds the DDPM posterior's noise, `noise`
        (standard normal, broadcastable to h; required when eta > 0).

        `x0_std` (pose space, like h) is how far x0_pred may be from the clean pose. The
        step uses x0_pred as if it were exact; h_prev depends on x0 with the factor c
        below, so the spread it drops is c * x0_std, added here with `x0_noise`
        (standard normal). Bao et al., "Estimating the Optimal Covariance with Imperfect
        Mean in Diffusion Probabilistic Models", ICML 2022.
        """
        a = self.alpha_bar[k].item()
        a_prev = self.alpha_bar[k_prev].item()
        z = (chol_inv @ (h - mu)[..., None])[..., 0]
        z0 = (chol_inv @ (x0_pred - mu)[..., None])[..., 0]
        eps = (z - math.sqrt(a) * z0) / math.sqrt(max(1 - a, 1e-12))
        if k_prev == 0:
            return x0_pred, x0_pred
        sigma = eta * math.sqrt(max((1 - a_prev) / (1 - a) * (1 - a / a_prev), 0.0)) \
            if a > 0 else eta * math.sqrt(max(1 - a_prev, 0.0))
        z_prev = math.sqrt(a_prev) * z0 + math.sqrt(max(1 - a_prev - sigma ** 2, 0.0)) * eps
        if sigma > 0:
            if noise is None:
                raise ValueError("eta > 0 needs sampling noise")
            z_prev = z_prev + sigma * noise
        h_prev = (chol @ z_prev[..., None])[..., 0] + mu
        if x0_std is not None:
            if x0_noise is None:
                raise ValueError("x0_std needs its own sampling noise")
            # d z_prev / d z0; in pose space x0's own error passes on with the same factor.
            c = math.sqrt(a_prev) - math.sqrt(max(1 - a_prev - sigma ** 2, 0.0)) \
                * math.sqrt(a) / math.sqrt(max(1 - a, 1e-12))
            h_prev = h_prev + abs(c) * x0_std * x0_noise
        return h_prev, x0_pred
