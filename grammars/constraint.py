"""The syntax constraint: a tree-sitter parse after every step, remasking what broke it.

Each review renders the document with the holes as they stand, parses it (incrementally
against the previous review's tree while masks remain, from scratch for the final
verdict), collects the innermost ERROR and MISSING nodes, and maps them back to the hole
tokens that caused them.

Still-masked positions. A masked run inside a hole is rendered as nothing (a *gap*), and
while any gap is open only errors that lie inside a hole's rendering and do not touch a
gap are blamed. Whatever the gap becomes could repair an error that touches it (``if x``
+ gap + newline is fine once the gap holds ``:``), so such errors wait for the final
review, which sees no gaps and blames every new error. An empty gap is also the most
neutral rendering there is: no placeholder fits every grammar and every context (an
identifier placeholder breaks a string, a comment placeholder swallows a line).

Blame. Token spans in the rendered bytes come from decoding each kept token on its own
(checked against decoding the whole run; prefix decoding where a token splits a UTF-8
character). Each error forbids one token and reopens a few around it, so the model can
rethink the neighbourhood while the search provably moves on (every round forbids a new
token at some position; the sampler's remask budget bounds the rounds):

- ERROR node: tree-sitter ends it where the parser recovered, so the culprit is nearer its
  end than its start: the last hole token it overlaps is forbidden and up to
  ``max_blame`` overlapping tokens before it are reopened;
- MISSING node: something belonged at that point, so the token now there (or the hole's
  last token, at its end) is forbidden and its neighbours reopened;
- an error outside every hole that is not in the baseline (an unclosed bracket breaking
  the suffix): the unbalanced bracket or quote tokens of the nearest hole before it, or
  failing those its last token, are forbidden;
- structural findings (Markdown) carry their own culprit range.

Reopening without forbidding is ``Remask(position, forbid=mask_id)``: the mask token is
never sampled anyway, so forbidding it adds nothing.

Baseline. The original document is parsed once per set of holes in view; its errors away
from the holes' seams (the hole's lines plus one line either side, see ``seams``) are the
baseline. A new error whose range, mapped back to original
coordinates, overlaps a baseline error and does not lie wholly inside a hole is not the
model's doing and is never blamed.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from dataclasses import dataclass, field

from tree_sitter import Node, Parser, Point, Tree

from infill.types import CanvasView, Remask

from .registry import grammar_name, parser_for
from .usage import unused_parameters

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}


@dataclass(frozen=True)
class SyntaxError_:
    """An ERROR or MISSING node: byte range in the parsed text and what it is."""

    start: int
    end: int
    kind: str  # "ERROR", "MISSING <type>", or a structural finding ("unclosed fence")
    #: Where to look for the tokens to blame, when that is not the error's own range.
    culprit: tuple[int, int] | None = None
    #: Forbid the first culprit token rather than the last (an opening fence: its first
    #: backtick is the decision to open one).
    forbid_first: bool = False

    @property
    def missing(self) -> bool:
        return self.kind.startswith("MISSING")


def syntax_errors(tree: Tree) -> list[SyntaxError_]:
    """The innermost ERROR nodes and all MISSING nodes of ``tree``, in document order."""
    out: list[SyntaxError_] = []

    def walk(node: Node) -> None:
        inner = False
        for child in node.children:
            if child.has_error or child.is_missing or child.is_error:
                inner = True
                walk(child)
        if node.is_missing:
            out.append(SyntaxError_(node.start_byte, node.end_byte, f"MISSING {node.type}"))
        elif node.is_error and not inner:
            out.append(SyntaxError_(node.start_byte, node.end_byte, "ERROR"))
        elif node.is_error:
            # An ERROR whose errors are all deeper still counts the leaves it skipped itself.
            loose = [c for c in node.children if c.child_count == 0 and not c.is_missing]
            if loose:
                out.append(SyntaxError_(loose[0].start_byte, loose[-1].end_byte, "ERROR"))

    if tree.root_node.has_error:
        walk(tree.root_node)
    return sorted(set(out), key=lambda e: (e.start, e.end, e.kind))


@dataclass
class _Segment:
    """A stretch of the rendered bytes: original text, or one hole's rendering."""

    r_start: int
    r_end: int
    o_start: int
    o_end: int
    hole: int | None = None


@dataclass
class Rendered:
    """The document with the holes as they stand, and the maps back to tokens and text."""

    data: bytes
    segments: list[_Segment]
    #: (start, end, canvas position, hole index) of every kept token, in rendered bytes.
    tokens: list[tuple[int, int, int, int]]
    #: Rendered byte offsets where a still-masked run was left out.
    gaps: list[int]
    #: Rendered [start, end) of each hole.
    hole_spans: list[tuple[int, int]]

    @property
    def final(self) -> bool:
        return not self.gaps

    def to_original(self, a: int, b: int) -> tuple[int, int]:
        """Rendered byte range to original byte range; hole interiors map to the hole."""
        return self._map(a, start=True), self._map(b, start=False)

    def _map(self, r: int, start: bool) -> int:
        for s in self.segments:
            if s.r_start <= r <= s.r_end:
                if s.hole is None:
                    return s.o_start + (r - s.r_start)
                if r == s.r_start:
                    return s.o_start
                if r == s.r_end:
                    return s.o_end
                return s.o_start if start else s.o_end
        return self.segments[-1].o_end if self.segments else 0

    def hole_of(self, a: int, b: int) -> int | None:
        """The hole whose rendering contains [a, b] (inclusive of its edges), if any."""
        for i, (hs, he) in enumerate(self.hole_spans):
            if hs <= a and b <= he:
                return i
        return None

    def touches_gap(self, a: int, b: int) -> bool:
        return any(a <= g <= b for g in self.gaps)


def _byte_offsets(text: str, offsets: list[int]) -> dict[int, int]:
    out = {}
    for o in sorted(set(offsets)):
        out[o] = len(text[:o].encode("utf-8"))
    return out


def _token_texts(ids: list[int], decode) -> list[str]:
    """Text of each token such that the pieces join to ``decode(ids)``."""
    whole = decode(ids)
    pieces = [decode([t]) for t in ids]
    if "".join(pieces) == whole:
        return pieces
    out, before = [], ""
    for i in range(len(ids)):
        now = decode(ids[: i + 1])
        common = len(before)
        while common and not now.startswith(before[:common]):
            common -= 1
        out.append(now[common:])
        before = now
    if "".join(out) != whole:  # decoding is not prefix-stable: give the run to its last token
        return [""] * (len(ids) - 1) + [whole] if ids else []
    return out


def render(canvas: CanvasView, original: bytes, hole_bytes: list[tuple[int, int]],
           shaped: bool = False) -> Rendered:
    """Render ``canvas`` (original bytes plus each hole's kept tokens, gaps left out).

    ``shaped``: render each complete auto-length hole as the engine returns it after its
    line-aware shaping (``infill.lines.shape_fill``), which may cut a partial last line or
    finish one with a newline: the text the user gets is what must parse.
    """
    chunks: list[bytes] = []
    segments: list[_Segment] = []
    tokens: list[tuple[int, int, int, int]] = []
    gaps: list[int] = []
    spans: list[tuple[int, int]] = []
    cursor = 0
    size = 0
    for hi, (view, (hb, he)) in enumerate(zip(canvas.holes, hole_bytes, strict=True)):
        chunk = original[cursor:hb]
        chunks.append(chunk)
        segments.append(_Segment(size, size + len(chunk), cursor, hb))
        size += len(chunk)
        start = size
        # Islands of kept tokens, split where a masked run (a gap) sits.
        islands: list[list[tuple[int, int]] | None] = [[]]
        for pos, tok in zip(view.positions, view.tokens, strict=True):
            if tok == canvas.mask_id:
                if islands[-1] is not None:
                    islands.append(None)
            elif tok not in canvas.end_ids:
                if islands[-1] is None:
                    islands.append([])
                islands[-1].append((pos, tok))
        for i, island in enumerate(islands):
            if island is None:
                gaps.append(size)
                continue
            if not island:
                continue
            texts = _token_texts([t for _, t in island], canvas.decode)
            pieces = [(pos, piece.encode("utf-8"))
                      for (pos, _), piece in zip(island, texts, strict=True)]
            if i == 0 and view.heal:
                pieces = _without_heal(pieces, view.heal.encode("utf-8"))
            if shaped and len(islands) == 1:
                pieces = _shape(pieces, canvas, view)
            for pos, data in pieces:
                chunks.append(data)
                if pos is not None:
                    tokens.append((size, size + len(data), pos, hi))
                size += len(data)
        segments.append(_Segment(start, size, hb, he, hi))
        spans.append((start, size))
        cursor = he
    chunk = original[cursor:]
    chunks.append(chunk)
    segments.append(_Segment(size, size + len(chunk), cursor, len(original)))
    return Rendered(b"".join(chunks), segments, tokens, gaps, spans)


def _without_heal(pieces: list[tuple[int, bytes]], heal: bytes) -> list[tuple[int, bytes]]:
    """A hole's first pieces less the healed text they spell (the document has it), as
    ``infill.heal.unhealed`` leaves a fill."""
    joined = b"".join(d for _, d in pieces)
    if not (joined.startswith(heal) or heal.startswith(joined)):
        return pieces
    out, cut = [], len(heal)
    for pos, data in pieces:
        if cut >= len(data):
            cut -= len(data)
            continue
        out.append((pos, data[cut:]))
        cut = 0
    return out


def seams(original: bytes, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each hole widened to whole lines plus one line either side: the stretch a fill is
    expected to make whole. An error of the original there is the hole's own (the span
    being rewritten, or the seam a missing span left), not baseline."""
    out = []
    for hs, he in holes:
        a = original.rfind(b"\n", 0, hs)  # end of the line before the hole's line
        a = original.rfind(b"\n", 0, max(a, 0)) + 1 if a > 0 else 0
        b = original.find(b"\n", he)
        b = original.find(b"\n", b + 1) if b >= 0 else -1
        out.append((a, len(original) if b < 0 else b))
    return out


def away_from_seams(errors: list[SyntaxError_], original: bytes,
                    holes: list[tuple[int, int]]) -> list[SyntaxError_]:
    spans = seams(original, holes)
    return [e for e in errors if not any(e.start <= b and a <= e.end for a, b in spans)]


def _ast_error(data: bytes) -> SyntaxError_ | None:
    """CPython's first syntax error in ``data`` as a zero-width error, or None."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(data)
    except SyntaxError as e:
        lines = data.split(b"\n")
        row = min(max((e.lineno or 1) - 1, 0), len(lines) - 1)
        line_start = sum(len(x) + 1 for x in lines[:row])
        col = max((e.offset or 1) - 1, 0)
        text = lines[row].decode("utf-8", "replace")
        at = line_start + len(text[:col].encode("utf-8"))
        return SyntaxError_(at, at, f"python: {e.msg}")
    except (ValueError, RecursionError, MemoryError):
        return None
    return None


def _shape(pieces: list[tuple[int | None, bytes]], canvas: CanvasView, view
           ) -> list[tuple[int | None, bytes]]:
    """The hole's pieces as line-aware shaping leaves them: cut, or finished (auto holes),
    and without an indentation the following text brings itself (every hole)."""
    from infill.lines import shape_fill, without_doubled_indent

    raw = b"".join(d for _, d in pieces).decode("utf-8", "replace")
    out = raw
    if view.hole.length.mode == "auto":
        out = shape_fill(raw, canvas.text, view.hole.start, view.hole.end)
    out = without_doubled_indent(out, canvas.text, view.hole.end)
    if out == raw:
        return pieces
    if raw.startswith(out):
        keep, cut = [], len(out.encode("utf-8"))
        for pos, data in pieces:
            if cut <= 0:
                break
            keep.append((pos, data[:cut]))
            cut -= len(data)
        return keep
    if out.startswith(raw):
        return [*pieces, (None, out[len(raw) :].encode("utf-8"))]
    return pieces


def _point(data: bytes, offset: int) -> Point:
    row = data.count(b"\n", 0, offset)
    col = offset - (data.rfind(b"\n", 0, offset) + 1)
    return Point(row, col)


def _common_prefix(a: bytes, b: bytes) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # binary search on slice equality: C-speed comparisons
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass
class ConstraintStats:
    reviews: int = 0
    parses: int = 0
    incremental_parses: int = 0
    remasks: int = 0
    seconds: float = 0.0
    per_review: list[float] = field(default_factory=list)


class SyntaxConstraint:
    """Implements ``infill.types.Constraint`` with a tree-sitter grammar.

    ``every``: review on every ``every``-th call (the final review, with no masks left,
    always runs). ``incremental``: reuse the previous tree for intermediate reviews.
    ``max_blame``: at most this many tokens blamed per ERROR node.
    """

    def __init__(self, language_id: str, every: int = 1, *, incremental: bool = True,
                 max_blame: int = 6) -> None:
        name = grammar_name(language_id)
        parser = parser_for(language_id)
        if name is None or parser is None:
            raise ValueError(f"no tree-sitter grammar for language {language_id!r}")
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.language = name
        self.parser: Parser = parser
        self.every = every
        self.incremental = incremental
        self.max_blame = max_blame
        self.stats = ConstraintStats()
        self._calls = 0
        self._doc: tuple[str, bytes] | None = None
        self._baseline: dict[tuple, list[tuple[int, int]]] = {}
        self._prev: tuple[bytes, Tree] | None = None
        self._last_final: bytes | None = None

    # -- the Constraint protocol ------------------------------------------------------
    def review(self, canvas: CanvasView) -> list[Remask]:
        final = not any(t == canvas.mask_id for h in canvas.holes for t in h.tokens)
        self._calls += 1
        if not final and self._calls % self.every:
            return []
        t0 = time.perf_counter()
        try:
            return self._review(canvas, final)
        finally:
            dt = time.perf_counter() - t0
            self.stats.reviews += 1
            self.stats.seconds += dt
            self.stats.per_review.append(dt)

    def check(self, canvas: CanvasView) -> list[SyntaxError_]:
        """The new errors the canvas has now (as the final review would see them)."""
        out = []
        for shaped in (False, True):
            found = self._errors(canvas, final=True, shaped=shaped)
            if found is not None:
                rendered, errors = found
                out += [e for e in errors if self._is_new(e, rendered, canvas)]
        return out

    def unused_parameters(self, canvas: CanvasView) -> int:
        """Parameters the functions holding a hole leave unread with the holes as they
        stand (``grammars.usage``): among drafts the syntax accepts, fewer is better."""
        original = self._original(canvas.text)
        rendered = render(canvas, original, self._hole_bytes(canvas), shaped=True)
        return unused_parameters(rendered.data, self.language, rendered.hole_spans)

    # -- internals ------------------------------------------------------------------
    def _original(self, text: str) -> bytes:
        if self._doc is None or self._doc[0] != text:
            self._doc = (text, text.encode("utf-8"))
            self._baseline.clear()
            self._prev = None
        return self._doc[1]

    def _hole_bytes(self, canvas: CanvasView) -> list[tuple[int, int]]:
        offs = _byte_offsets(canvas.text, [o for h in canvas.holes
                                           for o in (h.hole.start, h.hole.end)])
        return [(offs[h.hole.start], offs[h.hole.end]) for h in canvas.holes]

    def _parse(self, data: bytes, final: bool) -> Tree:
        self.stats.parses += 1
        prev = self._prev
        if self.incremental and not final and prev is not None:
            old, tree = prev
            start = _common_prefix(old, data)
            tail = _common_suffix(old, data, min(len(old), len(data)) - start)
            old_end, new_end = len(old) - tail, len(data) - tail
            tree.edit(start, old_end, new_end, _point(old, start), _point(old, old_end),
                      _point(data, new_end))
            tree = self.parser.parse(data, tree)
            self.stats.incremental_parses += 1
        else:
            tree = self.parser.parse(data)
        self._prev = (data, tree) if not final else None
        return tree

    def _baseline_for(self, canvas: CanvasView, original: bytes,
                      holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
        key = tuple(holes)
        if key not in self._baseline:
            tree = self.parser.parse(original)
            self.stats.parses += 1
            self._baseline[key] = [
                (e.start, e.end) for e in self.baseline_errors(tree, original, holes)
            ]
        return self._baseline[key]

    def baseline_errors(self, tree: Tree, original: bytes,
                        holes: list[tuple[int, int]]) -> list[SyntaxError_]:
        return away_from_seams(syntax_errors(tree), original, holes)

    def _errors(self, canvas: CanvasView, final: bool, shaped: bool = False):
        original = self._original(canvas.text)
        holes = self._hole_bytes(canvas)
        rendered = render(canvas, original, holes)
        if shaped:
            if not rendered.final:
                return None
            rendered = render(canvas, original, holes, shaped=True)
            if rendered.data == self._last_final:
                return None  # shaping changed nothing: already judged
        tree = self._parse(rendered.data, final=final or rendered.final)
        if rendered.final and not shaped:
            self._last_final = rendered.data
        self._baseline_for(canvas, original, holes)
        return rendered, self.new_errors(tree, rendered, canvas)

    def new_errors(self, tree: Tree, rendered: Rendered, canvas: CanvasView
                   ) -> list[SyntaxError_]:
        """Errors in the rendered tree (subclasses add their own structural checks).

        Python gets a second opinion at the final review: tree-sitter-python accepts some
        programs CPython rejects (an unexpected indent, an empty block), so ``ast.parse``
        (parsing only, nothing runs) must accept the filled text too, unless the original
        already failed the same way away from the holes.
        """
        found = syntax_errors(tree)
        if self.language == "python" and rendered.final:
            err = _ast_error(rendered.data)
            if err is not None and not self._ast_baseline(canvas, err, rendered):
                found.append(err)
        return found

    def _ast_baseline(self, canvas: CanvasView, err: SyntaxError_, rendered: Rendered
                      ) -> bool:
        """Whether the original document fails ``ast.parse`` at the same place, that
        place being more than a line away from every hole (``ast`` reports only the first
        error, and one at the seam of a hole says nothing about the fill)."""
        original = self._original(canvas.text)
        base = _ast_error(original)
        if base is None:
            return False
        if not away_from_seams([base], original, self._hole_bytes(canvas)):
            return False
        oa, _ = rendered.to_original(err.start, err.end)
        return abs(oa - base.start) <= 1

    def _is_new(self, e: SyntaxError_, rendered: Rendered, canvas: CanvasView) -> bool:
        original = self._original(canvas.text)
        baseline = self._baseline_for(canvas, original, self._hole_bytes(canvas))
        if rendered.hole_of(e.start, e.end) is not None:
            return True
        if e.culprit is not None and rendered.hole_of(*e.culprit) is not None:
            return True
        oa, ob = rendered.to_original(e.start, e.end)
        return not any(oa <= b and a <= ob for a, b in baseline)

    def _review(self, canvas: CanvasView, final: bool) -> list[Remask]:
        rendered, errors = self._errors(canvas, final)
        out = self._remasks(canvas, rendered, errors)
        if not out and rendered.final:
            # The engine shapes auto fills to their lines after sampling; judge that too.
            found = self._errors(canvas, final, shaped=True)
            if found is not None:
                out = self._remasks(canvas, *found)
        return out

    def _remasks(self, canvas: CanvasView, rendered: Rendered,
                 errors: list[SyntaxError_]) -> list[Remask]:
        forbid: set[int] = set()
        reopen: set[int] = set()
        for e in errors:
            if not self._is_new(e, rendered, canvas):
                continue
            if not rendered.final:
                if rendered.hole_of(e.start, e.end) is None:
                    continue
                if rendered.touches_gap(e.start, e.end):
                    continue
            culprits, context = self._blame(e, rendered)
            forbid.update(culprits)
            reopen.update(context)
        reopen -= forbid
        self.stats.remasks += len(forbid) + len(reopen)
        # Forbidding the mask token forbids nothing new: those positions are reopened only.
        out = [Remask(p) for p in forbid] + [Remask(p, canvas.mask_id) for p in reopen]
        return sorted(out, key=lambda r: r.position)

    def _blame(self, e: SyntaxError_, rendered: Rendered) -> tuple[list[int], list[int]]:
        """(positions whose token is forbidden, positions only reopened) for one error."""
        if e.culprit is not None:
            a, b = e.culprit
            hit = [t[2] for t in rendered.tokens if t[0] < b and t[1] > a]
            if hit:
                return [hit[0] if e.forbid_first else hit[-1]], hit[-self.max_blame :]
            return self._blame_outside(e, rendered), []
        hole = rendered.hole_of(e.start, e.end)
        if hole is None:
            return self._blame_outside(e, rendered), []
        inside = [t for t in rendered.tokens if t[3] == hole]
        if not inside:
            return [], []
        if e.missing or e.start == e.end:
            # Something belonged at this point: the token now there took its place (or,
            # at the end of the hole, the last token should have led up to it).
            after = [t for t in inside if t[0] >= e.start]
            culprit = after[0] if after else inside[-1]
            i = inside.index(culprit)
            return [culprit[2]], [t[2] for t in inside[max(0, i - 1) : i + 2]]
        hit = [t[2] for t in inside if t[0] < e.end and t[1] > e.start]
        if not hit:
            return [], []
        return [hit[-1]], hit[-self.max_blame :]

    def _blame_outside(self, e: SyntaxError_, rendered: Rendered) -> list[int]:
        """An error in the surrounding text that the fill caused: blame the nearest hole."""
        starts = [hs for hs, _ in rendered.hole_spans]
        i = bisect_right(starts, e.start) - 1
        hole = i if i >= 0 else 0
        inside = [t for t in rendered.tokens if t[3] == hole]
        if not inside and rendered.tokens:
            hole = rendered.tokens[-1][3] if i >= 0 else rendered.tokens[0][3]
            inside = [t for t in rendered.tokens if t[3] == hole]
        if not inside:
            return []
        suspects = _unbalanced(inside, rendered.data)
        return suspects or [inside[-1][2]]


def _unbalanced(tokens: list[tuple[int, int, int, int]], data: bytes) -> list[int]:
    """Positions of tokens holding brackets that do not pair up, or an odd quote."""
    stack: list[tuple[str, int]] = []
    stray: list[int] = []
    quotes: dict[str, list[int]] = {}
    for start, end, pos, _ in tokens:
        for ch in data[start:end].decode("utf-8", "replace"):
            if ch in OPENERS:
                stack.append((ch, pos))
            elif ch in CLOSERS:
                if stack and stack[-1][0] == CLOSERS[ch]:
                    stack.pop()
                else:
                    stray.append(pos)
            elif ch in "\"'`":
                quotes.setdefault(ch, []).append(pos)
    out = [p for _, p in stack] + stray
    for positions in quotes.values():
        if len(positions) % 2:
            out.append(positions[-1])
    return sorted(set(out))


__all__ = ["Rendered", "SyntaxConstraint", "SyntaxError_", "render", "syntax_errors"]

