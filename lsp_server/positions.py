"""LSP positions <-> Python string offsets.

LSP counts a position's ``character`` in code units of the negotiated encoding: UTF-16 unless
client and server agreed on another (``utf-8``, ``utf-32``). Python strings index code
points, so an emoji is one ``str`` character but two UTF-16 units, and a CJK character is one
code point, one UTF-16 unit and three UTF-8 bytes. Lines end at ``\\n``, ``\\r\\n`` or ``\\r``
as the specification says.

Lenient conversion (the default) follows the specification: a character past the end of its
line means the end of that line; a line past the last means the end of the document; a
position inside a surrogate pair (or a UTF-8 sequence) moves back to the character's start.
Strict conversion raises :class:`PositionError` instead, for ranges the client typed
explicitly (``lacuna/fill``) where silently clamping would fill the wrong text.
"""

from __future__ import annotations

import re
from typing import Protocol

from lsprotocol import types

UTF16 = "utf-16"
UTF8 = "utf-8"
UTF32 = "utf-32"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class PositionError(ValueError):
    """A position that does not exist in the document (strict conversion only)."""


class HasPosition(Protocol):
    line: int
    character: int


def _units(ch: str, encoding: str) -> int:
    if encoding == UTF16:
        return 2 if ord(ch) > 0xFFFF else 1
    if encoding == UTF8:
        return len(ch.encode("utf-8", "surrogatepass"))
    if encoding == UTF32:
        return 1
    raise ValueError(f"unknown position encoding {encoding!r}")


def units(text: str, encoding: str = UTF16) -> int:
    """Length of ``text`` in code units of ``encoding``."""
    if encoding == UTF32:
        return len(text)
    if encoding == UTF16:
        return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)
    return sum(_units(c, encoding) for c in text)


def line_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of each line's content, terminators excluded.

    A document always has at least one line; text ending in a line break has an empty last
    line after it (the position just past the final newline).
    """
    spans = []
    start = 0
    for m in _LINE_BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return spans


def offset_at(
    text: str,
    position: HasPosition,
    encoding: str = UTF16,
    *,
    strict: bool = False,
    spans: list[tuple[int, int]] | None = None,
) -> int:
    """The ``str`` offset of an LSP position in ``text``."""
    line, character = position.line, position.character
    if line < 0 or character < 0:
        raise PositionError(f"position {line}:{character} is negative")
    spans = spans if spans is not None else line_spans(text)
    if line >= len(spans):
        if strict:
            raise PositionError(
                f"line {line} is past the end of the document ({len(spans)} lines)"
            )
        return len(text)
    start, end = spans[line]
    if encoding == UTF32:
        if start + character > end:
            if strict:
                raise PositionError(
                    f"character {character} is past the end of line {line} "
                    f"({end - start} characters)"
                )
            return end
        return start + character
    seen = 0
    for i in range(start, end):
        if seen == character:
            return i
        seen += _units(text[i], encoding)
        if seen > character:
            if strict:
                raise PositionError(
                    f"position {line}:{character} falls inside the character "
                    f"{text[i]!r} ({encoding} code units)"
                )
            return i
    if seen == character:
        return end
    if strict:
        raise PositionError(
            f"character {character} is past the end of line {line} "
            f"({seen} {encoding} code units)"
        )
    return end


def position_at(
    text: str,
    offset: int,
    encoding: str = UTF16,
    *,
    spans: list[tuple[int, int]] | None = None,
) -> types.Position:
    """The LSP position of ``str`` offset ``offset`` (clamped to the document)."""
    offset = max(0, min(offset, len(text)))
    spans = spans if spans is not None else line_spans(text)
    lo, hi = 0, len(spans) - 1
    while lo < hi:  # the last line whose start is <= offset
        mid = (lo + hi + 1) // 2
        if spans[mid][0] <= offset:
            lo = mid
        else:
            hi = mid - 1
    start, end = spans[lo]
    # An offset inside a \r\n terminator belongs to the end of that line.
    offset = min(offset, end)
    return types.Position(line=lo, character=units(text[start:offset], encoding))


def range_offsets(
    text: str,
    rng: types.Range,
    encoding: str = UTF16,
    *,
    strict: bool = False,
    spans: list[tuple[int, int]] | None = None,
) -> tuple[int, int]:
    """``(start, end)`` offsets of an LSP range; strict mode also rejects reversed ranges."""
    spans = spans if spans is not None else line_spans(text)
    a = offset_at(text, rng.start, encoding, strict=strict, spans=spans)
    b = offset_at(text, rng.end, encoding, strict=strict, spans=spans)
    if b < a:
        if strict:
            raise PositionError(
                f"range {_fmt(rng.start)}-{_fmt(rng.end)} ends before it starts"
            )
        a, b = b, a
    return a, b


def range_at(
    text: str,
    start: int,
    end: int,
    encoding: str = UTF16,
    *,
    spans: list[tuple[int, int]] | None = None,
) -> types.Range:
    spans = spans if spans is not None else line_spans(text)
    return types.Range(
        start=position_at(text, start, encoding, spans=spans),
        end=position_at(text, end, encoding, spans=spans),
    )


def _fmt(p: HasPosition) -> str:
    return f"{p.line}:{p.character}"
