"""Constrained function-body generation: find an empty body, make it a hole, fill it.

``find_function_body(text, language_id, offset)`` runs the language's ``functions.scm``
query on the document as it is and picks the innermost function around ``offset`` whose
body is empty or a placeholder (``pass``, ``...``, ``raise NotImplementedError``, TODO
comments, ``{}``, ``todo!()``, ``panic("TODO")``...), or failing that one that starts
within two lines of it. The result says which characters to replace and how: Python
bodies keep their docstring and replace the placeholder statements in place; brace bodies
replace everything between the braces, opened onto their own indented lines.

``write_body`` fills it through ``infill.engine.fill`` with the syntax constraint on and
returns a TextEdit against the original document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node, QueryCursor

from infill.edits import TextEdit
from infill.engine import fill
from infill.types import Denoiser, Hole, InfillRequest, InfillResult, Length, SamplingOptions

from .registry import grammar_name, parser_for, query_for

DEFAULT_BUDGET = 128
#: Statements that stand in for a body someone has yet to write.
PLACEHOLDER = re.compile(
    r"""^(pass|\.\.\.|;|todo|
      raise\s+NotImplementedError\b.*|
      (todo|unimplemented)!\s*\(.*\)\s*;?|
      panic\(\s*".*(todo|not\s+implemented).*"\s*\)|
      throw\s+new\s+\w*Error\(.*(todo|not\s+implemented).*\)\s*;?
    )$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
DEFAULT_UNIT = {"go": "\t", "javascript": "  ", "typescript": "  ", "tsx": "  "}


@dataclass(frozen=True)
class BodyHole:
    """Where a function body goes: replace ``text[start:end]`` with ``lead + body + trail``.

    ``indent`` is the body's indentation (each line of the body starts with it);
    ``base_indent`` the indentation of the function's own line.
    """

    language: str
    start: int
    end: int
    indent: str
    base_indent: str
    lead: str = ""
    trail: str = ""
    name: str = ""
    function_start: int = 0
    function_end: int = 0
    #: The placeholder being replaced (``""`` for an empty body).
    placeholder: str = ""

    def prepare(self, text: str, budget: int = DEFAULT_BUDGET) -> tuple[str, Hole]:
        """The document to fill (``lead`` and ``trail`` written in) and the hole in it."""
        doc = text[: self.start] + self.lead + self.trail + text[self.end :]
        at = self.start + len(self.lead)
        return doc, Hole(at, at, Length.auto(budget))

    def edit(self, body: str) -> TextEdit:
        """The edit against the original document that writes ``body`` in."""
        return TextEdit(self.start, self.end, self.lead + body + self.trail)


def to_hole(body: BodyHole, text: str, budget: int = DEFAULT_BUDGET) -> tuple[str, Hole]:
    """``body.prepare``: the document to fill and an auto-length Hole with ``budget``."""
    return body.prepare(text, budget)


def _line_indent(text: str, offset: int) -> str:
    line_start = text.rfind("\n", 0, offset) + 1
    m = re.match(r"[ \t]*", text[line_start:])
    return m.group(0) if m else ""


def _indent_unit(text: str, language: str) -> str:
    """The file's indentation step: the smallest increase between consecutive indents."""
    steps: dict[str, int] = {}
    prev = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        cur = line[: len(line) - len(line.lstrip())]
        if len(cur) > len(prev) and cur.startswith(prev):
            step = cur[len(prev) :]
            steps[step] = steps.get(step, 0) + 1
        prev = cur
    if steps:
        return min(steps, key=lambda s: (-steps[s], len(s)))
    return DEFAULT_UNIT.get(language, "    ")


def _is_placeholder(node: Node) -> bool:
    if "comment" in node.type:
        return True
    text = node.text.decode("utf-8", "replace").strip() if node.text else ""
    return bool(PLACEHOLDER.match(text))


def _is_docstring(node: Node) -> bool:
    return (node.type == "expression_statement" and node.named_child_count == 1
            and node.named_children[0].type in ("string", "concatenated_string"))


def _python_body(text: str, fn: Node, body: Node, unit: str, language: str,
                 name: str) -> BodyHole | None:
    stmts = list(body.named_children)
    doc = stmts[0] if stmts and _is_docstring(stmts[0]) else None
    rest = stmts[1:] if doc is not None else stmts
    if not all(_is_placeholder(s) for s in rest):
        return None
    base = _line_indent(text, _char(text, fn.start_byte))
    indent = base + unit
    common = dict(language=language, indent=indent, base_indent=base, name=name,
                  function_start=_char(text, fn.start_byte),
                  function_end=_char(text, fn.end_byte))
    if rest:
        start, end = _char(text, rest[0].start_byte), _char(text, rest[-1].end_byte)
        placeholder = text[start:end]
        if rest[0].start_point.row == fn.start_point.row:  # def f(): pass
            colon = _char(text, body.start_byte)
            return BodyHole(start=colon, end=end, lead="\n" + indent,
                            placeholder=placeholder, **common)
        if text[:start].endswith(_line_indent(text, start)):
            indent = _line_indent(text, start)
            common["indent"] = indent
        return BodyHole(start=start, end=end, placeholder=placeholder, **common)
    if doc is not None:
        at = _char(text, doc.end_byte)
        return BodyHole(start=at, end=at, lead="\n" + indent, **common)
    # An empty block (tree-sitter accepts ``def f():`` with nothing after it).
    at = _char(text, fn.end_byte)
    return BodyHole(start=at, end=at, lead="\n" + indent, **common)


def _brace_body(text: str, fn: Node, body: Node, unit: str, language: str,
                name: str) -> BodyHole | None:
    kids = [c for c in body.children if c.type not in ("{", "}")]
    if not all(_is_placeholder(c) for c in kids):
        return None
    if not (body.children and body.children[0].type == "{" and body.children[-1].type == "}"):
        return None
    open_end = _char(text, body.children[0].end_byte)
    close_start = _char(text, body.children[-1].start_byte)
    base = _line_indent(text, _char(text, body.children[-1].start_byte))
    if "\n" not in text[open_end:close_start]:
        base = _line_indent(text, _char(text, fn.start_byte))
    indent = base + unit
    return BodyHole(language=language, start=open_end, end=close_start, indent=indent,
                    base_indent=base, lead="\n" + indent, trail="\n" + base, name=name,
                    function_start=_char(text, fn.start_byte),
                    function_end=_char(text, fn.end_byte),
                    placeholder=text[open_end:close_start].strip())


def _char(text: str, byte: int) -> int:
    """Character offset of a UTF-8 byte offset (ASCII fast path)."""
    if text.isascii():
        return byte
    return len(text.encode("utf-8")[:byte].decode("utf-8", "replace"))


def function_bodies(text: str, language_id: str) -> list[tuple[Node, Node, str]]:
    """(function node, body node, name) for every function the query finds."""
    query = query_for(language_id, "functions")
    parser = parser_for(language_id)
    if query is None or parser is None:
        return []
    tree = parser.parse(text.encode("utf-8"))
    out = []
    for _, caps in QueryCursor(query).matches(tree.root_node):
        fn, body = caps.get("function"), caps.get("body")
        if not fn or not body:
            continue
        name = caps.get("name")
        label = name[0].text.decode("utf-8", "replace") if name and name[0].text else ""
        holder = fn[0].parent
        if not label and holder is not None and holder.type in ("variable_declarator", "pair",
                                                                 "let_declaration"):
            first = holder.named_children[0] if holder.named_children else None
            label = first.text.decode("utf-8", "replace") if first and first.text else ""
        out.append((fn[0], body[0], label))
    return out


def find_function_body(text: str, language_id: str, offset: int) -> BodyHole | None:
    """The empty or placeholder body of the function at (or within two lines of)
    ``offset`` (a character offset), or None."""
    language = grammar_name(language_id)
    if language is None or language == "markdown":
        return None
    unit = _indent_unit(text, language)
    byte = len(text[:offset].encode("utf-8"))
    candidates = []
    for fn, body, name in function_bodies(text, language):
        make = _python_body if language == "python" else _brace_body
        hole = make(text, fn, body, unit, language, name)
        if hole is None:
            continue
        start, end = _decorated(fn).start_byte, fn.end_byte
        if start <= byte <= end:
            candidates.append((0, end - start, hole))
        else:
            line = text.count("\n", 0, offset)
            lines = (abs(line - fn.start_point.row), abs(line - fn.end_point.row))
            if min(lines) <= 2:
                candidates.append((1, min(lines), hole))
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


def _decorated(fn: Node) -> Node:
    parent = fn.parent
    if parent is not None and parent.type == "decorated_definition":
        return parent
    return fn


@dataclass(frozen=True)
class BodyFill:
    body: BodyHole
    edit: TextEdit
    result: InfillResult

    @property
    def satisfied(self) -> bool | None:
        return self.result.constraint_satisfied


def write_body(text: str, language_id: str, offset: int, denoiser: Denoiser,
               options: SamplingOptions | None = None, *, budget: int = DEFAULT_BUDGET,
               every: int = 1, constrain: bool = True, on_step=None,
               should_cancel=None) -> BodyFill | None:
    """Find the body at ``offset``, fill it with the syntax constraint on, and return the
    edit (None when there is no empty/placeholder body there).

    ``result.constraint_satisfied`` False means the remask budget ran out before the body
    parsed: show the edit as a warning, not as a silent success.
    """
    from . import syntax_constraint

    body = find_function_body(text, language_id, offset)
    if body is None:
        return None
    doc, hole = body.prepare(text, budget)
    request = InfillRequest(doc, [hole], language=language_id,
                            options=options or SamplingOptions(), constrain=constrain)
    result = fill(request, denoiser, constraint=syntax_constraint(language_id, every),
                  on_step=on_step, should_cancel=should_cancel)
    return BodyFill(body, body.edit(result.fills[0].text), result)
