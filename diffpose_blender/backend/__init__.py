"""The backend: everything heavy (torch, SciPy, OpenCV), run as its own process.

Command line: ``python -m diffpose_blender.backend`` (see `__main__`).
"""
