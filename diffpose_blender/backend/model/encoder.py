"""The spatial-temporal context encoder phi_ST (DESIGN §8.1).

A small transformer over a window of 2D poses with their confidences, sequence to
sequence: one pass gives features for every frame of the window. Each (frame, joint) is
a token; blocks alternate attention across the joints of a frame (spatial: body
structure) and across the frames of a joint (temporal: motion). Outputs:

- the per-frame context feature f_ST (B, T, C) that conditions every denoising step;
- a per-joint depth distribution in pose space: mean and log standard deviation (B, T, J);
- with `missing_xy_spread`, a per-joint x, y log standard deviation (B, T, J): how far the
  regression's x, y may be off, which H_K uses for a joint with no 2D.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .initial import SIGMA_BROAD

#: Per-token input: x, y (pose space, root-relative / s), confidence, visible flag.
INPUT_FEATURES = 4


class _Block(nn.Module):
    """Pre-norm self-attention + MLP over the sequence axis of (N, L, D).

    Written with `scaled_dot_product_attention` rather than `nn.MultiheadAttention`:
    with many short sequences (21 joints, 27 frames) the latter's overhead made training
    about 1.7 times slower on the CPU.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, length, 3, self.heads,
                                               dim // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, length, dim)
        x = x + self.proj(attn)
        return x + self.mlp(self.norm2(x))


class ContextEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.cfg = cfg
        self.embed = nn.Linear(INPUT_FEATURES + 1, d)   # + log 2D scale, for perspective
        self.joint_embed = nn.Parameter(torch.zeros(cfg.joints, d))
        self.time_embed = nn.Parameter(torch.zeros(cfg.window, d))
        nn.init.normal_(self.joint_embed, std=0.02)
        nn.init.normal_(self.time_embed, std=0.02)
        self.spatial = nn.ModuleList(_Block(d, cfg.heads) for _ in range(cfg.encoder_layers))
        self.temporal = nn.ModuleList(_Block(d, cfg.heads) for _ in range(cfg.encoder_layers))
        self.norm = nn.LayerNorm(d)
        self.context = nn.Linear(cfg.joints * d, cfg.context_dim)
        self.depth = nn.Linear(d, 2)
        self.xy_spread: nn.Linear | None = None
        if cfg.missing_xy_spread:
            # Starts at H_K's fixed width for a missing joint.
            self.xy_spread = nn.Linear(d, 1)
            nn.init.zeros_(self.xy_spread.weight)
            nn.init.constant_(self.xy_spread.bias, math.log(SIGMA_BROAD))

    def forward(self, pose2d: torch.Tensor, scores: torch.Tensor,
                log_scale: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """pose2d (B, T, J, 2) pose-space x, y (0 where missing); scores (B, T, J);
        log_scale (B,) log of the window's 2D scale.

        Returns context (B, T, C), depth mean (B, T, J), depth log-std (B, T, J), and the
        x, y log-std (B, T, J) with `missing_xy_spread` (else None).
        """
        b, t, j, _ = pose2d.shape
        visible = (scores > 0).to(pose2d.dtype)
        feats = torch.cat([pose2d, scores[..., None], visible[..., None],
                           log_scale[:, None, None, None].expand(b, t, j, 1)], dim=-1)
        x = self.embed(feats) + self.joint_embed + self.time_embed[:t, None, :]
        d = x.shape[-1]
        for spatial, temporal in zip(self.spatial, self.temporal):
            x = spatial(x.reshape(b * t, j, d)).reshape(b, t, j, d)
            x = x.transpose(1, 2).reshape(b * j, t, d)
            x = temporal(x).reshape(b, j, t, d).transpose(1, 2)
        x = self.norm(x)
        context = self.context(x.reshape(b, t, j * d))
        # With `depth_head_detached` the spread heads are fitted on features they cannot
        # move.
        heads_in = x.detach() if self.cfg.depth_head_detached else x
        depth = self.depth(heads_in)
        xy_logstd = None
        if self.xy_spread is not None:
            xy_logstd = self.xy_spread(heads_in)[..., 0].clamp(-6.0, 2.0)
        return context, depth[..., 0], depth[..., 1].clamp(-6.0, 2.0), xy_logstd
