"""Where "Write function body" puts its hole.

The seam: :func:`find_body` first asks ``grammars.functions.find_function_body(text,
language_id, offset)`` (the tree-sitter finder of the syntax-constraint issue) when that
module exists, and falls back to :func:`python_body`, a simple line-and-indent rule for
Python. A finder returns a :class:`Body` (or anything with ``start``/``end``, or a
``(start, end)`` tuple) for the function around ``offset`` whose body is empty or a
placeholder, else ``None``.

The fallback's hole covers only the placeholder (``pass``, ``...``, ``TODO``, ``{}``,
``raise NotImplementedError``) or the first blank line of an empty body; a docstring is
kept. The grammars finder may also give ``lead``/``trail`` text written around the fill.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PLACEHOLDERS = frozenset(
    {"pass", "...", "TODO", "# TODO", "#TODO", "{}", "raise NotImplementedError",
     "raise NotImplementedError()"}
)
_DEF = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+)?def[ \t]+(?P<name>\w+)")
_DOCSTRING = re.compile(r'[ \t]*(?:[rRuU]?)("""|\'\'\')[\s\S]*?\1[ \t]*(?:\n|$)')


@dataclass(frozen=True)
class Body:
    """Where a function body goes: replace ``text[start:end]`` with ``lead + body + trail``
    (``lead``/``trail`` open an empty brace body onto its own lines, for instance)."""

    start: int
    end: int
    name: str = ""
    lead: str = ""
    trail: str = ""

    def prepare(self, text: str) -> tuple[str, int]:
        """The document to fill (``lead`` and ``trail`` written in) and the hole's offset."""
        return text[: self.start] + self.lead + self.trail + text[self.end :], (
            self.start + len(self.lead))


def find_body(text: str, language_id: str, offset: int) -> Body | None:
    """The empty/placeholder body of the function around ``offset``, if any."""
    found = _grammars_finder()
    if found is not None:
        try:
            got = found(text, language_id, offset)
        except Exception:  # a finder bug must not take code actions down
            got = None
        if got is not None:
            return _as_body(got)
    if language_id == "python":
        return python_body(text, offset)
    return None


def _grammars_finder():
    try:
        from grammars.functions import find_function_body  # type: ignore[import-not-found]
    except ImportError:
        return None
    return find_function_body


def _as_body(got: object) -> Body:
    if isinstance(got, Body):
        return got
    if isinstance(got, tuple):
        return Body(int(got[0]), int(got[1]))
    return Body(int(got.start), int(got.end), str(getattr(got, "name", "") or ""),  # type: ignore[attr-defined]
                str(getattr(got, "lead", "") or ""), str(getattr(got, "trail", "") or ""))


def _indent_width(s: str) -> int:
    return len(s.expandtabs(8)) - len(s.expandtabs(8).lstrip(" "))


def python_body(text: str, offset: int) -> Body | None:
    """Python by indentation: the nearest ``def`` at or above ``offset`` whose body holds it.

    A header is taken to end at the first line ending in ``:`` (signatures may span lines).
    One-line functions (``def f(): ...``) count too.
    """
    lines = text.splitlines(keepends=True)
    starts = []
    pos = 0
    for line in lines:
        starts.append(pos)
        pos += len(line)
    if not lines:
        return None
    cursor_line = _line_of(starts, offset)
    for i in range(min(cursor_line, len(lines) - 1), -1, -1):
        m = _DEF.match(lines[i])
        if not m:
            continue
        body = _body_of(text, lines, starts, i, m)
        if body is None:
            continue
        header_start = starts[i]
        span_end, hole = body
        if header_start <= offset <= span_end:
            return hole
        # the cursor is below this function; an enclosing def further up may still hold it
    return None


def _line_of(starts: list[int], offset: int) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _body_of(text, lines, starts, i, m) -> tuple[int, Body | None] | None:
    """``(end of the function's extent, hole or None)`` for the def on line ``i``."""
    indent = _indent_width(m.group("indent"))
    name = m.group("name")
    # Find the header's end: the first line (from i) whose code ends with ':'.
    j = i
    while j < len(lines):
        code = lines[j].split("#", 1)[0].rstrip()
        if code.endswith(":"):
            break
        # one-line function: "def f(): pass"
        colon = _one_line_colon(lines[j]) if j == i else -1
        if colon >= 0:
            break
        j += 1
    else:
        return None
    header = lines[j]
    code = header.split("#", 1)[0].rstrip()
    if not code.endswith(":"):
        # one-line body after the colon
        colon = _one_line_colon(header)
        after = header[colon + 1 :]
        stmt = after.strip()
        start = starts[j] + colon + 1 + (len(after) - len(after.lstrip()))
        end = start + len(stmt)
        line_end = starts[j] + len(header.rstrip("\r\n"))
        return line_end, (Body(start, end, name) if stmt in PLACEHOLDERS else None)
    # Multi-line body: following lines indented deeper than the def (blank lines included).
    k = j + 1
    last_code = j
    while k < len(lines):
        stripped = lines[k].strip()
        if stripped and _indent_width(lines[k]) <= indent:
            break
        if stripped:
            last_code = k
        k += 1
    body_start = starts[j] + len(header)
    if last_code == j:
        # empty body: the first blank line after the header (or an insertion point there)
        first = starts[j + 1] + len(lines[j + 1].rstrip("\r\n")) if k > j + 1 else body_start
        extent = starts[k - 1] + len(lines[k - 1].rstrip("\r\n")) if k > j + 1 else body_start
        return max(extent, body_start), Body(body_start, max(first, body_start), name)
    body_end = starts[last_code] + len(lines[last_code].rstrip("\r\n"))
    body = text[body_start:body_end]
    doc = _DOCSTRING.match(body)
    rest_start = body_start + (doc.end() if doc else 0)
    rest = text[rest_start:body_end]
    stmt = rest.strip()
    if stmt in PLACEHOLDERS or (not stmt and doc):
        if not stmt:  # only a docstring: insert after it
            return body_end, Body(body_end, body_end, name)
        lead = len(rest) - len(rest.lstrip())
        return body_end, Body(rest_start + lead, rest_start + lead + len(stmt), name)
    return body_end, None


def _one_line_colon(line: str) -> int:
    """Index of the colon that closes a one-line def's signature, or -1."""
    depth = 0
    for idx, ch in enumerate(line):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == ":" and depth == 0:
            rest = line[idx + 1 :].split("#", 1)[0].strip()
            return idx if rest else -1
        elif ch == "#":
            return -1
    return -1
