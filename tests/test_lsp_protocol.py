"""The real server over stdio, driven by pygls' own client: one server for the module."""

from __future__ import annotations

import time

import pytest
from lsp_support import Session, rng, server_env
from lsprotocol import types
from pygls.exceptions import JsonRpcException

URI = "file:///work/demo.py"
DOC = (
    "def add(a, b):\n"
    "    pass\n"
    "\n"
    "value = [MASK]\n"
    "label = '🙂 漢字 [MASK]'\n"
)


def u16(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


@pytest.fixture(scope="module")
def lsp(tiny_model_dir, tmp_path_factory):
    s = Session(server_env(tiny_model_dir, tmp_path_factory.mktemp("lsp")))
    s.start()
    s.init_result = s.initialize({"budget": 8, "inlineBudget": 8})
    s.open(URI, DOC)
    yield s
    s.exit_code = s.stop()
    assert s.exit_code == 0


def code_actions(s: Session, uri: str, r: dict):
    return s.run(s.client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(**r["start"]), end=types.Position(**r["end"])),
        context=types.CodeActionContext(diagnostics=[]))))


def resolve(s: Session, action):
    return s.run(s.client.code_action_resolve_async(action))


def fill(s: Session, uri=URI, **params):
    return s.request("lacuna/fill", {"textDocument": {"uri": uri}, **params})


def test_capabilities(lsp):
    caps = lsp.init_result.capabilities
    assert caps.code_action_provider.resolve_provider is True
    assert caps.inline_completion_provider is not None
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Full
    assert lsp.init_result.server_info.name == "lacuna"


def test_code_actions_listed_instantly_and_resolved(lsp):
    t = time.monotonic()
    actions = code_actions(lsp, URI, rng(1, 4, 1, 8))
    listed = time.monotonic() - t
    titles = [a.title for a in actions]
    assert titles == ["Fill selection", "Fill [MASK] markers (2)", "Write function body of add()"]
    assert all(a.edit is None for a in actions)  # lazily resolved
    assert listed < 2.0
    marker_col = u16("label = '🙂 漢字 ")
    expected = {
        "Fill selection": [(1, 4, 1, 8)],
        "Fill [MASK] markers (2)": [(3, 8, 3, 14), (4, marker_col, 4, marker_col + 6)],
        "Write function body of add()": [(1, 4, 1, 8)],
    }
    for action in actions:
        before = len(lsp.progress)
        done = resolve(lsp, action)
        (change,) = done.edit.document_changes
        assert change.text_document.uri == URI and change.text_document.version == 1
        got = [(e.range.start.line, e.range.start.character, e.range.end.line,
                e.range.end.character) for e in change.edits]
        assert got == expected[action.title]
        # server-initiated work-done progress: created without holding the fill up, then
        # begin, reports, end (a fast fill may end before the client answered the create)
        kinds = [v["kind"] for _, v, _ in lsp.progress[before:]]
        if kinds:
            assert kinds[0] == "begin" and kinds[-1] == "end"
        if action is actions[0]:  # the first fill loads the model: plenty of time
            assert "report" in kinds
    assert len(lsp.created_tokens) >= 3
    # no markers, no selection, not in a function: nothing to offer
    assert code_actions(lsp, URI, rng(2, 0, 2, 0)) is not None  # markers still offered
    lsp.open("file:///work/plain.txt", "nothing here", language="plaintext")
    assert code_actions(lsp, "file:///work/plain.txt", rng(0, 0, 0, 0)) is None


def test_fill_request_progress_partial_results_and_utf16(lsp):
    col = u16("label = '🙂 漢字 ")
    before = len(lsp.progress)
    out = fill(lsp, version=1, ranges=[rng(4, col, 4, col + 6)], options={"steps": 4},
               workDoneToken="work-1", partialResultToken="partial-1")
    (edit,) = out["edits"]
    assert edit["range"] == rng(4, col, 4, col + 6)
    stats = out["stats"]
    assert stats["version"] == 1 and stats["language"] == "python"
    assert stats["steps"] >= 1 and stats["model"]["family"] == "lacuna"
    seen = lsp.progress[before:]
    work = [v for tok, v, _ in seen if tok == "work-1"]
    partial = [v for tok, v, _ in seen if tok == "partial-1"]
    assert work[0]["kind"] == "begin" and work[-1]["kind"] == "end"
    reports = [v for v in work if v["kind"] == "report"]
    assert len(reports) == stats["steps"] == len(partial)  # one report per denoising step
    assert partial[-1]["texts"] == [edit["newText"]]  # the text so far, finally the fill
    if stats["constraintSatisfied"] is False:  # surfaced as a warning, edits still returned
        lsp.wait_until(lambda: any("does not parse" in m.message for m in lsp.messages))
    # the same request and seed give the same text
    again = fill(lsp, version=1, ranges=[rng(4, col, 4, col + 6)], options={"steps": 4})
    assert again["edits"] == out["edits"]


def test_inline_completion_and_stale_requests_dropped(lsp):
    def inline(line, character):
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic))
        return lsp.send(types.TEXT_DOCUMENT_INLINE_COMPLETION, params)

    single = lsp.wait(inline(3, 8))
    items = single.items
    assert len(items) == 1 and items[0].insert_text
    assert items[0].range.start == items[0].range.end == types.Position(line=3, character=8)
    # a newer request supersedes an older one: the old answers an empty list at once
    lsp.configure({"inlineBudget": 120, "steps": 120})
    first = inline(3, 8)
    second = inline(4, 3)
    old = lsp.wait(first)
    assert not old.items
    new = lsp.wait(second)
    assert len(new.items) == 1
    lsp.configure({"inlineBudget": 8, "steps": None})


def _slow_fill(lsp, token, msg_id):
    return lsp.send("lacuna/fill", {
        "textDocument": {"uri": URI}, "ranges": [rng(2, 0, 2, 0)], "workDoneToken": token,
        "options": {"budget": 300, "steps": 300}}, msg_id=msg_id)


def _reports(lsp, token):
    return [v for tok, v, _ in lsp.progress if tok == token and v["kind"] == "report"]


def test_cancel_mid_fill_stops_the_sampler_and_keeps_serving(lsp):
    loads_before = fill(lsp, version=1, ranges=[rng(2, 0, 2, 0)])["stats"]["model"]["loads"]
    fut = _slow_fill(lsp, "slow-1", "slow-request-1")
    lsp.wait_until(lambda: len(_reports(lsp, "slow-1")) >= 2)
    # the event loop is free while the model runs: other requests are answered
    assert code_actions(lsp, URI, rng(1, 4, 1, 8))
    lsp.cancel("slow-request-1")
    with pytest.raises(JsonRpcException) as e:
        lsp.wait(fut)
    assert e.value.code == -32800
    at_cancel = len(_reports(lsp, "slow-1"))
    assert [v["kind"] for tok, v, _ in lsp.progress if tok == "slow-1"][-1] == "end"
    # cancelling the progress (the client's progress UI) stops the fill the same way
    fut = _slow_fill(lsp, "slow-2", "slow-request-2")
    lsp.wait_until(lambda: len(_reports(lsp, "slow-2")) >= 1)
    lsp.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(
        token="slow-2"))
    with pytest.raises(JsonRpcException) as e:
        lsp.wait(fut)
    assert e.value.code == -32800
    after = fill(lsp, version=1, ranges=[rng(2, 0, 2, 0)])  # the next request works
    assert after["stats"]["model"]["loads"] == loads_before  # the model stayed loaded
    assert len(_reports(lsp, "slow-1")) == at_cancel < 300


def test_stale_versions_get_content_modified(lsp):
    uri = "file:///work/stale.py"
    lsp.open(uri, "x = [MASK]\n", version=5)
    with pytest.raises(JsonRpcException) as e:
        fill(lsp, uri, version=4)
    assert e.value.code == -32801 and "version 5, not 4" in e.value.message
    (action,) = code_actions(lsp, uri, rng(0, 0, 0, 0))
    # the document changes while a fill runs: the fill stops, no edits come back
    fut = lsp.send("lacuna/fill", {"textDocument": {"uri": uri}, "version": 5,
                                   "ranges": [rng(0, 0, 0, 0)], "workDoneToken": "stale-1",
                                   "options": {"budget": 300, "steps": 300}})
    lsp.wait_until(lambda: len(_reports(lsp, "stale-1")) >= 1)
    lsp.change(uri, "x = [MASK]\ny = 2\n", version=6)
    with pytest.raises(JsonRpcException) as e:
        lsp.wait(fut)
    assert e.value.code == -32801 and "changed while the fill ran" in e.value.message
    assert len(_reports(lsp, "stale-1")) < 300
    # an action offered at version 5 is not resolved against version 6
    with pytest.raises(JsonRpcException) as e:
        resolve(lsp, action)
    assert e.value.code == -32801 and "ask for code actions again" in e.value.message
    assert fill(lsp, uri, version=6)["stats"]["version"] == 6


def test_unknown_language_fills_unconstrained_unless_required(lsp):
    uri = "file:///work/notes.kl"
    lsp.open(uri, "def f(x):\n    pass\nqapla' [MASK]\n", language="klingon")
    out = fill(lsp, uri)
    assert out["stats"]["constraint"].startswith("unavailable")
    assert "'klingon'" in out["stats"]["constraint"] or "no syntax" in out["stats"]["constraint"]
    assert out["stats"]["constraintSatisfied"] is None
    with pytest.raises(JsonRpcException) as e:
        fill(lsp, uri, options={"syntaxConstraint": "require"})
    assert e.value.code == -32602 and "required but is unavailable" in e.value.message
    titles = [a.title for a in code_actions(lsp, uri, rng(1, 4, 1, 4))]
    assert titles == ["Fill [MASK] markers (1)"]  # no body finder for this language


def test_model_load_error_then_recovery(lsp, tiny_model_dir):
    lsp.configure({"model": "/nonexistent/model"})
    with pytest.raises(JsonRpcException) as e:
        fill(lsp, version=1)
    assert e.value.code == -32803 and "/nonexistent/model" in e.value.message
    lsp.configure({"model": str(tiny_model_dir)})
    assert fill(lsp, version=1)["edits"]


def test_bad_settings_are_reported(lsp):
    lsp.configure({"lacuna": {"steps": -1, "colour": "red"}})
    lsp.wait_until(lambda: any("colour" in m.message for m in lsp.messages))
    msg = [m for m in lsp.messages if "colour" in m.message][-1]
    assert "steps must be at least 1" in msg.message and msg.type == types.MessageType.Warning
    assert fill(lsp, version=1)["edits"]  # previous settings still in force
