"""Ghost skeletons: a take's N hypotheses in Blender's world, as coloured line segments.

The viewport overlay (`blender.overlay`) draws, for the current frame, every hypothesis
as a thin skeleton ("ghost") where the baked rig stands, each bone coloured by how far
the hypotheses spread at its joints (`core.colors`' scale). All the numbers are made here,
numpy only, so they are tested without a GPU; the overlay only hands them to `gpu`.

Frames: hypotheses are camera metres, root-relative (`core.take`); `core.world.take_to_world`
places the take's *mean* pose in the world (metres, Z up). That placement is one
similarity transform of the whole clip (an axis change, a levelling rotation, a heading
turn, an optional scale) plus a translation, so each hypothesis goes to the world as its
mean does: ``world_h = world_mean + A (h - mean)`` with A the placement's linear part
(`WorldMotion.camera_to_world`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .colors import spread_to_rgb
from .errors import DiffPoseError
from .skeleton import SKELETON
from .world import WorldMotion, take_to_world


@dataclass(frozen=True, eq=False)
class Ghosts:
    """A take's hypotheses placed in Blender's world frame.

    hypotheses  (T, N, J, 3) world metres (Z up), NaN in invalid frames.
    spread      (T, J) metres, per-joint spread (0 where unknown).
    valid       (T,) bool.
    bones       ((parent, child), ...) joint index pairs to draw.
    """

    hypotheses: np.ndarray
    spread: np.ndarray
    valid: np.ndarray
    bones: tuple[tuple[int, int], ...]

    @property
    def num_frames(self) -> int:
        return int(self.hypotheses.shape[0])

    @property
    def num_hypotheses(self) -> int:
        return int(self.hypotheses.shape[1])


def take_ghosts(take: Any, motion: WorldMotion | None = None,
                skeleton_bones: Sequence[tuple[int, int]] | None = None) -> Ghosts:
    """The hypotheses of `take` (`core.take.Take`) in the world frame of `motion`
    (default: ``take_to_world(take)``, the frame the bake uses).

    skeleton_bones  (parent, child) joint index pairs; default: the project's skeleton's
                    bones (`core.skeleton`), and DiffPoseError for a take with other
                    joints (a ghost needs to know its bones).
    """
    if motion is None:
        motion = take_to_world(take)
    names = tuple(take.joint_names)
    if skeleton_bones is None:
        if names != SKELETON.names:
            raise DiffPoseError(f"ghosts: the take's joints {names[:3]}... are not the "
                                f"project's skeleton; pass its bones")
        skeleton_bones = SKELETON.bones
    if motion.camera_to_world is None:
        raise DiffPoseError("ghosts: the motion was not placed from this take's camera; "
                            "use core.world.take_to_world")
    hyp = np.asarray(take.hypotheses, dtype=np.float64)     # (T, N, J, 3) camera, root-rel.
    pose = np.asarray(take.pose, dtype=np.float64)          # (T, J, 3)
    valid = np.asarray(motion.valid, dtype=bool)
    A = motion.camera_to_world
    # world_h = world_mean + A (h - mean): offsets from the mean turn and scale with A.
    out = np.asarray(motion.joints)[:, None] + (hyp - pose[:, None]) @ A.T
    out[~valid] = np.nan
    return Ghosts(out, np.nan_to_num(np.asarray(motion.spread, dtype=np.float64)),
                  valid, tuple((int(a), int(b)) for a, b in skeleton_bones))


def ghost_lines(ghosts: Ghosts, frame: int, hypothesis: int = -1, opacity: float = 0.35,
                colored: bool = True, matrix: np.ndarray | None = None,
                plain_rgb: tuple[float, float, float] = (0.8, 0.8, 0.8)
                ) -> tuple[np.ndarray, np.ndarray]:
    """Line segments of the ghosts at take frame `frame`, for a ``LINES`` batch.

    hypothesis  -1: all N ghosts; k: only hypothesis k.
    opacity     alpha of every vertex, 0 (invisible) to 1.
    colored     colour each bone end by its joint's spread (`core.colors` scale); off:
                `plain_rgb` for every vertex.
    matrix      (4, 4) applied to the world points (the baked armature's object matrix,
                so the ghosts stand where the rig stands); None: identity.
    returns     positions (2 * S, 3) float32 metres and colours (2 * S, 4) float32 RGBA,
                S = segments (bones x ghosts drawn); both empty outside the take, in an
                invalid frame, or for a hypothesis the take does not have.
    """
    empty = (np.zeros((0, 3), np.float32), np.zeros((0, 4), np.float32))
    if not 0 <= frame < ghosts.num_frames or not ghosts.valid[frame]:
        return empty
    if hypothesis >= ghosts.num_hypotheses or hypothesis < -1:
        return empty
    joints = ghosts.hypotheses[frame]                       # (N, J, 3) world metres
    if hypothesis >= 0:
        joints = joints[hypothesis:hypothesis + 1]
    if matrix is not None:
        m = np.asarray(matrix, dtype=np.float64)
        joints = joints @ m[:3, :3].T + m[:3, 3]
    pairs = np.asarray(ghosts.bones, dtype=np.int64).reshape(-1, 2)  # (B, 2)
    positions = joints[:, pairs].reshape(-1, 3)             # (n * B * 2, 3)
    if colored:
        rgb = spread_to_rgb(ghosts.spread[frame])[pairs]    # (B, 2, 3)
    else:
        rgb = np.broadcast_to(np.asarray(plain_rgb, np.float32), pairs.shape + (3,))
    alpha = np.full(pairs.shape + (1,), float(np.clip(opacity, 0.0, 1.0)), np.float32)
    rgba = np.concatenate((rgb, alpha), axis=-1)            # (B, 2, 4)
    colors = np.broadcast_to(rgba, (len(joints),) + rgba.shape).reshape(-1, 4)
    return positions.astype(np.float32), np.ascontiguousarray(colors, dtype=np.float32)
