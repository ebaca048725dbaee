"""Drafts: the causal view proposes whole fills and the text after the hole picks one."""

import pytest
from support import ScriptedDenoiser, TextRulesLM

from grammars import syntax_constraint
from infill.engine import fill
from infill.models.embedded.tiny import END_ID
from infill.models.embedded.two_views import CausalView, TwoViewDenoiser
from infill.types import Cancelled, Hole, InfillRequest, Length, LengthOptions


def embedded_like(rules: dict[str, dict[str, float]]) -> TwoViewDenoiser:
    """The embedded default's shape: a diffusion view (here with no opinion) and a causal
    network (here written as rules) whose drafts fill auto-length holes."""
    diffusion = ScriptedDenoiser([])
    lm = TextRulesLM(rules)
    return TwoViewDenoiser(diffusion, CausalView(lm, diffusion.vocab))


def filled(den, text: str, *, length=None, constrain=False, **kw) -> str:
    at = text.index("HOLE")
    doc = text.replace("HOLE", "")
    hole = Hole(at, at, length or Length.auto(8))
    request = InfillRequest(doc, [hole], language="python", constrain=constrain, **kw)
    result = fill(request, den, constraint=syntax_constraint("python"))
    assert result.length[0]["policy"] == "drafts"
    return result.fills[0].text


# "f(" then "b" is likelier than "a", but only "a" is usually followed by ")".
CALL = {"x = f": {"(": 1.0}, "f(": {"b": 0.6, "a": 0.4},
        "f(a": {")": 0.9}, "f(b": {")": 0.05, "b": 0.9}, "f(bb": {")": 0.05, "b": 0.9}}


def test_the_text_after_the_hole_picks_the_fill():
    assert filled(embedded_like(CALL), "x = f(HOLE)\nprint(x)\n") == "a"


def test_without_following_text_the_likeliest_draft_wins():
    rules = {**CALL, "f(b": {"\n": 0.9}, "f(a": {"\n": 0.9}}
    assert filled(embedded_like(rules), "x = f(HOLE") == "b"


def test_the_syntax_constraint_passes_over_drafts_it_rejects():
    rules = {"x = f": {"(": 1.0}, "f(": {"[": 0.6, "a": 0.4},
             "f([": {")": 0.9}, "f(a": {")": 0.9}}
    den = embedded_like(rules)
    assert filled(den, "x = f(HOLE)\n") == "["
    assert filled(den, "x = f(HOLE)\n", constrain=True) == "a"


def test_under_the_constraint_a_draft_that_reads_every_parameter_is_preferred():
    # "a" is likelier, but with it the function never reads "b".
    rules = {"return ": {"a": 0.6, "b": 0.4}, "return a": {"\n": 0.9},
             "return b": {"\n": 0.9}}
    den = embedded_like(rules)
    doc = "def g(a, b):\n    c = a\n    return HOLE\n"
    assert filled(den, doc) == "a"
    assert filled(den, doc, constrain=True) == "b"


def test_an_exact_hole_gets_exactly_its_tokens():
    rules = {"x = f": {"(": 1.0}, "f(": {"a": 0.9}, "f(a": {")": 0.9, "b": 0.1},
             "f(ab": {"c": 0.9}, "f(abc": {")": 0.9}}
    den = embedded_like(rules)
    assert filled(den, "x = f(HOLE)\n") == "a"
    assert filled(den, "x = f(HOLE)\n", length=Length.exact(3)) == "abc"


def test_a_cancelled_fill_stops_between_steps():
    at = len("x = f(")
    request = InfillRequest("x = f()\n", [Hole(at, at, Length.auto(8))])
    with pytest.raises(Cancelled):
        fill(request, embedded_like(CALL), should_cancel=lambda: True)


def test_drafts_need_a_model_with_a_causal_view():
    from infill.types import InfillError

    request = InfillRequest("x = ()\n", [Hole(5, 5, Length.auto(4))],
                            length=LengthOptions(policy="drafts"))
    with pytest.raises(InfillError, match="causal view"):
        fill(request, ScriptedDenoiser([[[END_ID]]]))


def test_a_hole_between_two_sentences_is_filled_with_whole_sentences():
    # "x" alone would hand over to "B." a little likelier than "x." does; but between
    # two sentences a fill ends a sentence.
    rules = {"a": {".": 1.0}, "a.": {"x": 0.9}, "a.x": {"B": 0.5, ".": 0.5},
             "a.x.": {"B": 0.9}}
    assert filled(embedded_like(rules), "a.HOLEB.\n") == "x."
    lower = {k: {t.lower(): p for t, p in d.items()} for k, d in rules.items()}
    assert filled(embedded_like(lower), "a.HOLEb.\n") == "x"  # "b" starts no sentence


def test_after_a_space_and_before_a_word_a_fill_ends_with_a_space():
    rules = {"x =": {" ": 1.0}, "x = ": {"a": 0.9}, "x = a": {" ": 0.9, "y": 0.1},
             "x = a ": {"y": 0.5, "+": 0.5}, "x = a +": {" ": 0.9}, "x = a + ": {"y": 0.9}}
    assert filled(embedded_like(rules), "x = HOLEy\n") in ("a ", "a + ")


def test_between_sentences_means_inside_a_paragraph_before_a_capital():
    from infill.lines import between_sentences

    text = "It rained. She left.\nx = 1\n"
    at = text.index("She")
    assert between_sentences(text, at, at)
    assert not between_sentences(text, at + 1, at + 1)  # mid-word, after no sentence end
    assert not between_sentences(text, text.index("x"), text.index("x"))  # a line start
