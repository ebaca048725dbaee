"""Issue 21 defect 8: over TCP each connection is its own session (its documents, its
answers), and only loopback addresses are served (TCP has no authentication)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from lsp_support import REPO, server_env
from raw_lsp import Raw, notification, tcp_server

from lsp_server.transport import check_loopback

URI = "file:///work/a.py"
ACTIONS = {"textDocument": {"uri": URI},
           "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
           "context": {"diagnostics": []}}


def test_two_connections_are_two_sessions(tiny_model_dir, tmp_path):
    proc, port = tcp_server(server_env(tiny_model_dir, tmp_path))
    try:
        a = Raw.connect(port)
        a.initialize()
        a.send(notification("textDocument/didOpen", {"textDocument": {
            "uri": URI, "languageId": "python", "version": 1, "text": "x = [MASK]\n"}}))
        assert a.ask("a1", "textDocument/codeAction", ACTIONS)["result"]

        b = Raw.connect(port)
        assert "result" in b.initialize()  # its own session: not "already initialized"
        theirs = b.ask("b1", "textDocument/codeAction", ACTIONS)
        assert "unknown document" in theirs["error"]["message"]  # a's document is a's
        assert a.ask("a2", "textDocument/codeAction", ACTIONS)["result"]
        assert not a.answers("b1") and not b.answers("a2")

        b.ask("b-down", "shutdown")
        b.send(notification("exit"))
        b.wait(lambda: b.eof)
        assert proc.poll() is None  # a is still connected: the server keeps serving
        assert a.ask("a3", "textDocument/codeAction", ACTIONS)["result"]
        a.ask("a-down", "shutdown")
        a.send(notification("exit"))
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_non_loopback_host_is_refused(tiny_model_dir, tmp_path):
    done = subprocess.run([sys.executable, "-m", "lsp_server", "--tcp", "0.0.0.0:0"],
                          env=server_env(tiny_model_dir, tmp_path), cwd=str(REPO),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "loopback only" in done.stderr and "no authentication" in done.stderr


def test_which_hosts_count_as_loopback():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        check_loopback(host)
    for host in ("0.0.0.0", "::", "192.168.1.20", "example.com", ""):
        with pytest.raises(SystemExit, match="loopback only"):
            check_loopback(host)
