"""The framed protocol between the add-on and the backend (DESIGN §6).

One message on the wire::

    8 bytes   big-endian unsigned length L of the header
    L bytes   UTF-8 JSON header: {"type": ..., "id": ..., ..., "arrays": [[name, nbytes], ...]}
    ...       for each listed array, in order, exactly nbytes of `.npy` data

Types: ``hello`` (backend -> client, first: protocol and package versions, device),
``request`` (method + params), ``progress``, ``result``, ``error`` (kind, message,
traceback text), ``cancel``, ``heartbeat``; over TCP the server sends ``challenge`` before
anything else and the client answers ``auth`` (`answer_challenge`).

Nothing that arrives is trusted: the header length, every array's byte count and the
message's total are checked against `Limits` before anything is allocated, the header
must be a JSON object with a known type, and arrays are read with pickle refused and their
`.npy` header checked against the bytes that follow.

Used by both sides: the client (inside Blender: numpy and the standard library only) and
the backend's `serve`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import math
import struct
from dataclasses import dataclass, field
from typing import IO, Any, Callable

import numpy as np

from ..core.errors import DiffPoseError

#: Bumped whenever a message or method changes incompatibly.
PROTOCOL_VERSION = 1
TYPES = frozenset({"hello", "request", "progress", "result", "error", "cancel", "heartbeat",
                   "challenge", "auth"})
_LENGTH = struct.Struct(">Q")

# numpy ships no type hints for np.lib.format; these say what we rely on.
_NpyHeader = tuple[tuple[int, ...], bool, np.dtype[Any]]
_npy_write: Callable[..., None] = np.lib.format.write_array
_npy_magic: Callable[[IO[bytes]], tuple[int, int]] = np.lib.format.read_magic
_npy_header_1_0: Callable[[IO[bytes]], _NpyHeader] = np.lib.format.read_array_header_1_0
_npy_header_2_0: Callable[[IO[bytes]], _NpyHeader] = np.lib.format.read_array_header_2_0


class ProtocolError(DiffPoseError):
    """The peer sent something that is not a valid message.

    in_sync  the whole message was consumed, so the stream is still at a message
             boundary and the connection can go on (an error reply to `msg_id`);
             otherwise the connection must be closed.
    """

    def __init__(self, message: str, in_sync: bool = False, msg_id: str = "") -> None:
        super().__init__(message)
        self.in_sync = in_sync
        self.msg_id = msg_id


class ConnectionClosed(ProtocolError):
    """The peer closed the stream (cleanly, between messages, or in the middle of one)."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds checked before allocating. The defaults carry a 10-minute take at
    60 fps with 64 hypotheses in float32 with room to spare."""

    max_header_bytes: int = 1 << 20            # 1 MiB of JSON
    max_array_bytes: int = 1 << 30             # 1 GiB per array
    max_message_bytes: int = 2 << 30           # 2 GiB for all arrays of a message
    max_arrays: int = 64


@dataclass
class Message:
    type: str
    id: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


# --- writing ---------------------------------------------------------------------------

def npy_bytes(array: np.ndarray) -> bytes:
    """`array` as `.npy` bytes; object arrays are refused (they would need pickle)."""
    a = np.asarray(array)
    if a.dtype.hasobject:
        raise ProtocolError("cannot send an object array (it would need pickle)")
    buf = io.BytesIO()
    _npy_write(buf, a, allow_pickle=False)
    return buf.getvalue()


def encode(message: Message) -> list[bytes]:
    """The message as a list of byte chunks to write in order (arrays are not copied
    into one big buffer)."""
    if message.type not in TYPES:
        raise ProtocolError(f"unknown message type {message.type!r}")
    blobs = [(name, npy_bytes(a)) for name, a in message.arrays.items()]
    header = dict(message.fields)
    header.update(type=message.type, id=message.id,
                  arrays=[[name, len(blob)] for name, blob in blobs])
    text = json.dumps(header, allow_nan=False).encode("utf-8")
    return [_LENGTH.pack(len(text)), text] + [blob for _, blob in blobs]


def write_message(stream: IO[bytes], message: Message) -> None:
    for chunk in encode(message):
        stream.write(chunk)
    stream.flush()


# --- reading ---------------------------------------------------------------------------

def _read_exact(stream: IO[bytes], n: int, what: str, started: bool) -> bytes:
    """Exactly n bytes (reading in pieces so a lying peer cannot make us allocate n
    before it has sent them)."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        chunk = stream.read(min(n - got, 1 << 24))
        if not chunk:
            if got == 0 and not started:
                raise ConnectionClosed("the peer closed the connection")
            raise ConnectionClosed(f"the peer closed the connection in the middle of "
                                   f"{what} ({got} of {n} bytes)")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_npy(blob: bytes, where: str) -> np.ndarray:
    """An array from `.npy` bytes: header checked, objects (pickle) refused, and the
    header's shape must account for exactly the bytes present."""
    fh = io.BytesIO(blob)
    try:
        version = _npy_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = _npy_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = _npy_header_2_0(fh)
        else:
            raise ProtocolError(f"{where}: .npy format {version} is not 1.0 or 2.0")
    except ValueError as exc:
        raise ProtocolError(f"{where}: not an .npy array ({exc})") from None
    if dtype.hasobject:
        raise ProtocolError(f"{where}: object array refused (it would need pickle)")
    claimed = math.prod(shape) * dtype.itemsize
    present = len(blob) - fh.tell()
    if claimed != present:
        raise ProtocolError(f"{where}: header says shape {shape} of {dtype} "
                            f"({claimed} bytes) but {present} bytes follow")
    data = np.frombuffer(blob, dtype=dtype, count=math.prod(shape), offset=fh.tell())
    return data.reshape(shape, order="F" if fortran else "C")


def read_message(stream: IO[bytes], limits: Limits = Limits()) -> Message:
    """The next message; `ConnectionClosed` at the end of the stream, `ProtocolError`
    on anything malformed or over the limits."""
    (length,) = _LENGTH.unpack(_read_exact(stream, _LENGTH.size, "a header length", False))
    if length > limits.max_header_bytes:
        raise ProtocolError(f"header of {length} bytes; the limit is "
                            f"{limits.max_header_bytes}")
    raw = _read_exact(stream, length, "a header", True)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"the header is not UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"the header is JSON {type(header).__name__}, not an object")
    kind = header.pop("type", None)
    if kind not in TYPES:
        raise ProtocolError(f"unknown message type {kind!r}")
    msg_id = header.pop("id", "")
    if not isinstance(msg_id, str):
        raise ProtocolError(f"message id {msg_id!r} is not text")
    listed = header.pop("arrays", [])
    if not isinstance(listed, list) or len(listed) > limits.max_arrays:
        raise ProtocolError(f"'arrays' must list at most {limits.max_arrays} "
                            f"[name, bytes] pairs")
    sizes: list[tuple[str, int]] = []
    for item in listed:
        if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str)
                or not isinstance(item[1], int) or isinstance(item[1], bool)
                or item[1] < 0):
            raise ProtocolError(f"bad array entry {item!r}; expected [name, bytes]")
        if item[1] > limits.max_array_bytes:
            raise ProtocolError(f"array {item[0]!r} of {item[1]} bytes; the limit is "
                                f"{limits.max_array_bytes}")
        sizes.append((item[0], item[1]))
    total = sum(n for _, n in sizes)
    if total > limits.max_message_bytes:
        raise ProtocolError(f"message arrays total {total} bytes; the limit is "
                            f"{limits.max_message_bytes}")
    # Every listed byte is read before any array is judged, so a refused array leaves
    # the stream at the next message.
    blobs = [(name, _read_exact(stream, nbytes, f"array {name!r}", True))
             for name, nbytes in sizes]
    arrays: dict[str, np.ndarray] = {}
    for name, blob in blobs:
        try:
            arrays[name] = read_npy(blob, f"array {name!r}")
        except ProtocolError as exc:
            raise ProtocolError(str(exc), in_sync=True, msg_id=msg_id) from None
    return Message(kind, msg_id, header, arrays)


# --- authentication (TCP) ----------------------------------------------------------------

def answer_challenge(token: bytes, nonce_hex: str) -> str:
    """HMAC-SHA256(token, nonce) as hex: proves the client knows the token without
    sending it."""
    try:
        nonce = bytes.fromhex(nonce_hex)
    except ValueError:
        raise ProtocolError("the server's challenge is not hex") from None
    return hmac.new(token, nonce, hashlib.sha256).hexdigest()


def read_token_file(path: str) -> bytes:
    """The shared secret: the file's content without surrounding whitespace."""
    try:
        with open(path, "rb") as fh:
            token = fh.read(4096).strip()
    except OSError as exc:
        raise DiffPoseError(f"{path}: cannot read the token file ({exc})") from None
    if len(token) < 16:
        raise DiffPoseError(f"{path}: the token is {len(token)} bytes; expected at least "
                            f"16 (for example: python -c \"import secrets; "
                            f"print(secrets.token_hex(32))\")")
    return token


# --- errors as data -----------------------------------------------------------------------

def error_message(msg_id: str, kind: str, message: str, trace: str = "") -> Message:
    return Message("error", msg_id, {"kind": kind, "message": message, "traceback": trace})


Progress = Callable[[int, int, str], None]
