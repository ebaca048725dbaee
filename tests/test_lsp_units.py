"""The server's parts without a protocol: settings, the body rule, the model worker."""

import threading
import time

import pytest

from grammars.functions import find_function_body
from infill.models import ModelLoadError, load_denoiser
from infill.types import Cancelled, Hole, InfillRequest, Length, SamplingOptions
from lsp_server.config import Settings, merge
from lsp_server.worker import Worker

# -- settings ---------------------------------------------------------------------------------


def test_settings_merge_camel_case_and_wrapper():
    s, problems = merge(Settings(), {"lacuna": {"model": "/m", "steps": 8, "syntaxConstraint":
                                                False, "contextTokens": 100, "marker": "<??>"}})
    assert problems == []
    assert (s.model, s.steps, s.syntax_constraint, s.context_tokens, s.marker) == (
        "/m", 8, False, 100, "<??>")


def test_settings_reject_bad_values_key_by_key():
    s, problems = merge(Settings(steps=4), {"steps": 0, "quant": "int3", "colour": "red",
                                             "threshold": 0.9})
    assert s.steps == 4 and s.quant == "auto" and s.threshold == 0.9
    assert any("steps must be at least 1" in p for p in problems)
    assert any("quant must be one of" in p for p in problems)
    assert any("unknown setting 'colour'" in p for p in problems)
    assert merge(Settings(), "nonsense")[1] == ["settings must be an object, got str"]


# -- where "Write function body" puts its hole (grammars.functions, the one finder) ----------


def _body(marked: str, language: str = "python"):
    offset = marked.index("|")
    text = marked.replace("|", "", 1)
    b = find_function_body(text, language, offset)
    return None if b is None else (text[b.start : b.end], b.lead)


@pytest.mark.parametrize(
    ("marked", "hole"),
    [
        ("def f(x):\n    |pass\n", ("pass", "")),
        ("def f(x): ...|\n", ("...", "\n    ")),
        ("class A:\n    def f(self,\n          y):\n        TODO|\n    def g(self):\n"
         "        return 1\n", ("TODO", "")),
        ('def f(x):\n    """Doc."""\n    raise NotImplementedError|\n',
         ("raise NotImplementedError", "")),
        ("async def f(x) -> int:\n    # TODO|\n", ("", "\n    ")),  # the comment stays
        ("def f(x):\n    return x|\n", None),
        ("x = 1|\n", None),
        ("function f(a) {|}\n", ("", "\n  ")),
    ],
)
def test_the_body_hole_covers_the_placeholder_or_opens_an_empty_body(marked, hole):
    language = "javascript" if marked.startswith("function") else "python"
    assert _body(marked, language) == hole


def test_no_body_hole_without_a_grammar():
    assert find_function_body("def f(x):\n    pass\n", "klingon", 14) is None
    assert find_function_body("", "python", 0) is None


# -- the worker ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loads():
    return []


@pytest.fixture(scope="module")
def worker(tiny_model_dir, loads):
    def loader(settings):
        loads.append(settings.model_key())
        if settings.model == "broken":
            raise ModelLoadError("broken: no config.json")
        return load_denoiser(tiny_model_dir, device="cpu"), {"path": str(tiny_model_dir)}

    w = Worker(loader)
    yield w
    w.close()


def _request(budget=8, steps=None):
    return InfillRequest(text="def add(a, b):\n    return a + b\n" * 4,
                         holes=[Hole(19, 31, Length.auto(budget))],
                         options=SamplingOptions(steps=steps))


def test_worker_loads_once_and_reloads_on_model_change(worker, loads):
    a = worker.submit(_request(), Settings()).future.result(30)
    b = worker.submit(_request(), Settings(steps=2)).future.result(30)
    assert a.fills[0].text and b.steps >= 1
    assert len(loads) == 1  # sampling settings do not reload the model
    bad = worker.submit(_request(), Settings(model="broken"))
    with pytest.raises(ModelLoadError, match="broken"):
        bad.future.result(30)
    ok = worker.submit(_request(), Settings()).future.result(30)  # still serving
    assert ok.fills and len(loads) == 3


def test_worker_cancel_stops_within_one_step(worker):
    started = threading.Event()
    seen: list[int] = []
    job_box = {}

    def on_step(info):
        seen.append(info.step)
        if info.step == 3:
            job_box["job"].cancel()
        started.set()

    job = worker.submit(_request(budget=200, steps=200), Settings(), on_step=on_step)
    job_box["job"] = job
    with pytest.raises(Cancelled):
        job.future.result(60)
    assert job.reason == "cancelled"
    assert max(seen) == 3  # the step after the cancel never ran
    # queued jobs cancelled before they start never touch the model
    blocker = worker.submit(_request(budget=64, steps=64), Settings())
    queued = worker.submit(_request(), Settings())
    queued.cancel("superseded")
    blocker.future.result(60)
    with pytest.raises(Cancelled, match="superseded"):
        queued.future.result(5)
    assert not queued.started.is_set()
    t = time.monotonic()
    assert worker.submit(_request(), Settings()).future.result(30).fills
    assert time.monotonic() - t < 30


def test_default_loader_resolves_and_quantizes(tiny_model_dir):
    from lsp_server import worker

    denoiser, info = worker.load(Settings(model=str(tiny_model_dir), device="cpu"))
    assert info["path"] == str(tiny_model_dir) and info["family"] == "lacuna"
    q, qinfo = worker.load(Settings(model=str(tiny_model_dir), device="cpu",
                                    quant="torch-int8"))
    assert qinfo["quant"] == "torch-int8" and getattr(q, "quant_report", None) is not None
    with pytest.raises(ModelLoadError):
        worker.load(Settings(model=str(tiny_model_dir / "missing"), device="cpu"))


def test_ghost_text_is_latency_first_and_explicit_fills_follow_the_settings():
    from lsp_server.config import Settings, merge
    from lsp_server.requests import sampling

    settings, problems = merge(Settings(), {"lengthPolicy": "grow", "threshold": 0.5,
                                            "cache": False})
    assert problems == [] and settings.length_policy == "grow"
    inline, explicit = sampling(settings.for_ghost_text()), sampling(settings)
    assert inline.threshold == 0.9 and inline.cache
    assert explicit.threshold == 0.5 and not explicit.cache
    _, problems = merge(Settings(), {"lengthPolicy": "guess"})
    assert problems and "lengthPolicy" in problems[0]


def test_ghost_text_takes_the_inline_preset_and_explicit_fills_keep_the_length_policy():
    from types import SimpleNamespace

    from lsp_server.requests import make_request

    doc = SimpleNamespace(language_id="python")
    hole = [Hole(4, 4, Length.auto(16))]
    settings, problems = merge(Settings(), {"inlineContext": 64})
    assert problems == []
    inline = make_request(doc, "x = \n", hole, settings.for_ghost_text(), constrain=False,
                          ghost=True)
    explicit = make_request(doc, "x = \n", hole, settings, constrain=False)
    # auto: the model's own policy; for a model with none, ghost text grows its hole.
    assert inline.length.policy == "auto" and inline.length.fallback == "grow"
    assert inline.context_tokens == 64
    assert explicit.length.policy == "auto" and explicit.length.fallback == "absorb"
    assert explicit.context_tokens is None
    settings, problems = merge(settings, {"inlineLengthPolicy": "best_of"})
    assert problems == []
    best_of = make_request(doc, "x = \n", hole, settings.for_ghost_text(), constrain=False)
    assert best_of.length.policy == "best_of"
    _, problems = merge(Settings(), {"inlineLengthPolicy": "guess"})
    assert problems and "inlineLengthPolicy" in problems[0]
    # Syntax remasking is for explicit fills; ghost text opts in.
    assert Settings().syntax_constraint
    assert not Settings().for_ghost_text().syntax_constraint
    settings, problems = merge(Settings(), {"inlineSyntaxConstraint": True,
                                            "syntaxConstraint": False})
    assert problems == []
    assert settings.for_ghost_text().syntax_constraint and not settings.syntax_constraint
    # The preset leaves the model alone: ghost text and fills share the loaded model.
    assert settings.for_ghost_text().model_key() == settings.model_key()
