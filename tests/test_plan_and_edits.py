"""Property tests: the canvas is the document with holes swapped for masks, and a fill
changes nothing outside its holes, for any text (emoji, CJK, CRLF) and any holes."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ScriptedDenoiser, ids_of, tiny_tokenizer

from infill.edits import TextEdit, apply_edits, edits_from_result
from infill.engine import fill
from infill.holes import validate_holes
from infill.plan import plan
from infill.types import Hole, InfillRequest, Length

ALPHABET = st.sampled_from(list("abc xyz_()=:\n\r\t\"'") + ["\r\n", "🙂", "漢", "字", "é", "👩‍💻"])
documents = st.lists(ALPHABET, min_size=1, max_size=120).map("".join)


@st.composite
def doc_and_holes(draw, max_holes=4):
    text = draw(documents)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), min_size=2, max_size=2 * max_holes)))
    holes, last_end = [], -1
    for a, b in zip(cuts[::2], cuts[1::2], strict=False):
        if a < last_end or (a == b == last_end):
            continue
        mode = draw(st.sampled_from(["exact", "auto"]))
        holes.append(Hole(a, b, Length(mode, draw(st.integers(1, 4)))))
        last_end = b
    if not holes:
        holes = [Hole(0, 0, Length.exact(1))]
    return text, holes


def decode(ids):
    return tiny_tokenizer().decode(ids, clean_up_tokenization_spaces=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc_and_holes(), st.sampled_from([64, 96, 512]))
def test_canvas_is_the_document_window_with_masks_for_holes(case, max_length):
    text, holes = case
    den = ScriptedDenoiser([], max_length=max_length)
    holes = validate_holes(text, holes)
    canvases = plan(text, holes, den)
    assert [r.hole for c in canvases for r in c.runs] == holes
    for c in canvases:
        assert len(c.ids) <= max_length
        assert tuple(c.ids[: len(den.prefix_ids)]) == den.prefix_ids
        # Context between the prefix token, the runs and the end decodes to the exact text.
        bounds = [(len(den.prefix_ids), c.window[0])]
        for run in c.runs:
            assert all(c.ids[p] == den.mask_id for p in run.positions)
            assert len(run.positions) == run.hole.length.tokens
            bounds.append((run.positions.stop, run.hole.end))
        starts = [r.positions.start for r in c.runs] + [len(c.ids)]
        text_ends = [r.hole.start - len(r.heal) for r in c.runs] + [c.window[1]]
        for (pos, char), stop, char_end in zip(bounds, starts, text_ends, strict=True):
            assert decode(c.ids[pos:stop]) == text[char:char_end]


@settings(max_examples=100, deadline=None)
@given(doc_and_holes(), st.lists(st.sampled_from(ids_of("x = 1\n漢🙂 ab")), min_size=4))
def test_a_fill_never_changes_a_character_outside_its_holes(case, wished):
    text, holes = case
    den = ScriptedDenoiser([[[t] for t in wished]] * len(holes), max_length=96)
    result = fill(InfillRequest(text, holes), den)
    out = apply_edits(text, edits_from_result(result))
    cursor_in, cursor_out = 0, 0
    for f in result.fills:
        kept = text[cursor_in : f.hole.start]
        assert out[cursor_out : cursor_out + len(kept)] == kept
        cursor_out += len(kept) + len(f.text)
        assert out[cursor_out - len(f.text) : cursor_out] == f.text
        cursor_in = f.hole.end
    assert out[cursor_out:] == text[cursor_in:]


def test_apply_edits_refuses_overlaps_and_out_of_range():
    import pytest

    from infill.types import InfillError

    with pytest.raises(InfillError, match="overlap"):
        apply_edits("abcdef", [TextEdit(0, 3, "x"), TextEdit(2, 4, "y")])
    with pytest.raises(InfillError, match="outside"):
        apply_edits("abc", [TextEdit(2, 9, "x")])
    assert apply_edits("abcdef", [TextEdit(4, 6, "Z"), TextEdit(0, 0, "<")]) == "<abcdZ"


def test_holes_far_apart_get_canvases_of_their_own_and_context_is_centred():
    den = ScriptedDenoiser([], max_length=80)
    text = "a = 1\n" * 60 + "[X]" + "b = 2\n" * 60 + "[Y]" + "c = 3\n" * 60
    x, y = text.index("[X]"), text.index("[Y]")
    holes = [Hole(x, x + 3, Length.exact(4)), Hole(y, y + 3, Length.exact(4))]
    canvases = plan(text, holes, den)
    assert len(canvases) == 2
    for c, h in zip(canvases, holes, strict=True):
        before = c.runs[0].positions.start - 1
        after = len(c.ids) - c.runs[0].positions.stop
        assert abs(before - after) <= 2, (before, after)
        assert c.window[0] < h.start and c.window[1] > h.end


def test_blanks_before_a_hole_stay_out_of_the_context_and_out_of_the_fill():
    text = "def f(x):\n    return [MASK:2]\n"
    from infill.holes import find_markers

    den = ScriptedDenoiser([[[t] for t in ids_of(" x")] + [[ids_of("x")[0]]]])
    (canvas,) = plan(text, find_markers(text), den)
    assert canvas.runs[0].heal == " "
    assert decode(canvas.ids[1 : canvas.runs[0].positions.start]).endswith("return")
    result = fill(InfillRequest(text, find_markers(text)), den)
    assert apply_edits(text, edits_from_result(result)).startswith("def f(x):\n    return x")


def test_a_hole_larger_than_the_window_is_refused():
    import pytest

    from infill.types import InfillError

    den = ScriptedDenoiser([], max_length=64)
    with pytest.raises(InfillError, match="window of 64 tokens"):
        plan("abc", [Hole(1, 1, Length.exact(60))], den)


def test_typing_on_a_line_keeps_a_windowed_contexts_start(tiny_denoiser):
    """Ghost text reads a window of context; typing moves the cursor, not the window's
    first token (it starts at a line start), so a causal model's cached prefix still holds."""
    lines = [f"value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1, 40)]
    text = "".join(lines) + "result = comp"
    typed = text + "ute(value_"
    windows = []
    for doc in (text, typed):
        (canvas,) = plan(doc, [Hole(len(doc), len(doc), Length.auto(8))], tiny_denoiser, 64)
        first = canvas.window[0]
        assert first == 0 or doc[first - 1] == "\n"  # a line start
        windows.append(canvas)
    assert windows[0].window[0] == windows[1].window[0]
    shared = windows[0].runs[0].positions.start
    assert windows[1].ids[:shared - 2] == windows[0].ids[:shared - 2]
