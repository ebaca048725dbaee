"""The LSP base protocol's frames: a byte stream in, JSON values (or the reason a frame is
bad) out, in bounded memory.

pygls' own loop allocates whatever ``Content-Length`` says (a huge one is a MemoryError)
and goes deaf for good after a header it does not expect. Here a bad frame is reported
once and the reader resynchronises on the next ``Content-Length`` header:

- header names are case-insensitive; lines may end in CRLF or a bare LF;
- ``Content-Length`` must be plain decimal digits, at most :data:`MAX_FRAME_BYTES`;
- a header block is at most :data:`MAX_HEADER_BYTES`;
- a body that is not UTF-8 JSON is reported, then reading resumes at the next header,
  looked for inside that body too (its ``Content-Length`` may have been too long).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

#: The largest body accepted: a 64 MiB document is far beyond what a fill can use.
MAX_FRAME_BYTES = 64 * 1024 * 1024
#: The largest header block (LSP sends two short headers).
MAX_HEADER_BYTES = 8 * 1024

_LENGTH = b"content-length:"
_DIGITS = re.compile(rb"[0-9]+")
_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class BadFrame:
    """A frame that could not be read; ``reason`` says why (for the -32700 answer)."""

    reason: str


class FrameReader:
    """Frames from ``read``, an awaitable that returns the next bytes (``b""`` at EOF)."""

    def __init__(self, read: Callable[[], Awaitable[bytes]],
                 max_frame: int = MAX_FRAME_BYTES) -> None:
        self._read = read
        self._max_frame = max_frame
        self._buf = bytearray()
        self._eof = False

    async def _more(self) -> bool:
        if self._eof:
            return False
        chunk = await self._read()
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    async def __aiter__(self) -> AsyncIterator[Any | BadFrame]:
        while True:
            header = await self._header()
            if header is None:
                return
            if isinstance(header, BadFrame):
                yield header
                if not await self._resync():
                    return
                continue
            while len(self._buf) < header:
                if not await self._more():
                    return  # EOF inside a body: nothing to answer
            body = bytes(self._buf[:header])
            del self._buf[:header]
            value = _decode(body)
            yield value
            if isinstance(value, BadFrame):
                # A length too long swallowed the next header: look for it in this body.
                # Too short: the body's rest is skipped. Either way, one error a frame.
                self._buf[:0] = body[1:]
                if not await self._resync():
                    return

    async def _header(self) -> int | BadFrame | None:
        """The next header block's ``Content-Length``; None at EOF."""
        fields: dict[bytes, bytes] = {}
        size = 0
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                if len(self._buf) > MAX_HEADER_BYTES:
                    del self._buf[:1]  # resync looks past this line's start
                    return BadFrame(f"a header line longer than {MAX_HEADER_BYTES} bytes")
                if not await self._more():
                    return None
                continue
            line = bytes(self._buf[:end]).rstrip(b"\r")
            size += end + 1
            if size > MAX_HEADER_BYTES:
                del self._buf[:1]
                return BadFrame(f"a header block longer than {MAX_HEADER_BYTES} bytes")
            if not line.strip():
                del self._buf[:end + 1]
                if not fields:
                    size = 0
                    continue  # blank lines between frames are harmless
                return _length(fields, self._max_frame)
            name, sep, value = line.partition(b":")
            if not sep or not _NAME.fullmatch(name):
                del self._buf[:1]
                return BadFrame(f"not a header line: {_show(line)}")
            del self._buf[:end + 1]
            fields[name.lower()] = value.strip()

    async def _resync(self) -> bool:
        """Drop bytes up to the next ``Content-Length`` header; False at EOF."""
        while True:
            at = self._buf.lower().find(_LENGTH)
            if at >= 0:
                del self._buf[:at]
                return True
            keep = len(_LENGTH) - 1  # a header split across two reads
            del self._buf[:max(0, len(self._buf) - keep)]
            if not await self._more():
                return False


def _length(fields: dict[bytes, bytes], limit: int) -> int | BadFrame:
    raw = fields.get(b"content-length")
    if raw is None:
        return BadFrame("a header block without Content-Length")
    if not _DIGITS.fullmatch(raw):
        return BadFrame(f"Content-Length is not a decimal number: {_show(raw)}")
    length = int(raw)
    if length > limit:
        return BadFrame(f"Content-Length {length} is over the limit of {limit} bytes")
    return length


def _decode(body: bytes) -> Any | BadFrame:
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        return BadFrame(f"the body is not UTF-8: {e.reason} at byte {e.start}")
    except (ValueError, RecursionError) as e:
        return BadFrame(f"the body is not JSON: {e}")


def _show(raw: bytes, limit: int = 60) -> str:
    text = repr(raw[:limit])[2:-1]
    return text + ("..." if len(raw) > limit else "")
