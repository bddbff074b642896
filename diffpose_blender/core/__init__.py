"""Core: numpy and the standard library only (DESIGN §2).

Importable in Blender's Python (which ships numpy but not SciPy or torch) and in the
backend. Never imports bpy, torch, scipy or cv2; a test enforces it.
"""
