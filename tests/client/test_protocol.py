"""The framing itself: round trips and everything a bad peer could send."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

from diffpose_blender.client.protocol import (ConnectionClosed, Limits, Message,
                                              ProtocolError, answer_challenge, encode,
                                              read_message, write_message)


def _wire(message: Message) -> bytes:
    return b"".join(encode(message))


def _raw(header: dict[str, object], *blobs: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack(">Q", len(text)) + text + b"".join(blobs)


def test_round_trip_keeps_fields_and_arrays_exactly() -> None:
    arrays = {"pose": np.random.default_rng(0).normal(size=(4, 21, 3)).astype(np.float32),
              "names": np.array(["pelvis", "r_hip"]), "flags": np.array([True, False]),
              "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3))}
    buf = io.BytesIO()
    write_message(buf, Message("request", "7", {"method": "lift", "seed": 3}, arrays))
    write_message(buf, Message("heartbeat"))
    buf.seek(0)
    got = read_message(buf)
    assert (got.type, got.id, got.fields) == ("request", "7", {"method": "lift", "seed": 3})
    for key, a in arrays.items():
        np.testing.assert_array_equal(got.arrays[key], a)
        assert got.arrays[key].dtype == a.dtype
    assert read_message(buf).type == "heartbeat"
    with pytest.raises(ConnectionClosed):
        read_message(buf)


def test_object_arrays_are_refused_both_ways_and_the_stream_stays_in_step() -> None:
    with pytest.raises(ProtocolError, match="pickle"):
        encode(Message("result", "1", {}, {"bad": np.array([{"a": 1}], dtype=object)}))
    # A peer that sends a pickled array anyway: refused, and the next message still reads.
    blob = io.BytesIO()
    np.save(blob, np.array([{"os": "system"}], dtype=object), allow_pickle=True)
    data = blob.getvalue()
    stream = io.BytesIO(_raw({"type": "request", "id": "9", "arrays": [["x", len(data)]]},
                             data) + _wire(Message("heartbeat")))
    with pytest.raises(ProtocolError, match="object array refused") as info:
        read_message(stream)
    assert info.value.in_sync and info.value.msg_id == "9"
    assert read_message(stream).type == "heartbeat"


@pytest.mark.parametrize("payload, match", [
    (struct.pack(">Q", 1 << 40), "header of"),                               # huge length
    (b"\x00\x00\x00\x00\x00\x00\x00\x05hello", "not UTF-8 JSON"),          # not JSON
    (_raw({"type": "request", "id": "1", "arrays": [["a", 1 << 40]]}), "limit is"),
    (_raw(["a", "list"]), "not an object"),                                # type: ignore[list-item]
    (_raw({"type": "exec", "id": "1"}), "unknown message type"),
    (_raw({"type": "request", "id": 5}), "not text"),
    (_raw({"type": "request", "id": "1", "arrays": [["a", -3]]}), "bad array entry"),
    (_raw({"type": "request", "id": "1", "arrays": [["a", 50]]}, b"x" * 10), "middle of"),
    (_raw({"type": "request", "id": "1", "arrays": [["a", 4]]}, b"junk"), "not an .npy"),
])
def test_malformed_input_is_refused_before_allocating(payload: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        read_message(io.BytesIO(payload), Limits(max_array_bytes=1 << 20))


def test_npy_header_must_match_the_bytes_that_follow() -> None:
    blob = io.BytesIO()
    np.save(blob, np.zeros(10, dtype=np.float64))
    data = blob.getvalue()[:-16]                       # claims 10 floats, carries 8
    stream = io.BytesIO(_raw({"type": "result", "id": "2", "arrays": [["a", len(data)]]},
                             data))
    with pytest.raises(ProtocolError, match="header says shape"):
        read_message(stream)


def test_challenge_answer_depends_on_token_and_nonce() -> None:
    a = answer_challenge(b"k" * 32, "00ff")
    assert a == answer_challenge(b"k" * 32, "00ff")
    assert a != answer_challenge(b"j" * 32, "00ff") != answer_challenge(b"k" * 32, "01ff")
    with pytest.raises(ProtocolError):
        answer_challenge(b"k" * 32, "not hex")
