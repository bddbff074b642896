"""Takes kept with the .blend: a list in ``scene.diffpose.takes``, files beside the .blend.

A take is the lifted clip (core.take, an ``.npz`` of a few MB): too big and too binary for
an ID property, and re-readable by ``diffpose.bake`` and the CLI as a plain file. So the
.blend stores each take's *path*, and the files live in a folder beside it:

    /shots/walk.blend
    /shots/walk_takes/estimate.take.npz      item.filepath == "//walk_takes/estimate.take.npz"

Before the first save there is no folder beside the .blend: new takes go to a session
folder (in Blender's temporary directory) with absolute paths. On every save
(``save_pre``, which is given the target path) the take files are copied into the target's
take folder and the paths rewritten relative to it, so "Save As" elsewhere carries the
takes along and reopening the file finds them. A "Save Copy" (the current file stays the
same) writes the copy's paths, then ``save_post`` puts the current file's paths back.

Deleting a take (``diffpose.take_delete``) removes the list entry and keeps the file, so
undo brings the take back whole; files no list entry refers to are left in the take
folder for the user to delete (they are never the .blend's only copy of anything else).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, TypeVar, cast

import bpy
from bpy.app.handlers import persistent as _untyped_persistent

from ..core.errors import DiffPoseError
from ..core.take import Take, read_take

_F = TypeVar("_F", bound=Callable[..., Any])
#: `bpy.app.handlers.persistent` (keeps a handler across file loads), typed.
persistent = cast(Callable[[_F], _F], _untyped_persistent)

#: File name ending of take files written here.
TAKE_SUFFIX = ".take.npz"
#: File name ending of a take's smoothed version, kept beside it (blender/smooth.py).
SMOOTHED_SUFFIX = ".smoothed" + TAKE_SUFFIX


class DiffPoseTakeItem(bpy.types.PropertyGroup):
    """One entry of ``scene.diffpose.takes``: a take file and what it holds."""

    # `name` is PropertyGroup's own StringProperty: shown and renamed in the UIList.
    filepath: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="File",
        description="The take file (.npz); relative to the .blend (//...) once it is saved",
        # Not FILE_PATH: the add-on manages it (5.0 warns about "//" in FILE_PATH strings
        # without an option 4.2 does not know).
        default="")
    frames: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Frames", description="Number of frames in the take", default=0, min=0)
    hypotheses: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Hypotheses", description="How many possible 3D poses the model drew per frame",
        default=0, min=0)
    source: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Source", description="The video or keypoint file the take was lifted from",
        default="")


class DIFFPOSE_UL_takes(bpy.types.UIList):
    """The takes of this file; double-click a name to rename it."""

    bl_idname = "DIFFPOSE_UL_takes"

    def draw_item(self, context: bpy.types.Context | None, layout: bpy.types.UILayout,
                  data: Any, item: Any, icon: int | None, active_data: Any,
                  active_property: str | None, index: int | None = 0,
                  flt_flag: int | None = 0) -> None:
        row = layout.row(align=True)
        row.prop(item, "name", text="", emboss=False, icon="ARMATURE_DATA")
        if item.frames:
            row.label(text=f"{item.frames} fr, {item.hypotheses} hyp")


# --- Where the files live --------------------------------------------------------------

def take_folder(blend_path: str | None = None) -> Path:
    """The folder take files of `blend_path` (default: the open file) belong in:
    ``<dir>/<name>_takes`` beside a saved .blend, else a folder in Blender's temporary
    directory for this session (removed when Blender exits, like the unsaved file)."""
    blend = bpy.data.filepath if blend_path is None else blend_path
    if blend:
        p = Path(blend)
        return p.parent / f"{p.stem}_takes"
    base = bpy.app.tempdir or tempfile.gettempdir()
    return Path(base) / "diffpose_takes"


def take_path(item: DiffPoseTakeItem) -> Path:
    """The absolute path of an item's file (``//`` resolved against the open .blend)."""
    return Path(bpy.path.abspath(item.filepath))


def smoothed_path(raw: Path) -> Path:
    """Where the smoothed version of raw take file `raw` lives: beside it
    (``walk.take.npz`` -> ``walk.smoothed.take.npz``)."""
    name = raw.name
    stem = name[:-len(TAKE_SUFFIX)] if name.endswith(TAKE_SUFFIX) else \
        name.removesuffix(".npz")
    return raw.with_name(stem + SMOOTHED_SUFFIX)


def _stored_path(path: Path, blend_path: str) -> str:
    """How `path` is stored for the .blend at `blend_path`: ``//`` relative when the .blend
    is saved (and on the same drive), else absolute."""
    if blend_path:
        try:
            rel = os.path.relpath(path, Path(blend_path).parent)
        except ValueError:       # another drive (Windows)
            return str(path)
        return "//" + rel.replace(os.sep, "/")
    return str(path)


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")
    return slug[:60] or "take"


def _free_name(folder: Path, name: str) -> Path:
    candidate = folder / f"{_slug(name)}{TAKE_SUFFIX}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{_slug(name)}_{n}{TAKE_SUFFIX}"
    return candidate


def _unique_item_name(scene: bpy.types.Scene, name: str) -> str:
    names = {item.name for item in scene.diffpose.takes}  # type: ignore[attr-defined]
    if name not in names:
        return name
    n = 2
    while f"{name} {n}" in names:
        n += 1
    return f"{name} {n}"


# --- The contract used by the estimate, the preview and the hypothesis choice ----------

def add_take(scene: bpy.types.Scene, path: str | os.PathLike[str],
             name: str | None = None) -> DiffPoseTakeItem:
    """Register an existing take file as a new take of `scene` and select it.

    The file is read (and validated) first, then copied into the take folder (beside the
    .blend, or the session folder before the first save), so the caller's file may be a
    temporary one. Raises `DiffPoseError` on a file that is not a valid take; the scene
    is unchanged then. `name` defaults to the file's name without its endings.
    """
    src = Path(path)
    take = read_take(src)
    label = name or src.name.removesuffix(".npz").removesuffix(".take") or "take"
    folder = take_folder()
    folder.mkdir(parents=True, exist_ok=True)
    dest = _free_name(folder, label)
    shutil.copyfile(src, dest)
    settings = scene.diffpose  # type: ignore[attr-defined]
    item: DiffPoseTakeItem = settings.takes.add()
    item.name = _unique_item_name(scene, label)
    item.filepath = _stored_path(dest, bpy.data.filepath)
    item.frames = int(take.num_frames)
    item.hypotheses = int(take.hypotheses.shape[1])
    item.source = take.source_2d
    settings.take_index = len(settings.takes) - 1
    return item


_cache: dict[str, tuple[int, Take]] = {}
#: Takes kept in memory: the selected one, its smoothed version, one more.
_CACHE_SIZE = 3


def read_cached(path: Path) -> Take:
    """`read_take`, remembered by (path, modification time): the preview asks every
    redraw, and a take is read once per change of its file."""
    key = str(path)
    mtime = path.stat().st_mtime_ns
    hit = _cache.pop(key, None)
    if hit is not None and hit[0] == mtime:
        _cache[key] = hit        # most recently used last
        return hit[1]
    take = read_take(path)
    while len(_cache) >= _CACHE_SIZE:
        del _cache[next(iter(_cache))]
    _cache[key] = (mtime, take)
    return take


def active_take(scene: bpy.types.Scene) -> tuple[DiffPoseTakeItem, Take] | None:
    """The selected take and its contents, or None when there is none or its file is
    missing or unreadable (the panel says so through `take_problem`)."""
    item = active_item(scene)
    if item is None:
        return None
    try:
        return item, read_cached(take_path(item))
    except (OSError, ValueError, DiffPoseError):
        return None


def active_item(scene: bpy.types.Scene) -> DiffPoseTakeItem | None:
    """The selected entry of the take list, or None."""
    settings = scene.diffpose  # type: ignore[attr-defined]
    index = settings.take_index
    if 0 <= index < len(settings.takes):
        item: DiffPoseTakeItem = settings.takes[index]
        return item
    return None


def poll_take_selected(op: type[bpy.types.Operator], context: bpy.types.Context) -> bool:
    """An operator's `poll` for "needs a selected take": False, with the reason shown in
    the button's tooltip, when there is no scene, no add-on settings or no selection."""
    scene = context.scene
    if scene is None or not hasattr(scene, "diffpose") or active_item(scene) is None:
        op.poll_message_set("Select a take in the list first")
        return False
    return True


def take_problem(item: DiffPoseTakeItem) -> str:
    """Why an item's file cannot be used ("" when it can): for the panel and reports."""
    path = take_path(item)
    if not path.is_file():
        return f"the take file is missing: {path}"
    try:
        read_cached(path)
    except (OSError, ValueError, DiffPoseError) as exc:
        return str(exc)
    return ""


def clear_cache() -> None:
    _cache.clear()


# --- Keeping files with the .blend on save ---------------------------------------------

#: (scene name, item index, filepath before save) for a "Save Copy", restored on save_post.
_before_save: list[tuple[str, int, str]] = []


def carry_takes(blend_path: str) -> list[tuple[str, int, str]]:
    """Copy every scene's take files into `blend_path`'s take folder and store their
    paths relative to it. Returns the old paths. A missing file keeps its entry and path
    (the panel reports it) rather than failing the save."""
    old: list[tuple[str, int, str]] = []
    folder = take_folder(blend_path)
    for scene in bpy.data.scenes:
        settings = getattr(scene, "diffpose", None)
        if settings is None:
            continue
        for i, item in enumerate(settings.takes):
            src = take_path(item)
            if not src.is_file():
                continue
            dest = folder / src.name
            if src.resolve() != dest.resolve():
                folder.mkdir(parents=True, exist_ok=True)
                if dest.exists() and not _same_file_content(src, dest):
                    dest = _free_name(folder, src.name.removesuffix(TAKE_SUFFIX))
                if not dest.exists():
                    shutil.copyfile(src, dest)
                # The smoothed version travels with it (it is re-made when missing).
                smoothed = smoothed_path(src)
                if smoothed.is_file():
                    shutil.copyfile(smoothed, smoothed_path(dest))
            stored = _stored_path(dest, blend_path)
            if stored != item.filepath:
                old.append((scene.name, i, item.filepath))
                item.filepath = stored
    return old


def _same_file_content(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return a.read_bytes() == b.read_bytes()


@persistent
def _on_save_pre(filepath: str = "", *_args: Any) -> None:
    _before_save.clear()
    if filepath:
        _before_save.extend(carry_takes(filepath))


@persistent
def _on_save_post(filepath: str = "", *_args: Any) -> None:
    # A "Save Copy" leaves the open file where it was: its paths go back.
    if filepath and os.path.normpath(filepath) != os.path.normpath(bpy.data.filepath):
        for scene_name, index, path in _before_save:
            scene = bpy.data.scenes.get(scene_name)
            if scene is not None and index < len(scene.diffpose.takes):  # type: ignore[attr-defined]
                scene.diffpose.takes[index].filepath = path  # type: ignore[attr-defined]
    _before_save.clear()


@persistent
def _on_load_post(*_args: Any) -> None:
    clear_cache()


_HANDLERS = (("save_pre", _on_save_pre), ("save_post", _on_save_post),
             ("load_post", _on_load_post))


def add_handlers(pairs: tuple[tuple[str, Callable[..., Any]], ...]) -> None:
    """Append each (``bpy.app.handlers`` list name, function) not already there."""
    for name, fn in pairs:
        handlers = getattr(bpy.app.handlers, name)
        if fn not in handlers:
            handlers.append(fn)


def remove_handlers(pairs: tuple[tuple[str, Callable[..., Any]], ...]) -> None:
    """Remove each (list name, function) from ``bpy.app.handlers``, matching by module
    and name too: a reloaded module's functions are new objects."""
    for name, fn in pairs:
        handlers = getattr(bpy.app.handlers, name)
        for h in [h for h in handlers if h is fn or (
                getattr(h, "__module__", None) == fn.__module__
                and getattr(h, "__name__", None) == fn.__name__)]:
            handlers.remove(h)


def register_handlers() -> None:
    add_handlers(_HANDLERS)


def unregister_handlers() -> None:
    remove_handlers(_HANDLERS)
    clear_cache()
