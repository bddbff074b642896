"""Model and training configuration: dataclasses saved beside the weights as JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ...core.errors import DiffPoseError
from ...core.skeleton import NUM_JOINTS


@dataclass
class ModelConfig:
    """Sizes of the DiffPose lifter and its deterministic baseline (same encoder)."""

    joints: int = NUM_JOINTS
    window: int = 27                 # frames per encoder window (0.9 s at 30 fps)
    d_model: int = 64                # token width of the context encoder
    heads: int = 4
    encoder_layers: int = 2          # each = one spatial + one temporal attention block
    context_dim: int = 256           # per-frame context feature f_ST
    denoiser_hidden: int = 384
    denoiser_blocks: int = 2
    diffusion_steps: int = 50        # K in training
    sample_steps: int = 5            # respaced steps at inference
    eta: float = 1.0                 # 0 = deterministic DDIM, 1 = DDPM-like sampling noise
    step_spacing: str = "quadratic"  # respacing of the sample steps (schedule.timesteps)
    trajectory_noise: bool = True    # a hypothesis's noise is shared by a window's frames
    # Hypotheses in antithetic pairs: the second of a pair gets the negated noise (and the
    # mirrored component draw) of the first. Each hypothesis is still a draw from the same
    # distribution; the mean of N varies less (antithetic variates). Inference only.
    antithetic: bool = True
    denoiser_sees_2d: bool = True    # the denoiser also gets the 2D keypoints and scores
    # The encoder also regresses the pose (the baseline's head and loss, trained jointly),
    # and H_K's depth is centred on that regression: the diffusion refines a deterministic
    # lifter's answer, as the paper's pre-trained context encoder does.
    encoder_regression: bool = True
    # With encoder_regression: H_K centres a joint with no 2D on the regressed x, y (rather
    # than on its nearest visible ancestor).
    missing_from_regression: bool = False
    # With missing_from_regression: the encoder also predicts per joint how far the
    # regressed x, y may be off (a log standard deviation fitted by Gaussian likelihood to
    # the regression's x, y error, held fixed), and H_K gives a joint with no 2D that
    # width instead of the fixed SIGMA_BROAD. Measured and not adopted: the predicted
    # width is narrower, and the hypotheses of a hidden joint spread less (MODEL_CARD.md).
    missing_xy_spread: bool = False
    # With encoder_regression: the denoiser also reads the regressed pose (held fixed), so
    # refining it is a small correction rather than a second regression from the context.
    denoiser_sees_regression: bool = False
    # What the denoiser's x0 is a correction to: "noisy" the noisy pose h_k it reads, or,
    # with encoder_regression, "regression" the regressed pose (held fixed), the
    # correction starting at zero, so an untrained denoiser returns the regression.
    # Measured on the Human3.6M benchmark and not adopted: the five-step chain then
    # moves the mean away from the regression it starts at (docs/benchmarks.md).
    denoiser_base: str = "noisy"
    # The denoiser reads the context held fixed: the encoder learns from the regression
    # (and depth) losses alone, as a pre-trained lifter would be, the paper's context
    # encoder; the denoising loss trains the denoiser only.
    context_detached: bool = False
    # The encoder's depth head (and x, y spread head) reads its features held fixed: the
    # likelihood fits the head alone and does not pull the shared features (which the
    # regression and the denoiser read) toward predicting its own spread. Measured on the
    # Human3.6M benchmark and not adopted (docs/benchmarks.md).
    depth_head_detached: bool = False
    # Training only: the energy score of `sample_loss_hypotheses` hypotheses sampled
    # through the whole sampler (on `sample_loss_frames` frames per window), added to the
    # denoising loss with this weight, so the hypotheses' spread is fitted to their error;
    # scored per joint ("joint"), over the whole pose ("pose"), or per joint only where the
    # joint has no 2D ("hidden").
    sample_loss_weight: float = 0.0
    sample_loss_scope: str = "pose"
    sample_loss_hypotheses: int = 2
    sample_loss_frames: int = 4
    # The denoiser also predicts the variance of its own x0 estimate (a head fitted by
    # Gaussian likelihood on the held-fixed estimate's error), and each sampling step
    # adds the spread that using a point estimate of x0 drops: without it a few large
    # steps under-disperse most where x0 is least known (a hidden joint). The optimal
    # reverse covariance of Bao et al. (ICML 2022), diagonal per joint and axis.
    x0_variance: bool = False
    mixture_components: int = 2      # per-joint x, y mixture (H_K)
    # Sampling only (training keeps H_K's fixed width): the x, y width H_K gives a joint
    # that has no keypoint for LONG_GAP_FULL frames or more around a frame, rising from
    # SIGMA_BROAD at LONG_GAP_START frames (initial.long_gap_sigma). The few-step sampler
    # keeps only part of a missing joint's starting width, so with SIGMA_BROAD a joint
    # hidden for a whole window spreads about 1.5 times as far as when it is visible while
    # erring twice as far (MODEL_CARD.md). SIGMA_BROAD (0.45) turns this off.
    sample_long_gap_sigma: float = 0.9
    hypotheses: int = 5              # default N

    def __post_init__(self) -> None:
        if self.denoiser_sees_regression and not self.encoder_regression:
            raise ValueError("denoiser_sees_regression needs encoder_regression")
        if self.denoiser_base not in ("noisy", "regression"):
            raise ValueError(f"denoiser_base {self.denoiser_base!r}; expected noisy or "
                             "regression")
        if self.denoiser_base == "regression" and not self.encoder_regression:
            raise ValueError("denoiser_base regression needs encoder_regression")
        if self.missing_xy_spread and not (self.encoder_regression
                                           and self.missing_from_regression):
            raise ValueError("missing_xy_spread needs encoder_regression and "
                             "missing_from_regression")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def resolve_steps(self, steps: int | None) -> int:
        """The denoising steps to sample with: `sample_steps` for None, else `steps`,
        which must lie within the training schedule."""
        steps = self.sample_steps if steps is None else steps
        if steps < 1 or steps > self.diffusion_steps:
            raise DiffPoseError(f"steps {steps}; expected 1 to {self.diffusion_steps}")
        return steps

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**data)


def model_changes(items: list[str]) -> dict[str, Any]:
    """Model-config changes from command-line `--set KEY=JSON` items, for example
    ``missing_xy_spread=true``; a malformed item, a value that is not JSON or a key
    ModelConfig does not have raises DiffPoseError naming the item."""
    defaults = dataclasses.asdict(ModelConfig())
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise DiffPoseError(f"--set {item!r}: expected KEY=JSON")
        if key not in defaults:
            raise DiffPoseError(f"--set {item!r}: ModelConfig has no {key!r}")
        try:
            changes[key] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DiffPoseError(f"--set {item!r}: the value is not JSON ({exc})") from None
        kind = type(defaults[key])
        fits = (type(changes[key]) is kind
                or (kind is float and type(changes[key]) is int))
        if not fits:
            raise DiffPoseError(f"--set {item!r}: {key} expects {kind.__name__}, got "
                                f"{type(changes[key]).__name__}")
    try:
        dataclasses.replace(ModelConfig(), **changes)
    except ValueError as exc:
        raise DiffPoseError(f"--set: {exc}") from None
    return changes


@dataclass
class TrainConfig:
    """What `train` does; saved beside the weights so a run can be repeated."""

    model: ModelConfig = field(default_factory=ModelConfig)
    sources: tuple[str, ...] = ("cmu_bvh_cgspeed", "cmu_bvh_aclstm", "cmu_bvh_cgspeed_daz",
                                "cmu_bvh_cgspeed_max", "cmu_expmap", "hdm05")
    minutes: float = 100.0           # wall-clock budget for the whole run (both models)
    max_iterations: int = 1_000_000
    # What the learning-rate schedule follows: "time" the larger of the fractions of
    # `minutes` and `max_iterations` spent (a wall-clock budget); "iterations" the
    # iterations only, `minutes` being just a cap, so a busy machine trains the same.
    schedule: str = "time"
    batch_windows: int = 48
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)
