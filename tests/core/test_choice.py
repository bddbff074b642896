"""Choosing one hypothesis for a range of frames gives a valid take that bakes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffpose_blender.core.choice import CHOICES_KEY, with_choice
from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.take import read_take, write_take
from tests.core.test_take import make_take


def test_chosen_frames_carry_the_hypothesis() -> None:
    take = make_take()
    before = np.array(take.hypotheses)
    out = with_choice(take, 3, 4, 8)
    hyp = np.asarray(out.hypotheses)
    for t in range(4, 9):
        # Every slot is hypothesis 3; the pose keyed is that hypothesis; no spread left.
        np.testing.assert_array_equal(hyp[t], np.repeat(before[t, 3:4], take.num_hypotheses, 0))
        np.testing.assert_allclose(out.pose[t], before[t, 3], atol=1e-6)
        np.testing.assert_allclose(out.spread[t], 0.0, atol=1e-6)
    # Outside the range nothing changes.
    for t in (*range(0, 4), *range(9, take.num_frames)):
        np.testing.assert_array_equal(hyp[t], before[t])
        np.testing.assert_array_equal(out.pose[t], take.pose[t])
        np.testing.assert_array_equal(out.spread[t], take.spread[t])
    # There was disagreement before (the root is at the origin in every hypothesis).
    assert (np.asarray(take.spread)[4:9, 1:] > 0.005).all()
    # The input take is untouched and the rest of the take carried over.
    np.testing.assert_array_equal(take.hypotheses, before)
    np.testing.assert_array_equal(out.root_cam, take.root_cam)
    np.testing.assert_array_equal(out.keypoints_2d, take.keypoints_2d)
    assert (out.model_name, out.fps, out.focal_px) == (take.model_name, take.fps,
                                                        take.focal_px)


def test_choices_are_recorded_and_survive_a_file(tmp_path: Path) -> None:
    take = make_take()
    out = with_choice(with_choice(take, 1, 0, 2), 4, 20, 20)
    assert out.params[CHOICES_KEY] == [{"hypothesis": 1, "first": 0, "last": 2},
                                       {"hypothesis": 4, "first": 20, "last": 20}]
    assert out.params["seed"] == take.params["seed"]
    assert CHOICES_KEY not in take.params
    write_take(tmp_path / "chosen.take.npz", out)
    back = read_take(tmp_path / "chosen.take.npz")
    assert back.params[CHOICES_KEY] == out.params[CHOICES_KEY]
    np.testing.assert_array_equal(back.hypotheses, out.hypotheses)


def test_single_frame_and_whole_take() -> None:
    take = make_take()
    last = take.num_frames - 1
    out = with_choice(take, 0, 0, last)
    np.testing.assert_allclose(out.spread, 0.0, atol=1e-6)
    np.testing.assert_allclose(out.pose, np.asarray(take.hypotheses)[:, 0], atol=1e-6)


@pytest.mark.parametrize("args, message", [
    ((5, 0, 3), "hypotheses 0 to 4, got 5"),
    ((-1, 0, 3), "hypotheses 0 to 4, got -1"),
    ((0, -1, 3), "frames 0 to 29, got frames -1 to 3"),
    ((0, 3, 30), "frames 0 to 29, got frames 3 to 30"),
    ((0, 8, 4), "first frame \\(8\\) is after the last \\(4\\)"),
    ((1.5, 0, 3), "whole number, got 1.5"),
    ((True, 0, 3), "whole number, got True"),
])
def test_bad_choice_is_refused(args: tuple, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(DiffPoseError, match=message):
        with_choice(make_take(), *args)


def test_numpy_integers_are_accepted() -> None:
    out = with_choice(make_take(), np.int64(2), np.int32(1), np.int64(1))
    assert out.params[CHOICES_KEY] == [{"hypothesis": 2, "first": 1, "last": 1}]
