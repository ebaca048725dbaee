"""The Markdown constraint: prose fills that keep the document's block structure.

Markdown has no syntax errors in the usual sense (tree-sitter-markdown accepts anything),
so the checks are structural, on top of any ERROR/MISSING nodes:

- a fill must not open a code fence that nothing closes (``unclosed fence``);
- every block marker outside the holes (heading markers, setext underlines, list markers,
  fence delimiters, thematic breaks) must still be there, as the same kind of marker
  (a fill ending in a line of text turns a following ``---`` into a setext heading);
- a fill must not start a new heading (``allow_headings=True`` lifts this): filling a
  section's prose must not split the section.

Each finding is a pseudo-error with a culprit range (the fence delimiter, the heading
marker, the block that swallowed a marker) so the usual blame machinery applies, and the
same rules run on the original text to form the baseline.
"""

from __future__ import annotations

from tree_sitter import Node, Tree

from infill.types import CanvasView

from .constraint import (
    Rendered,
    SyntaxConstraint,
    SyntaxError_,
    away_from_seams,
    syntax_errors,
)

MARKERS = {
    "atx_h1_marker", "atx_h2_marker", "atx_h3_marker", "atx_h4_marker", "atx_h5_marker",
    "atx_h6_marker", "setext_h1_underline", "setext_h2_underline", "list_marker_minus",
    "list_marker_plus", "list_marker_star", "list_marker_dot", "list_marker_parenthesis",
    "fenced_code_block_delimiter", "thematic_break",
}
HEADINGS = {"atx_heading", "setext_heading"}


def _walk(node: Node):
    yield node
    for c in node.children:
        yield from _walk(c)


def unclosed_fences(tree: Tree) -> list[SyntaxError_]:
    """Fenced code blocks with an opening delimiter and no closing one."""
    out = []
    for n in _walk(tree.root_node):
        if n.type == "fenced_code_block":
            delims = [c for c in n.children if c.type == "fenced_code_block_delimiter"]
            if len(delims) == 1:
                d = delims[0]
                out.append(SyntaxError_(n.start_byte, n.end_byte, "unclosed fence",
                                        (d.start_byte, d.end_byte), forbid_first=True))
    return out


def markers(tree: Tree) -> list[tuple[str, int, int]]:
    return [(n.type, n.start_byte, n.end_byte) for n in _walk(tree.root_node)
            if n.type in MARKERS]


class MarkdownConstraint(SyntaxConstraint):
    def __init__(self, every: int = 1, *, allow_headings: bool = False, **kw) -> None:
        super().__init__("markdown", every, **kw)
        self.allow_headings = allow_headings
        self._markers: dict[tuple, set[tuple[str, int]]] = {}

    def baseline_errors(self, tree: Tree, original: bytes,
                        holes: list[tuple[int, int]]) -> list[SyntaxError_]:
        key = tuple(holes)
        self._markers[key] = {
            (kind, a) for kind, a, b in markers(tree)
            if not any(a < he and hs < b or hs <= a < he for hs, he in holes)
        }
        return away_from_seams(syntax_errors(tree) + unclosed_fences(tree), original, holes)

    def new_errors(self, tree: Tree, rendered: Rendered, canvas: CanvasView
                   ) -> list[SyntaxError_]:
        out = syntax_errors(tree) + unclosed_fences(tree)
        if not self.allow_headings:
            for n in _walk(tree.root_node):
                if n.type in HEADINGS:
                    mark = n.children[0] if n.type == "atx_heading" else n.children[-1]
                    if rendered.hole_of(mark.start_byte, mark.end_byte) is not None:
                        out.append(SyntaxError_(mark.start_byte, mark.end_byte, "new heading"))
        key = tuple(self._hole_bytes(canvas))
        expected = self._markers.get(key, set())
        now = set()
        for kind, a, b in markers(tree):
            if rendered.hole_of(a, b) is None:
                oa, _ = rendered.to_original(a, b)
                now.add((kind, oa))
        for kind, oa in sorted(expected - now, key=lambda m: m[1]):
            lost = self._lost(tree, rendered, kind, oa)
            if lost is not None:
                out.append(lost)
        return out

    def _lost(self, tree: Tree, rendered: Rendered, kind: str, oa: int
              ) -> SyntaxError_ | None:
        """A marker of the original that the fill destroyed, blamed on the block that
        swallowed it (or on the end of the hole before it)."""
        r = self._to_rendered(rendered, oa)
        if r is None:
            return None
        node = tree.root_node.descendant_for_byte_range(r, r)
        while node is not None and node.parent is not None:
            if any(node.start_byte < he and hs < node.end_byte
                   for hs, he in rendered.hole_spans):
                break
            node = node.parent
        before = [(hs, he) for hs, he in rendered.hole_spans if he <= r]
        if node is not None and node.parent is not None:
            spans = [(max(node.start_byte, hs), min(node.end_byte, he))
                     for hs, he in rendered.hole_spans
                     if node.start_byte < he and hs < node.end_byte]
            culprit = spans[-1]
        elif before:
            culprit = before[-1]
        else:
            return None
        return SyntaxError_(r, r + 1, f"lost {kind}", culprit)

    @staticmethod
    def _to_rendered(rendered: Rendered, oa: int) -> int | None:
        for s in rendered.segments:
            if s.hole is None and s.o_start <= oa < s.o_end:
                return s.r_start + (oa - s.o_start)
        return None
