"""The built extension zip, validated and installed as a user would install it."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import bpy
import pytest

import build_addon

PKG_ID = "diffpose_blender"
MODULE = f"bl_ext.user_default.{PKG_ID}"

# What the add-on registers; each must appear on enable and vanish on disable.
PANELS = ("DIFFPOSE_PT_main", "DIFFPOSE_PT_source", "DIFFPOSE_PT_estimate",
          "DIFFPOSE_PT_takes", "DIFFPOSE_PT_preview", "DIFFPOSE_PT_smooth",
          "DIFFPOSE_PT_retarget", "DIFFPOSE_PT_export")
OPERATORS = ("load_source", "bake", "colors_clear", "export_fbx", "export_bvh",
             "use_hypothesis",
             # U1: estimate, takes, backend (preferences)
             "estimate", "estimate_cancel", "take_delete", "backend_check",
             "backend_release", "backend_setup", "backend_setup_cancel")


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_addon.build(tmp_path_factory.mktemp("dist"))


def _operator_registered(name: str) -> bool:
    try:
        getattr(bpy.ops.diffpose, name).get_rna_type()
    except KeyError:
        return False
    return True


def _registered() -> dict[str, bool]:
    state = {f"panel {p}": hasattr(bpy.types, p) for p in PANELS}
    state.update({f"operator diffpose.{o}": _operator_registered(o) for o in OPERATORS})
    # AddonPreferences subclasses are not exposed under bpy.types: ask the class itself.
    state["preferences"] = any(cls.__name__ == "DiffPosePreferences" and cls.is_registered
                               for cls in bpy.types.AddonPreferences.__subclasses__())
    state["scene.diffpose"] = hasattr(bpy.types.Scene, "diffpose")
    state["add-on enabled"] = MODULE in bpy.context.preferences.addons
    return state


def test_zip_layout(built_zip: Path) -> None:
    with zipfile.ZipFile(built_zip) as zf:
        names = set(zf.namelist())
        manifest = zf.read("blender_manifest.toml").decode()
    assert {"blender_manifest.toml", "__init__.py", "core/skeleton.py",
            "blender/panels.py", "rig_maps/README.md", "bundled_models/README.md"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert f'version = "{build_addon.read_version()}"' in manifest


def test_blender_validator_accepts_zip(built_zip: Path) -> None:
    out = build_addon.validate(built_zip, sys.executable)
    assert bpy.app.version_string in out


def test_blender_validator_refuses_bad_manifest(built_zip: Path, tmp_path: Path) -> None:
    # The validator must really check: a tagline ending in a period is refused.
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(built_zip) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "blender_manifest.toml":
                data = data.replace(b'tagline = "', b'tagline = "Ends with a period.').replace(
                    b'own rig"', b'own rig."')
            dst.writestr(item, data)
    with pytest.raises(build_addon.BuildError, match="tagline"):
        build_addon.validate(broken, sys.executable)


def test_install_enable_disable_leaves_nothing(built_zip: Path) -> None:
    print(f"Blender {bpy.app.version_string}")
    assert not any(_registered().values()), _registered()
    result = bpy.ops.extensions.package_install_files(
        filepath=str(built_zip), repo="user_default", enable_on_install=True)
    assert result == {"FINISHED"}
    try:
        state = _registered()
        assert all(state.values()), state
        prefs = bpy.context.preferences.addons[MODULE].preferences
        assert prefs.backend_mode == "MANAGED"
        assert bpy.context.scene.diffpose.fps == pytest.approx(30.0)

        # Register -> unregister -> register -> unregister leaves nothing behind.
        for _ in range(2):
            bpy.ops.preferences.addon_disable(module=MODULE)
            state = _registered()
            assert not any(state.values()), state
            bpy.ops.preferences.addon_enable(module=MODULE)
            assert all(_registered().values()), _registered()
        bpy.ops.preferences.addon_disable(module=MODULE)
        assert not any(_registered().values()), _registered()
    finally:
        repos = [r.module for r in bpy.context.preferences.extensions.repos]
        bpy.ops.extensions.package_uninstall(repo_index=repos.index("user_default"),
                                             pkg_id=PKG_ID)
    assert MODULE not in bpy.context.preferences.addons


def _coco_walk(path: Path, frames: int = 12) -> None:
    """A COCO-17 top-down result file: one person walking right across 1280x720."""
    import json

    base = [(640, 200), (650, 190), (630, 190), (665, 195), (615, 195), (690, 260),
            (590, 260), (710, 340), (570, 340), (715, 410), (565, 410), (670, 420),
            (610, 420), (675, 540), (605, 540), (680, 650), (600, 650)]
    dets = []
    for t in range(frames):
        kps: list[float] = []
        for x, y in base:
            kps += [x + 6.0 * t, float(y), 0.9]
        dets.append({"image_id": f"{t}.jpg", "category_id": 1, "keypoints": kps,
                     "score": 2.5})
    path.write_text(json.dumps(dets), encoding="utf-8")


def test_load_source_operator_reads_keypoints(built_zip: Path, tmp_path: Path) -> None:
    bpy.ops.extensions.package_install_files(
        filepath=str(built_zip), repo="user_default", enable_on_install=True)
    try:
        settings = bpy.context.scene.diffpose
        # Nothing chosen: the operator refuses to run (greyed out in the panel).
        settings.source_path = ""
        assert not bpy.ops.diffpose.load_source.poll()
        source = tmp_path / "walk.json"
        _coco_walk(source)
        settings.source_path = str(source)
        assert bpy.ops.diffpose.load_source() == {"FINISHED"}
        assert settings.source_format == "COCO keypoints JSON (AlphaPose, detectors)"
        assert settings.source_frames == 12
        assert settings.source_frames_with_person == 12
        # A broken file is reported, not raised, and leaves the earlier summary alone.
        broken = tmp_path / "broken.json"
        broken.write_text('[{"image_id": "0.jpg", "keypoints": [1, 2', encoding="utf-8")
        settings.source_path = str(broken)
        with pytest.raises(RuntimeError, match="broken.json"):
            bpy.ops.diffpose.load_source()
        assert settings.source_frames == 12
    finally:
        repos = [r.module for r in bpy.context.preferences.extensions.repos]
        bpy.ops.extensions.package_uninstall(repo_index=repos.index("user_default"),
                                             pkg_id=PKG_ID)
