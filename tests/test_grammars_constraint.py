"""The syntax constraint: it must be what turns a broken fill into a valid one."""

from __future__ import annotations

import pytest
from support import ScriptedDenoiser, ids_of, tiny_tokenizer

from grammars import language_for, supported, syntax_constraint
from grammars.constraint import SyntaxConstraint, syntax_errors
from grammars.registry import parser_for
from infill.engine import decoder_for, fill
from infill.models.embedded.tiny import END_ID, MASK_ID
from infill.types import CanvasView, Hole, HoleView, InfillRequest, Length, SamplingOptions

A, PLUS, B, RPAREN, NL, BACKTICK, HASH, SPACE = 67, 283, 266, 11, 201, 66, 5, 223


def _tok(text: str) -> int:
    ids = ids_of(text)
    assert len(ids) == 1, (text, ids)
    return ids[0]


def run(doc: str, wishes, language: str, constrain: bool, length: Length | None = None,
        marker: str = "[MASK]", **options):
    start = doc.index(marker)
    hole = Hole(start, start + len(marker), length or Length.exact(len(wishes[0])))
    request = InfillRequest(doc, [hole], language, SamplingOptions(**options),
                            constrain=constrain)
    constraint = syntax_constraint(language)
    result = fill(request, ScriptedDenoiser(wishes), constraint=constraint)
    text = doc[:start] + result.fills[0].text + doc[start + len(marker):]
    return result, text, constraint


def new_errors(language: str, text: str) -> int:
    return len(syntax_errors(parser_for(language).parse(text.encode())))


def test_registry_covers_the_required_languages_and_aliases():
    for name in ["python", "javascript", "typescript", "tsx", "rust", "go", "java", "c", "cpp",
                 "markdown"]:
        assert name in supported()
    for alias in ["py", "javascriptreact", "typescriptreact", "rs", "golang", "c++", "md"]:
        assert language_for(alias) is not None, alias
    assert language_for("cobol") is None and syntax_constraint("plaintext") is None


# -- must show: bad token first, good token second -------------------------------------

PY_DOC = "def add(a, b):\n    return [MASK]\n\n\ndef sub(a, b):\n    return a - b\n"


@pytest.mark.parametrize("wishes", [
    [[[A], [PLUS], [RPAREN, B]]],   # "a +)" then "a + b": the break is at the end
    [[[RPAREN, A], [PLUS], [B]]],   # ") + b" then "a + b": the break is at the start
])
def test_python_constraint_turns_the_broken_fill_into_the_valid_one(wishes):
    off, text_off, _ = run(PY_DOC, wishes, "python", constrain=False)
    assert new_errors("python", text_off) > 0, text_off
    assert off.constraint_satisfied is None
    on, text_on, c = run(PY_DOC, wishes, "python", constrain=True)
    assert on.fills[0].text == "a + b"
    assert new_errors("python", text_on) == 0
    assert on.constraint_satisfied is True and on.remasked >= 1
    assert c.stats.reviews >= 1


def test_javascript_missing_paren_is_remasked():
    doc = "function f(a, b) {\n  return g([MASK];\n}\n"
    # "a)" wanted first at the end would close g( -- here the model first wants "a" then
    # ";" (leaving g( unclosed: a MISSING ")"), second choice ")" closes it.
    semi = _tok(";")
    wishes = [[[A], [semi, RPAREN]]]
    doc = "function f(a, b) {\n  return g([MASK]\n}\n"
    _, text_off, _ = run(doc, wishes, "javascript", constrain=False)
    assert new_errors("javascript", text_off) > 0
    on, text_on, _ = run(doc, wishes, "javascript", constrain=True)
    assert on.fills[0].text == "a)", text_on
    assert new_errors("javascript", text_on) == 0 and on.constraint_satisfied


MD_DOC = "# Intro\n\nThe tool [MASK] today.\n\n## Usage\n\nRun it.\n\n- one\n- two\n"


def test_markdown_fill_must_not_open_an_unclosed_fence():
    wishes = [[[t] for t in ids_of(" fills gaps.")] + [[NL]] + [[BACKTICK, END_ID]] * 3]
    length = Length.auto(len(wishes[0]))
    _, text_off, _ = run(MD_DOC, wishes, "markdown", constrain=False, length=length)
    assert "```" in text_off
    on, text_on, _ = run(MD_DOC, wishes, "markdown", constrain=True, length=length)
    assert "```" not in text_on and on.constraint_satisfied
    assert "## Usage" in text_on and "fills gaps." in on.fills[0].text


def test_markdown_fill_must_not_start_a_heading():
    wishes = [[[t] for t in ids_of(" fills gaps.")] + [[NL], [HASH, END_ID], [SPACE, END_ID]]
              + [[t, END_ID] for t in ids_of("New")]]
    length = Length.auto(len(wishes[0]))
    _, text_off, _ = run(MD_DOC, wishes, "markdown", constrain=False, length=length)
    assert "\n# New" in text_off
    on, text_on, _ = run(MD_DOC, wishes, "markdown", constrain=True, length=length)
    assert "\n#" not in on.fills[0].text and on.constraint_satisfied


def test_markdown_markers_outside_the_hole_must_survive():
    # A fill that opens a fence swallows the "## Usage" heading and the list after it:
    # besides the unclosed fence, each lost marker is a finding of its own.
    from grammars.markdown import MarkdownConstraint

    fence = ids_of(" fills") + [NL] + [BACKTICK] * 3
    c = MarkdownConstraint()
    kinds = {e.kind for e in c.check(_view(MD_DOC, "[MASK]", fence, "markdown"))}
    assert "unclosed fence" in kinds and "lost atx_h2_marker" in kinds
    assert "lost list_marker_minus" in kinds


def test_budget_exhausted_is_reported_not_hidden():
    # Every choice at the last position breaks the syntax: the constraint gives up.
    wishes = [[[A], [PLUS], [RPAREN, _tok("("), _tok("[")]]]
    on, text_on, _ = run(PY_DOC, wishes, "python", constrain=True, max_remask_rounds=1)
    assert on.constraint_satisfied is False
    assert new_errors("python", text_on) > 0


# -- still-masked positions and baseline ------------------------------------------------

def _view(doc: str, marker: str, tokens: list[int], language: str = "python") -> CanvasView:
    start = doc.index(marker)
    hole = Hole(start, start + len(marker), Length.exact(len(tokens)))
    tok = tiny_tokenizer()

    class D:
        tokenizer = tok

    return CanvasView(doc, language, [HoleView(hole, list(range(10, 10 + len(tokens))),
                                               tokens)],
                      MASK_ID, frozenset({END_ID}), tok, decoder_for(D))


@pytest.mark.parametrize("tokens", [
    [_tok("("), MASK_ID, MASK_ID],          # "(" + gap: the gap may close it
    [A, PLUS, MASK_ID],                     # "a +" + gap: the gap may finish it
    [MASK_ID, PLUS, B],                     # gap + "+ b": the gap may start it
    [A, MASK_ID, B],                        # "a" gap "b": dropping the gap merges them
    [MASK_ID, MASK_ID, RPAREN],             # gap + ")": still open at its left
])
def test_errors_touching_still_masked_positions_are_not_blamed(tokens):
    c = SyntaxConstraint("python")
    assert c.review(_view(PY_DOC, "[MASK]", tokens)) == []


def test_final_review_blames_what_the_gap_excused():
    c = SyntaxConstraint("python")
    remasks = c.review(_view(PY_DOC, "[MASK]", [A, PLUS, RPAREN]))
    assert [r.position for r in remasks if r.forbid is None] == [12]


def test_error_inside_a_committed_island_is_blamed_before_the_end():
    # "a = = b" is broken whatever the trailing gap becomes.
    eq = _tok(" =")
    c = SyntaxConstraint("python")
    view = _view("def f(a, b):\n    [MASK]\n", "[MASK]", [A, eq, eq, B, MASK_ID, MASK_ID])
    assert any(r.forbid is None for r in c.review(view))


def test_baseline_errors_outside_the_hole_never_block_a_fill():
    doc = "def broken(:\n    return 1\n\n" + PY_DOC
    wishes = [[[A], [PLUS], [B]]]
    on, _, _ = run(doc, wishes, "python", constrain=True)
    assert on.fills[0].text == "a + b" and on.constraint_satisfied and on.remasked == 0


def test_every_k_skips_intermediate_reviews_but_not_the_final_one():
    wishes = [[[A], [PLUS], [RPAREN, B]]]
    start = PY_DOC.index("[MASK]")
    for every in (1, 2, 100):
        c = SyntaxConstraint("python", every=every)
        request = InfillRequest(PY_DOC, [Hole(start, start + 6, Length.exact(3))], "python",
                                constrain=True)
        result = fill(request, ScriptedDenoiser(wishes), constraint=c)
        assert result.fills[0].text == "a + b" and result.constraint_satisfied


def test_incremental_and_full_parses_agree():
    wishes = [[[t] for t in ids_of("x = (a + b) * 2\n    return x")]]
    doc = "def f(a, b):\n    [MASK]\n"
    start = doc.index("[MASK]")
    outs = []
    for incremental in (True, False):
        c = SyntaxConstraint("python", incremental=incremental)
        request = InfillRequest(doc, [Hole(start, start + 6, Length.exact(len(wishes[0])))],
                                "python", constrain=True)
        r = fill(request, ScriptedDenoiser(wishes), constraint=c)
        outs.append((r.fills[0].text, r.remasked))
        if incremental:
            assert c.stats.incremental_parses > 0
    assert outs[0] == outs[1]


def test_python_errors_tree_sitter_misses_are_caught_by_ast_at_the_end():
    # tree-sitter-python accepts the unexpected indent after "x = 1"; CPython does not.
    doc = "def f(xs):\n    total = 0\n[MASK]        total += x\n    return total\n"
    bad, good = ids_of("    x = 1\n"), ids_of("    if x:\n")
    c = SyntaxConstraint("python")
    assert not syntax_errors(parser_for("python").parse(
        doc.replace("[MASK]", "    x = 1\n").encode()))
    assert [e.kind for e in c.check(_view(doc, "[MASK]", bad))] == ["python: unexpected indent"]
    assert c.review(_view(doc, "[MASK]", bad))
    assert c.check(_view(doc, "[MASK]", good)) == [] and c.review(_view(doc, "[MASK]", good)) == []
    # A document that already fails ast.parse far from the hole does not block the fill.
    broken = "def g(:\n    pass\n\n\n" + doc
    assert SyntaxConstraint("python").review(_view(broken, "[MASK]", good)) == []


def test_errors_at_the_seam_of_a_missing_span_are_the_fills_to_fix():
    # Like HumanEval: the document lacks a span, so it is broken right where the hole is.
    # That breakage is not baseline: the fill must mend it.
    doc = "def f(x):\n    y = (x[MASK]\n    return y\n"
    wishes = [[[PLUS, RPAREN]]]
    _, text_off, _ = run(doc, wishes, "python", constrain=False)
    assert new_errors("python", text_off) > 0
    on, text_on, _ = run(doc, wishes, "python", constrain=True)
    assert on.fills[0].text == ")" and new_errors("python", text_on) == 0


def test_the_text_after_line_shaping_is_what_must_parse():
    # Raw, "  " indents the suffix's line into inner's body; the engine's line-aware
    # shaping (whole lines here) turns it into "  \n", leaving inner without a body.
    doc = "def outer():\n    def inner(k):\n[MASK]    return k\n"
    start = doc.index("[MASK]")
    raw = doc[:start] + "  " + doc[start + 6:]
    assert not syntax_errors(parser_for("python").parse(raw.encode()))
    doc = doc.replace("[MASK]", "")
    view = _view(doc + "[MASK]", "[MASK]", ids_of("  "))
    view.text = doc
    view.holes[0].hole = Hole(start, start, Length.auto(1))
    c = SyntaxConstraint("python")
    assert c.check(view) and c.review(view)


def test_seams_cover_the_hole_lines_and_one_line_either_side():
    from grammars.constraint import seams

    doc = b"a\nb\nc\n"
    assert seams(doc, [(len(doc), len(doc))]) == [(4, 6)]   # a hole at the end of the file
    assert seams(doc, [(2, 2)]) == [(0, 5)]
    assert seams(doc, [(0, 0)]) == [(0, 3)]
