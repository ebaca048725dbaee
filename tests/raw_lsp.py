"""A byte-level LSP client for tests that send what no well-behaved client would: broken
frames, bad envelopes, odd ids. It spawns ``python -m lsp_server`` (stdio, or ``--tcp``
with :func:`tcp_server` and :class:`Raw` over a socket) and collects every frame the
server writes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from lsp_support import REPO


def frame(obj: Any) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def request(msg_id: Any, method: str, params: Any = None) -> dict:
    msg = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def notification(method: str, params: Any = None) -> dict:
    return {"jsonrpc": "2.0", "method": method, "params": params or {}}


class Raw:
    """One connection: ``send`` bytes or messages; ``received`` holds the server's frames."""

    def __init__(self, write: Callable[[bytes], None], read: Callable[[], bytes]) -> None:
        self._write = write
        self.received: list[dict] = []
        self._by_id: dict[str, list[dict]] = {}
        self._lock = threading.Condition()
        self.eof = False
        threading.Thread(target=self._pump, args=(read,), daemon=True).start()

    @classmethod
    def stdio(cls, env: dict[str, str]) -> Raw:
        proc = subprocess.Popen([sys.executable, "-m", "lsp_server"], env=env, cwd=str(REPO),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)

        def write(data: bytes) -> None:
            proc.stdin.write(data)
            proc.stdin.flush()

        raw = cls(write, lambda: proc.stdout.read1(65536))
        raw.process = proc
        return raw

    @classmethod
    def connect(cls, port: int, timeout: float = 60.0) -> Raw:
        """Connect to a server that may still be starting (no probe connections: each
        connection is a session)."""
        end = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        sock.settimeout(None)
        raw = cls(sock.sendall, lambda: sock.recv(65536))
        raw.sock = sock
        return raw

    def _pump(self, read: Callable[[], bytes]) -> None:
        buf = b""
        while True:
            try:
                chunk = read()
            except OSError:
                chunk = b""
            if not chunk:
                with self._lock:
                    self.eof = True
                    self._lock.notify_all()
                return
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                if len(rest) < length:
                    break
                message = json.loads(rest[:length])
                with self._lock:
                    self.received.append(message)
                    if "method" not in message and "id" in message:
                        self._by_id.setdefault(_key(message["id"]), []).append(message)
                    self._lock.notify_all()
                buf = rest[length:]

    def send(self, *messages: Any) -> None:
        for m in messages:
            self._write(m if isinstance(m, bytes) else frame(m))

    def answers(self, msg_id: Any) -> list[dict]:
        """The responses with this id (notifications and server requests left out)."""
        with self._lock:
            return list(self._by_id.get(_key(msg_id), ()))

    def wait(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0 or self.eof and not predicate():
                    raise AssertionError(f"timed out (eof={self.eof}); got {self.received[-5:]}")
                self._lock.wait(min(left, 0.5))

    def ask(self, msg_id: Any, method: str, params: Any = None, timeout: float = 30.0) -> dict:
        """Send a request and wait for its one answer."""
        self.send(request(msg_id, method, params))
        self.wait(lambda: self.answers(msg_id), timeout)
        return self.answers(msg_id)[0]

    def initialize(self, options: dict | None = None) -> dict:
        got = self.ask("init", "initialize", {"capabilities": {}, "processId": None,
                                              "initializationOptions": options or {}})
        self.send(notification("initialized"))
        return got

    def close_stdio(self, timeout: float = 30.0) -> int:
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def _key(msg_id: Any) -> str:
    """Ids 1 and "1" (and true) are different ids."""
    return json.dumps([type(msg_id).__name__, msg_id])


def tcp_server(env: dict[str, str], host: str = "127.0.0.1") -> tuple[subprocess.Popen, int]:
    """Spawn the server on ``host`` and a free port (:meth:`Raw.connect` waits for it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server", "--tcp", f"{host}:{port}"],
                            env=env, cwd=str(REPO), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # a pipe nobody reads would fill
    return proc, port
