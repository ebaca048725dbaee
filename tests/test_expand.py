"""The expand length policy (DreamOn): holes that grow by ``<|expand|>`` and shrink by delete,
against scripted models; nothing outside the holes ever changes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ids_of, tiny_tokenizer

from infill.edits import apply_edits, edits_from_result
from infill.engine import fill
from infill.expand import Resized, expand
from infill.length import denoise
from infill.models.embedded.tiny import BOS_ID, END_ID, MASK_ID
from infill.plan import plan
from infill.types import (
    Hole,
    InfillError,
    InfillRequest,
    Length,
    LengthOptions,
    Remask,
    SamplingOptions,
)

TEXT = "x = HOLE + y"
AT = TEXT.index("HOLE")
A, B, C, FILLER = (ids_of(t)[0] for t in ("a", "b", "c", "q"))


class Editor:
    """A DreamOn stand-in: pass ``k`` writes ``script[k] = (token, i)`` at the ``i``-th open
    mask (``-1``: the last) surely; every other open position leans to ``FILLER`` less
    surely. ``lengths`` is the canvas length each pass saw."""

    family = "scripted"
    device = "cpu"
    dtype = torch.float32
    length_policy = "expand"

    def __init__(self, script, *, max_length: int = 512) -> None:
        self.tokenizer = tiny_tokenizer()
        self.vocab = len(self.tokenizer)
        self.mask_id, self.end_ids = MASK_ID, frozenset({END_ID})
        self.expand_id = self.vocab - 1
        self.prefix_ids, self.suffix_ids = (BOS_ID,), ()
        self.max_length = max_length
        self.script = list(script)
        self.lengths: list[int] = []

    def wants(self, ids: torch.Tensor, rows: torch.Tensor, out: torch.Tensor) -> None:
        k = len(self.lengths) - 1
        if k < len(self.script):
            token, i = self.script[k]
            out[:, i, token] = 10.0

    def logits(self, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        self.lengths.append(ids.shape[1])
        rows = torch.arange(ids.shape[1]) if positions is None else positions
        assert bool((ids[0, rows] == self.mask_id).all())  # asked only about masks
        out = torch.full((ids.shape[0], len(rows), self.vocab), -10.0)
        out[:, :, FILLER] = 0.0
        self.wants(ids, rows, out)
        return out


def run(den, budget: int = 8, initial: int = 2, **options):
    req = InfillRequest(TEXT, [Hole(AT, AT + 4, Length.auto(budget))], line_aware=False,
                        length=LengthOptions(initial=initial),
                        options=SamplingOptions(**options))
    return fill(req, den)


def test_expand_then_delete_then_text_gives_the_fill_and_the_canvas_lengths():
    EXPAND = Editor([]).expand_id
    den = Editor([(EXPAND, 0), (A, 0), (END_ID, -1), (EXPAND, 0), (B, 0), (C, 0)])
    result = run(den)
    n = den.lengths[0]  # the canvas with the hole's 2 starting masks
    # [M M] -> expand: [M M M] -> a: [a M M] -> delete: [a M] -> expand: [a M M] -> b -> c
    assert den.lengths == [n, n + 1, n + 1, n, n + 1, n + 1]
    assert result.fills[0].token_ids == [A, B, C] and result.fills[0].text == "abc"
    info = result.length[0]
    assert info["policy"] == "expand" and info["initial"] == [2]
    assert (info["expanded"], info["deleted"]) == (2, 1)
    assert info["budget"] == [8] and info["tokens"] == [3]
    assert result.forward_passes == 6 and result.fills[0].trimmed == 0


def test_a_delete_takes_the_masks_after_it_in_its_hole():
    den = Editor([(A, 0), (END_ID, 0)])
    result = run(den, initial=4)
    assert result.fills[0].token_ids == [A]
    assert result.length[0]["deleted"] == 3  # the end and the two masks after it
    assert den.lengths == [den.lengths[0]] * 2  # nothing moved before the second pass
    assert result.forward_passes == 2


def test_the_budget_bounds_the_expansions():
    EXPAND = Editor([]).expand_id
    den = Editor([(EXPAND, 0)] * 20)
    result = run(den, budget=4, initial=1)
    fill_ = result.fills[0]
    assert len(fill_.token_ids) == 4 and set(fill_.token_ids) == {FILLER}
    assert result.length[0]["expanded"] == 3  # 1 -> 4 masks, then expand is forbidden
    assert result.forward_passes == 3 + 4
    assert max(den.lengths) == den.lengths[0] + 3


def test_the_window_bounds_the_expansions():
    EXPAND = Editor([]).expand_id
    den = Editor([(EXPAND, 0)] * 20)
    (canvas,) = plan(TEXT, [Hole(AT, AT + 4, Length.auto(8))], den)
    start = len(canvas.ids) - 7  # one mask to begin with
    den.max_length = start + 2
    done, report = expand(den, canvas, SamplingOptions(), LengthOptions(initial=1))
    assert report["expanded"] == 2 and [len(r) for r in done.runs] == [3]
    assert len(done.ids) == den.max_length


def test_exact_holes_keep_their_length_while_auto_holes_grow():
    class Everywhere(Editor):
        def wants(self, ids, rows, out):
            out[:, :, self.expand_id] = 10.0  # every position asks for more room

    text = "a = HOLE\nb = HOLE\n"
    first, second = text.index("HOLE"), text.rindex("HOLE")
    holes = [Hole(first, first + 4, Length.exact(2)), Hole(second, second + 4, Length.auto(5))]
    den = Everywhere([])
    result = fill(InfillRequest(text, holes, line_aware=False,
                                length=LengthOptions(initial=1)), den)
    assert [len(f.token_ids) for f in result.fills] == [2, 5]
    assert set(result.fills[0].token_ids) == {FILLER}  # neither expand nor end in an exact hole
    out = apply_edits(text, edits_from_result(result))
    assert out.startswith("a = ") and "\nb = " in out and out.endswith("\n")


def test_the_constraint_and_progress_see_the_holes_as_they_stand():
    EXPAND = Editor([]).expand_id
    den = Editor([(EXPAND, 0), (A, 0), (END_ID, -1), (EXPAND, 0), (B, 0), (C, 0)])
    seen: list[tuple[int, list[int]]] = []

    class Watcher:
        def review(self, canvas):
            (hole,) = canvas.holes
            assert all(den.lengths[-1] > p for p in hole.positions)
            seen.append((len(hole.positions), [t for t in hole.tokens if t != MASK_ID]))
            return []

    steps = []
    req = InfillRequest(TEXT, [Hole(AT, AT + 4, Length.auto(8))], line_aware=False,
                        constrain=True, length=LengthOptions(initial=2))
    result = fill(req, den, constraint=Watcher(),
                  on_step=lambda s: steps.append((s.masks_left, s.texts()[0])))
    assert steps == [(3, ""), (2, "a"), (1, "a"), (2, "a"), (1, "ab"), (0, "abc")]
    assert seen[0] == (3, []) and seen[2] == (2, [A])  # after the expand, after the delete
    assert seen[-1] == (3, [A, B, C]) and result.constraint_satisfied is True


def test_a_remask_is_forbidden_where_the_position_moved():
    """The reviewer rejects ``b`` once; an expansion before it then moves the position: the
    ban moves with it, so the model's next wish there (``b`` again) becomes the filler."""
    EXPAND = Editor([]).expand_id
    den = Editor([(B, -1), (EXPAND, 0), (B, -1), (A, 0), (C, 0)])
    rejected = []

    class OnceNoB:
        def review(self, canvas):
            (hole,) = canvas.holes
            if rejected or B not in hole.tokens:
                return []
            rejected.append(True)
            return [Remask(hole.positions[hole.tokens.index(B)])]

    req = InfillRequest(TEXT, [Hole(AT, AT + 4, Length.auto(8))], line_aware=False,
                        constrain=True, length=LengthOptions(initial=2))
    result = fill(req, den, constraint=OnceNoB())
    # [M M] -> [M b] rejected -> [M M] -> expand: [M M M] -> b banned at the last: filler
    assert result.fills[0].token_ids == [A, C, FILLER]
    assert result.remasked == 1


def test_auto_means_expand_for_a_dreamon_model_and_expand_needs_one():
    den = Editor([(A, 0), (B, 0)])
    assert run(den).length[0]["policy"] == "expand"  # auto: the model's own
    plain = Editor([])
    plain.expand_id = None
    plain.length_policy = None
    req = InfillRequest(TEXT, [Hole(AT, AT + 4, Length.auto(4))],
                        length=LengthOptions(policy="expand"))
    with pytest.raises(InfillError, match="<\\|expand\\|>"):
        fill(req, plain)


class RandomEditor(Editor):
    """Wants expand, delete or a word at random (seeded): the harshest DreamOn."""

    def __init__(self, seed: int, max_length: int = 512) -> None:
        super().__init__([], max_length=max_length)
        self.generator = torch.Generator().manual_seed(seed)

    def wants(self, ids, rows, out):
        for token in (self.expand_id, END_ID, A, B, C):
            out[:, :, token] = torch.randn(len(rows), generator=self.generator) * 3


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet="ab c\n=+(x)é", min_size=1, max_size=40),
       cuts=st.lists(st.integers(0, 40), min_size=2, max_size=6, unique=True),
       budgets=st.lists(st.integers(1, 6), min_size=3, max_size=3),
       exact=st.booleans(), seed=st.integers(0, 2**16), threshold=st.booleans())
def test_nothing_outside_the_holes_changes_under_expand_and_delete(text, cuts, budgets, exact,
                                                                   seed, threshold):
    cuts = sorted({c % (len(text) + 1) for c in cuts})
    pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
    if not pairs:
        return
    holes = [Hole(a, b, Length.exact(n) if exact and i == 0 else Length.auto(n))
             for i, ((a, b), n) in enumerate(zip(pairs, budgets, strict=False))]
    options = SamplingOptions(threshold=0.5 if threshold else None, seed=seed)
    request = InfillRequest(text, holes, line_aware=False, options=options,
                            length=LengthOptions(initial=2))
    den = RandomEditor(seed)
    for canvas in plan(text, holes, den):
        done, _ = denoise(canvas, request, den, None, None, None, None)
        assert isinstance(done, Resized)
        spans = done.runs
        ids = done.ids.tolist()
        inside = {p for span in spans for p in span}
        planned = {p for r in canvas.runs for p in r.positions}
        assert [t for p, t in enumerate(ids) if p not in inside] == [
            t for p, t in enumerate(canvas.ids) if p not in planned]  # the context, untouched
        for run, span in zip(canvas.runs, spans, strict=True):
            held = [ids[p] for p in span]
            assert MASK_ID not in held and den.expand_id not in held
            assert len(span) == run.hole.length.tokens if run.exact else len(span) <= (
                run.hole.length.tokens)
    result = fill(request, RandomEditor(seed))
    out = apply_edits(text, edits_from_result(result))
    pos = 0
    for hole, f in zip(holes, result.fills, strict=True):
        gap = text[pos:hole.start]
        assert out.startswith(gap)
        assert out[len(gap):].startswith(f.text)
        out = out[len(gap) + len(f.text):]
        pos = hole.end
    assert out == text[pos:]
