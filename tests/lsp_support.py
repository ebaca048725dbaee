"""Drive the real Lacuna server over stdio with pygls' own client, synchronously.

One :class:`Session` spawns ``python -m lsp_server`` once; tests call :meth:`Session.request`
and friends, which run the client's coroutines on the session's private event loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

REPO = Path(__file__).resolve().parents[1]


def plain(x: Any) -> Any:
    """pygls' namedtuple ``Object`` results (and lists of them) as dicts and lists."""
    if hasattr(x, "_asdict"):
        return {k: plain(v) for k, v in x._asdict().items()}
    if isinstance(x, list | tuple):
        return [plain(v) for v in x]
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    return x


def rng(l0: int, c0: int, l1: int, c1: int) -> dict:
    """An LSP range as JSON, from its four numbers."""
    return {"start": {"line": l0, "character": c0}, "end": {"line": l1, "character": c1}}


def server_env(model_dir: Path | str, tmp: Path | str) -> dict[str, str]:
    env = dict(os.environ)
    env["LACUNA_MODEL"] = str(model_dir)
    env["LACUNA_CACHE"] = str(Path(tmp) / "cache")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class Session:
    def __init__(self, env: dict[str, str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient("lacuna-tests", "0")
        self.progress: list[tuple[Any, Any, float]] = []
        self.messages: list[types.ShowMessageParams] = []
        self.created_tokens: list[Any] = []
        self.env = env
        self.process: subprocess.Popen | None = None
        c = self.client

        @c.feature(types.PROGRESS)
        def on_progress(params: types.ProgressParams) -> None:
            self.progress.append((params.token, plain(params.value), time.monotonic()))

        @c.feature(types.WINDOW_SHOW_MESSAGE)
        def on_message(params: types.ShowMessageParams) -> None:
            self.messages.append(params)

        @c.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def on_create(params: types.WorkDoneProgressCreateParams) -> None:
            self.created_tokens.append(params.token)

    def run(self, coro, timeout: float = 60.0):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def start(self) -> None:
        self.run(self.client.start_io(sys.executable, "-m", "lsp_server", env=self.env,
                                      cwd=str(REPO)))

    def start_tcp(self) -> None:
        """Spawn ``python -m lsp_server --tcp 127.0.0.1:PORT`` and connect to it."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lsp_server", "--tcp", f"127.0.0.1:{port}"],
            env=self.env, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def connect():
            while True:
                try:
                    return await self.client.start_tcp("127.0.0.1", port)
                except OSError:
                    if self.process.poll() is not None:
                        raise RuntimeError("the TCP server exited before listening") from None
                    await asyncio.sleep(0.1)

        self.run(connect(), 60)

    def initialize(self, options: dict | None = None, *, progress: bool = True
                   ) -> types.InitializeResult:
        caps = types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=progress),
            workspace=types.WorkspaceClientCapabilities(
                workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=True),
                configuration=False,
            ),
        )
        result = self.run(self.client.initialize_async(types.InitializeParams(
            capabilities=caps, process_id=os.getpid(), root_uri=None,
            initialization_options=options,
        )))
        self.client.initialized(types.InitializedParams())
        return result

    def open(self, uri: str, text: str, language: str = "python", version: int = 1) -> None:
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language,
                                                 version=version, text=text)))

    def change(self, uri: str, text: str, version: int) -> None:
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    def configure(self, settings: dict) -> None:
        self.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings=settings))

    def request(self, method: str, params: Any, msg_id: Any = None, timeout: float = 60.0):
        return self.wait(self.send(method, params, msg_id), timeout)

    def send(self, method: str, params: Any, msg_id: Any = None):
        """Start a request; returns the asyncio future (await it with :meth:`wait`)."""
        async def start():
            return self.client.protocol.send_request_async(method, params, msg_id=msg_id)

        return self.run(start())

    def wait(self, fut, timeout: float = 60.0):
        return plain(self.run(fut, timeout))

    def wait_until(self, predicate, timeout: float = 30.0) -> None:
        async def poll():
            while not predicate():
                await asyncio.sleep(0.01)

        self.run(poll(), timeout)

    def cancel(self, msg_id: Any) -> None:
        self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))

    def stop(self) -> int | None:
        """shutdown + exit; returns the server's exit code (None if it had to be killed)."""
        server = self.client._server
        if self.process is not None:  # TCP: a plain subprocess
            try:
                if self.process.poll() is None and not self.client.stopped:
                    self.run(self.client.shutdown_async(None), 15)
                    self.client.exit(None)
                return self.process.wait(30)
            except (TimeoutError, subprocess.TimeoutExpired):
                self.process.kill()
                return None
            finally:
                try:
                    self.run(self.client.stop(), 15)
                except Exception:
                    pass
                self.loop.close()
        try:
            if not self.client.stopped:
                self.run(self.client.shutdown_async(None), 15)
                self.client.exit(None)
            code = self.run(server.wait(), 15) if server else None
        except TimeoutError:
            code = None
            if server and server.returncode is None:
                server.kill()
        finally:
            try:
                self.run(self.client.stop(), 15)
            except Exception:
                pass
            self.loop.close()
        return code


def errors_of(exc: BaseException) -> tuple[int, str]:
    return getattr(exc, "code", None), str(getattr(exc, "message", exc))


def raw_request(s: Session, method: Any, params: Any, timeout: float = 30.0):
    """Send ``params`` exactly as given (no client-side typing) and wait for the answer."""
    msg_id = str(uuid.uuid4())
    fut: Future = Future()
    s.client.protocol._request_futures[msg_id] = fut
    s.client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method,
                                  "params": params})

    async def wait():
        return await asyncio.wrap_future(fut)

    return plain(s.run(wait(), timeout))
