#!/usr/bin/env python3
"""Build the Blender extension zip: ``dist/diffpose_blender-<version>.zip``.

The zip holds, at its root: ``blender_manifest.toml`` (from ``addon_manifest/`` with the
version filled in), the ``diffpose_blender`` package's contents, ``rig_maps/`` and
``bundled_models/``. It is then checked with Blender's own extension validator, which
lives inside the ``bpy`` wheel (``bl_pkg.bl_extension_cli``), run in a subprocess so that
Blender's start-up stays out of this process.

    python build_addon.py                  # build and validate
    python build_addon.py --no-validate    # build only (no bpy needed)
    python build_addon.py --python PATH    # a Python with bpy for the validator
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "diffpose_blender"
MANIFEST_TEMPLATE = ROOT / "addon_manifest" / "blender_manifest.toml"
# Folders from the repository root that ship inside the extension, under the same names.
DATA_DIRS = ("rig_maps", "bundled_models")
# Never shipped: caches, editor files, and research-only weights (see bundled_models/README.md).
EXCLUDED_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".orig", ".rej", ".swp"}


class BuildError(Exception):
    pass


def read_version() -> str:
    """`__version__` of the package, read without importing it."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise BuildError(f"{PACKAGE / '__init__.py'}: no __version__ = '...' assignment")


def render_manifest(version: str) -> str:
    text = MANIFEST_TEMPLATE.read_text(encoding="utf-8")
    if "{version}" not in text:
        raise BuildError(f"{MANIFEST_TEMPLATE}: expected a {{version}} placeholder")
    return text.replace("{version}", version)


def _shipped(path: Path) -> bool:
    return (path.is_file() and not EXCLUDED_PARTS.intersection(path.parts)
            and path.suffix not in EXCLUDED_SUFFIXES and not path.name.startswith("."))


def collect_files() -> list[tuple[Path, str]]:
    """(source path, name inside the zip) for everything the extension ships, sorted."""
    files = [(p, p.relative_to(PACKAGE).as_posix())
             for p in PACKAGE.rglob("*") if _shipped(p.relative_to(ROOT))]
    for name in DATA_DIRS:
        folder = ROOT / name
        files += [(p, p.relative_to(ROOT).as_posix())
                  for p in folder.rglob("*") if _shipped(p.relative_to(ROOT))]
    return sorted(files, key=lambda item: item[1])


def build(out_dir: Path) -> Path:
    version = read_version()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"diffpose_blender-{version}.zip"
    fd, tmp = tempfile.mkstemp(prefix=".diffpose_blender-", suffix=".zip.part", dir=out_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("blender_manifest.toml", render_manifest(version))
            for src, arcname in collect_files():
                zf.write(src, arcname)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


_VALIDATE = """\
import sys
import bpy  # noqa: F401  (puts Blender's bundled add-ons on sys.path)
from bl_pkg import bl_extension_cli
print("validator: Blender", bpy.app.version_string)
sys.exit(bl_extension_cli.cli_extension_handler(["validate", sys.argv[1]]))
"""


def find_validator_python() -> str:
    """A Python that can import bpy: this one, else the project's .venv."""
    probe = subprocess.run([sys.executable, "-c", "import importlib.util as u, sys; "
                            "sys.exit(u.find_spec('bpy') is None)"], capture_output=True)
    if probe.returncode == 0:
        return sys.executable
    venv = ROOT / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if venv.exists():
        return str(venv)
    raise BuildError("no Python with bpy found to run Blender's validator: run "
                     "tools/setup_env.sh, pass --python, or use --no-validate")


def validate(zip_path: Path, python: str) -> str:
    """Run Blender's extension validator on `zip_path`; return its output."""
    with tempfile.TemporaryDirectory(prefix="diffpose-validate-") as home:
        env = dict(os.environ, BLENDER_USER_RESOURCES=home, XDG_CACHE_HOME=home)
        proc = subprocess.run([python, "-c", _VALIDATE, str(zip_path)], env=env,
                              capture_output=True, text=True, timeout=300)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise BuildError(f"{zip_path}: Blender's validator refused it:\n{output}")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip Blender's validator (it needs a Python with bpy)")
    parser.add_argument("--python", help="Python interpreter with bpy for the validator")
    args = parser.parse_args(argv)
    try:
        zip_path = build(args.out)
        print(f"built {zip_path}")
        if not args.no_validate:
            print(validate(zip_path, args.python or find_validator_python()))
    except BuildError as exc:
        print(f"build_addon: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
