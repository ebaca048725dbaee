"""Issue 21 defect 4: a bad frame is answered (-32700, id null) and the server reads the
next good one; nothing a header says makes it allocate without bound.

The unit tests read frames from bytes in memory; the last one sends every bad header to a
real server over stdio and asks after each whether it still answers."""

from __future__ import annotations

import asyncio
import json

import pytest
from lsp_support import server_env
from raw_lsp import Raw, frame, request

from lsp_server.framing import MAX_FRAME_BYTES, BadFrame, FrameReader

PING = {"jsonrpc": "2.0", "id": 7, "method": "ping"}


def read_all(data: bytes, chunk: int = 5, max_frame: int = MAX_FRAME_BYTES) -> list:
    """Every payload of ``data``, fed ``chunk`` bytes at a time (frames span reads)."""
    parts = [data[i:i + chunk] for i in range(0, len(data), chunk)]

    async def run():
        async def read():
            return parts.pop(0) if parts else b""

        return [p async for p in FrameReader(read, max_frame)]

    return asyncio.run(run())


def body(obj) -> bytes:
    return json.dumps(obj).encode()


def test_good_frames_any_header_case_and_line_end():
    data = (frame(PING) + b"content-length: %d\n\n" % len(body(PING)) + body(PING)
            + b"CONTENT-LENGTH: %d\r\nContent-Type: x\r\n\r\n" % len(body(PING)) + body(PING))
    assert read_all(data) == [PING, PING, PING]
    assert read_all(b"\r\n" * 5000 + frame(PING)) == [PING]  # blank lines between frames


@pytest.mark.parametrize("header, why", [
    (b"Content-Length: 100000000000000\r\n\r\n", "over the limit"),
    (b"Content-Length: -5\r\n\r\n", "not a decimal number"),
    (b"Content-Length: +5\r\n\r\n", "not a decimal number"),
    (b"Content-Length: five\r\n\r\n", "not a decimal number"),
    (b"Content-Type: application/json\r\n\r\n{}", "without Content-Length"),
    (b"hello there\r\n\r\n", "not a header line"),
    (b"X" * 10000 + b"\r\n", "longer than"),
])
def test_a_bad_header_is_reported_once_then_the_next_frame_is_read(header, why):
    got = read_all(header + frame(PING))
    assert len(got) == 2 and isinstance(got[0], BadFrame), got
    assert why in got[0].reason
    assert got[1] == PING


def test_a_wrong_length_costs_only_its_own_frame():
    short = b"Content-Length: 10\r\n\r\n" + body(PING)
    long = b"Content-Length: %d\r\n\r\n" % (len(body(PING)) + 12) + body(PING)
    for bad in (short, long):
        got = read_all(bad + frame(PING) + frame(PING))
        assert [p for p in got if not isinstance(p, BadFrame)] == [PING, PING], got
        assert isinstance(got[0], BadFrame)


def test_bodies_that_are_not_json_or_not_utf8():
    got = read_all(b"Content-Length: 3\r\n\r\n{x}" + b"Content-Length: 2\r\n\r\n\xff\xfe"
                   + b"Content-Length: 0\r\n\r\n" + frame(PING))
    assert [type(p) for p in got] == [BadFrame, BadFrame, BadFrame, dict]
    assert "not JSON" in got[0].reason and "not UTF-8" in got[1].reason


def test_a_frame_over_the_limit_is_skipped_in_bounded_memory():
    huge = b"Content-Length: 2000\r\n\r\n" + b"[" * 2000
    got = read_all(huge + frame(PING), chunk=64, max_frame=1000)
    assert isinstance(got[0], BadFrame) and got[1:] == [PING]


BAD_HEADERS = {
    "huge length": b"Content-Length: 100000000000000\r\n\r\n",
    "negative length": b"Content-Length: -12\r\n\r\n{}",
    "plus sign": b"Content-Length: +2\r\n\r\n{}",
    "not a number": b"Content-Length: twelve\r\n\r\n{}",
    "missing length": b"Content-Type: application/vscode-jsonrpc\r\n\r\n{}",
    "wrong length": b"Content-Length: 5\r\n\r\n" + body(request(99, "ping")),
    "not json": b"Content-Length: 9\r\n\r\nnot json!",
}


def test_the_server_answers_bad_frames_and_keeps_listening(tiny_model_dir, tmp_path):
    raw = Raw.stdio(server_env(tiny_model_dir, tmp_path))
    try:
        raw.initialize()
        nulls = lambda: [m for m in raw.received if m.get("id", 0) is None]  # noqa: E731
        for i, (name, bad) in enumerate(BAD_HEADERS.items()):
            raw.send(bad)
            got = raw.ask(i, "lacuna/nothing")  # any request: answered means listening
            assert got["error"]["code"] == -32601, (name, got)
            assert len(nulls()) == i + 1, (name, raw.received[-3:])
            assert nulls()[-1]["error"]["code"] == -32700, name
        # lower-case names and bare line feeds are still LSP frames
        ping = body(request("lf", "lacuna/nothing"))
        raw.send(b"content-length: %d\n\n" % len(ping) + ping)
        raw.wait(lambda: raw.answers("lf"))
        assert len(nulls()) == len(BAD_HEADERS)
        raw.ask("down", "shutdown")
        raw.send({"jsonrpc": "2.0", "method": "exit"})
        assert raw.process.wait(30) == 0
    finally:
        raw.close_stdio()
