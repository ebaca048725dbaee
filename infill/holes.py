"""Turning what a user marks in a document into validated Holes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .types import Hole, InfillError, Length

DEFAULT_MARKER = "[MASK]"
DEFAULT_BUDGET = 32
#: No hole may ask for more tokens than this; larger requests are almost always typos.
MAX_HOLE_TOKENS = 4096


def _marker_pattern(marker: str) -> re.Pattern[str]:
    """``[MASK]`` also matches ``[MASK:12]``: a token count before the closing brackets."""
    if not marker:
        raise InfillError("the marker text must not be empty")
    body = marker.rstrip(")]}>")
    if body and body != marker:
        head, tail = re.escape(body), re.escape(marker[len(body) :])
        return re.compile(f"{head}(?::(?P<n>[^{tail}\\s]*))?{tail}")
    return re.compile(re.escape(marker))


def find_markers(
    text: str, marker: str = DEFAULT_MARKER, budget: int = DEFAULT_BUDGET
) -> list[Hole]:
    """Every marker in ``text`` as a Hole covering the marker itself.

    ``[MASK]`` is an auto-length hole within ``budget`` tokens; ``[MASK:12]`` asks for exactly
    12 tokens. A malformed count (``[MASK:]``, ``[MASK:x]``, ``[MASK:0]``) is an error that
    names its offset, never silently a default.
    """
    holes = []
    for m in _marker_pattern(marker).finditer(text):
        count = m.groupdict().get("n")
        if count is None:
            holes.append(Hole(m.start(), m.end(), Length.auto(budget)))
            continue
        if not count.isdigit() or not 1 <= int(count) <= MAX_HOLE_TOKENS:
            raise InfillError(
                f"bad marker length {m.group(0)!r} at offset {m.start()}: "
                f"expected a token count from 1 to {MAX_HOLE_TOKENS}"
            )
        holes.append(Hole(m.start(), m.end(), Length.exact(int(count))))
    return holes


def parse_range(spec: str, text: str = "") -> tuple[int, int]:
    """Character offsets of a range as the CLI takes it: ``START:END`` offsets, or
    ``LINE:COL-LINE:COL`` as editors show positions (1-based lines and columns, columns
    in characters; the end is exclusive, as a selection's is)."""
    if "-" in spec.lstrip("-"):
        ends = spec.split("-")
        points = [e.split(":") for e in ends]
        if len(ends) != 2 or not all(len(q) == 2 and all(x.strip().isdigit() for x in q)
                                     for q in points):
            raise InfillError(f"bad range {spec!r}: expected LINE:COL-LINE:COL (1-based)")
        return tuple(_offset(text, int(q[0]), int(q[1]), spec) for q in points)
    parts = spec.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise InfillError(f"bad range {spec!r}: expected START:END character offsets "
                          "or LINE:COL-LINE:COL")
    return int(parts[0]), int(parts[1])


def _offset(text: str, line: int, col: int, spec: str) -> int:
    """The offset of 1-based ``line``:``col`` (a column just past the line's end is its
    end, where an insertion goes)."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        raise InfillError(f"bad range {spec!r}: line {line} is outside the document "
                          f"(1-{len(lines)})")
    body = lines[line - 1].removesuffix("\r")
    if not 1 <= col <= len(body) + 1:
        raise InfillError(f"bad range {spec!r}: column {col} is outside line {line} "
                          f"(1-{len(body) + 1})")
    return sum(len(x) + 1 for x in lines[: line - 1]) + col - 1


def holes_from_ranges(
    ranges: Iterable[tuple[int, int]], budget: int = DEFAULT_BUDGET
) -> list[Hole]:
    """Selections become auto-length holes; an empty range is an insertion point."""
    return [Hole(start, end, Length.auto(budget)) for start, end in ranges]


def validate_holes(text: str, holes: Sequence[Hole]) -> list[Hole]:
    """Holes sorted by position, or an InfillError naming the first problem."""
    if not text:
        raise InfillError("the document is empty: there is no context to fill from")
    if not holes:
        raise InfillError("nothing to fill: no ranges given and no markers found")
    for h in holes:
        if not (isinstance(h.start, int) and isinstance(h.end, int)):
            raise InfillError(f"hole offsets must be integers, got {h.start!r}:{h.end!r}")
        if h.start > h.end:
            raise InfillError(f"range {h.start}:{h.end} ends before it starts")
        if h.start < 0 or h.end > len(text):
            raise InfillError(
                f"range {h.start}:{h.end} is outside the document (0:{len(text)})"
            )
        if h.length.tokens > MAX_HOLE_TOKENS:
            raise InfillError(f"a hole may have at most {MAX_HOLE_TOKENS} tokens")
    ordered = sorted(holes, key=lambda h: (h.start, h.end))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.start < a.end or (a.start == b.start and a.end == b.end):
            raise InfillError(f"ranges {a.start}:{a.end} and {b.start}:{b.end} overlap")
    return ordered
