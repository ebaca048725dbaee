"""Parameters a function never reads: a fill that completes a function should use them.

A parameter no statement of its body reads is, in code people write, almost always a bug
(pylint's ``unused-argument``), and a small model's likeliest line often ignores one
(``clamp(x, low, high)`` answered with ``(low + high) / 2``). ``unused_parameters`` counts
them in the functions that hold a given span, from the language's ``parameters.scm``
query; drafts that leave fewer unused are preferred (``infill.drafts.fill_canvas``).
``self``, ``cls`` and names starting with ``_`` are never counted.
"""

from __future__ import annotations

from tree_sitter import Node, QueryCursor

from .registry import parser_for, query_for


def unused_parameters(data: bytes, language_id: str | None,
                      spans: list[tuple[int, int]]) -> int:
    """Parameters left unread by the body of each function whose body holds one of the
    byte ``spans`` of the document ``data`` (UTF-8); 0 where the language has no
    ``parameters`` query."""
    query, parser = query_for(language_id, "parameters"), parser_for(language_id)
    if query is None or parser is None or not spans:
        return 0
    tree = parser.parse(data)
    read: dict[int, set[str]] = {}
    unused = set()
    for _, caps in QueryCursor(query).matches(tree.root_node):
        body = caps["body"][0]
        if not any(body.start_byte <= lo and hi <= max(body.end_byte, lo) for lo, hi in spans):
            continue
        names = read.setdefault(body.id, _identifiers(body))
        unused |= {(body.id, name) for p in caps.get("parameter", [])
                   if (name := p.text.decode()) not in names
                   and name not in ("self", "cls") and not name.startswith("_")}
    return len(unused)


def _identifiers(node: Node) -> set[str]:
    """Every identifier under ``node`` (names in strings and comments are not nodes)."""
    out, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n.type == "identifier":
            out.add(n.text.decode())
        stack.extend(n.children)
    return out
