"""The server holds up against what real and hostile clients send: encoded URIs, bad
tokens and numbers, huge requests, reused versions, exits mid-fill; and it never answers
with a popup of Python exception text. One stdio server for the module, plus a few short
sessions of their own for exit and shutdown."""

from __future__ import annotations

import math
import time

import pytest
from lsp_support import Session, raw_request, rng, server_env
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_server.requests import MAX_HOLES, MAX_MASK_TOKENS

URI = "file:///work/robust.py"
DOC = "def add(a, b):\n    return [MASK]\n\nvalue = 1\n"
SLOW = {"budget": 300, "steps": 300}


@pytest.fixture(scope="module")
def lsp(tiny_model_dir, tmp_path_factory):
    s = Session(server_env(tiny_model_dir, tmp_path_factory.mktemp("robust")))
    s.start()
    s.initialize({"budget": 8, "inlineBudget": 8})
    s.open(URI, DOC)
    yield s
    assert s.stop() == 0


def fill(s: Session, uri=URI, **params):
    return s.request("lacuna/fill", {"textDocument": {"uri": uri}, **params})


def error_of(s: Session, method, params) -> JsonRpcException:
    try:
        got = raw_request(s, method, params)
    except JsonRpcException as e:
        return e
    raise AssertionError(f"{method} answered {got!r} instead of an error")


def reports(s: Session, token):
    return [v for tok, v, _ in s.progress if tok == token and v.get("kind") == "report"]


def popups(s: Session) -> list[str]:
    """Messages that show Python internals to the user."""
    words = ("Error in server", "Traceback", "Future", "KeyError", "object has no attribute",
             "unhashable")
    return [m.message for m in s.messages if any(w in m.message for w in words)]


def inline(s: Session, uri: str, line: int, character: int):
    return s.run(s.client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked))))


# -- defect 1: URIs as editors spell them -----------------------------------------------------


@pytest.mark.parametrize("uri", ["file:///tmp/my%20file.py", "file:///c%3A/x.py",
                                 "file:///tmp/%C3%A9t%C3%A9/caf%C3%A9.py"])
def test_percent_encoded_uris_fill_complete_and_resolve(lsp, uri):
    lsp.open(uri, DOC)
    out = fill(lsp, uri)
    assert out["edits"] and out["stats"]["version"] == 1
    assert inline(lsp, uri, 1, 11).items is not None
    (action,) = [a for a in lsp.run(lsp.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(line=1, character=11),
                              end=types.Position(line=1, character=17)),
            context=types.CodeActionContext(diagnostics=[])))) if "markers" in a.title]
    resolved = lsp.run(lsp.client.code_action_resolve_async(action))
    assert resolved.edit.document_changes[0].text_document.uri == uri
    # a change under the encoded spelling stops a fill asked under it
    fut = lsp.send("lacuna/fill", {"textDocument": {"uri": uri}, "workDoneToken": uri,
                                   "ranges": [rng(3, 0, 3, 0)], "options": SLOW})
    lsp.wait_until(lambda: reports(lsp, uri))
    lsp.change(uri, DOC + "# edited\n", version=2)
    with pytest.raises(JsonRpcException) as e:
        lsp.wait(fut)
    assert e.value.code == -32801


def test_did_change_on_an_unopened_uri_is_ignored_without_a_popup(lsp):
    lsp.change("file:///never/opened.py", "x = 1\n", version=3)
    assert fill(lsp)["edits"]  # the server kept serving
    assert not popups(lsp)


def test_did_change_on_an_unopened_uri_logs_one_info_line(caplog):
    import logging

    from lsprotocol import types

    from lsp_server.server import build_server

    server = build_server()
    initialize = server.protocol.lsp_initialize(
        types.InitializeParams(capabilities=types.ClientCapabilities()))
    list(initialize)  # pygls' handler is a generator: run it to the end
    caplog.set_level(logging.INFO)
    params = types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri="file:///never/opened.py",
                                                            version=3),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="x = 1\n")])
    assert list(server.protocol.lsp_text_document__did_change(params)) == []
    (line,) = [r for r in caplog.records if "never/opened.py" in r.getMessage()]
    assert line.levelno == logging.INFO and line.exc_info is None


# -- defect 3: every job completes or is cancelled --------------------------------------------


def test_bad_progress_tokens_are_refused_before_any_work(lsp):
    for bad in ({"a": 1}, [1], 1.5, True):
        e = error_of(lsp, "lacuna/fill", {"textDocument": {"uri": URI}, "workDoneToken": bad,
                                          "partialResultToken": "never-1", "options": SLOW})
        assert e.code == -32602 and "workDoneToken" in e.message
    e = error_of(lsp, "lacuna/fill", {"textDocument": {"uri": URI},
                                      "partialResultToken": {"a": 1}})
    assert e.code == -32602 and "partialResultToken" in e.message
    assert fill(lsp)["edits"]  # the worker is FIFO: a queued bad job would have run first
    assert not [v for tok, v, _ in lsp.progress if tok == "never-1"]
    assert not popups(lsp)


def test_bad_requests_cancellations_and_a_failed_load_then_a_working_fill(lsp, tiny_model_dir):
    error_of(lsp, "lacuna/fill", {"textDocument": {"uri": URI}, "workDoneToken": {"a": 1}})
    error_of(lsp, "lacuna/fill", {"textDocument": {"uri": URI}, "options": {"steps": "x"}})
    fut = lsp.send("lacuna/fill", {"textDocument": {"uri": URI}, "workDoneToken": "c-1",
                                   "ranges": [rng(3, 0, 3, 0)], "options": SLOW}, "cancel-me")
    lsp.wait_until(lambda: reports(lsp, "c-1"))
    lsp.cancel("cancel-me")
    with pytest.raises(JsonRpcException) as e:
        lsp.wait(fut)
    assert e.value.code == -32800
    lsp.configure({"model": "/nonexistent/model"})
    with pytest.raises(JsonRpcException) as e:
        fill(lsp)  # no workDoneToken: the server creates its own progress, then fails early
    assert e.value.code == -32803
    lsp.configure({"model": str(tiny_model_dir)})
    assert fill(lsp)["edits"]
    time.sleep(0.3)  # a late popup would arrive by now
    assert not popups(lsp)


def _session(tiny_model_dir, tmp_path) -> Session:
    s = Session(server_env(tiny_model_dir, tmp_path))
    s.start()
    s.initialize()
    s.open(URI, DOC)
    return s


def test_shutdown_cancels_a_running_fill_and_exit_stops_cleanly(tiny_model_dir, tmp_path):
    s = _session(tiny_model_dir, tmp_path)
    fut = s.send("lacuna/fill", {"textDocument": {"uri": URI}, "workDoneToken": "s-1",
                                 "ranges": [rng(3, 0, 3, 0)], "options": SLOW})
    s.wait_until(lambda: reports(s, "s-1"))
    s.run(s.client.shutdown_async(None), 15)
    with pytest.raises(JsonRpcException) as e:
        s.wait(fut, 15)
    assert e.value.code == -32800
    assert _exit(s) == 0


def _exit(s: Session) -> int | None:
    """Send ``exit`` now and return the server's exit status."""
    server = s.client._server
    s.client.exit(None)
    try:
        return s.run(server.wait(), 20)
    finally:
        s.run(s.client.stop(), 15)
        s.loop.close()


def test_exit_during_a_running_fill_joins_the_worker(tiny_model_dir, tmp_path):
    s = _session(tiny_model_dir, tmp_path)
    s.send("lacuna/fill", {"textDocument": {"uri": URI}, "workDoneToken": "x-1",
                           "ranges": [rng(3, 0, 3, 0)], "options": SLOW})
    s.wait_until(lambda: reports(s, "x-1"))
    code = _exit(s)  # no shutdown first: the fill is still running
    assert code in (0, 1)  # not 134 / -6 (abort while the model thread ran)


# -- defect 2: bounded work -----------------------------------------------------------------


def test_one_request_is_bounded_by_named_limits(lsp):
    many = "\n".join(f"x{i} = [MASK]" for i in range(200)) + "\n"
    lsp.open("file:///work/many.py", many)
    e = error_of(lsp, "lacuna/fill", {"textDocument": {"uri": "file:///work/many.py"}})
    assert e.code == -32602 and "MAX_HOLES" in e.message and str(MAX_HOLES) in e.message
    started = time.monotonic()
    e = error_of(lsp, "lacuna/fill", {"textDocument": {"uri": URI},
                                      "ranges": [rng(3, 0, 3, 0)] * 10_000})
    assert e.code == -32602 and "MAX_HOLES" in e.message
    assert time.monotonic() - started < 5
    ranges = [rng(i, 0, i, 0) for i in range(4)]
    e = error_of(lsp, "lacuna/fill", {"textDocument": {"uri": URI}, "ranges": ranges,
                                      "options": {"budget": MAX_MASK_TOKENS // 2}})
    assert e.code == -32602 and "MAX_MASK_TOKENS" in e.message


# -- defect 6: validation answers, not internal errors ----------------------------------------


def test_out_of_range_numbers_and_bad_text_are_invalid_params(lsp):
    doc = {"uri": URI}
    cases = {
        "tiny temperature": {"textDocument": doc, "options": {"temperature": 1e-300}},
        "NaN temperature": {"textDocument": doc, "options": {"temperature": math.nan}},
        "inf temperature": {"textDocument": doc, "options": {"temperature": math.inf}},
        "seed 2**64": {"textDocument": doc, "options": {"seed": 2**64}},
        "negative seed": {"textDocument": doc, "options": {"seed": -1}},
        "character 2**31": {"textDocument": doc, "ranges": [rng(0, 2**31, 0, 2**31)]},
        "character 2**63": {"textDocument": doc, "ranges": [rng(0, 0, 0, 2**63)]},
        "line 2**31": {"textDocument": doc, "ranges": [rng(2**31, 0, 2**31, 0)]},
        "negative line": {"textDocument": doc, "ranges": [rng(-1, 0, 0, 0)]},
    }
    for name, params in cases.items():
        e = error_of(lsp, "lacuna/fill", params)
        assert e.code == -32602, (name, e.code, e.message)
        assert not e.data or "File " not in str(e.data), name
    for line, character in ((0, 2**31), (2**31, 0), (0, 2**63)):
        e = error_of(lsp, "textDocument/inlineCompletion", {
            "textDocument": doc, "position": {"line": line, "character": character},
            "context": {"triggerKind": 1}})
        assert e.code == -32602, (line, character, e.message)
    lsp.open("file:///work/surrogate.py", "s = '\ud83d' [MASK]\n")
    e = error_of(lsp, "lacuna/fill", {"textDocument": {"uri": "file:///work/surrogate.py"}})
    assert e.code == -32602 and "surrogate" in e.message
    assert fill(lsp)["edits"]
    assert not popups(lsp)


# -- defect 10: staleness by content, not version number --------------------------------------


def _slow(s: Session, uri: str, token: str):
    fut = s.send("lacuna/fill", {"textDocument": {"uri": uri}, "workDoneToken": token,
                                 "ranges": [rng(0, 0, 0, 0)], "options": SLOW})
    s.wait_until(lambda: reports(s, token))
    return fut


def test_a_reused_version_or_a_reopen_makes_an_in_flight_fill_stale(lsp):
    uri = "file:///work/versions.py"
    lsp.open(uri, DOC, version=1)
    fut = _slow(lsp, uri, "v-same")
    lsp.change(uri, "other = 2\n" + DOC, version=1)  # same version, new text
    with pytest.raises(JsonRpcException) as e:
        lsp.wait(fut)
    assert e.value.code == -32801
    fut = _slow(lsp, uri, "v-reopen")
    lsp.client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    lsp.open(uri, "reopened = 3\n" + DOC, version=1)
    with pytest.raises(JsonRpcException) as e:
        lsp.wait(fut)
    assert e.value.code == -32801


# -- issue 22: say which model serves the client ----------------------------------------------


def test_progress_and_stats_name_the_model_and_warn_once_about_the_test_model(
        tiny_model_dir, tmp_path):
    s = _session(tiny_model_dir, tmp_path)
    try:
        out = s.request("lacuna/fill", {"textDocument": {"uri": URI}, "workDoneToken": "m-1"})
        fill(s, workDoneToken="m-2")
        first = [v for tok, v, _ in s.progress if tok == "m-1" and v.get("kind") == "report"][0]
        assert str(tiny_model_dir) in first["message"] and "random test model" in first["message"]
        assert str(tiny_model_dir) in out["stats"]["model"]["description"]
        begin = [v for tok, v, _ in s.progress if tok == "m-2" and v.get("kind") == "begin"][0]
        assert str(tiny_model_dir) in begin["message"]  # loaded now: named from the start
        warned = [m for m in s.messages if "random test model" in m.message]
        assert len(warned) == 1 and warned[0].type == types.MessageType.Warning
    finally:
        assert s.stop() == 0


# -- defect 2: ghost text never waits behind an explicit fill ---------------------------------


class SlowDenoiser:
    """The tiny model, a fixed delay per forward pass: a stand-in for a big model."""

    def __init__(self, inner, delay: float) -> None:
        self._inner, self._delay = inner, delay

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def logits(self, ids, **kwargs):
        time.sleep(self._delay)
        return self._inner.logits(ids, **kwargs)


def _worker_request(budget: int, steps: int):
    from infill.types import Hole, InfillRequest, Length, SamplingOptions

    return InfillRequest(text="def add(a, b):\n    return a + b\n" * 4,
                         holes=[Hole(19, 31, Length.auto(budget))],
                         options=SamplingOptions(steps=steps))


def test_ghost_text_preempts_a_running_explicit_fill_which_then_reruns(tiny_denoiser):
    from lsp_server.config import Settings
    from lsp_server.worker import MAX_RESTARTS, Worker

    worker = Worker(lambda settings: (SlowDenoiser(tiny_denoiser, 0.05), {"path": "slow"}))
    try:
        steps: list[int] = []
        explicit = worker.submit(_worker_request(64, 64), Settings(), on_step=lambda i:
                                 steps.append(i.step))
        deadline = time.monotonic() + 10
        while len(steps) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(steps) >= 3, "the explicit fill never started"
        started = time.monotonic()
        ghost = worker.submit(_worker_request(2, 2), Settings(), inline=True)
        assert ghost.future.result(10).fills
        waited = time.monotonic() - started
        assert not explicit.future.done()  # the ghost text did not wait for all 64 steps
        assert waited < 64 * 0.05
        assert explicit.future.result(30).fills  # rerun from the start, to the end
        assert explicit.restarts == 1 <= MAX_RESTARTS
        assert steps.count(1) == 2  # step 1 ran twice: the rerun started over
    finally:
        worker.close()


# -- defect 13: expected answers are one info line ----------------------------------------


def test_expected_answers_log_one_info_line_and_real_failures_keep_their_traceback(caplog):
    import logging

    from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams

    from lsp_server.server import build_server

    build_server()  # installs the filter on pygls' loggers
    pygls_log = logging.getLogger("pygls.protocol.json_rpc")
    caplog.set_level(logging.INFO)
    for exc in (JsonRpcInvalidParams(message="ranges[0]: past the end"),
                JsonRpcInternalError(message="boom")):
        try:
            raise exc
        except Exception:
            pygls_log.exception('Exception occurred for message "%s"', 7)
    expected, real = caplog.records[-2:]
    assert expected.levelno == logging.INFO and expected.exc_info is None
    assert "\n" not in expected.getMessage() and "past the end" in expected.getMessage()
    assert real.levelno == logging.ERROR and real.exc_info is not None
    # pygls hands a handler's answer to the server's error hook wrapped in its own error
    from pygls.exceptions import FeatureRequestError

    from lsp_server.protocol import CONTENT_MODIFIED, error

    try:
        try:
            raise error(CONTENT_MODIFIED, "x.py is at version 6, not 5")
        except Exception as stale:
            raise FeatureRequestError("lacuna/fill") from stale
    except Exception as wrapped:
        build_server().report_server_error(wrapped, "lacuna_fill")
    (stale_line,) = caplog.records[-1:]
    assert stale_line.levelno == logging.INFO and stale_line.exc_info is None
    assert "version 6, not 5" in stale_line.getMessage()


# -- defect 7: nothing a client sends becomes an exception popup ------------------------------


def test_odd_envelopes_and_ids_make_no_popup(lsp):
    send = lsp.client.protocol._send_data
    for message in ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "lacuna/fill", "params": {}},
                    {"jsonrpc": "2.0", "id": [1], "method": "textDocument/codeAction",
                     "params": {}},
                    {"id": 9, "method": "lacuna/fill", "params": {}},
                    {"jsonrpc": "2.0", "id": "m5", "method": 5, "params": {}},
                    {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {}}):
        send(message)
    assert fill(lsp)["edits"]
    time.sleep(0.3)
    assert not popups(lsp)
