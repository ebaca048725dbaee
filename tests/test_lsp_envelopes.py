"""Issue 21 defects 5 and 9: every request gets exactly one answer, whatever its envelope,
and the protocol's states (before ``initialize``, initialized, after ``shutdown``, ``exit``)
answer as LSP says. Raw stdio, one server per test."""

from __future__ import annotations

import pytest
from lsp_support import server_env
from raw_lsp import Raw, notification, request

DOC = {"uri": "file:///work/env.py", "languageId": "python", "version": 1,
       "text": "x = [MASK]\n"}
ACTIONS = {"textDocument": {"uri": DOC["uri"]},
           "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
           "context": {"diagnostics": []}}


@pytest.fixture
def raw(tiny_model_dir, tmp_path):
    r = Raw.stdio(server_env(tiny_model_dir, tmp_path))
    yield r
    r.close_stdio()


def nulls(raw: Raw) -> list[dict]:
    return [m for m in raw.received if "id" in m and m["id"] is None]


def answers_between(raw: Raw, message, sync_id) -> list[dict]:
    """The answers that ``message`` got: everything before the answer to a request sent
    right after it (bad envelopes are answered at once, in order)."""
    before = len(raw.received)
    raw.send(message)
    raw.ask(sync_id, "lacuna/nothing")
    got = raw.received[before:]
    assert got[-1]["id"] == sync_id
    return [m for m in got[:-1] if "method" not in m]


BAD = {
    "no jsonrpc": ({"id": 1, "method": "lacuna/nothing"}, 1),
    "jsonrpc 1.0": ({"jsonrpc": "1.0", "id": 2, "method": "lacuna/nothing"}, 2),
    "method 5": ({"jsonrpc": "2.0", "id": 3, "method": 5}, 3),
    "no method": ({"jsonrpc": "2.0", "id": 4}, 4),
    "params a string": ({"jsonrpc": "2.0", "id": 5, "method": "lacuna/fill", "params": "x"}, 5),
    "id true": ({"jsonrpc": "2.0", "id": True, "method": "lacuna/nothing"}, None),
    "id [1]": ({"jsonrpc": "2.0", "id": [1], "method": "lacuna/nothing"}, None),
    "id 1.5": ({"jsonrpc": "2.0", "id": 1.5, "method": "lacuna/nothing"}, None),
    'id {"a":1}': ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "lacuna/fill",
                    "params": {"textDocument": {"uri": DOC["uri"]}}}, None),
    "id null": ({"jsonrpc": "2.0", "id": None, "method": "lacuna/nothing"}, None),
    "a number": (5, None),
    "empty batch": ([], None),
}


def test_bad_envelopes_get_exactly_one_invalid_request(raw):
    raw.initialize()
    raw.send(notification("textDocument/didOpen", {"textDocument": DOC}))
    for i, (name, (message, msg_id)) in enumerate(BAD.items()):
        got = answers_between(raw, message, f"sync{i}")
        assert len(got) == 1, (name, got)
        assert got[0]["id"] == msg_id and got[0]["error"]["code"] == -32600, (name, got)
    assert "integer or a string" in nulls(raw)[0]["error"]["message"]


def test_a_batch_is_refused_one_answer_per_request(raw):
    raw.initialize()
    batch = [request(10, "lacuna/nothing"), notification("initialized"),
             request(11, "shutdown"), {"jsonrpc": "2.0", "id": 1.5, "method": "x"}]
    got = answers_between(raw, batch, "sync")
    assert sorted(str(m["id"]) for m in got) == ["10", "11", "None"]
    assert {m["error"]["code"] for m in got} == {-32600}
    assert "batches are not supported" in got[0]["error"]["message"]
    # the shutdown inside the batch did not happen: requests are still served
    assert raw.ask("later", "textDocument/codeAction", ACTIONS)["error"]["code"] == -32602


def test_before_initialize_every_request_is_not_initialized(raw):
    malformed = {"textDocument": 3}
    for i, params in enumerate([ACTIONS, malformed, None]):
        got = raw.ask(i, "textDocument/codeAction", params)
        assert got["error"]["code"] == -32002, got
    raw.send(notification("textDocument/didOpen", {"textDocument": DOC}))  # dropped
    raw.initialize()
    assert raw.ask("after", "textDocument/codeAction", ACTIONS)["error"]["code"] == -32602


def test_a_second_initialize_is_refused_and_keeps_the_documents(raw):
    raw.initialize()
    raw.send(notification("textDocument/didOpen", {"textDocument": DOC}))
    again = raw.ask("again", "initialize", {"capabilities": "x", "processId": None})
    assert again["error"]["code"] == -32600 and "already initialized" in again["error"]["message"]
    actions = raw.ask("actions", "textDocument/codeAction", ACTIONS)
    assert [a["title"] for a in actions["result"]] == ["Fill [MASK] markers (1)"]


def test_exit_without_shutdown_exits_1(raw):
    raw.initialize()
    raw.send(notification("exit"))
    assert raw.process.wait(30) == 1


def test_exit_sent_as_a_request_is_answered_then_exits(raw):
    raw.initialize()
    raw.ask("down", "shutdown")
    got = raw.ask("bye", "exit")
    assert got == {"jsonrpc": "2.0", "id": "bye", "result": None}
    assert raw.process.wait(30) == 0
