"""The embedded default's two views: the causal expert writes each hole's frontier, the
diffusion side (or the suffix) ends it, and healing never changes text outside a hole."""

import json
import shutil

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ScriptedDenoiser, ids_of

from infill.edits import apply_edits, edits_from_result
from infill.engine import fill
from infill.holes import validate_holes
from infill.models import load_denoiser
from infill.models.embedded.tiny import END_ID
from infill.models.embedded.two_views import TwoViewDenoiser
from infill.plan import plan
from infill.types import Hole, InfillRequest, Length, SamplingOptions


class ScriptedCausal:
    """A causal view that writes ``script`` token by token after the context it first
    reads, then says nothing in particular (a flat distribution)."""

    def __init__(self, script: list[int], vocab: int) -> None:
        self.script, self.vocab, self.start = script, vocab, None
        self.contexts: list[list[int]] = []

    def next_logits(self, context: list[int]) -> torch.Tensor:
        self.contexts.append(list(context))
        if self.start is None:
            self.start = len(context)
        out = torch.zeros(self.vocab)
        i = len(context) - self.start
        if i < len(self.script):
            out[self.script[i]] = 20.0
        return out


TEXT = "total = HOLE\nprint(total)\n"
AT = TEXT.index("HOLE")


def two_views(diffusion_wishes, fill_text: str, then: list[int] = (), text: str = TEXT):
    """The causal view writes the healed text, then ``fill_text``, then ``then``."""
    at = text.index("HOLE")
    diffusion = ScriptedDenoiser([[[(END_ID, -5.0)]] + list(diffusion_wishes)])
    den = TwoViewDenoiser(diffusion, ScriptedCausal([], diffusion.vocab))
    heal = plan(text, [Hole(at, at + 4, Length.auto(8))], den)[0].runs[0].heal
    assert heal and text[:at].endswith(heal)  # the plan healed the last token
    den.causal.script = ids_of(heal + fill_text) + list(then)
    return den


def run(den, options=None):
    req = InfillRequest(TEXT, [Hole(AT, AT + 4, Length.auto(8))],
                        options=options or SamplingOptions())
    return fill(req, den)


def test_the_causal_expert_decides_the_frontier_token():
    # The diffusion view wants "b b b ..." everywhere; the causal view writes "a + c".
    b = ids_of(" b")[0]
    den = two_views([[(b, 10.0)]] * 8, "a + c", ids_of("\n"))
    result = run(den)
    assert result.fills[0].text == "a + c"


def test_the_diffusion_side_decides_the_end():
    # The causal view would go on forever; the diffusion view is sure the hole ends at 2.
    a = ids_of(" a")[0]
    den = two_views([[(a, 1.0)], [(a, 1.0)], [(END_ID, 30.0)]] + [[(END_ID, 30.0)]] * 5,
                    "x y z w v u t s")
    result = run(den)
    kept = result.fills[0].token_ids
    assert result.fills[0].text == "x y" and result.fills[0].trimmed == 8 - len(kept)


def test_the_text_after_the_hole_ends_it_when_the_causal_view_would_write_it():
    # After "a" the causal view writes ")": the text that follows the hole. The diffusion
    # view is sure the hole goes on (it wants " b" everywhere): only the suffix ends it.
    text = "total = f(HOLE) + 1\n"
    at = text.index("HOLE")
    den = two_views([[(ids_of(" b")[0], 10.0)]] * 8, "a", ids_of(")") + ids_of(" b") * 8,
                    text=text)
    req = InfillRequest(text, [Hole(at, at + 4, Length.auto(8))], options=SamplingOptions())
    result = fill(req, den)
    assert result.fills[0].text == "a"
    assert apply_edits(text, edits_from_result(result)) == "total = f(a) + 1\n"


def test_every_sampler_setting_decodes_left_to_right_one_frontier_at_a_time():
    for options in (SamplingOptions(), SamplingOptions(threshold=0.9),
                    SamplingOptions(threshold=0.5, block_length=2)):
        den = two_views([[(END_ID, -5.0)]] * 8, "a + b", ids_of("\n"))
        result = run(den, options)
        assert result.fills[0].text == "a + b", options
        lengths = [len(c) for c in den.causal.contexts]
        assert lengths == sorted(lengths)  # each causal read extends the one before


def test_the_default_model_directory_loads_as_two_views(tiny_model_dir, tmp_path):
    model = tmp_path / "two-views"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["lacuna"]["causal_view"] = True
    (model / "config.json").write_text(json.dumps(config))
    den = load_denoiser(model, device="cpu")
    assert isinstance(den, TwoViewDenoiser) and den.heals
    # The causal view is the network run causally: its frontier logits are the base's.
    ids = den.tokenizer("x = 1\ny = ", add_special_tokens=False)["input_ids"]
    context = list(den.prefix_ids) + ids
    with torch.inference_mode():
        full = den.diffusion.model(torch.tensor([context]), causal=True)[0, -1]
    assert torch.allclose(den.causal.next_logits(context)[: len(full)], full, atol=1e-4)


_TWO_VIEWS = {}


def _tiny_two_views(tiny_model_dir, tmp_path_factory):
    if "den" not in _TWO_VIEWS:
        model = tmp_path_factory.mktemp("healing") / "m"
        shutil.copytree(tiny_model_dir, model)
        config = json.loads((model / "config.json").read_text())
        config["lacuna"]["causal_view"] = True
        (model / "config.json").write_text(json.dumps(config))
        _TWO_VIEWS["den"] = load_denoiser(model, device="cpu")
    return _TWO_VIEWS["den"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(alphabet="ab (\n\t\u00e9=", min_size=1, max_size=40), data=st.data())
def test_healing_never_changes_text_outside_the_hole(tiny_model_dir, tmp_path_factory, text,
                                                     data):
    den = _tiny_two_views(tiny_model_dir, tmp_path_factory)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    holes = validate_holes(text, [Hole(start, end, Length.auto(4))])
    canvas = plan(text, holes, den)[0]
    run = canvas.runs[0]
    # The context before the hole, then the healed text, are exactly the document.
    head = len(den.prefix_ids)
    context = den.tokenizer.decode(canvas.ids[head : run.positions[0]])
    assert context + run.heal == text[canvas.window[0] : start]
    result = fill(InfillRequest(text, holes, options=SamplingOptions(threshold=0.9)), den)
    filled = apply_edits(text, edits_from_result(result))
    assert filled == text[:start] + result.fills[0].text + text[end:]
