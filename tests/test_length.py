"""Length policies against a scripted model that wants a specific length."""

from support import ScriptedDenoiser, ids_of

from infill.engine import fill
from infill.models.embedded.tiny import END_ID
from infill.types import Hole, InfillRequest, Length, LengthOptions, SamplingOptions

TEXT = "x = HOLE + y"
AT = TEXT.index("HOLE")
WORDS = ids_of("a") * 12


def wants(n_content: int, end_logit: float = 10.0, rival: tuple[int, float] | None = None,
          first_end: float | None = None):
    """A model that wants ``n_content`` tokens, then end tokens for the rest of the budget
    (the first of them with its own logit when ``first_end`` is given)."""
    b = ids_of("b")[0]
    content = [[(t, 10.0), (b, 8.0)] for t in WORDS[:n_content]]
    end = [(END_ID, end_logit)] + ([rival] if rival else [])
    first = [(END_ID, first_end)] if first_end is not None else end
    return ScriptedDenoiser([content + [first] + [end] * 64])


def run(den, policy, budget=32, **length):
    req = InfillRequest(TEXT, [Hole(AT, AT + 4, Length.auto(budget))],
                        length=LengthOptions(policy=policy, **length), line_aware=False)
    return fill(req, den)


def test_absorb_masks_the_whole_budget_and_trims_the_end_tokens():
    result = run(wants(12), "absorb")
    assert len(result.fills[0].token_ids) == 12 and result.fills[0].trimmed == 20
    assert result.length[0]["policy"] == "absorb" and result.length[0]["budget"] == [32]
    # Each end token the model commits closes the masks after it: fewer than 32 steps.
    assert result.forward_passes < 32


def test_an_end_token_ends_the_fill_even_left_to_right():
    """Block by block, nothing after the end is filled: it would be glued on to the text
    when the end tokens are trimmed (the model here would write b's there)."""
    a, b = ids_of("a")[0], ids_of("b")[0]
    den = ScriptedDenoiser([[[(a, 10.0)]] * 3 + [[(END_ID, 10.0)]] + [[(b, 10.0)]] * 28])
    req = InfillRequest(TEXT, [Hole(AT, AT + 4, Length.auto(32))], line_aware=False,
                        options=SamplingOptions(block_length=1))
    result = fill(req, den)
    assert result.fills[0].token_ids == [a, a, a] and result.fills[0].trimmed == 29
    assert result.forward_passes == 4


def test_grow_opens_masks_until_the_model_expects_the_end():
    result = run(wants(12), "grow", initial=4, step=4)
    info = result.length[0]
    assert info["grown"] == 8 and info["dropped"] == 0  # 4 -> 8 -> 12, then the end is sure
    assert len(result.fills[0].token_ids) == 12
    assert result.forward_passes == 12  # one token a step, never more masks than needed


def test_grow_drops_the_masks_after_an_end_token_the_model_commits():
    rival = (ids_of("b")[0], 9.0)
    result = run(wants(3, rival=rival, first_end=20.0), "grow", initial=8, step=8)
    info = result.length[0]
    assert info["grown"] == 0 and info["dropped"] == 4  # the end lands at 3: 4..7 closed
    assert len(result.fills[0].token_ids) == 3
    assert result.forward_passes == 4


def test_best_of_likelihood_keeps_the_shortest_length_that_fits():
    result = run(wants(6), "best_of", candidates=(4, 8, 16), scorer="likelihood")
    info = result.length[0]
    assert info["candidates"] == [4, 8, 16] and info["chosen"] == 8
    assert len(result.fills[0].token_ids) == 6
    scores = info["scores"]
    assert scores[0] < scores[1]  # closing the hole at 4 cuts off what the model wants


def test_best_of_confidence_prefers_the_surest_commits():
    # The end is only a 60/40 call against a rival token, so rows that commit end tokens
    # score lower on mean confidence and the short candidate wins: a measurable weakness.
    result = run(wants(6, end_logit=2.0, rival=(ids_of("b")[0], 1.6)), "best_of",
                 candidates=(4, 8, 16), scorer="confidence")
    assert result.length[0]["chosen"] == 4
    assert result.forward_passes == 16  # one batch: passes are the longest row's steps


def test_exact_holes_keep_their_length_under_every_policy():
    den_text = "a = [MASK:3] and [MASK]"
    from infill.holes import find_markers

    for policy in ("absorb", "grow", "best_of"):
        den = ScriptedDenoiser([[[t] for t in ids_of("123")], [[t] for t in WORDS[:2]] +
                                [[END_ID]] * 40])
        req = InfillRequest(den_text, find_markers(den_text, budget=8),
                            length=LengthOptions(policy=policy, initial=2, candidates=(2, 4)),
                            options=SamplingOptions(), line_aware=False)
        result = fill(req, den)
        assert result.fills[0].text == "123", policy
        assert len(result.fills[1].token_ids) == 2, policy


def test_best_of_reports_each_step_with_the_leading_candidate():
    seen, texts = [], []
    den = wants(6)
    req = InfillRequest(TEXT, [Hole(AT, AT + 4, Length.auto(32))],
                        length=LengthOptions(policy="best_of", candidates=(4, 8)),
                        line_aware=False)
    result = fill(req, den, on_step=lambda s: (seen.append(s), texts.append(s.texts()[0])))
    assert [s.step for s in seen] == list(range(1, result.steps + 1))
    assert seen[-1].masks_left == 0 and seen[-1].total == 8
    assert all(s.committed >= 1 for s in seen)
    assert len(texts[-1]) > len(texts[0])  # the live text grows as the fill proceeds


def test_auto_means_the_models_own_policy_else_the_fallback():
    # A diffusion checkpoint names no policy of its own: auto is the fallback.
    assert run(wants(6), "auto").length[0]["policy"] == "absorb"
    assert run(wants(6), "auto", fallback="grow").length[0]["policy"] == "grow"
    den = wants(6)
    den.length_policy = "best_of"  # a model that names its own
    assert run(den, "auto", fallback="grow").length[0]["policy"] == "best_of"
