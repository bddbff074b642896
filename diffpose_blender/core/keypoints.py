"""2D keypoints on the project's joint set: what every 2D reader returns.

Frame of reference: image pixels, x right, y down, origin top-left.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .errors import DiffPoseError
from .skeleton import JOINT_NAMES


@dataclass
class Keypoints2D:
    """A 2D pose sequence of one person on the project's joint set.

    keypoints    (T, J, 2) float64, image pixels (x right, y down); NaN where unknown.
    scores       (T, J) float64 in [0, 1]; 0 where unknown. Joints derived from others
                 (e.g. pelvis from the hips for COCO) carry a reduced score.
    valid        (T,) bool: the frame has a person. Invalid frames have scores 0.
    fps          frames per second, or None when the source does not say.
    image_size   (width, height) in pixels, or None when the source does not say.
    joint_names  names of the J joints (the project's joint set, DESIGN §4).
    source       "<format>:<path>", for the take file and messages.
    gmm_*        optional per-joint 2D Gaussian mixtures fitted to detector heatmaps:
                 weights (T, J, M), means (T, J, M, 2) pixels, covs (T, J, M, 2, 2) px².
    """

    keypoints: np.ndarray
    scores: np.ndarray
    valid: np.ndarray
    fps: float | None
    image_size: tuple[int, int] | None
    source: str
    joint_names: tuple[str, ...] = JOINT_NAMES
    gmm_weights: np.ndarray | None = None
    gmm_means: np.ndarray | None = None
    gmm_covs: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])

    def check(self) -> "Keypoints2D":
        """Raise `DiffPoseError` unless shapes, ranges and finiteness agree."""
        T = self.keypoints.shape[0]
        J = len(self.joint_names)
        src = self.source
        if T == 0:
            raise DiffPoseError.at(src, expected="no frames; expected at least one")
        if self.keypoints.shape != (T, J, 2):
            raise DiffPoseError.at(src, "keypoints",
                                   expected=f"expected shape ({T}, {J}, 2), got "
                                            f"{self.keypoints.shape}")
        if self.scores.shape != (T, J):
            raise DiffPoseError.at(src, "scores", expected=f"expected shape ({T}, {J}), "
                                                           f"got {self.scores.shape}")
        if self.valid.shape != (T,):
            raise DiffPoseError.at(src, "valid",
                                   expected=f"expected shape ({T},), got {self.valid.shape}")
        if not self.valid.any():
            raise DiffPoseError.at(src, expected="no person found in any frame")
        bad = ~np.isfinite(self.scores) | (self.scores < 0) | (self.scores > 1)
        if bad.any():
            t, j = np.argwhere(bad)[0]
            raise DiffPoseError.at(src, f"frame {t}", f"joint '{self.joint_names[j]}'",
                                   expected=f"expected a score in [0, 1], got "
                                            f"{self.scores[t, j]!r}")
        known = self.scores > 0
        badxy = known & ~np.isfinite(self.keypoints).all(axis=-1)
        if badxy.any():
            t, j = np.argwhere(badxy)[0]
            raise DiffPoseError.at(src, f"frame {t}", f"joint '{self.joint_names[j]}'",
                                   expected="expected finite x, y for a joint with a "
                                            "score > 0")
        return self

    def frames(self, first: int, last: int | None = None) -> "Keypoints2D":
        """Frames `first` to `last` (numbered from 1, inclusive; `last` None: to the end)
        as a new sequence. Raises `DiffPoseError` naming the range when it is empty or
        starts after the source ends, or when none of its frames has a person."""
        T = self.num_frames
        end = T if last is None else min(int(last), T)
        if first < 1 or (last is not None and last < first):
            raise DiffPoseError.at(self.source, expected=f"frame range {first} to {last}; "
                                   f"expected 1 <= first <= last")
        if first > T:
            raise DiffPoseError.at(self.source, expected=f"frame range starts at {first}, "
                                   f"but the source has {T} frames")
        part = slice(first - 1, end)

        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[part]

        out = replace(self, keypoints=self.keypoints[part], scores=self.scores[part],
                      valid=self.valid[part], gmm_weights=cut(self.gmm_weights),
                      gmm_means=cut(self.gmm_means), gmm_covs=cut(self.gmm_covs),
                      extra={k: (v[part] if len(v) == T else v)
                             for k, v in self.extra.items()})
        if not out.valid.any():
            raise DiffPoseError.at(self.source, expected=f"no person found in frames "
                                   f"{first} to {end}")
        return out
