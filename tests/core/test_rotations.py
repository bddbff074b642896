"""core.rotations: quaternion <-> matrix <-> axis-angle agree with each other."""

from __future__ import annotations

import numpy as np

from diffpose_blender.core.rotations import (axis_angle_matrix, hemisphere_continuous,
                                             matrix_to_quat, normalize, quat_to_matrix,
                                             quaternions_to_axis_angle)


def test_axis_angle_round_trip_through_matrices() -> None:
    rng = np.random.default_rng(0)
    axes = normalize(rng.normal(size=(200, 3)))
    angles = rng.uniform(0.01, np.pi - 0.01, size=200)
    quats = hemisphere_continuous(matrix_to_quat(axis_angle_matrix(axes, angles)))
    out = quaternions_to_axis_angle(quats)
    assert out.shape == (200, 4)
    # The same rotation back (an axis-angle pair is unique up to (axis, a) ~ (-axis, -a)
    # and 2*pi - a about -axis; compare the matrices).
    np.testing.assert_allclose(axis_angle_matrix(out[:, 1:], out[:, 0]),
                               quat_to_matrix(quats), atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(out[:, 1:], axis=1), 1.0, atol=1e-12)


def test_axis_of_a_rest_frame_is_the_previous_frames() -> None:
    turn = matrix_to_quat(axis_angle_matrix(np.array([[1.0, 0, 0]]), np.array([0.5])))[0]
    rest = np.array([1.0, 0, 0, 0])
    out = quaternions_to_axis_angle(np.stack([rest, turn, rest, turn]))
    np.testing.assert_allclose(out[0], [0, 0, 1, 0])          # Blender's default +Y
    np.testing.assert_allclose(out[1], [0.5, 1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(out[2], [0, 1, 0, 0], atol=1e-12)  # keeps +X: no flip
    np.testing.assert_allclose(out[3], [0.5, 1, 0, 0], atol=1e-12)
