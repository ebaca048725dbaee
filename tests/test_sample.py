"""The reverse process on a scripted denoiser: every behaviour asserted exactly."""

import pytest
from support import ScriptedDenoiser, ids_of

from infill.engine import fill
from infill.models.embedded.tiny import END_ID
from infill.types import Cancelled, Hole, InfillRequest, Length, SamplingOptions

TEXT = "def f(x):\n    return HOLE\n"
AT = TEXT.index("HOLE")


def request(length, **options):
    return InfillRequest(TEXT, [Hole(AT, AT + 4, length)], options=SamplingOptions(**options))


def test_an_exact_hole_gets_the_tokens_the_model_wants():
    want = ids_of("x + 1")
    den = ScriptedDenoiser([[[t] for t in want]])
    result = fill(request(Length.exact(len(want))), den)
    assert result.fills[0].text == "x + 1"
    assert result.fills[0].token_ids == want


def test_an_exact_hole_never_ends_early():
    # The model would rather say "nothing here" at the last position; exact forbids it.
    want = ids_of("x + 1")
    wishes = [[t] for t in want[:-1]] + [[END_ID, want[-1]]]
    result = fill(request(Length.exact(len(want))), ScriptedDenoiser([wishes]))
    assert result.fills[0].text == "x + 1" and result.fills[0].trimmed == 0


def test_an_auto_hole_trims_the_end_tokens_that_absorb_its_budget():
    want = ids_of("x * 2")
    wishes = [[t] for t in want] + [[END_ID]] * 10
    result = fill(request(Length.auto(12)), ScriptedDenoiser([wishes]))
    assert result.fills[0].text == "x * 2"
    assert result.fills[0].trimmed == 12 - len(want)
    assert len(result.fills[0].confidence) == len(want)


def test_forward_passes_equal_steps_and_follow_the_schedule():
    want = ids_of("a b c d e f g h")
    den = ScriptedDenoiser([[[t] for t in want]])
    result = fill(request(Length.exact(len(want)), steps=4), den)
    assert result.steps == 4 and result.forward_passes == 4 == den.calls
    default = fill(request(Length.exact(len(want))), ScriptedDenoiser([[[t] for t in want]]))
    assert default.steps == default.forward_passes == len(want)


def test_low_confidence_remasking_commits_the_most_confident_first():
    want = ids_of("p") + ids_of("(") + ids_of(")")
    confidences = [1.0, 9.0, 5.0]  # logits: the middle token is surest, then the last
    wishes = [[(t, c)] for t, c in zip(want, confidences, strict=True)]
    seen = []
    fill(request(Length.exact(3)), ScriptedDenoiser([wishes]),
         on_step=lambda s: seen.append(s.texts()[0]))
    assert seen == ["(", "()", "p()"]


def ids_text(ids):
    from support import tiny_tokenizer

    return tiny_tokenizer().decode(ids)


def test_semi_autoregressive_blocks_fill_left_to_right():
    want = ids_of("a") + ids_of("(") + ids_of(")") + ids_of("=")
    assert len(want) == 4
    wishes = [[(t, c)] for t, c in zip(want, [1.0, 2.0, 8.0, 9.0], strict=True)]
    seen = []
    fill(request(Length.exact(4), block_length=2), ScriptedDenoiser([wishes]),
         on_step=lambda s: seen.append(s.texts()[0]))
    # Without blocks the confident right half would come first; with blocks the left does.
    assert seen[1] == ids_text(want[:2])


def test_a_block_diffusion_model_decodes_its_own_blocks_left_to_right_by_default():
    want = ids_of("a") + ids_of("(") + ids_of(")") + ids_of("=")
    wishes = [[(t, c)] for t, c in zip(want, [1.0, 2.0, 8.0, 9.0], strict=True)]
    blocky = ScriptedDenoiser([wishes])
    # what an SDAR denoiser declares: the model block of each position (here: 2 masks each)
    blocky.block_ids = lambda x, positions: (positions - positions[0]) // 2
    seen = []
    fill(request(Length.exact(4)), blocky, on_step=lambda s: seen.append(s.texts()[0]))
    assert seen[1] == ids_text(want[:2])
    flat = []
    fill(request(Length.exact(4)), ScriptedDenoiser([wishes]),
         on_step=lambda s: flat.append(s.texts()[0]))
    assert flat[1] != ids_text(want[:2])


def test_threshold_commits_all_confident_tokens_at_once_and_never_zero():
    want = ids_of("a b c d")
    n = len(want)
    sure = fill(request(Length.exact(n), threshold=0.9),
                ScriptedDenoiser([[[(t, 30.0)] for t in want]]))
    assert sure.steps == 1 and sure.fills[0].text == "a b c d"
    unsure = fill(request(Length.exact(n), threshold=0.99),
                  ScriptedDenoiser([[[(t, -9.0)] for t in want]]))
    assert unsure.steps == n  # nothing passes the threshold, yet each step commits one


def test_same_seed_same_text_on_a_real_model(tiny_denoiser):
    req = request(Length.auto(16), temperature=1.0, seed=7)
    a, b = fill(req, tiny_denoiser), fill(req, tiny_denoiser)
    assert a.fills[0].token_ids == b.fills[0].token_ids
    others = {tuple(fill(request(Length.auto(16), temperature=1.0, seed=s), tiny_denoiser)
                    .fills[0].token_ids) for s in range(4)}
    assert len(others) > 1  # the seed really drives the sampling
    assert a.forward_passes == a.steps == 16


def test_top_k_one_is_greedy(tiny_denoiser):
    greedy = fill(request(Length.exact(8)), tiny_denoiser)
    topk = fill(request(Length.exact(8), temperature=1.5, top_k=1, seed=3), tiny_denoiser)
    assert greedy.fills[0].token_ids == topk.fills[0].token_ids


def test_cancel_stops_within_one_step_and_the_model_keeps_working():
    want = ids_of("a b c d e f")
    den = ScriptedDenoiser([[[t] for t in want]])
    n = len(want)
    with pytest.raises(Cancelled):
        fill(request(Length.exact(n)), den, should_cancel=lambda: den.calls >= 2)
    assert den.calls == 2
    den.runs = None
    assert fill(request(Length.exact(n)), den).fills[0].text == "a b c d e f"


def test_several_holes_share_one_canvas_and_one_pass_per_step():
    text = "a = [MASK:2]\nb = [MASK:2]\n"
    from infill.holes import find_markers

    den = ScriptedDenoiser([[[t] for t in ids_of("11")] , [[t] for t in ids_of("22")]])
    result = fill(InfillRequest(text, find_markers(text)), den)
    assert result.canvases == 1 and den.calls == result.steps == 4


def test_cached_and_plain_sampling_agree_where_the_cache_is_exact(tiny_denoiser):
    plain = fill(request(Length.exact(6)), tiny_denoiser)
    # Refreshing before every step makes each cached pass a full pass: same tokens exactly.
    refreshed = fill(request(Length.exact(6), cache=True, refresh_every=1), tiny_denoiser)
    assert refreshed.fills[0].token_ids == plain.fills[0].token_ids
    assert refreshed.forward_passes == plain.forward_passes == 6


def test_the_cache_is_filled_once_per_block(tiny_denoiser, monkeypatch):
    calls = {"prefill": 0, "cached": 0}
    real_prefill, real_cached = tiny_denoiser.prefill, tiny_denoiser.cached_logits

    def prefill(*a, **k):
        calls["prefill"] += 1
        return real_prefill(*a, **k)

    def cached(*a, **k):
        calls["cached"] += 1
        return real_cached(*a, **k)

    monkeypatch.setattr(tiny_denoiser, "prefill", prefill)
    monkeypatch.setattr(tiny_denoiser, "cached_logits", cached)
    result = fill(request(Length.exact(8), cache=True, block_length=4), tiny_denoiser)
    assert calls == {"prefill": 2, "cached": 6} and result.forward_passes == 8
