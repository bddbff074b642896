"""The import rule of DESIGN §2, checked on the source itself.

core never imports bpy, torch, scipy or cv2; client never imports bpy; blender never
imports torch, scipy or cv2; inside the package every import of the package is relative
(an installed extension is named ``bl_ext.<repo>.diffpose_blender``, not
``diffpose_blender``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "diffpose_blender"

HEAVY = {"torch", "scipy", "cv2"}
FORBIDDEN = {
    "core": HEAVY | {"bpy", "bpy_extras", "mathutils", "gpu", "bmesh"},
    # The client runs inside Blender's Python too: no bpy (tested without Blender) and
    # nothing heavy (Blender ships numpy only).
    "client": HEAVY | {"bpy", "bpy_extras", "mathutils", "gpu", "bmesh"},
    "blender": HEAVY,
}


def _imports(path: Path) -> list[tuple[int, str, int]]:
    """(line, top-level module name, relative level) of every import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0], 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, (node.module or "").split(".")[0], node.level))
    return found


def _sources(layer: str | None = None) -> list[Path]:
    root = PACKAGE / layer if layer else PACKAGE
    return sorted(root.rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer: str) -> None:
    files = _sources(layer)
    assert files, f"no sources under {layer}/"
    bad = [f"{p.relative_to(PACKAGE)}:{line}: imports {mod}"
           for p in files for line, mod, level in _imports(p)
           if level == 0 and mod in FORBIDDEN[layer]]
    assert not bad, "\n".join(bad)


def test_package_imports_are_relative() -> None:
    bad = [f"{p.relative_to(PACKAGE)}:{line}: absolute import of diffpose_blender"
           for p in _sources() for line, mod, level in _imports(p)
           if level == 0 and mod == "diffpose_blender"]
    assert not bad, "\n".join(bad)


def test_rule_checker_sees_violations(tmp_path: Path) -> None:
    # The checker itself must notice a forbidden import, including a lazy one.
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    import torch.nn\n    from scipy import signal\n")
    assert [(m, lvl) for _, m, lvl in _imports(sample)] == [("torch", 0), ("scipy", 0)]
