"""Fuzz the server with seeded random and malformed messages (issue 21, "must show"):
broken frames, bad envelopes, odd ids, batches, random params for every feature, edits
and cancellations racing fills. Then check what a client must be able to rely on:

- every request sent in a readable frame with a usable id gets exactly one answer, and
  every unreadable frame or unusable id exactly one answer with id null;
- no answer is an internal error (-32603), no popup shows Python exception text;
- every edit lies inside the ranges its fill asked for;
- a valid fill at the end still works.

Bounded: a fixed count of messages per seed, each run under a time limit, the tiny
random model with budgets of a few tokens. Counts and times are in docs/editors.md.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from lsp_support import server_env
from raw_lsp import Raw, frame, notification, request, tcp_server

#: (transport, seed, messages): stdio carries the bulk, loopback TCP a shorter run.
RUNS = [("stdio", 2101, 1000), ("tcp", 2102, 200)]
#: Seconds a run may take from the first message to the last answer.
TIME_LIMIT = 120.0  # typical: 12-25 s a run; the margin is for a loaded machine
POPUP_WORDS = ("Traceback", "Error in server", "Future", "KeyError", "object has no attribute",
               "unhashable", "Exception", 'File "')

TEXTS = ["x = [MASK]\n", "def f(a):\n    return [MASK]\n\ny = 'é🙂'\n", "",
         "a [MASK] b [MASK:3] c\n", "🙂🙂\n\n\n[MASK]", "no holes here\n" * 3, "\ud83d lone\n"]
URIS = ["file:///fuzz/a.py", "file:///fuzz/b%20c.py", "file:///fuzz/%C3%A9.txt",
        "untitled:Untitled-1", "file:///c%3A/fuzz/d.py"]
LANGS = ["python", "plaintext", "markdown", "no-such-language", ""]
ODD = [None, True, False, 0, -1, 1.5, 2**31, 2**63, 2**64, 1e300, -1e-300, float("nan"),
       float("inf"), "", "x", "\ud83d", [], [1], {}, {"a": 1}]
#: A document only good fills touch (random changes elsewhere make most fills stale).
STEADY = {"uri": "file:///fuzz/steady.py", "languageId": "python", "version": 1,
          "text": "def area(w, h):\n    return w * h  # 🙂\n"}
#: Well-formed frames with nothing to answer: they follow each framing error, so that
#: the next frame the reader finds is a known one whatever the error swallowed.
RESYNC = frame(notification("lacuna/fuzz/resync"))


@dataclass
class Expect:
    ids: list[Any] = field(default_factory=list)  # requests: exactly one answer each
    nulls: int = 0  # answers with id null
    holes: dict[Any, list[dict]] = field(default_factory=dict)  # fill id -> ranges asked


class Fuzz:
    """Seeded messages; :meth:`one` returns the bytes of one case and records what the
    server owes for it in :attr:`expect`."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.expect = Expect()
        self.next_id = 0
        self.sent: list[Any] = []
        self.versions: dict[str, int] = {}
        self.texts: dict[str, str] = {}  # what the server should hold, as far as known

    # -- pieces ----------------------------------------------------------------------

    def new_id(self) -> Any:
        self.next_id += 1
        return self.next_id if self.r.random() < 0.5 else f"q{self.next_id}"

    def odd(self) -> Any:
        return self.r.choice(ODD)

    def pos(self) -> dict:
        r = self.r
        if r.random() < 0.1:
            return {"line": self.odd(), "character": self.odd()}
        return {"line": r.randint(0, 4), "character": r.choice([0, 1, 2, 3, 5, 9, 40])}

    def rng(self) -> dict:
        return {"start": self.pos(), "end": self.pos()}

    def doc_id(self) -> dict:
        r = self.r
        uri = r.choice(URIS) if r.random() < 0.9 else self.odd()
        return {"uri": uri} if r.random() < 0.95 else self.odd()

    def valid_range(self) -> dict:
        r = self.r
        a = (r.randint(0, 2), r.randint(0, 6))
        b = (a[0], a[1] + r.randint(0, 4))
        return {"start": {"line": a[0], "character": a[1]},
                "end": {"line": b[0], "character": b[1]}}

    def options(self) -> Any:
        r = self.r
        if r.random() < 0.2:
            return self.odd()
        opts = {"budget": r.randint(1, 4), "steps": r.randint(1, 4)}
        for key in r.sample(["temperature", "seed", "threshold", "blockLength",
                             "syntaxConstraint", "marker", "colour"], r.randint(0, 2)):
            opts[key] = self.odd() if r.random() < 0.6 else r.choice([0.5, 1, 2, 7])
        return opts

    # -- requests ----------------------------------------------------------------------

    def req(self, method: str, params: Any, fill_ranges: list | None = None) -> bytes:
        msg_id = self.new_id()
        self.expect.ids.append(msg_id)
        if fill_ranges is not None:
            self.expect.holes[msg_id] = fill_ranges
        self.sent.append(msg_id)
        return frame(request(msg_id, method, params))

    def good_fill(self) -> bytes:
        """A fill the server can do (unless a later change makes it stale)."""
        r = self.r
        uri = STEADY["uri"] if r.random() < 0.5 else r.choice(sorted(self.texts))
        text = STEADY["text"] if uri == STEADY["uri"] else self.texts[uri]
        lines = text.split("\n")
        line = r.randrange(len(lines))
        units = len(lines[line].encode("utf-16-le", "surrogatepass")) // 2
        a = r.randint(0, units)
        b = r.randint(a, units)
        ranges = [{"start": {"line": line, "character": a},
                   "end": {"line": line, "character": b}}]
        return self.req("lacuna/fill", {
            "textDocument": {"uri": uri}, "ranges": ranges,
            "options": {"budget": r.randint(1, 4), "steps": r.randint(1, 4)}}, ranges)

    def fill(self) -> bytes:
        r = self.r
        if self.texts and r.random() < 0.6:
            return self.good_fill()
        ranges = [self.valid_range() for _ in range(r.randint(1, 2))]
        if r.random() < 0.2:
            ranges = [self.rng()]
        params: dict[str, Any] = {"textDocument": self.doc_id(), "ranges": ranges,
                                  "options": self.options()}
        if r.random() < 0.3:
            params["workDoneToken"] = r.choice(["t1", 5, *ODD])
        if r.random() < 0.2:
            params["partialResultToken"] = r.choice(["p1", 6, *ODD])
        if r.random() < 0.2:
            params["version"] = self.odd()
        return self.req("lacuna/fill", params, ranges)

    def inline(self) -> bytes:
        return self.req("textDocument/inlineCompletion", {
            "textDocument": self.doc_id(), "position": self.pos(),
            "context": {"triggerKind": self.r.choice([1, 2, 3, "x"])}})

    def code_action(self) -> bytes:
        return self.req("textDocument/codeAction", {
            "textDocument": self.doc_id(), "range": self.rng(),
            "context": {"diagnostics": []} if self.r.random() < 0.9 else self.odd()})

    def resolve(self) -> bytes:
        r = self.r
        uri = r.choice(URIS)
        data = {"action": r.choice(["markers", "selection", "body", "x"]), "uri": uri,
                "version": self.versions.get(uri, r.randint(0, 3)),
                "range": self.rng(), "offset": r.choice([0, 3, -1, "x"])}
        if r.random() < 0.2:
            data = self.odd()
        return self.req("codeAction/resolve", {"title": "t", "data": data})

    def other_request(self) -> bytes:
        r = self.r
        method = r.choice(["lacuna/nothing", "textDocument/hover", "workspace/symbol",
                           "initialize", "textDocument/didOpen", "$/cancelRequest"])
        # shutdown and exit end the session: the run ends with them, not in the middle
        return self.req(method, r.choice([{}, None, [1], {"capabilities": "x"}]))

    # -- notifications -----------------------------------------------------------------

    def note(self, method: str, params: Any) -> bytes:
        return frame(notification(method, params))

    def open_doc(self) -> bytes:
        r = self.r
        uri = r.choice(URIS)
        self.versions[uri] = r.randint(0, 3)
        self.texts[uri] = r.choice(TEXTS)
        return self.note("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": r.choice(LANGS), "version": self.versions[uri],
            "text": self.texts[uri]}})

    def change_doc(self) -> bytes:
        r = self.r
        uri = r.choice(URIS)
        version = self.versions.get(uri, 0) + r.choice([0, 1, 1, 2])  # 0: a reused version
        self.versions[uri] = version
        change = {"text": r.choice(TEXTS)}
        if r.random() < 0.2:
            change = {"range": self.rng(), "text": "z"}
        if uri in self.texts:
            self.texts[uri] = change["text"] if "range" not in change else self.texts.pop(uri)
        if "range" in change:
            self.texts.pop(uri, None)
        return self.note("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version}, "contentChanges": [change]})

    def other_note(self) -> bytes:
        r = self.r
        choice = r.randrange(6)
        if choice == 0:
            target = r.choice(self.sent) if self.sent and r.random() < 0.8 else self.odd()
            return self.note("$/cancelRequest", {"id": target})
        if choice == 1:
            doc = self.doc_id()
            if isinstance(doc, dict) and isinstance(doc.get("uri"), str):
                self.texts.pop(doc["uri"], None)
            return self.note("textDocument/didClose", {"textDocument": doc})
        if choice == 2:
            return self.note("window/workDoneProgress/cancel", {"token": r.choice(["t1", 5])})
        if choice == 3:
            key = r.choice(["temperature", "marker", "seed", "syntaxConstraint", "steps"])
            value = self.odd() if key != "steps" else r.choice([1, 2, 0, "x"])
            return self.note("workspace/didChangeConfiguration",
                             {"settings": {"lacuna": {key: value}}})
        if choice == 4:  # a response to a request the server never sent
            return frame({"jsonrpc": "2.0", "id": self.odd() if r.random() < 0.5 else "zz",
                          "result": self.odd()})
        return self.note(r.choice(["lacuna/unknown", "initialized", "$/setTrace"]),
                         r.choice([{}, None, self.odd()]))

    # -- broken envelopes and frames ---------------------------------------------------

    def bad_envelope(self) -> bytes:
        r = self.r
        msg_id = self.new_id()
        shapes = [
            lambda: ({"id": msg_id, "method": "lacuna/nothing"}, msg_id),
            lambda: ({"jsonrpc": "1.0", "id": msg_id, "method": "lacuna/fill"}, msg_id),
            lambda: ({"jsonrpc": "2.0", "id": msg_id, "method": r.choice([5, None, [1]])},
                     msg_id),
            lambda: ({"jsonrpc": "2.0", "id": msg_id}, msg_id),
            lambda: ({"jsonrpc": "2.0", "id": msg_id, "method": "lacuna/fill",
                      "params": r.choice([5, "x", True])}, msg_id),
            lambda: ({"jsonrpc": "2.0", "id": r.choice([True, [1], 1.5, {"a": 1}, None]),
                      "method": r.choice(["lacuna/fill", "textDocument/codeAction"]),
                      "params": {"textDocument": {"uri": URIS[0]}}}, None),
            lambda: (r.choice([5, "x", None, True, []]), None),
            lambda: ([request(msg_id, "lacuna/nothing"), notification("initialized")],
                     msg_id),
        ]
        message, answer_id = r.choice(shapes)()
        if answer_id is None:
            self.expect.nulls += 1
        else:
            self.expect.ids.append(answer_id)
        return frame(message)

    def bad_frame(self) -> bytes:
        """One frame the reader cannot read (one -32700 with id null), then RESYNC; or a
        valid frame in an unusual spelling (a request like any other)."""
        r = self.r
        body = json.dumps(request(self.new_id(), "lacuna/nothing")).encode()
        n = len(body)
        broken = [
            b"Content-Length: 100000000000000\r\n\r\n",
            b"Content-Length: -%d\r\n\r\n" % n + body,
            b"Content-Length: +%d\r\n\r\n" % n + body,
            b"Content-Length: %dx\r\n\r\n" % n + body,
            b"Content-Type: application/vscode-jsonrpc\r\n\r\n" + body,
            b"Content-Length: %d\r\n\r\n" % (n - r.randint(1, n - 1)) + body,
            b"Content-Length: %d\r\n\r\n" % (n + r.randint(1, len(RESYNC) - 1)) + body,
            b"Content-Length: 7\r\n\r\n\xff\xfe{}\xc3(\x80",
            b"Content-Length: 9\r\n\r\nnot json!",
            b"Content-Length: 3\r\n\r\n[1,",
            b"Content-Length: 60000\r\n\r\n" + b"[" * 60000,
            b"Content-Length: 0\r\n\r\n",
            b"Garbage-Without-Colon\r\n\r\n",
            b"Content-Length: " + b"9" * 9000 + b"\r\n\r\n",
        ]
        spelled = [
            b"content-length: %d\r\n\r\n" % n + body,
            b"Content-Length: %d\n\n" % n + body,
            b"CONTENT-LENGTH: %d\r\nContent-Type: application/json\r\n\r\n" % n + body,
            b"Content-Length:   %d  \r\n\r\n" % n + body,
        ]
        if r.random() < 0.25:
            self.expect.ids.append(json.loads(body)["id"])
            return r.choice(spelled)
        self.expect.nulls += 1
        return r.choice(broken) + RESYNC

    def one(self) -> bytes:
        r = self.r
        pick = r.random()
        for share, make in ((0.04, self.fill), (0.02, self.inline), (0.10, self.code_action),
                            (0.04, self.resolve), (0.06, self.other_request),
                            (0.12, self.open_doc), (0.12, self.change_doc),
                            (0.15, self.other_note), (0.17, self.bad_envelope)):
            if pick < share:
                return make()
            pick -= share
        return self.bad_frame()


def inside(edit: dict, ranges: list[dict]) -> bool:
    def key(p):
        return (p["line"], p["character"])

    return any(key(r["start"]) <= key(edit["range"]["start"])
               and key(edit["range"]["end"]) <= key(r["end"]) for r in ranges)


def connect(transport: str, env: dict) -> tuple[Raw, Any]:
    if transport == "stdio":
        raw = Raw.stdio(env)
        return raw, raw.process
    proc, port = tcp_server(env)
    return Raw.connect(port), proc


@pytest.mark.parametrize("transport, seed, count", RUNS)
def test_fuzz(transport, seed, count, tiny_model_dir, tmp_path):
    raw, proc = connect(transport, server_env(tiny_model_dir, tmp_path))
    try:
        raw.initialize({"budget": 4, "inlineBudget": 4, "steps": 4})
        raw.send(notification("textDocument/didOpen", {"textDocument": STEADY}))
        fuzz = Fuzz(seed)
        started = time.monotonic()
        cases = [fuzz.one() for _ in range(count)]
        for case in cases:
            raw.send(case)
        # the end: a fresh document and a valid fill
        final = {"uri": "file:///fuzz/final.py", "languageId": "python", "version": 1,
                 "text": "total = [MASK]\n"}
        raw.send(notification("textDocument/didOpen", {"textDocument": final}))
        done = raw.ask("final", "lacuna/fill", {  # the fuzzed settings may name a marker
            "textDocument": {"uri": final["uri"]}, "options": {"marker": "[MASK]"}},
            timeout=TIME_LIMIT)
        expect = fuzz.expect
        raw.wait(lambda: all(raw.answers(i) for i in expect.ids), TIME_LIMIT)
        elapsed = time.monotonic() - started
        raw.ask("last", "lacuna/nothing")  # anything still owed has been written by now

        assert "result" in done, done
        assert [e["range"]["start"]["character"] for e in done["result"]["edits"]] == [8]
        answers = [m for m in raw.received if "method" not in m and m.get("id") != "init"]
        twice = [i for i in expect.ids if len(raw.answers(i)) != 1]
        assert not twice, f"answered other than once: {twice[:10]}"
        nulls = [m for m in answers if m.get("id", 0) is None]
        assert len(nulls) == expect.nulls, [m["error"]["message"] for m in nulls][-10:]
        internal = [m for m in answers if m.get("error", {}).get("code") == -32603]
        assert not internal, internal[:3]
        popups = [m["params"]["message"] for m in raw.received
                  if m.get("method") == "window/showMessage"
                  and any(w in str(m["params"].get("message")) for w in POPUP_WORDS)]
        assert not popups, popups[:3]
        for msg_id, ranges in expect.holes.items():
            result = raw.answers(msg_id)[0].get("result")
            for edit in (result or {}).get("edits", []):
                assert inside(edit, ranges), (msg_id, edit, ranges)
        assert elapsed < TIME_LIMIT
        filled = sum(1 for i in expect.holes if "result" in raw.answers(i)[0])
        print(f"\nfuzz {transport} seed {seed}: {count} messages, {len(expect.ids)} requests "
              f"answered once, {len(nulls)} id-null answers, {filled} fills with edits "
              f"checked, {len(raw.received)} frames received, {elapsed:.1f} s")

        raw.ask("down", "shutdown")
        raw.send(notification("exit"))
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
