"""From filled holes to text edits; nothing outside a hole is ever touched."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .types import InfillError, InfillResult


@dataclass(frozen=True)
class TextEdit:
    """Replace document characters ``[start, end)`` with ``new_text``."""

    start: int
    end: int
    new_text: str


def edits_from_result(result: InfillResult) -> list[TextEdit]:
    """One edit per hole, in document order."""
    return [TextEdit(f.hole.start, f.hole.end, f.text) for f in result.fills]


def apply_edits(text: str, edits: Sequence[TextEdit]) -> str:
    """Apply non-overlapping edits; offsets refer to the original ``text``."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.start < a.end:
            raise InfillError(f"edits {a.start}:{a.end} and {b.start}:{b.end} overlap")
    pieces, cursor = [], 0
    for e in ordered:
        if not 0 <= e.start <= e.end <= len(text):
            raise InfillError(f"edit {e.start}:{e.end} is outside the document (0:{len(text)})")
        pieces.append(text[cursor : e.start])
        pieces.append(e.new_text)
        cursor = e.end
    pieces.append(text[cursor:])
    return "".join(pieces)
