"""CAL: the hole's length found before decoding from the first step's calibrated confidence."""

import math

from support import ScriptedDenoiser, ids_of

from infill import calibrated
from infill.calibrated import LengthBias, hill_climb
from infill.engine import fill
from infill.types import Hole, InfillRequest, Length, LengthOptions

TEXT = "x = HOLE + y"
AT = TEXT.index("HOLE")
A, B, C = ids_of("a")[0], ids_of("b")[0], ids_of("c")[0]


def counting(curve):
    """A batch scorer over ``curve(length)`` that records every batch it is given."""
    batches: list[list[int]] = []

    def score(lengths: list[int]) -> list[float]:
        batches.append(list(lengths))
        return [curve(n) for n in lengths]

    return score, batches


def test_the_climb_finds_the_peak_above_the_start_and_stops_after_its_patience():
    score, batches = counting(lambda n: -abs(n - 13))
    best, scored, calls = hill_climb(score, start=8, lowest=1, highest=32, patience=4, batch=4)
    assert best == 13
    # Up in batches of four until four in a row miss (the batch holding 17 is cut short
    # there), then down from the start until four miss again.
    assert batches == [[8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20], [7, 6, 5, 4]]
    assert (scored, calls) == (1 + 4 + 4 + 1 + 4, 5)


def test_the_climb_goes_down_when_shorter_is_better_and_keeps_within_bounds():
    score, batches = counting(lambda n: -abs(n - 3))
    best, _, _ = hill_climb(score, start=8, lowest=1, highest=10, patience=4, batch=4)
    assert best == 3
    assert all(1 <= n <= 10 for b in batches for n in b)


def test_dividing_by_the_length_bias_moves_the_choice_to_the_true_peak():
    """Raw confidence falls with length for any text (the bias) and hides a small peak at
    12; divided by the bias curve the peak wins."""
    bias = LengthBias(a=0.0, b=0.0, c=1.0, d=0.08, e=0.2)
    peak = lambda n: 1.0 + (0.3 if n == 12 else 0.0)  # noqa: E731
    raw, _ = counting(lambda n: bias(n) * peak(n))
    calibrated_score, _ = counting(lambda n: bias(n) * peak(n) / bias(n))
    assert hill_climb(raw, 8, 1, 32)[0] < 12
    assert hill_climb(calibrated_score, 8, 1, 32)[0] == 12


def sure_for(n: int) -> ScriptedDenoiser:
    """A model sure of ``n`` tokens (the first a coin toss, the others certain) and unsure
    of anything after them (three-way ties): its mean confidence peaks at ``n``."""
    coin = [(A, 10.0), (B, 10.0)]
    sure = [(A, 10.0)]
    unsure = [(A, 10.0), (B, 10.0), (C, 10.0)]
    return ScriptedDenoiser([[coin] + [sure] * (n - 1) + [unsure] * 40])


def run(den, **length):
    request = InfillRequest(TEXT, [Hole(AT, AT + 4, Length.auto(32))], line_aware=False,
                            length=LengthOptions(policy="cal", **length))
    return fill(request, den)


def test_cal_fills_at_the_length_the_model_is_surest_of():
    result = run(sure_for(12))
    info = result.length[0]
    assert info["policy"] == "cal" and info["chosen"] == [12]
    assert len(result.fills[0].token_ids) == 12
    assert result.fills[0].trimmed == 32 - 12
    # One pass for the start, then batches of four up and down; then a step per token.
    assert info["probePasses"] >= 3 and result.forward_passes == info["probePasses"] + 12
    assert info["bias"].startswith("none")  # no curve for this model: said, not hidden


def test_a_fitted_curve_is_read_by_model_family(monkeypatch):
    monkeypatch.setattr(calibrated, "_curves", lambda: {
        "scripted": {"params": [0.0, 0.0, 0.0, 0.0, 2.0], "fitted_on": "a test's data"}})
    bias = calibrated.bias_for(sure_for(4))
    assert bias(7) == 2.0 and bias.source == "scripted: a test's data"
    assert math.isclose(calibrated.LengthBias()(30), 1.0)
