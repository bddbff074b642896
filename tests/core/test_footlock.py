"""Foot contacts and foot locking on real walking mocap, with the kind of noise a lifter
adds: planted feet must stop sliding, legs must keep their lengths."""

from __future__ import annotations

import numpy as np
import pytest

from diffpose_blender.core.footlock import (FootLockOptions, contact_spans, detect_contacts,
                                            lock_feet, two_bone_ik)
from diffpose_blender.core.retarget import RetargetOptions, pose_world_joints, retarget
from diffpose_blender.core.rigmap import detect_rig
from diffpose_blender.core.skeleton import JOINT_NAMES, SKELETON
from diffpose_blender.core.world import WorldMotion
from tests.core.numpy_rigs import MIXAMO, build_rig, rest_joints
from tests.core.test_retarget import clip

J = SKELETON.index
FEET = ("l_ankle", "r_ankle", "l_toe", "r_toe")


def lifted_like(pos: np.ndarray, seed: int = 0) -> np.ndarray:
    """The clip with a lifter's kind of error: per-joint jitter (8 mm) and a slowly
    wandering root (a smooth random walk of a few centimetres), which is what makes
    planted feet slide."""
    rng = np.random.default_rng(seed)
    T = len(pos)
    jitter = rng.normal(0.0, 0.008, pos.shape)
    walk = np.cumsum(rng.normal(0.0, 0.004, (T, 3)), axis=0)
    kernel = np.ones(9) / 9.0
    wander = np.stack([np.convolve(np.pad(walk[:, k], 4, mode="edge"), kernel, "valid")
                       for k in range(3)], axis=1)
    wander[:, 2] *= 0.3
    return pos + jitter + wander[:, None, :]


def drift_during(track: np.ndarray, spans: list[tuple[int, int]], margin: int) -> float:
    """Mean horizontal distance (m) of a foot joint from where it stands, over the inner
    frames of each contact span (`margin` frames trimmed at both ends)."""
    out = []
    for start, end in spans:
        inner = track[start + margin:end - margin, :2]
        if len(inner) >= 3:
            out.append(np.linalg.norm(inner - inner.mean(axis=0), axis=1).mean())
    return float(np.mean(out))


@pytest.fixture(scope="module")
def walk():
    pos, fps = clip("09/09_12")  # walking forward, backward and sideways, 16 s
    return pos, fps


def test_contacts_of_a_clean_walk_alternate(walk) -> None:
    pos, fps = walk
    left = detect_contacts(pos[:, J["l_ankle"]], fps)
    right = detect_contacts(pos[:, J["r_ankle"]], fps)
    assert len(contact_spans(left)) >= 2 and len(contact_spans(right)) >= 2
    # In contact, the clean ankle hardly moves; each contact lasts a real stance phase.
    for contact, k in ((left, J["l_ankle"]), (right, J["r_ankle"])):
        speed = np.linalg.norm(np.diff(pos[:, k, :2], axis=0), axis=1) * fps
        assert np.median(speed[contact[1:]]) < 0.15
        assert all(end - start >= FootLockOptions().min_frames
                   for start, end in contact_spans(contact))


def test_hysteresis_and_minimum_duration() -> None:
    fps = 30.0
    T = 60
    track = np.zeros((T, 3))
    track[:, 0] = np.linspace(0.0, 3.0, T)           # walking along at 1.5 m/s ...
    track[10:30, 0] = track[10, 0]                    # ... stands 20 frames
    track[30:, 0] = track[10, 0] + np.linspace(0.0, 1.5, T - 30)
    track[40:42, 0] = track[40, 0]                    # a 2-frame pause: no step
    track[20, 2] = 0.065                              # a wobble between on and off heights
    contact = detect_contacts(track, fps, FootLockOptions(smooth_frames=1))
    spans = contact_spans(contact)
    assert len(spans) == 1
    start, end = spans[0]
    assert 9 <= start <= 12 and 28 <= end <= 31       # the wobble did not break it


def test_two_bone_ik_keeps_lengths_and_bend_side(walk) -> None:
    pos, _ = walk
    hip, knee, ankle = (pos[:, J[f"l_{n}"]] for n in ("hip", "knee", "ankle"))
    target = ankle + np.array([0.03, -0.02, 0.01])
    new_knee, new_ankle = two_bone_ik(hip, knee, ankle, target)
    np.testing.assert_allclose(np.linalg.norm(new_knee - hip, axis=1),
                               np.linalg.norm(knee - hip, axis=1), atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(new_ankle - new_knee, axis=1),
                               np.linalg.norm(ankle - knee, axis=1), atol=1e-9)
    reachable = np.linalg.norm(target - hip, axis=1) < (
        np.linalg.norm(knee - hip, axis=1) + np.linalg.norm(ankle - knee, axis=1) - 1e-5)
    np.testing.assert_allclose(new_ankle[reachable], target[reachable], atol=1e-9)
    # The knee bends to the side it bent before: its offset from the hip-ankle line
    # points the same way.
    def offset(k: np.ndarray, a: np.ndarray) -> np.ndarray:
        axis = (a - hip) / np.linalg.norm(a - hip, axis=1, keepdims=True)
        v = k - hip
        return v - np.einsum("tc,tc->t", v, axis)[:, None] * axis
    before = offset(knee, ankle)
    bent = reachable & (np.linalg.norm(before, axis=1) > 0.01)  # a side to keep
    agree = np.einsum("tc,tc->t", before, offset(new_knee, new_ankle))
    assert bent.sum() > 0.5 * len(bent) and (agree[bent] > 0).all()


def test_foot_locking_stops_planted_feet_sliding(walk) -> None:
    """End to end: a noisy walk retargeted onto a rig with and without locking, posed
    back by forward kinematics; drift measured over the clean clip's contacts."""
    pos, fps = walk
    noisy = lifted_like(pos)
    rig = build_rig("mixamo", MIXAMO, rest_joints(pos, "A"), "random", seed=4)
    rig_map = detect_rig(rig.names()).rig_map
    motion = WorldMotion.from_positions(noisy, fps)
    fk = {}
    for lock in (False, True):
        result = retarget(motion, rig, rig_map, RetargetOptions(foot_lock=lock))
        fk[lock] = pose_world_joints(rig, rig_map, result)
    report = " ".join(result.report)
    assert "foot lock l:" in report
    lines = []
    for foot in FEET:
        spans = contact_spans(detect_contacts(pos[:, J[foot]], fps))
        off = drift_during(fk[False][:, J[foot]], spans, margin=2)
        on = drift_during(fk[True][:, J[foot]], spans, margin=2)
        lines.append(f"{foot}: {1000 * off:.1f} -> {1000 * on:.1f} mm "
                     f"({100 * (1 - on / off):.0f}% less)")
        assert on <= 0.2 * off, lines[-1]
    print("planted-foot drift during contact: " + "; ".join(lines))
    # Legs keep their lengths (the knee is re-solved, not stretched).
    for s in "lr":
        thigh = np.linalg.norm(fk[True][:, J[f"{s}_knee"]] - fk[True][:, J[f"{s}_hip"]], axis=1)
        assert np.ptp(thigh) < 1e-6


def test_lock_feet_leaves_the_rest_of_the_body_alone(walk) -> None:
    pos, fps = walk
    noisy = lifted_like(pos, seed=3)
    locked, notes = lock_feet(noisy, JOINT_NAMES, fps)
    feet_and_knees = [J[f"{s}_{n}"] for s in "lr" for n in ("knee", "ankle", "toe")]
    others = [j for j in range(len(JOINT_NAMES)) if j not in feet_and_knees]
    assert np.array_equal(locked[:, others], noisy[:, others])
    assert len(notes) == 2 and all("contacts" in n for n in notes)
    # A joint set without feet is returned unchanged.
    names = tuple(n for n in JOINT_NAMES if "ankle" not in n)
    idx = SKELETON.indices(names)
    same, notes = lock_feet(noisy[:, idx], names, fps)
    assert np.array_equal(same, noisy[:, idx]) and notes == []
