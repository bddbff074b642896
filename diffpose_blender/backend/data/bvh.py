"""BVH (Biovision hierarchy) reader: any skeleton, any channel order.

Nothing about a particular skeleton is assumed: joint names, offsets, which channels each
joint has and in which order all come from the file's HIERARCHY section. The four CMU
conversions in the shared corpus differ exactly there (cgspeed MotionBuilder-friendly:
Z Y X everywhere; Daz-friendly: Z X Y on every non-root joint; 3dsMax-friendly: Z Y X on
the trunk and legs, Z X Y on the arms), and all read through the same code.

Reading of the channels (the usual BVH convention):

- rotation channels, in degrees, compose in the order listed, as intrinsic rotations:
  ``Zrotation Yrotation Xrotation`` gives ``L = Rz @ Ry @ Rx`` (column vectors);
- position channels are allowed on the root only; its position is ``OFFSET + (X, Y, Z)``;
- every ``End Site`` becomes a joint named ``<parent>_end`` with no channels.

Units and axes are the file's own (BVH stores neither); the caller converts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.errors import DiffPoseError, PathLike
from .kinematics import NativeMotion, euler_matrix
from .textfile import check_numbers, read_text

_ROT = {"Xrotation": "X", "Yrotation": "Y", "Zrotation": "Z"}
_POS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}


@dataclass
class _Joint:
    name: str
    parent: int
    offset: tuple[float, float, float]
    channels: list[str] = field(default_factory=list)
    line: int = 0


class _Tokens:
    """Whitespace tokens of the HIERARCHY section, each with its 1-based line number."""

    def __init__(self, path: PathLike, lines: list[str], end_line: int) -> None:
        self.path = path
        self.items = [(tok, n + 1) for n, line in enumerate(lines[:end_line])
                      for tok in line.split()]
        self.pos = 0
        self.last_line = end_line

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise DiffPoseError.at(self.path, f"line {self.last_line}",
                                   expected=f"{what}, but the hierarchy ends here")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def expect(self, word: str) -> int:
        tok, line = self.next(f"'{word}'")
        if tok != word:
            raise DiffPoseError.at(self.path, f"line {line}", expected=f"'{word}', got '{tok}'")
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            raise DiffPoseError.at(self.path, f"line {line}",
                                   expected=f"{what} (a number), got '{tok}'") from None
        if not np.isfinite(value):
            raise DiffPoseError.at(self.path, f"line {line}",
                                   expected=f"{what} (a finite number), got '{tok}'")
        return value


def _parse_joint(tok: _Tokens, joints: list[_Joint], name: str, parent: int,
                 line: int) -> None:
    tok.expect("{")
    tok.expect("OFFSET")
    offset = (tok.number("OFFSET x"), tok.number("OFFSET y"), tok.number("OFFSET z"))
    me = len(joints)
    joints.append(_Joint(name, parent, offset, line=line))
    if tok.peek() == "CHANNELS":
        tok.next("CHANNELS")
        n_tok, n_line = tok.next("a channel count")
        if not n_tok.isdigit():
            raise DiffPoseError.at(tok.path, f"line {n_line}", f"joint '{name}'",
                                   expected=f"a channel count, got '{n_tok}'")
        for _ in range(int(n_tok)):
            ch, ch_line = tok.next(f"channel names of joint '{name}'")
            if ch not in _ROT and ch not in _POS:
                raise DiffPoseError.at(
                    tok.path, f"line {ch_line}", f"joint '{name}'",
                    expected=f"a channel name (X/Y/Z rotation or position), got '{ch}'")
            joints[me].channels.append(ch)
    while True:
        word, w_line = tok.next(f"JOINT, End Site or '}}' inside joint '{name}'")
        if word == "}":
            return
        if word == "JOINT":
            child, c_line = tok.next("a joint name")
            _parse_joint(tok, joints, child, me, c_line)
        elif word == "End":
            tok.expect("Site")
            tok.expect("{")
            tok.expect("OFFSET")
            end_offset = (tok.number("OFFSET x"), tok.number("OFFSET y"),
                          tok.number("OFFSET z"))
            tok.expect("}")
            joints.append(_Joint(f"{name}_end", me, end_offset, line=w_line))
        else:
            raise DiffPoseError.at(tok.path, f"line {w_line}", f"joint '{name}'",
                                   expected=f"JOINT, End Site or '}}', got '{word}'")


def _header_value(path: PathLike, lines: list[str], n: int, key: str) -> str:
    """The value after ``key`` (e.g. 'Frames:') on line n (0-based), checked."""
    if n >= len(lines):
        raise DiffPoseError.at(path, f"line {n + 1}", expected=f"'{key} ...', but the file ends")
    line = lines[n].strip()
    if not line.startswith(key):
        raise DiffPoseError.at(path, f"line {n + 1}", expected=f"'{key} ...', got '{line[:40]}'")
    return line[len(key):].strip()


def read_bvh(path: PathLike) -> NativeMotion:
    """Read a BVH file (plain or gzip) into a `NativeMotion` in the file's units and axes.

    Malformed input raises `DiffPoseError` naming the file, the line (and frame) and what
    was expected: unbalanced braces, unknown channels, a ``Frames:`` count that the data
    does not match, a frame line with the wrong number of values or a non-number.
    """
    lines = read_text(path).splitlines()
    motion_at = next((n for n, line in enumerate(lines) if line.strip() == "MOTION"), None)
    if motion_at is None:
        raise DiffPoseError.at(path, expected="a BVH file with a MOTION section")
    tok = _Tokens(path, lines, motion_at)
    tok.expect("HIERARCHY")
    root_line = tok.expect("ROOT")
    root_name, _ = tok.next("the root joint's name")
    joints: list[_Joint] = []
    _parse_joint(tok, joints, root_name, -1, root_line)
    if tok.peek() is not None:
        extra, extra_line = tok.next("")
        raise DiffPoseError.at(path, f"line {extra_line}",
                               expected=f"one ROOT hierarchy then MOTION, got '{extra}'")
    names = [j.name for j in joints]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DiffPoseError.at(path, f"joint '{dup}'", expected="unique joint names")

    # Column layout of a frame line.
    layout: list[tuple[int, str, list[int]]] = []  # (joint, euler order, columns)
    root_pos_cols: dict[int, int] = {}
    col = 0
    for j, joint in enumerate(joints):
        order, cols = "", []
        for ch in joint.channels:
            if ch in _ROT:
                order += _ROT[ch]
                cols.append(col)
            elif j == 0:
                root_pos_cols[_POS[ch]] = col
            else:
                raise DiffPoseError.at(
                    path, f"line {joint.line}", f"joint '{joint.name}'",
                    expected="position channels on the root only")
            col += 1
        if order:
            layout.append((j, order, cols))
    n_channels = col

    frames_text = _header_value(path, lines, motion_at + 1, "Frames:")
    if not frames_text.isdigit():
        raise DiffPoseError.at(path, f"line {motion_at + 2}",
                               expected=f"a whole number of frames, got '{frames_text}'")
    n_frames = int(frames_text)
    dt_text = _header_value(path, lines, motion_at + 2, "Frame Time:")
    try:
        frame_time = float(dt_text)
    except ValueError:
        frame_time = -1.0
    if not (frame_time > 0 and np.isfinite(frame_time)):
        raise DiffPoseError.at(path, f"line {motion_at + 3}",
                               expected=f"a positive Frame Time in seconds, got '{dt_text}'")
    values = _frame_values(path, lines, motion_at + 3, n_frames, n_channels)

    t, j_count = n_frames, len(joints)
    local = np.broadcast_to(np.eye(3), (t, j_count, 3, 3)).copy()
    rad = np.deg2rad(values)
    for j, order, cols in layout:
        local[:, j] = euler_matrix(rad[:, cols], order)
    root_pos = np.zeros((t, 3))
    for axis, c in root_pos_cols.items():
        root_pos[:, axis] = values[:, c]
    return NativeMotion(
        names=tuple(names),
        parents=np.array([j.parent for j in joints], dtype=np.int64),
        offsets=np.array([j.offset for j in joints], dtype=np.float64),
        local_rot=local, root_pos=root_pos, fps=frame_rate(frame_time), path=str(path))


def frame_rate(frame_time: float) -> float:
    """Frames per second from a BVH ``Frame Time`` (s), rounded to 0.01: files print the
    time to ~6 digits (``0.0333333``), which would otherwise give 30.00003 fps."""
    return round(1.0 / frame_time, 2)


def _frame_values(path: PathLike, lines: list[str], first: int, n_frames: int,
                  n_channels: int) -> np.ndarray:
    """The (n_frames, n_channels) values of the frame lines starting at line index
    `first` (0-based); blank lines after the last frame are allowed, nothing else."""
    if n_frames < 1:
        raise DiffPoseError.at(path, f"line {first}", expected="'Frames:' of at least 1")
    body = lines[first:]
    while body and not body[-1].strip():
        body.pop()
    # Fast path: one C-level parse; anything odd falls through to the line-by-line check
    # that finds the exact place to report.
    if len(body) == n_frames and n_frames > 0:
        try:
            values = np.loadtxt(body, dtype=np.float64, ndmin=2)
        except ValueError:
            values = None
        if values is not None and values.shape == (n_frames, n_channels) \
                and np.isfinite(values).all():
            return values
    for k, line in enumerate(body):
        where = (f"line {first + k + 1}", f"frame {k}")
        if k >= n_frames:
            raise DiffPoseError.at(path, *where,
                                   expected=f"no more frame lines ('Frames: {n_frames}')")
        parts = line.split()
        if len(parts) != n_channels:
            raise DiffPoseError.at(path, *where, expected=(
                f"{n_channels} values (one per channel), got {len(parts)}"))
        check_numbers(path, parts, *where)
    if len(body) < n_frames:
        raise DiffPoseError.at(path, f"line {first + len(body) + 1}", expected=(
            f"{n_frames} frame lines ('Frames: {n_frames}'), but the file ends after "
            f"{len(body)}"))
    raise DiffPoseError.at(path, expected="frame lines that parse")  # not reached
