"""Ghost skeletons: the hypotheses land in the world where the take's mean pose does."""

from __future__ import annotations

import numpy as np

from diffpose_blender.core.colors import spread_to_rgb
from diffpose_blender.core.ghosts import ghost_lines, take_ghosts
from diffpose_blender.core.skeleton import SKELETON
from diffpose_blender.core.take import compute_spread
from diffpose_blender.core.world import take_to_world
from tests.core.test_take import EMPTY_FRAME, make_take


def test_mean_of_ghosts_is_the_world_pose_and_shapes_are_kept() -> None:
    take = make_take()
    motion = take_to_world(take)
    ghosts = take_ghosts(take, motion)
    assert ghosts.hypotheses.shape == np.shape(take.hypotheses)
    valid = motion.valid
    np.testing.assert_allclose(ghosts.hypotheses[valid].mean(axis=1), motion.joints[valid],
                               atol=1e-5)
    # A rigid (here unscaled) placement keeps each hypothesis's distances to the mean.
    np.testing.assert_allclose(compute_spread(ghosts.hypotheses[valid]),
                               np.asarray(take.spread)[valid], atol=1e-5)
    assert np.isnan(ghosts.hypotheses[EMPTY_FRAME]).all()


def test_height_scaling_scales_the_ghosts_too() -> None:
    take = make_take()
    motion = take_to_world(take, height_m=2.0)
    plain = take_to_world(take)
    k = motion.spread[0, 5] / plain.spread[0, 5]
    ghosts = take_ghosts(take, motion)
    np.testing.assert_allclose(compute_spread(ghosts.hypotheses[motion.valid]),
                               np.asarray(take.spread)[motion.valid] * k, atol=1e-5)


def test_lines_per_hypothesis_with_spread_colours() -> None:
    take = make_take()
    ghosts = take_ghosts(take)
    B, N = len(SKELETON.bones), take.num_hypotheses
    pos, col = ghost_lines(ghosts, 3, opacity=0.5)
    assert pos.shape == (2 * B * N, 3) and col.shape == (2 * B * N, 4)
    assert pos.dtype == np.float32 and col.dtype == np.float32
    # Segment b of hypothesis n joins that hypothesis's parent and child joints.
    n, b = 2, 4
    parent, child = SKELETON.bones[b]
    np.testing.assert_allclose(pos[2 * (n * B + b)], ghosts.hypotheses[3, n, parent], atol=1e-6)
    np.testing.assert_allclose(pos[2 * (n * B + b) + 1], ghosts.hypotheses[3, n, child],
                               atol=1e-6)
    np.testing.assert_allclose(col[2 * (n * B + b) + 1, :3],
                               spread_to_rgb(ghosts.spread[3, child]), atol=1e-6)
    assert (col[:, 3] == 0.5).all()


def test_one_hypothesis_plain_colours_and_a_matrix() -> None:
    ghosts = take_ghosts(make_take())
    B = len(SKELETON.bones)
    matrix = np.eye(4)
    matrix[:3, 3] = (1.0, 2.0, 3.0)
    pos, col = ghost_lines(ghosts, 3, hypothesis=1, colored=False, matrix=matrix,
                           plain_rgb=(0.2, 0.3, 0.4), opacity=2.0)
    assert pos.shape == (2 * B, 3)
    parent, child = SKELETON.bones[0]
    np.testing.assert_allclose(pos[1], ghosts.hypotheses[3, 1, child] + (1, 2, 3), atol=1e-5)
    np.testing.assert_allclose(col, np.tile([0.2, 0.3, 0.4, 1.0], (2 * B, 1)), atol=1e-6)


def test_nothing_to_draw_outside_the_take_or_in_an_empty_frame() -> None:
    ghosts = take_ghosts(make_take())
    for frame, hyp in ((-1, -1), (ghosts.num_frames, -1), (EMPTY_FRAME, -1), (3, 99)):
        pos, col = ghost_lines(ghosts, frame, hypothesis=hyp)
        assert pos.shape == (0, 3) and col.shape == (0, 4)
