"""Bad input, all in one server session: each gets a JSON-RPC error with a clear message,
and the server keeps serving (a valid fill at the end; then shutdown and exit).

This session runs over TCP (``--tcp HOST:PORT``); the protocol tests cover stdio."""

from __future__ import annotations

from lsp_support import Session, raw_request, rng, server_env
from pygls.exceptions import JsonRpcException

URI = "file:///work/bad.py"
TEXT = "x = [MASK]\ns = '🙂'\n"


def error_of(s: Session, method: str, params) -> tuple[int, str]:
    try:
        got = raw_request(s, method, params)
    except JsonRpcException as e:
        return e.code, e.message
    raise AssertionError(f"{method} answered {got!r} instead of an error")


def test_bad_input_in_one_session(tiny_model_dir, tmp_path):
    s = Session(server_env(tiny_model_dir, tmp_path))
    s.start_tcp()
    try:
        errors = {}
        # before initialize
        errors["before initialize"] = error_of(s, "lacuna/fill", {"textDocument": {"uri": URI}})
        s.initialize()
        s.open(URI, TEXT)
        s.open("file:///work/marks.py", "y = [MASK:x]\n")
        s.open("file:///work/odd.xyz", "a [MASK] b", language="no-such-language")
        fill = "lacuna/fill"
        doc = {"uri": URI}
        cases = {
            "unknown uri": (fill, {"textDocument": {"uri": "file:///nowhere.py"}}),
            "line past the end": (fill, {"textDocument": doc, "ranges": [rng(0, 0, 9, 0)]}),
            "character past the end": (fill, {"textDocument": doc, "ranges": [rng(0, 0, 0, 99)]}),
            "inside a surrogate pair": (fill, {"textDocument": doc, "ranges": [rng(1, 5, 1, 6)]}),
            "overlapping ranges": (fill, {"textDocument": doc,
                                          "ranges": [rng(0, 0, 0, 5), rng(0, 3, 0, 8)]}),
            "reversed range": (fill, {"textDocument": doc, "ranges": [rng(0, 5, 0, 1)]}),
            "unknown language": (fill, {"textDocument": {"uri": "file:///work/odd.xyz"},
                                        "options": {"syntaxConstraint": "require"}}),
            "params not an object": (fill, [1, 2]),
            "ranges not a list": (fill, {"textDocument": doc, "ranges": "0:3"}),
            "range without end": (fill, {"textDocument": doc, "ranges": [{"start": {
                "line": 0, "character": 0}}]}),
            "unknown option": (fill, {"textDocument": doc, "options": {"colour": 1}}),
            "bad option value": (fill, {"textDocument": doc, "options": {"steps": 0}}),
            "duplicate ranges": (fill, {"textDocument": doc,
                                        "ranges": [rng(0, 0, 0, 0), rng(0, 0, 0, 0)]}),
            "bad marker count": (fill, {"textDocument": {"uri": "file:///work/marks.py"}}),
            "codeAction without range": ("textDocument/codeAction",
                                         {"textDocument": doc, "context": {"diagnostics": []}}),
            "codeAction unknown uri": ("textDocument/codeAction",
                                       {"textDocument": {"uri": "file:///nowhere.py"},
                                        "range": rng(0, 0, 0, 0),
                                        "context": {"diagnostics": []}}),
            "inline position past the end": ("textDocument/inlineCompletion", {
                "textDocument": doc, "position": {"line": 7, "character": 0},
                "context": {"triggerKind": 1}}),
            "resolve a foreign action": ("codeAction/resolve", {"title": "x", "data": 3}),
            "unknown method": ("lacuna/nothing", {}),
        }
        for name, (method, params) in cases.items():
            errors[name] = error_of(s, method, params)

        expect = {
            "before initialize": (-32002, "not initialized: send 'initialize'"),
            "unknown uri": (-32602, "unknown document file:///nowhere.py"),
            "line past the end": (-32602, "ranges[0]: line 9 is past the end"),
            "character past the end": (-32602, "character 99 is past the end of line 0"),
            "inside a surrogate pair": (-32602, "falls inside the character"),
            "overlapping ranges": (-32602, "ranges[0] (0:0-0:5) and ranges[1] (0:3-0:8) overlap"),
            "reversed range": (-32602, "ends before it starts"),
            "unknown language": (-32602, "no grammar for language id 'no-such-language'"),
            "params not an object": (-32602, "params must be an object"),
            "ranges not a list": (-32602, "ranges must be a list"),
            "range without end": (-32602, "ranges[0].end must be {line, character}"),
            "unknown option": (-32602, "unknown option(s) colour"),
            "bad option value": (-32602, "steps must be at least 1"),
            "duplicate ranges": (-32602, "overlap"),
            "bad marker count": (-32602, "bad marker length '[MASK:x]'"),
            "codeAction without range": (-32602, "malformed params for 'textDocument/codeAction'"),
            "codeAction unknown uri": (-32602, "unknown document"),
            "inline position past the end": (-32602, "line 7 is past the end"),
            "resolve a foreign action": (-32602, "not offered by Lacuna"),
            "unknown method": (-32601, "lacuna/nothing"),
        }
        for name, (code, text) in expect.items():
            got_code, got_message = errors[name]
            assert got_code == code, (name, errors[name])
            assert text in got_message, (name, errors[name])
        assert "params.range" in errors["codeAction without range"][1]

        # still serving: a valid fill
        out = raw_request(s, "lacuna/fill", {"textDocument": doc, "version": 1})
        assert [e["range"] for e in out["edits"]] == [rng(0, 4, 0, 10)]
        # after shutdown, requests are refused; exit ends the process cleanly
        s.run(s.client.shutdown_async(None))
        code, message = error_of(s, "lacuna/fill", {"textDocument": doc})
        assert code == -32600 and "shutting down" in message
        s.client.exit(None)
        assert s.process.wait(30) == 0
    finally:
        s.stop()
