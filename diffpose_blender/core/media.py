"""What counts as a video file (by extension), for routing a source to the detector."""

from __future__ import annotations

#: Lower-case file extensions read as video (decoded by OpenCV in the backend).
VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".mts",
)
