"""Foot contacts and foot locking, in world joint space (metres, Z up).

Lifted motion slides: a planted foot wanders by a few centimetres per frame of jitter
and drifts with the root. Here each foot joint (ankle, toe) is checked for contact and,
while in contact, pinned where it stands; the knee is then re-solved so the leg stays
rigid. `retarget` calls `lock_feet` with the take's feet scaled onto the rig (contacts
and pins) and the rig's own posed legs (what is re-solved), see `core.retarget`.

Contact detection, per foot joint (`detect_contacts`), on a lightly smoothed track (a
centred moving average over `smooth_frames`, so per-frame jitter does not read as speed):

- height above that joint's own floor level (the `floor_percentile` of its height over
  the clip: an ankle rests ~8 cm above the floor, a toe ~3 cm) and horizontal speed;
- hysteresis: contact starts when height < `height_on_m` and speed < `speed_on_mps`,
  and ends only when height > `height_off_m` or speed > `speed_off_mps`;
- contacts shorter than `min_frames` are dropped (a foot passing low is no step).

Locking (`lock_feet`): a contact's pin is the median position of the joint over the
contact (robust to its jitter); the joint is moved to the pin with a weight 1 inside the
contact that ramps linearly to 0 over `blend_frames` on either side, so the foot eases into
and out of the pin. Where the ankle moves, the knee is recomputed by analytic two-bone IK
from the hip: thigh and shin keep their lengths in that frame, and the knee bends toward the
side the original knee was on. An ankle out of reach is pulled to the end of the leg's
reach along the same line. The toe keeps its distance from the ankle: it follows the
ankle, turned toward its own pin while it is in contact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rotations import normalize


@dataclass(frozen=True)
class FootLockOptions:
    """Contact thresholds (metres, metres per second, frames) and the blend length."""

    height_on_m: float = 0.05
    height_off_m: float = 0.08
    speed_on_mps: float = 0.35
    speed_off_mps: float = 0.6
    min_frames: int = 4
    blend_frames: int = 4
    smooth_frames: int = 5
    floor_percentile: float = 5.0


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average over n frames along axis 0 (edges use what exists)."""
    if n <= 1 or len(x) < 2:
        return x.copy()
    k = np.ones(n)
    pad = n // 2
    num = np.apply_along_axis(lambda v: np.convolve(np.pad(v, pad, mode="edge"), k, "valid"),
                              0, x)
    return num[: len(x)] / n


def detect_contacts(track: np.ndarray, fps: float,
                    options: FootLockOptions = FootLockOptions()) -> np.ndarray:
    """Contact mask (T,) of one foot joint's world track (T, 3) metres, Z up."""
    T = len(track)
    if T < 2:
        return np.zeros(T, dtype=bool)
    pos = _smooth(track, options.smooth_frames)
    floor = np.percentile(pos[:, 2], options.floor_percentile)
    height = pos[:, 2] - floor
    speed = np.zeros(T)
    speed[1:-1] = np.linalg.norm(pos[2:, :2] - pos[:-2, :2], axis=1) * fps / 2.0
    speed[0], speed[-1] = speed[1] if T > 2 else 0.0, speed[-2] if T > 2 else 0.0
    on = (height < options.height_on_m) & (speed < options.speed_on_mps)
    stay = (height <= options.height_off_m) & (speed <= options.speed_off_mps)
    contact = np.zeros(T, dtype=bool)
    state = False
    for t in range(T):
        state = stay[t] if state else on[t]
        contact[t] = state
    # Drop contacts shorter than min_frames.
    for start, end in contact_spans(contact):
        if end - start < options.min_frames:
            contact[start:end] = False
    return contact


def contact_spans(contact: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame ranges where `contact` (T,) is True."""
    edges = np.diff(np.concatenate([[0], contact.astype(np.int8), [0]]))
    return list(zip(np.where(edges == 1)[0].tolist(), np.where(edges == -1)[0].tolist()))


def _pin_weights(contact: np.ndarray, blend: int) -> np.ndarray:
    """(T,) how strongly each frame is pinned: 1 in contact, ramping linearly to 0 over
    `blend` frames on either side of each span (where ramps meet, the larger wins)."""
    T = len(contact)
    weight = contact.astype(np.float64)
    for start, end in contact_spans(contact):
        for k in range(1, blend + 1):
            ramp = 1.0 - k / (blend + 1)
            if start - k >= 0:
                weight[start - k] = max(weight[start - k], ramp)
            if end - 1 + k < T:
                weight[end - 1 + k] = max(weight[end - 1 + k], ramp)
    return weight


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray,
                target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knee and ankle (T, 3) that put the ankle on `target` (or as near as the leg
    reaches), thigh and shin lengths as in (hip, knee, ankle), bent toward the original
    knee's side."""
    l1 = np.linalg.norm(knee - hip, axis=1)
    l2 = np.linalg.norm(ankle - knee, axis=1)
    to = target - hip
    dist = np.linalg.norm(to, axis=1)
    reach = np.clip(dist, np.abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)
    axis = normalize(to)
    new_ankle = hip + axis * reach[:, None]
    # Bend direction: the original knee's offset from the hip-target line.
    side = knee - hip
    side = side - np.einsum("tc,tc->t", side, axis)[:, None] * axis
    fallback = ankle - hip  # if the knee lies on the line, bend as before
    side = np.where((np.linalg.norm(side, axis=1) < 1e-9)[:, None],
                    normalize(np.cross(np.cross(axis, fallback), axis)), side)
    side = normalize(side)
    # Law of cosines: distance along the axis to the knee's foot point, and height.
    a = (l1 ** 2 - l2 ** 2 + reach ** 2) / (2.0 * reach)
    h = np.sqrt(np.maximum(l1 ** 2 - a ** 2, 0.0))
    new_knee = hip + axis * a[:, None] + side * h[:, None]
    return new_knee, new_ankle


def lock_feet(joints: np.ndarray, names: tuple[str, ...], fps: float,
              options: FootLockOptions = FootLockOptions(),
              legs: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """Joints (T, J, 3) world metres (Z up, all frames finite) with planted feet pinned
    and knees re-solved, and notes for the report.

    Contacts and pins come from `joints`. The legs are re-solved from `legs` (T, J, 3)
    when given (a rig's own posed hips, knees, ankles and toes: its bone lengths, which
    the pins must be reached with) and from `joints` otherwise; the returned hips, knees,
    ankles and toes are then the rig's. Other joints are returned unchanged; a side
    without hip, knee and ankle is left alone."""
    out = joints.copy()
    chain = joints if legs is None else legs
    J = {n: i for i, n in enumerate(names)}
    notes = []
    for s in "lr":
        hip, knee, ankle = (J.get(f"{s}_{n}") for n in ("hip", "knee", "ankle"))
        if hip is None or knee is None or ankle is None:
            continue
        toe = J.get(f"{s}_toe")
        for j in (hip, knee, ankle) + ((toe,) if toe is not None else ()):
            out[:, j] = chain[:, j]
        a_contact = detect_contacts(joints[:, ankle], fps, options)
        a_w = _pin_weights(a_contact, options.blend_frames)
        pins = _pins(joints[:, ankle], a_contact, options.blend_frames)
        # The ankle track being re-solved (the rig's where given) eased onto the pins.
        target = (1.0 - a_w[:, None]) * chain[:, ankle] + a_w[:, None] * pins
        moved = a_w > 0
        if moved.any():
            k, a = two_bone_ik(chain[moved, hip], chain[moved, knee], chain[moved, ankle],
                               target[moved])
            out[moved, knee], out[moved, ankle] = k, a
        line = f"foot lock {s}: {len(contact_spans(a_contact))} ankle contacts"
        if toe is not None:
            t_contact = detect_contacts(joints[:, toe], fps, options)
            t_w = _pin_weights(t_contact, options.blend_frames)
            pins = _pins(joints[:, toe], t_contact, options.blend_frames)
            foot_len = np.linalg.norm(chain[:, toe] - chain[:, ankle], axis=1)
            # The toe follows its ankle (foot length kept), turned toward its pin while
            # in contact.
            follow = out[:, ankle] + normalize(chain[:, toe] - chain[:, ankle]) * foot_len[:, None]
            pinned = out[:, ankle] + normalize(pins - out[:, ankle]) * foot_len[:, None]
            out[:, toe] = normalize((1.0 - t_w[:, None]) * (follow - out[:, ankle])
                                    + t_w[:, None] * (pinned - out[:, ankle])) \
                * foot_len[:, None] + out[:, ankle]
            line += f", {len(contact_spans(t_contact))} toe contacts"
        notes.append(line)
    return out, notes


def _pins(track: np.ndarray, contact: np.ndarray, blend: int) -> np.ndarray:
    """(T, 3): each frame's pin (the median of its contact span, or of the nearest span
    whose blend reaches it); the track itself where no pin reaches."""
    out = track.copy()
    best = np.full(len(track), np.inf)
    for start, end in contact_spans(contact):
        pin = np.median(track[start:end], axis=0)
        lo, hi = max(0, start - blend), min(len(track), end + blend)
        for t in range(lo, hi):
            dist = 0 if start <= t < end else min(abs(t - start), abs(t - (end - 1)))
            if dist < best[t]:
                best[t], out[t] = dist, pin
    return out
