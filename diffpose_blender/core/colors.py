"""The uncertainty colour scale: how far the model's hypotheses spread -> a bone colour.

A joint's *spread* is the RMS distance of DiffPose's hypotheses to their mean, in metres
(`core.take.compute_spread`); a bone's spread is that of the joints it depends on. The
scale, in millimetres of spread:

====================  ==========================================
spread                colour
====================  ==========================================
<= 20 mm              green  (confident)
20 mm .. 50 mm        green -> yellow, linearly
50 mm .. 100 mm       yellow -> red, linearly
>= 100 mm             red    (the pose of this bone is a guess)
not finite            grey   (no estimate for this frame)
====================  ==========================================

Colours are RGB in [0, 1] as Blender's bone colour properties take them (display
colours, sRGB, the ``COLOR_GAMMA`` subtype of ``pose_bone.color.custom.normal``).
"""

from __future__ import annotations

import numpy as np

#: (spread in metres, RGB) stops of the scale, increasing; linear between stops, clamped
#: outside.
SCALE_STOPS: tuple[tuple[float, tuple[float, float, float]], ...] = (
    (0.020, (0.10, 0.80, 0.10)),  # green
    (0.050, (0.95, 0.85, 0.10)),  # yellow
    (0.100, (0.95, 0.10, 0.10)),  # red
)
#: Colour where the spread is NaN or infinite.
NO_ESTIMATE_RGB: tuple[float, float, float] = (0.5, 0.5, 0.5)

# How much of white is mixed in for a selected and for the active bone, so that selection
# stays visible on top of the uncertainty colour (Blender draws these two states with the
# "select" and "active" colours of a custom colour set).
SELECT_WHITE = 0.45
ACTIVE_WHITE = 0.75


def spread_to_rgb(spread_m: np.ndarray) -> np.ndarray:
    """Colour of each spread on the scale above.

    spread_m  (...) metres.
    returns   (..., 3) RGB in [0, 1], float32.
    """
    spread = np.asarray(spread_m, dtype=np.float64)
    xs = np.array([s for s, _ in SCALE_STOPS])
    rgb = np.stack([np.interp(spread, xs, [c[k] for _, c in SCALE_STOPS])
                    for k in range(3)], axis=-1)
    rgb[~np.isfinite(spread)] = NO_ESTIMATE_RGB
    return rgb.astype(np.float32)


def bone_state_colors(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normal, select, active) colours of a bone set for base colours `rgb` (..., 3)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    select = rgb + (1.0 - rgb) * SELECT_WHITE
    active = rgb + (1.0 - rgb) * ACTIVE_WHITE
    return rgb, select.astype(np.float32), active.astype(np.float32)
