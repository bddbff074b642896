"""Takes kept with the .blend: files beside it, relative paths, carried on save and reload.

The add-on is registered as a whole (diffpose_blender.register), as Blender does it; a
take here is `make_take()` from the core tests written with `write_take`, as U2's tests
and the estimate do, then registered with `add_take`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import bpy
import pytest

import diffpose_blender as addon
from diffpose_blender.blender import takes
from diffpose_blender.core.errors import DiffPoseError
from diffpose_blender.core.take import read_take, write_take
from tests.blender import rigs
from tests.core.test_take import make_take


@pytest.fixture
def registered() -> Iterator[None]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon.register()
    yield
    addon.unregister()


@pytest.fixture
def take_file(tmp_path: Path) -> Path:
    path = tmp_path / "incoming" / "walk.take.npz"
    path.parent.mkdir()
    write_take(path, make_take())
    return path


def _settings():  # type: ignore[no-untyped-def]
    return bpy.context.scene.diffpose


def test_unsaved_file_keeps_takes_in_the_session_folder(registered: None,
                                                        take_file: Path) -> None:
    item = takes.add_take(bpy.context.scene, take_file)
    assert item.name == "walk" and _settings().take_index == 0
    path = takes.take_path(item)
    assert path.is_file() and path != take_file
    assert path.parent == takes.take_folder()          # Blender's temporary folder
    assert item.frames == make_take().num_frames
    assert item.hypotheses == make_take().hypotheses.shape[1]
    # Several takes: names made unique, files too.
    second = takes.add_take(bpy.context.scene, take_file)
    assert second.name == "walk 2" and takes.take_path(second) != path
    assert _settings().take_index == 1
    found = takes.active_take(bpy.context.scene)
    assert found is not None and found[0].name == "walk 2"
    assert found[1].num_frames == item.frames
    # Cached: the same object until the file changes.
    assert takes.active_take(bpy.context.scene)[1] is found[1]  # type: ignore[index]


def test_a_bad_file_is_refused_and_the_list_unchanged(registered: None,
                                                      tmp_path: Path) -> None:
    bad = tmp_path / "bad.take.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DiffPoseError, match="not a take"):
        takes.add_take(bpy.context.scene, bad)
    assert len(_settings().takes) == 0


def test_takes_survive_save_and_reload_and_rebake(registered: None, take_file: Path,
                                                  tmp_path: Path) -> None:
    rig_name = rigs.build_family("vrm1").name
    takes.add_take(bpy.context.scene, take_file, name="first try")
    takes.add_take(bpy.context.scene, take_file, name="second")
    _settings().takes[1].name = "renamed"                 # what the UIList does
    _settings().take_index = 0
    blend = tmp_path / "shots" / "walk.blend"
    blend.parent.mkdir()
    assert bpy.ops.wm.save_as_mainfile(filepath=str(blend)) == {"FINISHED"}
    folder = blend.parent / "walk_takes"
    stored = [it.filepath for it in _settings().takes]
    assert all(p.startswith("//walk_takes/") for p in stored), stored
    assert sorted(p.name for p in folder.iterdir()) == ["first_try.take.npz",
                                                        "second.take.npz"]

    bpy.ops.wm.read_factory_settings(use_empty=True)      # close it
    assert bpy.ops.wm.open_mainfile(filepath=str(blend)) == {"FINISHED"}
    items = _settings().takes
    assert [it.name for it in items] == ["first try", "renamed"]
    assert [it.filepath for it in items] == stored
    found = takes.active_take(bpy.context.scene)
    assert found is not None and found[0].name == "first try"
    assert found[1].num_frames == read_take(take_file).num_frames
    # Re-bake from the reopened file, no model involved.
    rig = bpy.data.objects[rig_name]
    assert bpy.ops.diffpose.bake(take_path=str(takes.take_path(items[0])),
                                 armature=rig.name) == {"FINISHED"}
    assert rig.animation_data.action is not None


def test_save_as_elsewhere_carries_the_takes_and_save_copy_keeps_the_paths(
        registered: None, take_file: Path, tmp_path: Path) -> None:
    takes.add_take(bpy.context.scene, take_file)
    first = tmp_path / "a" / "shot.blend"
    first.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(first))
    assert _settings().takes[0].filepath == "//shot_takes/walk.take.npz"

    copy = tmp_path / "b" / "backup.blend"
    copy.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(copy), copy=True)
    assert (copy.parent / "backup_takes" / "walk.take.npz").is_file()
    assert _settings().takes[0].filepath == "//shot_takes/walk.take.npz"  # still ours
    bpy.ops.wm.open_mainfile(filepath=str(copy))
    assert _settings().takes[0].filepath == "//backup_takes/walk.take.npz"
    assert takes.take_path(_settings().takes[0]).is_file()

    moved = tmp_path / "c" / "final.blend"
    moved.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(moved))
    assert _settings().takes[0].filepath == "//final_takes/walk.take.npz"
    assert takes.active_take(bpy.context.scene) is not None


def test_delete_is_undoable_and_keeps_the_file(registered: None, take_file: Path) -> None:
    from diffpose_blender.blender.operators.takes import DIFFPOSE_OT_take_delete

    # Headless Blender has no undo stack (ed.undo needs a window), so check the two
    # things undo relies on: the operator makes an undo step, and the file stays for
    # the entry that undo brings back.
    assert "UNDO" in DIFFPOSE_OT_take_delete.bl_options
    takes.add_take(bpy.context.scene, take_file, name="a")
    takes.add_take(bpy.context.scene, take_file, name="b")
    path = takes.take_path(_settings().takes[1])
    assert bpy.ops.diffpose.take_delete() == {"FINISHED"}
    assert [it.name for it in _settings().takes] == ["a"] and _settings().take_index == 0
    assert path.is_file()
    assert bpy.ops.diffpose.take_delete() == {"FINISHED"}
    assert len(_settings().takes) == 0 and _settings().take_index == -1
    assert not bpy.ops.diffpose.take_delete.poll()
    assert takes.active_take(bpy.context.scene) is None


def test_missing_file_is_reported_not_fatal(registered: None, take_file: Path,
                                            tmp_path: Path) -> None:
    item = takes.add_take(bpy.context.scene, take_file)
    takes.take_path(item).unlink()
    assert takes.active_take(bpy.context.scene) is None
    assert "missing" in takes.take_problem(item)
    blend = tmp_path / "x.blend"
    assert bpy.ops.wm.save_as_mainfile(filepath=str(blend)) == {"FINISHED"}  # saves anyway
