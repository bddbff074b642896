"""The DiffPose model's parts: pose space, schedule, initial distribution, weights."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from diffpose_blender.backend.model import initial, lifter, posespace
from diffpose_blender.backend.model.config import ModelConfig
from diffpose_blender.backend.model.lifter import BaselineModel, DiffPoseModel, depth_nll
from diffpose_blender.backend.model.schedule import GMMDiffusionSchedule
from diffpose_blender.backend.model.weights import load_model, save_config, save_model
from diffpose_blender.core.skeleton import SKELETON

SMALL = ModelConfig(window=9, d_model=16, heads=2, encoder_layers=1, context_dim=32,
                    denoiser_hidden=32, denoiser_blocks=1, diffusion_steps=20,
                    sample_steps=4)


def _standing(rng: np.random.Generator, frames: int) -> np.ndarray:
    """(T, J, 3) camera metres, root-relative: a person about 1.7 m tall, y down."""
    j = SKELETON.index
    pose = np.zeros((SKELETON.num_joints, 3))
    for name, (x, y) in {"r_hip": (-0.1, 0.0), "r_knee": (-0.1, 0.45), "r_ankle": (-0.1, 0.9),
                         "l_hip": (0.1, 0.0), "l_knee": (0.1, 0.45), "l_ankle": (0.1, 0.9),
                         "spine": (0.0, -0.25), "thorax": (0.0, -0.5),
                         "neck_nose": (0.0, -0.6), "head_top": (0.0, -0.8),
                         "l_shoulder": (0.18, -0.5), "l_elbow": (0.2, -0.25),
                         "l_wrist": (0.2, 0.0), "r_shoulder": (-0.18, -0.5),
                         "r_elbow": (-0.2, -0.25), "r_wrist": (-0.2, 0.0),
                         "l_toe": (0.1, 0.95), "r_toe": (-0.1, 0.95),
                         "l_hand_end": (0.2, 0.1), "r_hand_end": (-0.2, 0.1)}.items():
        pose[j[name]] = (x, y, 0.0)
    pose[j["l_toe"], 2] = pose[j["r_toe"], 2] = -0.12
    return pose[None] + 0.01 * rng.standard_normal((frames, SKELETON.num_joints, 3))


def test_pose_space_round_trip_and_height_scale() -> None:
    rng = np.random.default_rng(0)
    cam = _standing(rng, 5)
    cam -= cam[:, :1]
    root = np.array([[0.3, -0.1, 4.0]] * 5)
    p, root_uv, s = posespace.from_camera(cam, root)
    back = posespace.to_camera(p, root_uv, s, root[:, 2])
    np.testing.assert_allclose(back, cam, atol=1e-9)
    # The height prior recovers the depth when the person has the assumed stature.
    true_height = float(posespace.stature(cam).mean())
    depth = posespace.root_depth_from_height(p, root_uv, s, true_height)
    np.testing.assert_allclose(depth, 4.0, rtol=0.02)


def test_forward_process_reaches_initial_distribution() -> None:
    sched = GMMDiffusionSchedule(50)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 1, 3), 5.0)
    mu = torch.tensor([1.0, -2.0, 0.5]).expand(20000, 1, 3)
    chol = torch.diag(torch.tensor([0.1, 0.2, 0.3])).expand(20000, 1, 3, 3)
    eps = torch.randn(x0.shape, generator=gen)
    h = sched.q_sample(x0, mu, chol, eps, torch.full((20000,), 50))
    np.testing.assert_allclose(h.mean((0, 1)).numpy(), [1.0, -2.0, 0.5], atol=0.01)
    np.testing.assert_allclose(h.std((0, 1)).numpy(), [0.1, 0.2, 0.3], rtol=0.03)
    h1 = sched.q_sample(x0, mu, chol, eps, torch.full((20000,), 1))
    assert float((h1 - x0).abs().mean()) < 0.05


def test_ddim_step_with_perfect_prediction_follows_the_forward_path() -> None:
    sched = GMMDiffusionSchedule(50)
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(4, 21, 3, generator=gen)
    mu = torch.randn(4, 21, 3, generator=gen)
    chol = torch.diag_embed(torch.rand(4, 21, 3, generator=gen) + 0.1)
    eps = torch.randn(x0.shape, generator=gen)
    h40 = sched.q_sample(x0, mu, chol, eps, torch.full((4,), 40))
    h20, pred = sched.step(h40, x0, 40, 20, mu, torch.linalg.inv(chol), chol, eta=0.0)
    expected = sched.q_sample(x0, mu, chol, eps, torch.full((4,), 20))
    torch.testing.assert_close(h20, expected, atol=1e-4, rtol=1e-4)
    assert sched.timesteps(5, "uniform") == [50, 40, 30, 20, 10, 0]
    assert sched.timesteps(5) == [50, 32, 18, 8, 2, 0]
    # More sample steps than the rounding can tell apart still give distinct steps.
    ks = GMMDiffusionSchedule(10).timesteps(10)
    assert ks == sorted(set(ks), reverse=True) and ks[-1] == 0 and len(ks) == 11


def test_initial_distribution_widths_follow_confidence() -> None:
    j = SKELETON.num_joints
    xy = torch.randn(1, j, 2)
    scores = torch.linspace(0.0, 1.0, j)[None]
    scores[0, 0] = 1.0
    scores[0, 1] = 0.0
    w, means, chol = initial.from_keypoints(xy, scores, torch.zeros(1, j),
                                            torch.full((1, j), -2.0))
    sharp = chol[0, :, 0, 0, 0]
    # Lower confidence -> wider sharp component; missing joint (score 0) -> broad.
    assert sharp[5] > sharp[15]
    assert float(sharp[1]) == pytest.approx(initial.SIGMA_BROAD)
    # A missing joint sits at its parent's keypoint.
    parent = SKELETON.parents[1]
    torch.testing.assert_close(means[0, 1, 0, :2], means[0, parent, 0, :2])
    assert torch.all(means[0, 0] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, j))


def test_sampling_is_repeatable_for_a_seed_and_weights_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DiffPoseModel(SMALL).eval()
    base = BaselineModel(SMALL).eval()
    xy = torch.randn(2, SMALL.window, SMALL.joints, 2) * 0.5
    scores = torch.rand(2, SMALL.window, SMALL.joints)
    ls = torch.zeros(2)

    def run(m: torch.nn.Module, seed: int) -> torch.Tensor:
        return m.sample(xy, scores, ls, hypotheses=3, steps=4,
                        generator=torch.Generator().manual_seed(seed))

    a, b, c = run(model, 7), run(model, 7), run(model, 8)
    assert a.shape == (2, SMALL.window, 3, SMALL.joints, 3)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert torch.all(a[..., 0, :] == 0)

    save_config(tmp_path, SMALL)
    save_model(tmp_path, model)
    save_model(tmp_path, base)
    loaded, digest = load_model(tmp_path, "diffpose")
    assert len(digest) == 64
    torch.testing.assert_close(run(loaded, 7), a)
    with np.load(tmp_path / "diffpose.npz", allow_pickle=False) as data:
        assert all(data[k].dtype == np.float32 for k in data.files)


def test_heatmap_mixture_with_keypoint_fallback_per_joint() -> None:
    j = SKELETON.num_joints
    xy = torch.randn(1, j, 2)
    scores = torch.full((1, j), 0.9)
    d_mean, d_logstd = torch.zeros(1, j), torch.full((1, j), -2.0)
    w = torch.full((1, j, 3), 1.0 / 3)
    w[0, 5] = 0.0                                      # no heatmap mixture for joint 5
    means = torch.randn(1, j, 3, 2)
    covs = torch.eye(2).expand(1, j, 3, 2, 2) * 0.01
    heat = initial.from_heatmap_mixture(w, means, covs, d_mean, d_logstd)
    keyp = initial.from_keypoints(xy, scores, d_mean, d_logstd)
    weights, mu, chol = initial.merge(heat, keyp, w.sum(-1) > 0)
    assert weights.shape == (1, j, 3)
    torch.testing.assert_close(mu[0, 5, :2], keyp[1][0, 5])
    assert float(weights[0, 5, 2]) == 0.0
    torch.testing.assert_close(mu[0, 7], heat[1][0, 7])


def test_hypotheses_are_trajectories_when_noise_is_shared_over_the_window() -> None:
    """With the same 2D pose in every frame, a hypothesis drawn with trajectory noise
    barely moves from frame to frame; independent per-frame noise makes it jump."""
    xy = (torch.randn(1, 1, SMALL.joints, 2) * 0.3).expand(1, SMALL.window, SMALL.joints, 2)
    scores = torch.full((1, SMALL.window, SMALL.joints), 0.8)
    steps = []
    for shared in (True, False):
        torch.manual_seed(0)
        model = DiffPoseModel(replace(SMALL, trajectory_noise=shared)).eval()
        hyp = model.sample(xy.contiguous(), scores, torch.zeros(1), hypotheses=4, steps=4,
                           generator=torch.Generator().manual_seed(3))
        steps.append(float(torch.linalg.norm(hyp[:, 1:] - hyp[:, :-1], dim=-1).mean()))
        spread = float(torch.linalg.norm(hyp - hyp.mean(2, keepdim=True), dim=-1).mean())
        assert spread > 0.01                        # the hypotheses still differ
    assert steps[0] < 0.25 * steps[1]


def test_components_drawn_at_one_uniform_value_stay_put_as_weights_drift() -> None:
    weights = torch.tensor([[0.70, 0.30], [0.65, 0.35], [0.0, 1.0]])
    means = torch.arange(6, dtype=torch.float32).reshape(1, 2, 3).expand(3, 2, 3)
    chol = torch.eye(3).expand(3, 2, 3, 3)
    mu, _ = initial.pick_components(weights, means, chol, u=torch.tensor(0.5))
    torch.testing.assert_close(mu[:2], means[:2, 0])        # same component while it can
    torch.testing.assert_close(mu[2], means[2, 1])          # never a zero-weight one
    mu, _ = initial.pick_components(weights, means, chol, u=torch.tensor(0.0))
    torch.testing.assert_close(mu[2], means[2, 1])


def test_long_occlusions_hide_a_joint_or_limb_over_a_span_never_the_root() -> None:
    from diffpose_blender.backend.data.augment import occlude

    rng = np.random.default_rng(1)
    scores = np.full((400, 27, SKELETON.num_joints), 0.9)
    out = occlude(rng, scores, probability=0.5)
    assert np.all(out[..., 0] == 0.9) and np.all(scores == 0.9)
    hidden_windows = np.flatnonzero((out == 0).any(axis=(1, 2)))
    assert 150 < len(hidden_windows) < 250
    for i in hidden_windows:
        frames = np.flatnonzero((out[i] == 0).any(axis=1))
        assert len(frames) >= 9 and np.all(np.diff(frames) == 1)     # one span
        joints = set(np.flatnonzero((out[i] == 0).any(axis=0)).tolist())
        top = min(joints)
        for j in joints - {top}:                  # the rest are descendants of the first
            p = SKELETON.parents[j]
            while p not in (top, -1):
                p = SKELETON.parents[p]
            assert p == top


def test_encoder_regression_trains_jointly_and_centres_the_depth(tmp_path: Path) -> None:
    import dataclasses

    cfg = dataclasses.replace(SMALL, encoder_regression=True, missing_from_regression=True)
    torch.manual_seed(0)
    model = DiffPoseModel(cfg)
    xy = torch.randn(2, cfg.window, cfg.joints, 2) * 0.3
    scores = torch.rand(2, cfg.window, cfg.joints)
    ls = torch.zeros(2)
    target = torch.randn(2, cfg.window, cfg.joints, 3) * 0.2
    target[..., 0, :] = 0.0
    loss, parts = model.loss(xy, scores, ls, target, generator=torch.Generator().manual_seed(0))
    assert "regression" in parts and parts["regression"] > 0
    loss.backward()
    assert model.regressor.head[0].weight.grad is not None
    # H_K's depth is the regressed pose's depth, not the encoder's depth head.
    context, d_mean, _, _ = model.encoder(xy, scores, ls)
    centre, pose = model._depth_centre(context, xy, d_mean)
    assert pose is not None
    torch.testing.assert_close(centre, pose[..., 2])
    # A joint with no 2D is centred on the regressed x, y (the visible ones on their 2D).
    hidden = scores.clone()
    hidden[:, :, 5] = 0.0
    _, means, _ = model._initial(xy, hidden, centre, torch.zeros_like(centre), None, pose)
    torch.testing.assert_close(means[:, :, 5, :, :2],
                               pose[:, :, 5, None, :2].expand(2, cfg.window, 2, 2))
    torch.testing.assert_close(means[:, :, 4, :, :2],
                               xy[:, :, 4, None].expand(2, cfg.window, 2, 2))
    model.cfg = dataclasses.replace(cfg, missing_from_regression=False)   # its ancestor's
    _, means, _ = model._initial(xy, hidden, centre, torch.zeros_like(centre), None, pose)
    parent = SKELETON.parents[5]
    torch.testing.assert_close(means[:, :, 5, :, :2], means[:, :, parent, :, :2])
    model.cfg = cfg
    # Round trip; with the flag off (the models trained before it) there is no regressor.
    save_config(tmp_path, cfg)
    save_model(tmp_path, model.eval())
    loaded, _ = load_model(tmp_path, "diffpose")
    assert loaded.cfg.encoder_regression and hasattr(loaded, "regressor")
    assert not hasattr(DiffPoseModel(dataclasses.replace(SMALL, encoder_regression=False)),
                       "regressor")


def test_antithetic_hypotheses_mirror_their_pair_and_keep_the_first_half() -> None:
    """With `antithetic`, hypothesis i + N/2 is drawn with the negated noise of hypothesis
    i: through a sampler that is linear in its noise (a denoiser that returns its input)
    each pair averages to the noise-free path, the centre of H_K; the first half is what
    the same seed gives without pairing."""
    torch.manual_seed(0)
    xy = torch.randn(2, SMALL.window, SMALL.joints, 2) * 0.3
    xy[..., 0, :] = 0.0
    scores = torch.ones(2, SMALL.window, SMALL.joints)    # one mixture component per joint
    ls = torch.zeros(2)
    plain = DiffPoseModel(replace(SMALL, antithetic=False)).eval()
    paired = DiffPoseModel(replace(SMALL, antithetic=True)).eval()
    paired.load_state_dict(plain.state_dict())
    for model in (plain, paired):
        torch.nn.init.zeros_(model.denoiser.out[1].weight)       # x0 = h at every step
        torch.nn.init.zeros_(model.denoiser.out[1].bias)
    hyp = paired.sample(xy, scores, ls, hypotheses=4, steps=4,
                        generator=torch.Generator().manual_seed(5))
    assert float((hyp[:, :, 0] - hyp[:, :, 2]).abs().max()) > 1e-3   # pairs differ
    pair_mean = (hyp[:, :, :2] + hyp[:, :, 2:]) / 2
    torch.testing.assert_close(pair_mean[..., :2], xy[:, :, None].expand_as(pair_mean[..., :2]),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(pair_mean[:, :, 0], pair_mean[:, :, 1], atol=1e-5, rtol=0)
    half = plain.sample(xy, scores, ls, hypotheses=2, steps=4,
                        generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(hyp[:, :, :2], half)


def test_energy_score_is_smallest_when_the_spread_matches_the_error() -> None:
    """Truth ~ N(0, I) per joint: hypotheses drawn with the same spread score better than
    collapsed, too narrow or too wide ones (the score is proper)."""
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(20_000, 4, 3, generator=gen)
    means = {}
    for spread in (0.0, 0.5, 1.0, 2.0):
        hyp = spread * torch.randn(20_000, 2, 4, 3, generator=gen)
        means[spread] = float(lifter.energy_score(hyp, target).mean())
    assert means[1.0] < min(means[0.0], means[0.5], means[2.0]) - 0.03
    with pytest.raises(ValueError, match="at least 2 hypotheses"):
        lifter.energy_score(torch.zeros(3, 1, 4, 3), torch.zeros(3, 4, 3))


def test_sample_loss_adds_the_energy_of_sampled_hypotheses_to_the_denoiser() -> None:
    """The energy term reaches the denoiser (through the sampler's steps), not the encoder;
    the other loss terms are unchanged by it, and weight 0 removes it."""
    xy = torch.randn(2, SMALL.window, SMALL.joints, 2) * 0.3
    scores = torch.rand(2, SMALL.window, SMALL.joints)
    target = torch.randn(2, SMALL.window, SMALL.joints, 3) * 0.2
    target[..., 0, :] = 0.0

    def run(**changes: object) -> tuple[dict[str, float], DiffPoseModel]:
        torch.manual_seed(0)
        model = DiffPoseModel(replace(SMALL, **changes))  # type: ignore[arg-type]
        loss, parts = model.loss(xy, scores, torch.zeros(2), target,
                                 generator=torch.Generator().manual_seed(0))
        loss.backward()
        return parts, model

    off, m0 = run(sample_loss_weight=0.0)
    assert "energy" not in off
    for scope in ("pose", "joint"):
        on, m1 = run(sample_loss_weight=1.0, sample_loss_scope=scope)
        assert on["energy"] > 0
        assert on["pose"] == off["pose"] and on["regression"] == off["regression"]
        changed = {part: any(not torch.allclose(a.grad, b.grad)
                             for a, b in zip(getattr(m0, part).parameters(),
                                             getattr(m1, part).parameters())
                             if a.grad is not None and b.grad is not None)
                   for part in ("denoiser", "encoder")}
        assert changed == {"denoiser": True, "encoder": False}, scope
    with pytest.raises(ValueError, match="sample_loss_scope"):
        run(sample_loss_weight=1.0, sample_loss_scope="limb")


def test_hidden_scope_scores_only_the_joints_without_2d() -> None:
    """Scope "hidden": the energy of joints with score 0 only. With every joint seen it adds
    nothing; the score of a hidden joint changes it, the score of a seen one does not."""
    xy = torch.randn(2, SMALL.window, SMALL.joints, 2) * 0.3
    target = torch.randn(2, SMALL.window, SMALL.joints, 3) * 0.2
    target[..., 0, :] = 0.0
    seen = torch.rand(2, SMALL.window, SMALL.joints) + 0.1
    hidden = seen.clone()
    hidden[..., 3] = 0.0

    def energy(scores: torch.Tensor, moved: int | None = None) -> float:
        torch.manual_seed(0)
        model = DiffPoseModel(replace(SMALL, sample_loss_weight=1.0, sample_loss_scope="hidden",
                                      sample_loss_frames=SMALL.window))
        truth = target.clone()
        if moved is not None:
            truth[..., moved, :] += 10.0
        _, parts = model.loss(xy, scores, torch.zeros(2), truth,
                              generator=torch.Generator().manual_seed(0))
        return parts["energy"]

    assert energy(seen) == 0.0
    base = energy(hidden)
    assert base > 0
    assert energy(hidden, moved=3) > base + 5.0       # the hidden joint is scored
    assert energy(hidden, moved=5) == pytest.approx(base, abs=1e-6)   # a seen one is not


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_a_step_with_the_x0_spread_keeps_the_forward_marginal(eta: float) -> None:
    """From pure H_K nothing about x0 is known yet: if x0 ~ N(m, s^2), the forward process
    puts h at step 30 around sqrt(a) m + (1 - sqrt(a)) mu with variance a s^2 + (1 - a) L^2.
    A step that uses x0_pred = m as exact loses the a s^2 part; with x0_std = s it keeps
    it (Bao et al. 2022)."""
    sched = GMMDiffusionSchedule(50)
    gen = torch.Generator().manual_seed(3)
    n = 40000
    mu = torch.tensor([0.5, -1.0, 0.2]).expand(n, 1, 3)
    chol = torch.diag(torch.tensor([0.3, 0.2, 0.1])).expand(n, 1, 3, 3)
    m = torch.tensor([1.0, 2.0, -1.0]).expand(n, 1, 3)
    s = torch.tensor([0.4, 0.3, 0.5]).expand(n, 1, 3)
    x0 = m + s * torch.randn(n, 1, 3, generator=gen)
    eps = torch.randn(n, 1, 3, generator=gen)
    truth = sched.q_sample(x0, mu, chol, torch.randn(n, 1, 3, generator=gen),
                           torch.full((n,), 30))
    h50 = mu + (chol @ eps[..., None])[..., 0]

    def step(x0_std: torch.Tensor | None) -> torch.Tensor:
        h30, _ = sched.step(h50, m, 50, 30, mu, torch.linalg.inv(chol), chol, eta,
                            torch.randn(n, 1, 3, generator=gen), x0_std,
                            torch.randn(n, 1, 3, generator=gen))
        return h30

    with_spread, without = step(s), step(None)
    torch.testing.assert_close(with_spread.mean(0), truth.mean(0), atol=0.01, rtol=0.0)
    torch.testing.assert_close(with_spread.std(0), truth.std(0), atol=0.0, rtol=0.03)
    assert bool((without.std(0) < 0.9 * truth.std(0)).all())
    with pytest.raises(ValueError, match="x0_std"):
        sched.step(h50, m, 50, 30, mu, torch.linalg.inv(chol), chol, 0.0, None, s, None)


def test_x0_variance_head_is_fitted_apart_and_widens_the_hypotheses(tmp_path: Path) -> None:
    """`x0_variance`: a head fitted to the error of the held-fixed x0 estimate. It leaves
    every other loss term and gradient as they are; the sampler widens the hypotheses by
    the spread it predicts; its weights round-trip."""
    xy = torch.randn(2, SMALL.window, SMALL.joints, 2) * 0.3
    scores = torch.rand(2, SMALL.window, SMALL.joints)
    target = torch.randn(2, SMALL.window, SMALL.joints, 3) * 0.2
    target[..., 0, :] = 0.0
    torch.manual_seed(0)
    plain = DiffPoseModel(SMALL)
    model = DiffPoseModel(replace(SMALL, x0_variance=True))
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("denoiser.var_out") for k in missing)
    parts = {}
    for name, m in (("plain", plain), ("var", model)):
        loss, parts[name] = m.loss(xy, scores, torch.zeros(2), target,
                                   generator=torch.Generator().manual_seed(0))
        loss.backward()
    assert "x0_nll" in parts["var"] and "x0_nll" not in parts["plain"]
    assert {k: v for k, v in parts["var"].items() if k != "x0_nll"} == parts["plain"]
    grads = dict(model.named_parameters())
    for name, p in plain.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, msg=name)
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.denoiser.var_out.parameters())

    def spread(m: DiffPoseModel) -> float:
        hyp = m.sample(xy, scores, torch.zeros(2), hypotheses=8, steps=4,
                       generator=torch.Generator().manual_seed(1))
        return float((hyp - hyp.mean(2, keepdim=True)).norm(dim=-1)[..., 1:].mean())

    model.eval()
    with torch.no_grad():
        model.denoiser.var_out[1].weight.zero_()
        model.denoiser.var_out[1].bias.fill_(-30.0)       # x0 as good as certain
        narrow = spread(model)
        model.denoiser.var_out[1].bias.fill_(2 * np.log(2.0))   # 2 pose-space units
        wide = spread(model)
    assert narrow == pytest.approx(spread(plain.eval()), rel=0.25)
    assert wide > 1.5 * narrow
    save_model(tmp_path, model)
    save_config(tmp_path, model.cfg)
    loaded, _ = load_model(tmp_path, "diffpose")
    assert loaded.cfg.x0_variance
    torch.testing.assert_close(loaded.denoiser.var_out[1].bias, model.denoiser.var_out[1].bias)


def test_a_held_fixed_context_and_regression_leave_the_encoder_to_the_regression() -> None:
    """`context_detached` with `denoiser_sees_regression`: the denoising loss trains the
    denoiser only, so changing the denoiser leaves the encoder's and the regressor's
    gradients as they are (without the flag they change); the denoiser reads the
    regressed pose, so its input grows by J x 3."""
    xy = torch.randn(2, SMALL.window, SMALL.joints, 2) * 0.3
    scores = torch.rand(2, SMALL.window, SMALL.joints)
    target = torch.randn(2, SMALL.window, SMALL.joints, 3) * 0.2
    target[..., 0, :] = 0.0

    def encoder_grads(cfg: ModelConfig, denoiser_gain: float) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = DiffPoseModel(cfg)
        with torch.no_grad():
            model.denoiser.out[1].weight.mul_(denoiser_gain)
            model.denoiser.out[1].bias.add_(denoiser_gain - 1.0)
        loss, _ = model.loss(xy, scores, torch.zeros(2), target,
                             generator=torch.Generator().manual_seed(0))
        loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()
                if not n.startswith("denoiser.") and p.grad is not None}

    fixed = replace(SMALL, context_detached=True, denoiser_sees_regression=True)
    base, changed = encoder_grads(fixed, 1.0), encoder_grads(fixed, 3.0)
    assert any(n.startswith("encoder.") for n in base) and any(
        n.startswith("regressor.") for n in base)
    for name, grad in base.items():
        torch.testing.assert_close(changed[name], grad, msg=name)
    joint = replace(SMALL, denoiser_sees_regression=True)
    base, changed = encoder_grads(joint, 1.0), encoder_grads(joint, 3.0)
    assert any(not torch.allclose(changed[n], g) for n, g in base.items()
               if n.startswith("encoder."))
    assert (DiffPoseModel(fixed).denoiser.inp.in_features
            == DiffPoseModel(SMALL).denoiser.inp.in_features + SMALL.joints * 3)
    hyp = DiffPoseModel(fixed).sample(xy, scores, torch.zeros(2), hypotheses=3, steps=4,
                                      generator=torch.Generator().manual_seed(1))
    assert hyp.shape == (2, SMALL.window, 3, SMALL.joints, 3) and torch.isfinite(hyp).all()
    with pytest.raises(ValueError, match="needs encoder_regression"):
        DiffPoseModel(replace(SMALL, encoder_regression=False, denoiser_sees_regression=True))


def test_a_denoiser_based_on_the_regression_starts_from_it() -> None:
    """`denoiser_base` "regression": x0 is a correction to the regressed pose that starts
    at zero, so an untrained model's hypotheses are the regression itself; the denoising
    loss trains the correction and does not reach the regressor through the base (held
    fixed). A base other than noisy or regression, or one without encoder_regression,
    is refused."""
    xy = torch.randn(2, SMALL.window, SMALL.joints, 2) * 0.3
    scores = torch.rand(2, SMALL.window, SMALL.joints)
    target = torch.randn(2, SMALL.window, SMALL.joints, 3) * 0.2
    target[..., 0, :] = 0.0
    cfg = replace(SMALL, denoiser_base="regression")
    torch.manual_seed(0)
    model = DiffPoseModel(cfg)
    hyp = model.sample(xy, scores, torch.zeros(2), hypotheses=3, steps=4,
                       generator=torch.Generator().manual_seed(1))
    regressed = model.regression(xy, scores, torch.zeros(2))
    torch.testing.assert_close(hyp, regressed.unsqueeze(2).expand_as(hyp))
    torch.manual_seed(0)
    noisy_base = DiffPoseModel(SMALL).sample(xy, scores, torch.zeros(2), hypotheses=3, steps=4,
                                             generator=torch.Generator().manual_seed(1))
    assert (noisy_base - regressed.unsqueeze(2)).abs().max() > 1e-2

    def regressor_grads(gain: float) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        trained = DiffPoseModel(cfg)
        with torch.no_grad():       # a correction that is no longer zero, then scaled
            trained.denoiser.out[1].weight.normal_(0.0, 0.1 * gain)
        loss, parts = trained.loss(xy, scores, torch.zeros(2), target,
                                   generator=torch.Generator().manual_seed(0))
        loss.backward()
        assert trained.denoiser.out[1].weight.grad.abs().sum() > 0
        assert parts["pose"] != parts["regression"]
        return {n: p.grad.clone() for n, p in trained.regressor.named_parameters()}

    one, three = regressor_grads(1.0), regressor_grads(3.0)
    for name, grad in one.items():
        torch.testing.assert_close(three[name], grad, msg=name)
    context, d_mean, _, _ = model.encoder(xy, scores, torch.zeros(2))
    k = torch.full(target.shape[:2], 7)
    with pytest.raises(ValueError, match="needs the regressed pose"):
        model.denoiser(target, context, k, model._observation(xy, scores, regressed))
    with pytest.raises(ValueError, match="denoiser_base 'pose'"):
        replace(SMALL, denoiser_base="pose")
    with pytest.raises(ValueError, match="denoiser_base regression needs encoder_regression"):
        replace(SMALL, encoder_regression=False, denoiser_base="regression")


def test_a_held_apart_depth_head_leaves_the_encoder_to_the_other_losses() -> None:
    """`depth_head_detached`: the depth likelihood's gradient reaches the depth head and
    nothing else of the encoder (without the flag it reaches all of it)."""
    xy = torch.randn(2, SMALL.window, SMALL.joints, 2) * 0.3
    scores = torch.rand(2, SMALL.window, SMALL.joints)
    depth = torch.randn(2, SMALL.window, SMALL.joints) * 0.2

    def reached(cfg: ModelConfig) -> set[str]:
        torch.manual_seed(0)
        model = DiffPoseModel(cfg)
        _, d_mean, d_logstd, _ = model.encoder(xy, scores, torch.zeros(2))
        depth_nll(d_mean, d_logstd, depth).backward()
        return {n for n, p in model.named_parameters()
                if p.grad is not None and p.grad.abs().sum() > 0}

    assert reached(replace(SMALL, depth_head_detached=True)) == {
        "encoder.depth.weight", "encoder.depth.bias"}
    shared = reached(SMALL)
    assert "encoder.embed.weight" in shared and "encoder.joint_embed" in shared


def test_a_missing_joint_takes_the_encoders_xy_width_centred_on_the_regression(
        tmp_path: Path) -> None:
    """`missing_xy_spread`: H_K gives a joint with no 2D the encoder's predicted x, y width
    (both components) around the regressed x, y; visible joints keep the keypoint mixture.
    The width head is fitted by likelihood to the regression's x, y error: its loss is
    reported, and its gradient reaches the head; the flag's weights round-trip."""
    cfg = replace(SMALL, missing_from_regression=True, missing_xy_spread=True)
    torch.manual_seed(0)
    model = DiffPoseModel(cfg)
    xy = torch.randn(2, cfg.window, cfg.joints, 2) * 0.3
    scores = torch.rand(2, cfg.window, cfg.joints) * 0.5 + 0.5
    scores[:, :, 4] = 0.0
    xy[:, :, 4] = 0.0
    with torch.no_grad():
        model.encoder.xy_spread.bias.fill_(np.log(0.1))
        context, d_mean, d_logstd, xy_logstd = model.encoder(xy, scores, torch.zeros(2))
        centre, regressed = model._depth_centre(context, xy, d_mean)
        _, means, chol = model._initial(xy, scores, centre, d_logstd, None, regressed,
                                        xy_logstd)
    width = xy_logstd[:, :, 4].exp()
    for m in range(2):
        torch.testing.assert_close(chol[:, :, 4, m, 0, 0], width)
        torch.testing.assert_close(chol[:, :, 4, m, 1, 1], width)
        torch.testing.assert_close(means[:, :, 4, m, :2], regressed[:, :, 4, :2])
    plain_mix = DiffPoseModel(SMALL)._initial(xy, scores, centre, d_logstd, None, regressed)
    torch.testing.assert_close(chol[:, :, 5], plain_mix[2][:, :, 5])
    assert float(plain_mix[2][0, 0, 4, 0, 0, 0]) == pytest.approx(initial.SIGMA_BROAD)

    target = torch.randn(2, cfg.window, cfg.joints, 3) * 0.2
    target[..., 0, :] = 0.0
    loss, parts = model.loss(xy, scores, torch.zeros(2), target,
                             generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert "xy_nll" in parts
    assert model.encoder.xy_spread.weight.grad.abs().sum() > 0
    save_model(tmp_path, model)
    save_config(tmp_path, model.cfg)
    loaded, _ = load_model(tmp_path, "diffpose")
    torch.testing.assert_close(loaded.encoder.xy_spread.bias, model.encoder.xy_spread.bias)
    with pytest.raises(ValueError, match="missing_xy_spread needs"):
        DiffPoseModel(replace(SMALL, missing_xy_spread=True))


def test_frames_to_the_nearest_detection_and_the_long_gap_width() -> None:
    scores = torch.zeros(20, 3)
    scores[[0, 10], 0] = 0.9            # joint 0: detected at frames 0 and 10
    scores[:, 1] = 0.5                  # joint 1: always; joint 2: never
    away = initial.frames_to_detection(scores[None])[0]
    assert away[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert away[:, 1].eq(0).all() and away[:, 2].eq(initial.LONG_GAP_FULL).all()
    sigma = initial.long_gap_sigma(scores, 0.9)
    assert torch.allclose(sigma[:17, 0], torch.tensor(initial.SIGMA_BROAD))
    assert float(sigma[19, 0]) == pytest.approx(
        initial.SIGMA_BROAD + 0.45 * (9 - initial.LONG_GAP_START)
        / (initial.LONG_GAP_FULL - initial.LONG_GAP_START))
    assert torch.allclose(sigma[:, 2], torch.tensor(0.9))


def test_sampling_widens_a_joint_missing_for_long_and_training_does_not() -> None:
    """`sample_long_gap_sigma`: H_K at sampling time gives a joint with no keypoint in the
    whole window that width (both components); a joint missing for a frame or two keeps
    SIGMA_BROAD, visible joints their keypoint widths; the training mixture is unchanged,
    and SIGMA_BROAD turns the widening off."""
    torch.manual_seed(0)
    model = DiffPoseModel(replace(SMALL, window=27))
    xy = torch.randn(1, 27, SMALL.joints, 2) * 0.3
    scores = torch.full((1, 27, SMALL.joints), 0.8)
    scores[:, :, 4] = 0.0                      # hidden all window
    scores[:, 10:12, 6] = 0.0                  # a two-frame gap
    xy[scores == 0] = 0.0
    with torch.no_grad():
        context, d_mean, d_logstd, _ = model.encoder(xy, scores, torch.zeros(1))
        centre, regressed = model._depth_centre(context, xy, d_mean)

        def widths(m: DiffPoseModel, sampling: bool) -> torch.Tensor:
            return m._initial(xy, scores, centre, d_logstd, None, regressed,
                              sampling=sampling)[2][..., 0, 0]       # (1, T, J, M)

    sampled, trained = widths(model, True), widths(model, False)
    assert torch.allclose(sampled[:, :, 4], torch.tensor(model.cfg.sample_long_gap_sigma))
    assert torch.allclose(trained[:, :, 4], torch.tensor(initial.SIGMA_BROAD))
    torch.testing.assert_close(sampled[:, :, 6], trained[:, :, 6])
    torch.testing.assert_close(sampled[:, :, 5], trained[:, :, 5])
    off = DiffPoseModel(replace(model.cfg, sample_long_gap_sigma=initial.SIGMA_BROAD))
    off.load_state_dict(model.state_dict())
    torch.testing.assert_close(widths(off, True), trained)
