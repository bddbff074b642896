"""Video -> 2D keypoints: MediaPipe's BlazePose networks on LiteRT, the pipeline here.

Modules, in the order a frame goes through them: `video` (decoding, timing), `blazepose`
(detector, landmark model, their decoding), `roi` (the rotated region), `tracking`
(region from the previous frame), `mixture` (heatmap -> Gaussian mixtures), `joints`
(33 landmarks -> the project's joints), `pipeline` (`detect_video`).
"""

from __future__ import annotations

from .pipeline import detect_video

__all__ = ["detect_video"]
